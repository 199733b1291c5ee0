"""The simulated GC decides and logs as the storage manager does (gc-space-rules.md)."""

import re

import pytest
import XenAPI

from runbook_lib.sim import Simulator, load_scenario
from runbook_lib.sim.gc import LIVE_MAX_SIZE
from runbook_lib.sizing import GiB, MiB, lvhd_lv_size

SEED_SR = "db4c3909-4b61-e5f6-8548-16dc56780f61"
LINE = re.compile(r"^(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ 1-3][0-9] "
                  r"\d\d:\d\d:\d\d \S+ (SM|SMGC): \[\d+\] ")


def _vdi(sim, uuid_prefix):
    for ref, rec in sim.state.tables["VDI"].items():
        if rec["uuid"].startswith(uuid_prefix):
            return ref
    raise KeyError(uuid_prefix)


def test_seed_reproduces_the_stuck_leaf_coalesce(tmp_path):
    log = tmp_path / "SMlog"
    with Simulator("seed-stuck-leaf-coalesce", smlog=log, speed=1) as sim:
        free_before = sim.storage.free(sim.sr_ref(SEED_SR))
        sim.run_gc(SEED_SR)
        sim.run_gc(SEED_SR)
        leaf = _vdi(sim, "67558d6a")
        assert sim.storage.vhds[leaf].parent is not None          # still not coalesced
        assert sim.storage.free(sim.sr_ref(SEED_SR)) <= free_before
    lines = log.read_text().splitlines()
    assert all(LINE.match(line) for line in lines)
    text = "\n".join(lines)
    assert text.count("leaf-coalesce: EXCEPTION util.SMException, Timed out") == 2
    assert text.count("SMGC: [10357] Leaf-coalesce failed, skipping") == 1
    assert "SR db4c ('Local SATA Storage') (5 VDIs in 4 VHD trees): no changes" in text
    assert "Removed leaf-coalesce from 67558d6a[VHD](2020.000G//2023.953G|ao)" in text
    assert 'raise util.SMException("Timed out")' in text
    assert "Starting asynch srUpdate for SR db4c3909-4b61-e5f6-8548-16dc56780f61" in text
    # the seed's order: tree, Removed, banner, exception, traceback, failed
    i = lines.index(next(line for line in lines if line.endswith("no changes")
                         and "[10357]" in line and lines[lines.index(line) + 1].endswith("|ao)")))
    assert "Removed leaf-coalesce from 67558d6a" in lines[i + 1]
    assert lines[i + 2].endswith("*~*~*~*~*~*~*~*~*~*~*~*~*~*~*~*~*~*~*~*~*")
    assert lines[i + 6].endswith("leaf-coalesce: EXCEPTION util.SMException, Timed out")


def test_seed_log_diagnosed_as_stuck_timeout(tmp_path):
    from runbook_lib.smlog.diagnose import diagnose
    from runbook_lib.smlog.read import read_smlog

    log = tmp_path / "SMlog"
    with Simulator("seed-stuck-leaf-coalesce", smlog=log, speed=1) as sim:
        sim.run_gc(SEED_SR)
        sim.run_gc(SEED_SR)
    assert diagnose(read_smlog(log)).verdict == "stuck-timeout"


def test_deleting_a_snapshot_coalesces_and_frees_space(tmp_path):
    log = tmp_path / "SMlog"
    with Simulator("healthy", smlog=log, speed=1) as sim:
        sr = sim.sr_ref("Local storage")
        assert sim.run_gc(sr) == 1
        assert "Leaf-coalescing" not in log.read_text()     # nothing to do with the snapshot
        used_before = sim.storage.used(sr)
        snap_vdi = _vdi(sim, "e2a4c6e8")
        leaf = _vdi(sim, "c5e7a9b1")
        session = XenAPI.Session(sim.url)
        x = session.xenapi
        x.login_with_password(sim.user, sim.password, "1.0", "tests")
        snap_vm = x.VM.get_by_name_label("app before upgrade")[0]
        assert x.VM.get_is_a_snapshot(snap_vm)
        x.VM.destroy(snap_vm)
        x.VDI.destroy(snap_vdi)
        x.SR.scan(sr)
        sim.run_gc(sr)
        assert int(x.SR.get_physical_utilisation(sr)) < used_before
        session.xenapi.session.logout()
        v = sim.storage.vhds[leaf]
        assert v.parent is None                      # the leaf now holds the merged data
        assert sim.storage.used(sr) < used_before
        assert len(sim.storage.chain(leaf)) == 1
    text = log.read_text()
    assert "Leaf-coalesce candidate: c5e7a9b1" in text
    assert "*** finished leaf-coalesce successfully" in text
    assert "Removed leaf-coalesce from c5e7a9b1" in text


def test_non_leaf_coalesce_on_a_file_sr(tmp_path):
    log = tmp_path / "SMlog"
    with Simulator("nfs-only", smlog=log, speed=1) as sim:
        sr = sim.sr_ref("NFS VM store")
        mid = _vdi(sim, "2c4e6a8c")
        leaf = _vdi(sim, "4e6a8c0e")
        data = sim.storage.union_blocks(leaf)
        assert len(sim.storage.chain(leaf)) == 3
        free_before = sim.storage.free(sr)
        sim.run_gc(sr)
        assert mid not in sim.storage.vhds                # coalesced, then deleted as garbage
        # the halted VM's leaf was then coalesced too: one flat VHD with all the data
        assert sim.storage.chain(leaf) == [leaf]
        assert sim.storage.vhds[leaf].blocks == data
        assert sim.storage.free(sr) > free_before
    text = log.read_text()
    assert "Coalescing *2c4e6a8c(60.000G/" in text
    assert "  Relinking 4e6a8c0e(60.000G/" in text
    assert "Found 1 VDIs for deletion:" in text and "Deleting unlinked VDI *2c4e6a8c" in text
    assert "GC process exiting, no work left" in text


def test_no_space_to_leaf_coalesce_sets_offline(tmp_path):
    """A leaf too big for a live coalesce on a full SR: the GC gives up, marks it offline."""
    log = tmp_path / "SMlog"
    scenario = {
        "name": "full", "smlog": {"style": "modern"},
        "srs": [{"uuid": "11111111-2222-4333-8444-555555555555", "name_label": "full",
                 "type": "lvm", "free": "100M"}],
        "vdis": [{"uuid": "aaaaaaaa-0000-4000-8000-000000000001", "sr": "full", "hidden": True,
                  "virtual_size": "10G", "allocated": "5G"},
                 {"uuid": "bbbbbbbb-0000-4000-8000-000000000002", "sr": "full",
                  "parent": "aaaaaaaa-0000-4000-8000-000000000001", "virtual_size": "10G",
                  "allocated": "2G"}],
        "vms": [{"uuid": "cccccccc-0000-4000-8000-000000000003", "name_label": "vm",
                 "power_state": "Running", "vbds": [{"vdi": "bbbbbbbb-0000-4000-8000-000000000002"}]}],
    }
    with Simulator(scenario, smlog=log, speed=1) as sim:
        sim.run_gc("full")
        leaf = _vdi(sim, "bbbbbbbb")
        assert sim.state.get("VDI", leaf)["other_config"].get("leaf-coalesce") == "offline"
        (msg_ref, msg), = sim.state.tables["message"].items()
        assert msg["name"] == "SM_GC_NO_SPACE" and msg["priority"] == 3 and msg["cls"] == "SR"
        assert msg["obj_uuid"] == "11111111-2222-4333-8444-555555555555"
        assert msg["body"] == ("Unable to perform data coalesce due to a lack of space in SR "
                               "11111111-2222-4333-8444-555555555555")
        sr = sim.state.get("SR", sim.sr_ref("full"))
        # sm keeps the message's reference (message.create's result) in the SR and each starved VDI
        assert sr["sm_config"]["gc_no_space"] == msg_ref
        assert sim.state.get("VDI", leaf)["sm_config"]["gc_no_space"] == msg_ref
        # a full SR gives the GC no work it can do: no "Garbage Collection" task
        assert not sim.state.tables["task"]
        # shut the VM down: on a thick SR (sm's default) its leaf stays inflated, nothing is freed,
        # and the 2 GiB leaf is still too big for the 10 s limit: the GC still cannot take it
        vm = next(r for r, rec in sim.state.tables["VM"].items() if rec["name_label"] == "vm")
        free = sim.storage.free(sim.sr_ref("full"))
        with sim.pool.lock:
            sim.pool._halt(vm)
        assert sim.storage.vhds[leaf].inflated and sim.storage.free(sim.sr_ref("full")) == free
        sim.run_gc("full")
        assert sim.storage.vhds[leaf].parent is not None
        # forced (other-config:leaf-coalesce=force) the halted leaf takes the live path, no timeout
        with sim.pool.lock:
            sim.state.set("VDI", leaf, other_config={"leaf-coalesce": "force"})
        sim.run_gc("full")
        assert sim.storage.vhds[leaf].parent is None
        assert "leaf-coalesce" not in sim.state.get("VDI", leaf)["other_config"]  # the GC removes it
        assert "gc_no_space" not in sim.state.get("SR", sim.sr_ref("full"))["sm_config"]
        assert "gc_no_space" not in sim.state.get("VDI", leaf)["sm_config"]
        assert not sim.state.tables["message"]  # destroyed once everything fits
    text = log.read_text()
    assert re.search(r"No space to leaf-coalesce bbbbbbbb\[VHD\]\(10\.000G/2\.\d+G/2\.000G/"
                     r"10\.0\d\dG\|ao\) \(free space: \d+\)", text)
    assert "...but enough space if skip snap-coalesce" in text
    assert "Set leaf-coalesce = offline for bbbbbbbb" in text
    assert "Could not coalesce due to a lack of space in SR 11111111-2222-4333-8444-555555555555" in text


def test_live_leaf_coalesce_limits():
    with Simulator("seed-stuck-leaf-coalesce", speed=1) as sim:
        leaf = _vdi(sim, "67558d6a")
        v = sim.storage.vhds[leaf]
        sr_state = sim.storage.srs[v.sr]
        assert sim.gc.can_live(leaf)          # 120 MiB at a measured ~60 MiB/s: under 5 s
        sr_state.speed_log = []
        assert not sim.gc.can_live(leaf)      # no measured speed: 20 MiB rule
        v.blocks = (LIVE_MAX_SIZE // (2 * MiB)) - 1
        assert sim.gc.can_live(leaf)
        # the live need on LVM subtracts what deflating the leaf gives back
        snap, live = sim.gc.leaf_needs(leaf)
        assert live < 0 < snap
        assert sim.storage.vdi_bytes(leaf) == lvhd_lv_size(2020 * GiB)


def _call_plugin(sim, vm_name: str, host=None, seconds: float = 3600):
    """Run host.call_plugin coalesce-leaf on the simulator's clock: ("ok", text) or ("failed", details)."""
    from runbook_lib.sim.model import ApiFailure

    vm = next(r for r, rec in sim.state.tables["VM"].items() if rec["name_label"] == vm_name)
    host = host or sim.pool.master
    out = []
    with sim.pool.lock:
        try:
            gen = sim.pool.op_host_call_plugin(host, "coalesce-leaf", "leaf-coalesce",
                                               {"vm_uuid": sim.state.get("VM", vm)["uuid"]})
            sim.pool.clock.spawn(gen, on_done=lambda v: out.append(("ok", v)),
                                 on_error=lambda exc: out.append(("failed", exc.description if isinstance(
                                     exc, ApiFailure) else [repr(exc)])))
        except ApiFailure as exc:
            out.append(("failed", exc.description))
    sim.advance(seconds)
    return vm, out


def test_plugin_refuses_a_running_vm_whose_suspend_sr_is_too_full(tmp_path):
    """The seed's host suspends to its full local SR: VM.suspend fails, the plugin reports
    'Failed to suspend the VM' and nothing is coalesced; the VM keeps running."""
    with Simulator("seed-stuck-leaf-coalesce", smlog=tmp_path / "SMlog", speed=1) as sim:
        leaf = _vdi(sim, "67558d6a")
        vm, out = _call_plugin(sim, "fileserver")
        assert out == [("failed", ["XENAPI_PLUGIN_FAILURE", "leaf-coalesce", "Exception", "Failed to suspend the VM"])]
        assert sim.storage.vhds[leaf].parent is not None
        assert sim.state.get("VM", vm)["power_state"] == "Running"


def test_plugin_suspends_forces_and_resumes_when_the_memory_fits(tmp_path):
    scenario = load_scenario("seed-stuck-leaf-coalesce")
    scenario["pool"]["suspend_image_SR"] = "NFS staging"
    with Simulator(scenario, smlog=tmp_path / "SMlog", speed=1) as sim:
        leaf = _vdi(sim, "67558d6a")
        vm, out = _call_plugin(sim, "fileserver")
        assert out == [("ok", "Success")]
        assert sim.storage.vhds[leaf].parent is None
        assert sim.state.get("VM", vm)["power_state"] == "Running"
        assert sim.storage.srs[sim.sr_ref("NFS staging")].reserved == 0   # the image went on resume
    assert "Leaf-coalesce forced, will not use timeout" in (tmp_path / "SMlog").read_text()


def test_plugin_on_a_halted_vm_does_not_suspend_it(tmp_path):
    with Simulator("seed-stuck-leaf-coalesce", smlog=tmp_path / "SMlog", speed=1) as sim:
        leaf = _vdi(sim, "67558d6a")
        vm = next(r for r, rec in sim.state.tables["VM"].items() if rec["name_label"] == "fileserver")
        with sim.pool.lock:
            sim.pool._halt(vm)
        _, out = _call_plugin(sim, "fileserver")
        assert out == [("ok", "Success")] and sim.storage.vhds[leaf].parent is None
        assert sim.state.get("VM", vm)["power_state"] == "Halted"


def test_plugin_with_nothing_to_do_reports_success(tmp_path):
    """'VM has no leaf-coalesceable VDIs' comes back as success: only the chain tells."""
    with Simulator("seed-stuck-leaf-coalesce", smlog=tmp_path / "SMlog", speed=1) as sim:
        _, out = _call_plugin(sim, "mail")  # a single VHD, no parent
        assert out == [("ok", "VM has no leaf-coalesceable VDIs")]


def test_plugin_refused_on_a_host_that_is_not_the_local_srs_master(tmp_path):
    scenario = load_scenario("seed-stuck-leaf-coalesce")
    scenario["hosts"].append({"uuid": "1d2e3f40-5a6b-4c7d-8e9f-a0b1c2d3e4f5", "name_label": "xen2",
                              "address": "192.168.10.22"})
    with Simulator(scenario, smlog=tmp_path / "SMlog", speed=1) as sim:
        leaf = _vdi(sim, "67558d6a")
        other = sim.state.ref_by_uuid("host", "1d2e3f40-5a6b-4c7d-8e9f-a0b1c2d3e4f5")
        _, out = _call_plugin(sim, "fileserver", host=other)
        (status, details), = out
        assert status == "failed" and details[0] == "XENAPI_PLUGIN_FAILURE"
        assert "this host is not its master. Run on host 8e4f1a27-6c3b-4d95-a0e8-2b7c9d1f3e54" in details[3]
        assert sim.storage.vhds[leaf].parent is not None


def test_snapshot_coalesce_then_live(tmp_path):
    """A leaf too big to pause for: snapshot-coalesce first, then a short live one."""
    log = tmp_path / "SMlog"
    scenario = {
        "name": "snapco", "smlog": {"style": "modern"},
        "srs": [{"uuid": "22222222-2222-4333-8444-555555555555", "name_label": "roomy",
                 "type": "lvm", "free": "50G", "coalesce_speed": "100M"}],
        "vdis": [{"uuid": "aaaaaaaa-0000-4000-8000-00000000000a", "sr": "roomy", "hidden": True,
                  "virtual_size": "10G", "allocated": "5G"},
                 {"uuid": "bbbbbbbb-0000-4000-8000-00000000000b", "sr": "roomy",
                  "parent": "aaaaaaaa-0000-4000-8000-00000000000a", "virtual_size": "10G",
                  "allocated": "2G", "growth": "100K"}],
        "vms": [{"uuid": "cccccccc-0000-4000-8000-00000000000c", "name_label": "busy",
                 "power_state": "Running",
                 "vbds": [{"vdi": "bbbbbbbb-0000-4000-8000-00000000000b"}]}],
    }
    with Simulator(scenario, smlog=log, speed=1) as sim:
        leaf = _vdi(sim, "bbbbbbbb")
        data = sim.storage.union_blocks(leaf)
        sim.run_gc("roomy")
        assert sim.storage.chain(leaf) == [leaf]
        assert sim.storage.vhds[leaf].blocks >= data
        assert sim.storage.srs[sim.sr_ref("roomy")].speed_log      # speeds were measured
    text = log.read_text()
    order = [text.index(s) for s in ("Leaf-coalesce candidate: bbbbbbbb",
                                     "Single-snapshotting bbbbbbbb",
                                     "Leaf-coalescing bbbbbbbb",
                                     "*** finished leaf-coalesce successfully")]
    assert order == sorted(order)
    assert "Timed out" not in text


@pytest.mark.parametrize("style", ["modern", "legacy"])
def test_leaf_growing_faster_than_it_coalesces(tmp_path, style):
    """Snapshot-coalescing a leaf that grows faster than the disk merges makes no progress."""
    log = tmp_path / "SMlog"
    scenario = {
        "name": "runaway", "smlog": {"style": style},
        "srs": [{"uuid": "33333333-2222-4333-8444-555555555555", "name_label": "busy",
                 "type": "ext", "physical_size": "100G", "coalesce_speed": "10M"}],
        "vdis": [{"uuid": "aaaaaaaa-0000-4000-8000-0000000000aa", "sr": "busy", "hidden": True,
                  "virtual_size": "20G", "allocated": "5G"},
                 {"uuid": "bbbbbbbb-0000-4000-8000-0000000000bb", "sr": "busy",
                  "parent": "aaaaaaaa-0000-4000-8000-0000000000aa", "virtual_size": "20G",
                  "allocated": "100M", "growth": "20M"}],
        "vms": [{"uuid": "cccccccc-0000-4000-8000-0000000000cc", "name_label": "writer",
                 "power_state": "Running",
                 "vbds": [{"vdi": "bbbbbbbb-0000-4000-8000-0000000000bb"}]}],
    }
    with Simulator(scenario, smlog=log, speed=1) as sim:
        sim.run_gc("busy")
        leaf = _vdi(sim, "bbbbbbbb")
        assert sim.storage.vhds[leaf].parent is not None
    text = log.read_text()
    assert "Single-snapshotting bbbbbbbb" in text
    if style == "modern":
        assert ("leaf-coalesce: EXCEPTION <class 'util.SMException'>, VDI "
                "bbbbbbbb-0000-4000-8000-0000000000bb could not be coalesced") in text
        assert "Leaf-coalesce failed on bbbbbbbb" in text
    else:
        assert "Snapshot-coalesce did not help, abandoning attempts" in text
        assert "Set leaf-coalesce = offline for bbbbbbbb" in text


# ---- the GC's XenAPI objects and switches (sm's cleanup.py; docs/simulator.md) -----------------

def _scenario(**extra):
    """A small NFS pool: a hidden base with one running leaf, room to spare."""
    data = {
        "name": "small", "smlog": {"style": "modern"},
        "srs": [{"uuid": "11111111-2222-4333-8444-555555555555", "name_label": "nfs", "type": "nfs",
                 "physical_size": "1T", "coalesce_speed": "90M"}],
        "vdis": [{"uuid": "aaaaaaaa-0000-4000-8000-000000000001", "sr": "nfs", "hidden": True,
                  "virtual_size": "100G", "allocated": "40G"},
                 {"uuid": "bbbbbbbb-0000-4000-8000-000000000002", "sr": "nfs", "name_label": "data",
                  "parent": "aaaaaaaa-0000-4000-8000-000000000001", "virtual_size": "100G",
                  "allocated": "6G", "overlap": "1G", "growth": "0"}],
        "vms": [{"uuid": "cccccccc-0000-4000-8000-000000000003", "name_label": "vm", "power_state": "Running",
                 "vbds": [{"vdi": "bbbbbbbb-0000-4000-8000-000000000002"}]}],
    }
    for key, value in extra.items():
        if key == "vdi_fields":
            data["vdis"][1].update(value)
        elif key == "sr_fields":
            data["srs"][0].update(value)
        else:
            data[key] = value
    return data


def _gc_tasks(sim):
    return [t for t in sim.state.tables["task"].values() if t["name_label"] == "Garbage Collection"]


def test_the_gc_task_is_pending_while_the_gc_works_and_applies_to_its_sr(tmp_path):
    with Simulator(_scenario(), speed=1) as sim:
        sr = sim.sr_ref("nfs")
        sim.kick_gc(sr)
        sim.advance(5)   # into the first snapshot-coalesce of the 6 GiB leaf
        (task,) = _gc_tasks(sim)
        assert task["status"] == "pending" and task["other_config"] == {"applies_to": sr}
        assert task["name_description"] == "Garbage collection for SR 11111111-2222-4333-8444-555555555555"
        assert 0.0 <= task["progress"] < 1.0
        sim.run_gc(sr)
        finished = [t for t in _gc_tasks(sim) if t["status"] == "success"]
        assert finished and all(t["progress"] == 1.0 for t in finished)
        sim.advance(66 * 60)   # xapi destroys a finished task about an hour later
        assert not [t for t in _gc_tasks(sim) if t["status"] != "pending"]


def test_no_gc_task_on_a_release_before_the_task_existed():
    with Simulator(_scenario(sm={"version": "2.30.8"}), speed=1) as sim:
        sim.run_gc("nfs")
        assert sim.storage.vhds[_vdi(sim, "bbbbbbbb")].parent is None   # the GC did its work
        assert not _gc_tasks(sim)


def test_switches_stop_the_gc_as_sm_does(tmp_path):
    log = tmp_path / "SMlog"
    with Simulator(_scenario(sr_fields={"other_config": {"gc": "false"}}), smlog=log, speed=1) as sim:
        sim.run_gc("nfs")
        assert sim.storage.vhds[_vdi(sim, "bbbbbbbb")].parent is not None
    assert "GC is disabled for this SR, abort" in log.read_text()
    cases = (({"sr_fields": {"other_config": {"leaf-coalesce": "false"}}}, "Leaf-coalesce disabled for this SR"),
             ({"vdi_fields": {"other_config": {"leaf-coalesce": "false"}}}, "Leaf-coalesce disabled for bbbbbbbb"),
             ({"sr_fields": {"other_config": {"coalesce": "false"}}}, "Coalesce disabled for this SR"))
    for extra, line in cases:
        log = tmp_path / f"SMlog-{len(line)}"
        with Simulator(_scenario(**extra), smlog=log, speed=1) as sim:
            sim.run_gc("nfs")
            assert sim.storage.vhds[_vdi(sim, "bbbbbbbb")].parent is not None, line
        assert line in log.read_text()


def test_reset_on_boot_and_caching_leaves_are_skipped(tmp_path):
    log = tmp_path / "SMlog"
    with Simulator(_scenario(), smlog=log, speed=1) as sim:
        leaf = _vdi(sim, "bbbbbbbb")
        sim.state.set("VDI", leaf, on_boot="reset")
        sim.run_gc("nfs")
        assert sim.storage.vhds[leaf].parent is not None
        sim.state.set("VDI", leaf, on_boot="persist", allow_caching=True)
        sim.run_gc("nfs")
        assert sim.storage.vhds[leaf].parent is not None
    text = log.read_text()
    assert "Skipping reset-on-boot bbbbbbbb" in text and "Skipping allow_caching=true bbbbbbbb" in text


def test_file_sr_leaf_times_out_on_sm_with_the_size_bug_and_not_after_the_fix(tmp_path):
    """sm 3.0.11-3.2.11 reads a file VHD's allocated size in blocks: every leaf looks small
    enough for a live leaf-coalesce, and a 6 GiB one times out (fixed in 3.2.12)."""
    outcomes = {}
    for version in ("3.2.11-1.xs8", "3.2.12-1.xs8", "3.2.3-1.7.xcpng8.3", "3.2.3-1.8.xcpng8.3", "3.0.10"):
        log = tmp_path / f"SMlog-{version}"
        with Simulator(_scenario(sm={"version": version}), smlog=log, speed=1) as sim:
            sim.run_gc("nfs")
            outcomes[version] = (sim.storage.vhds[_vdi(sim, "bbbbbbbb")].parent is None,
                                 "EXCEPTION <class 'util.SMException'>, Timed out" in log.read_text())
    assert outcomes == {"3.2.11-1.xs8": (False, True), "3.2.12-1.xs8": (True, False),
                        "3.2.3-1.7.xcpng8.3": (False, True), "3.2.3-1.8.xcpng8.3": (True, False),
                        "3.0.10": (True, False)}


def test_the_live_leaf_coalesce_pauses_the_vdi_and_unpause_failure_is_reported(tmp_path):
    scenario = _scenario(vdi_fields={"allocated": "8M", "overlap": "0"})   # small: live at once
    with Simulator(scenario, speed=1) as sim:
        sim.run_gc("nfs")
        leaf = _vdi(sim, "bbbbbbbb")
        assert sim.storage.vhds[leaf].parent is None and "paused" not in sim.state.get("VDI", leaf)["sm_config"]
        assert not sim.state.tables["message"]
    log = tmp_path / "SMlog"
    with Simulator(scenario, smlog=log, speed=1, faults=["unpause-fails"]) as sim:
        sim.run_gc("nfs")
        leaf = _vdi(sim, "bbbbbbbb")
        assert sim.state.get("VDI", leaf)["sm_config"]["paused"] == "true"
        (msg,) = sim.state.tables["message"].values()
        assert (msg["name"], msg["priority"], msg["cls"], msg["obj_uuid"]) == (
            "failed to unpause tapdisk", 4, "SR", "11111111-2222-4333-8444-555555555555")
        assert msg["body"] == ("Failed to unpause tapdisk for VDI bbbbbbbb-0000-4000-8000-000000000002, "
                               "VMs using this tapdisk have lost access to the corresponding disk(s)")
    assert "EXCEPTION <class 'util.SMException'>, Failed to unpause VDI bbbbbbbb" in log.read_text()


def _full_lvm(version):
    return {
        "name": "full", "smlog": {"style": "modern"}, "sm": {"version": version},
        "srs": [{"uuid": "11111111-2222-4333-8444-555555555555", "name_label": "full", "type": "lvm",
                 "free": "100M", "sm_config": {"allocation": "thin"}}],  # a shutdown deflates: room
        "vdis": [{"uuid": "aaaaaaaa-0000-4000-8000-000000000001", "sr": "full", "hidden": True,
                  "virtual_size": "10G", "allocated": "5G"},
                 {"uuid": "bbbbbbbb-0000-4000-8000-000000000002", "sr": "full",
                  "parent": "aaaaaaaa-0000-4000-8000-000000000001", "virtual_size": "10G", "allocated": "2G"}],
        "vms": [{"uuid": "cccccccc-0000-4000-8000-000000000003", "name_label": "vm",
                 "power_state": "Running", "vbds": [{"vdi": "bbbbbbbb-0000-4000-8000-000000000002"}]}],
    }


@pytest.mark.parametrize("version, key_left", [("3.2.11-1.xs8", True), ("4.1.7-1.xs9", True),
                                               ("3.2.12-17.xs8", False), ("4.1.8-1.xs9", False)])
def test_the_sr_no_space_key_outlives_the_shortage_on_releases_before_the_fix(tmp_path, version, key_left):
    log = tmp_path / "SMlog"
    with Simulator(_full_lvm(version), smlog=log, speed=1) as sim:
        sim.run_gc("full")
        (msg_ref,) = sim.state.tables["message"]
        vm = next(r for r, rec in sim.state.tables["VM"].items() if rec["name_label"] == "vm")
        with sim.pool.lock:
            sim.pool._halt(vm)
        sim.run_gc("full")
        assert not sim.state.tables["message"]                      # the message goes either way
        sm_config = sim.state.get("SR", sim.sr_ref("full"))["sm_config"]
        assert (sm_config.get("gc_no_space") == msg_ref) is key_left
        sim.run_gc("full")   # the next run destroys the named message again, and fails on it
    assert ("gc: EXCEPTION <class 'XenAPI.Failure'>, ['HANDLE_INVALID', 'message'" in log.read_text()) is key_left


def test_no_no_space_message_before_sm_3_2_11():
    with Simulator(_full_lvm("3.2.10-1.xs8"), speed=1) as sim:
        sim.run_gc("full")
        assert not sim.state.tables["message"]
        assert "gc_no_space" not in sim.state.get("SR", sim.sr_ref("full"))["sm_config"]
