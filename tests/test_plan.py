"""The what-if planner on hand-built pools: ranking, smallest move set, staging rules, plan.json."""

import json

import pytest

from runbook_lib import plan as P
from runbook_lib.errors import UsageError
from runbook_lib.sizing import lvhd_lv_size, size_pool
from tests.xapi_records import PoolRecords

GiB = 1 << 30
MiB = 1 << 20
BLK = 2 * MiB + 4096


def _vhd(virtual_gib: int, data_blocks: int) -> int:
    """File size of a VHD: metadata (90112 for 40 GiB, 24576 for 10 GiB) + blocks with bitmaps."""
    meta = {40: 90112, 10: 24576}[virtual_gib]
    return meta + data_blocks * BLK


def _seed_like(nfs_free=500 * GiB, power="Running"):
    """LVM SR short for a 40 GiB leaf-coalesce, an NFS SR to stage on."""
    p = PoolRecords("seed")
    lvm = p.sr("Local SATA Storage", "lvm", 60 * GiB, 60 * GiB - 2 * GiB)
    nfs = p.sr("NFS staging", "nfs", 1000 * GiB, 1000 * GiB - nfs_free, shared=True)
    base = p.vdi(lvm, 40 * GiB, 10762584064, managed=False)
    leaf_phys = 43041947648 if power == "Running" else 1077936128
    leaf = p.vdi(lvm, 40 * GiB, leaf_phys, parent=base)
    vm = p.vm("big", power, [leaf])
    return p, lvm, nfs, vm, leaf, base


def test_seed_like_plan_stages_the_vm_on_nfs():
    p, lvm, nfs, vm, leaf, base = _seed_like()
    sz = size_pool(p.inventory())
    assert sz.sr(p.uuid("SR", lvm))["verdict"] == "short"
    remedies = P.rank_remedies(sz)
    assert [r.kind for r in remedies][0] == "move-vms"
    best = P.choose(remedies)
    assert best.staging_sr["uuid"] == p.uuid("SR", nfs)
    (entry,) = best.vms
    # the leaf's written size is unknown: its live migration's snapshot on the source might
    # need up to 40.1 GiB there (2 GiB free), so it is copied with a clean shutdown
    assert entry["uuid"] == p.uuid("VM", vm) and entry["mode"] == "copy"
    # the whole chain goes: the inflated leaf and the base copy left childless
    assert best.frees == 43041947648 + 10762584064
    assert best.bytes_to_move == 40 * GiB  # unknown leaf allocation: the worst case
    assert best.downtime_s == pytest.approx(2 * 40 * GiB / P.DEFAULT_THROUGHPUT_BPS + P.POWER_CYCLE_S)
    assert entry["staging_bytes"] == 43033649152  # a full 40 GiB VHD file on NFS (vhd_full_size)
    assert best.duration_s == pytest.approx(2 * 40 * GiB / P.DEFAULT_THROUGHPUT_BPS)
    kinds = {r.kind: r for r in remedies}
    assert kinds["grow-sr"].admin_action and kinds["grow-sr"].grow_by % GiB == 0
    assert kinds["grow-sr"].grow_by >= sz.sr(p.uuid("SR", lvm))["shortfall"]
    assert not kinds["offline-coalesce"].feasible or kinds["offline-coalesce"].downtime_s > 0


def test_live_migration_needs_room_for_its_snapshot_on_an_lvm_source():
    """Storage migration snapshots the leaf on the source first: on LVM that takes the leaf's VHD
    as an LV (+16 MiB), as the simulator refuses it. 2 GiB free: a leaf of unknown size counts
    as fully written (40.1 GiB) and one known to hold 3 GiB (VHD 90112 + 1536 blocks =
    3227608064, LV 3229614080 + 16 MiB) does not fit either, so the VM is copied with a shutdown;
    one known to hold 1 GiB (LV 1075838976 + 16 MiB) fits and migrates live."""
    p, lvm, nfs, vm, leaf, base = _seed_like()
    best = P.choose(P.rank_remedies(size_pool(p.inventory())))
    assert best.vms[0]["mode"] == "copy" and best.downtime_s > 2 * P.MIGRATE_PAUSE_S
    assert "needing 40.1 GiB free there" in best.reason and "--vhd-size" in best.reason
    sized = size_pool(p.inventory(), vhd_sizes={p.uuid("VDI", leaf): _vhd(40, 1536)})
    move = next(r for r in P.rank_remedies(sized) if r.kind == "move-vms")
    assert move.vms[0]["mode"] == "copy" and move.downtime_s > 2 * P.MIGRATE_PAUSE_S
    assert "needing 3.0 GiB free there" in move.reason and "copied with a shutdown" in move.reason
    assert "unknown" not in move.reason
    small = size_pool(p.inventory(), vhd_sizes={p.uuid("VDI", leaf): _vhd(40, 512)})
    best = P.choose(P.rank_remedies(small))
    assert best.kind == "move-vms" and best.vms[0]["mode"] == "migrate"
    assert best.downtime_s == 2 * P.MIGRATE_PAUSE_S and "shutdown" not in best.reason


def test_staging_too_small_falls_back_to_growing():
    p, lvm, nfs, *_ = _seed_like(nfs_free=30 * GiB)
    remedies = P.rank_remedies(size_pool(p.inventory()), staging_sr=p.uuid("SR", nfs))
    move = next(r for r in remedies if r.kind == "move-vms")
    assert not move.feasible and "NFS staging" in move.reason
    assert P.choose(remedies).kind in ("grow-sr", "offline-coalesce")
    assert remedies[-1].feasible is False


def test_export_path_and_halted_vm_modes():
    p, lvm, nfs, vm, *_ = _seed_like()
    sz = size_pool(p.inventory())
    best = P.choose(P.rank_remedies(sz, export_path="/mnt/transfer"))
    assert best.vms[0]["mode"] == "export" and best.downtime_s > 0
    best = P.choose(P.rank_remedies(sz, allow_migrate=False))
    assert best.vms[0]["mode"] == "copy"
    assert best.downtime_s == pytest.approx(2 * 40 * GiB / P.DEFAULT_THROUGHPUT_BPS + P.POWER_CYCLE_S)


def _file_sr_with_bystanders():
    """ext SR 1 GiB free; a stuck 1 GiB leaf over a 10 GiB base; two flat VMs of 2 and 1 GiB data."""
    p = PoolRecords()
    ext = p.sr("Local ext", "ext", 100 * GiB, 99 * GiB)
    base = p.vdi(ext, 40 * GiB, _vhd(40, 5120), managed=False)
    leaf = p.vdi(ext, 40 * GiB, _vhd(40, 512), parent=base)
    stuck = p.vm("stuck", "Running", [leaf])
    a = p.vm("a", "Halted", [p.vdi(ext, 10 * GiB, _vhd(10, 1024))])
    b = p.vm("b", "Halted", [p.vdi(ext, 10 * GiB, _vhd(10, 512))])
    return p, ext, stuck, a, b


def test_move_vms_picks_the_smallest_set_that_frees_enough():
    p, ext, stuck, a, b = _file_sr_with_bystanders()
    staging = p.sr("NFS", "nfs", 100 * GiB, 0, shared=True)
    sz = size_pool(p.inventory())
    # shortfall: snapshot-coalesce 1075929088 vs 1 GiB free = 2187264 bytes
    assert sz.sr(p.uuid("SR", ext))["shortfall"] == 2187264
    move = next(r for r in P.rank_remedies(sz) if r.kind == "move-vms")
    assert [v["uuid"] for v in move.vms] == [p.uuid("VM", b)]
    assert move.vms[0]["mode"] == "copy" and move.downtime_s == 0
    assert move.bytes_to_move == 512 * 2 * MiB and move.frees == _vhd(10, 512)
    assert move.staging_sr["uuid"] == p.uuid("SR", staging)
    assert P.choose(P.rank_remedies(sz)).kind == "move-vms"


def test_staging_sr_is_checked_with_its_own_type():
    """1 GiB of data fits a file SR with 2 GiB free, but an LVM copy is fully inflated (10 GiB)."""
    p, ext, stuck, a, b = _file_sr_with_bystanders()
    lvm = p.sr("small LVM", "lvm", 100 * GiB, 98 * GiB)
    nfs = p.sr("small NFS", "nfs", 100 * GiB, 98 * GiB)
    sz = size_pool(p.inventory())
    on_lvm = next(r for r in P.rank_remedies(sz, staging_sr=p.uuid("SR", lvm)) if r.kind == "move-vms")
    assert not on_lvm.feasible
    assert lvhd_lv_size(10 * GiB) > 2 * GiB
    on_nfs = next(r for r in P.rank_remedies(sz, staging_sr=p.uuid("SR", nfs)) if r.kind == "move-vms")
    assert on_nfs.feasible and on_nfs.staging_sr["type"] == "nfs"


def test_offline_coalesce_on_a_file_sr_forces_the_halted_leaf():
    """ext: the snapshot-coalesce does not fit and the 1 GiB leaf is too big for the 10 s limit.
    Shut down and forced (leaf-coalesce=force) the GC takes the live need, which fits; the plugin
    works on LVM only."""
    p = PoolRecords()
    ext = p.sr("ext", "ext", 100 * GiB, 100 * GiB - 1075900000)  # live need 1075838976 fits
    base = p.vdi(ext, 40 * GiB, _vhd(40, 5120), managed=False)
    leaf = p.vdi(ext, 40 * GiB, _vhd(40, 512), parent=base)
    p.vm("app", "Running", [leaf])
    sz = size_pool(p.inventory(), gc_speed_bps=50 * MiB)
    assert sz.sr(p.uuid("SR", ext))["verdict"] == "offline-only"
    off = next(r for r in P.rank_remedies(sz) if r.kind == "offline-coalesce")
    assert off.feasible and off.vms[0]["route"] == "force" and off.needed == 1075838976
    assert off.frees == 0 and "leaf-coalesce=force" in off.reason


def _lvm_offline_pool(free):
    """LVM, a running VM's leaf over a single base, 1 GiB written (known from SMlog)."""
    p = PoolRecords()
    lvm = p.sr("lvm", "lvm", 200 * GiB, 200 * GiB - free)
    base = p.vdi(lvm, 40 * GiB, 10762584064, managed=False)
    leaf = p.vdi(lvm, 40 * GiB, 43041947648, parent=base)
    vm = p.vm("db", "Running", [leaf])
    findings = {"vdis": [{"vdi": p.uuid("VDI", leaf), "verdict": "stuck-timeout", "size": 1075929088}]}
    return p, vm, size_pool(p.inventory(), findings=findings, gc_speed_bps=50 * MiB)


def test_offline_coalesce_on_a_thick_lvm_sr_frees_nothing_at_shutdown():
    """Thick (the default): LVHDVDI.detach does not deflate, so the plan counts no space back; the
    forced leaf needs only its live need. Downtime: the 1 GiB really moved plus a power cycle."""
    p, vm, sz = _lvm_offline_pool(free=1 * GiB)
    off = next(r for r in P.rank_remedies(sz) if r.kind == "offline-coalesce")
    assert off.feasible and off.vms[0]["mode"] == "offline" and off.vms[0]["uuid"] == p.uuid("VM", vm)
    assert off.vms[0]["coalesce_plugin"] is False and off.vms[0]["route"] == "force"
    assert "shut down db" in off.reason and "frees no space" in off.reason
    assert off.bytes_to_move == 0 and off.frees == 0
    assert off.duration_s == pytest.approx(512 * 2 * MiB / (50 * MiB))  # the leaf's 1 GiB is copied
    assert off.downtime_s == pytest.approx(off.duration_s + P.POWER_CYCLE_S)


def test_offline_coalesce_on_a_thin_lvm_sr_counts_the_deflation():
    p, vm, _ = _lvm_offline_pool(free=1 * GiB)
    sr = next(iter(p.records["SR"]))
    p.records["SR"][sr]["sm_config"]["allocation"] = "thin"
    leaf = next(r for r, rec in p.records["VDI"].items() if rec["managed"])
    findings = {"vdis": [{"vdi": p.uuid("VDI", leaf), "verdict": "stuck-timeout", "size": 1075929088}]}
    sz = size_pool(p.inventory(), findings=findings, gc_speed_bps=50 * MiB)
    assert sz.sr(p.uuid("SR", sr))["provisioning"] == "thin"
    off = next(r for r in P.rank_remedies(sz) if r.kind == "offline-coalesce")
    assert off.feasible and off.frees == 43041947648 - 1077936128  # the leaf deflates to its VHD's LV


def test_delete_named_snapshots_what_if():
    p = PoolRecords()
    ext = p.sr("ext", "ext", 100 * GiB, 100 * GiB - 512 * MiB)
    base = p.vdi(ext, 40 * GiB, _vhd(40, 5120), managed=False)
    leaf = p.vdi(ext, 40 * GiB, _vhd(40, 512), parent=base)
    # an old, stale snapshot chain of another disk, 4 GiB: deleting it frees plenty
    old = p.vdi(ext, 10 * GiB, _vhd(10, 2048), snapshot_of=None, name="old")
    snap = p.vdi(ext, 10 * GiB, _vhd(10, 2048), snapshot_of=old, name="old snap")
    p.vm("app", "Running", [leaf])
    p.vm("old", "Halted", [old])
    sz = size_pool(p.inventory())
    assert sz.sr(p.uuid("SR", ext))["verdict"] == "short"
    rem = P.rank_remedies(sz, snapshots=[p.uuid("VDI", snap)])
    dele = next(r for r in rem if r.kind == "delete-snapshots")
    assert dele.feasible and dele.frees == _vhd(10, 2048)
    assert rem[0].kind == "delete-snapshots"  # no downtime, nothing moved
    bad = next(r for r in P.rank_remedies(sz, snapshots=[p.uuid("VDI", leaf)]) if r.kind == "delete-snapshots")
    assert not bad.feasible and "not snapshots" in bad.reason


def test_the_snapshot_what_if_keeps_the_leaf_size_from_the_findings():
    """Leaf 1 GiB by the SMlog: its snapshot-coalesce needs 2160066560 (test_sizing). Deleting a
    2 GiB snapshot gives 3 GiB of room: enough, but only if the what-if still knows the size
    (the worst case, 72 GiB, would call it short)."""
    p = PoolRecords()
    lvm = p.sr("Local", "lvm", 200 * GiB, 199 * GiB)
    base = p.vdi(lvm, 40 * GiB, 10762584064, managed=False, name="base copy")
    leaf = p.vdi(lvm, 40 * GiB, 43041947648, parent=base)
    old = p.vdi(lvm, 10 * GiB, 2 * GiB, name="old")
    snap = p.vdi(lvm, 10 * GiB, 2 * GiB, snapshot_of=old, name="old snap")
    p.vm("db", "Running", [leaf])
    p.vm("old", "Halted", [old])
    findings = {"vdis": [{"vdi": p.uuid("VDI", leaf), "size": 1075929088}]}
    result = P.assess(p.inventory(), findings=findings, snapshots=[p.uuid("VDI", snap)])
    dele = next(r for r in result.remedies if r.kind == "delete-snapshots")
    assert dele.feasible, dele.reason
    sizes = {p.uuid("VDI", leaf): 1075929088, p.uuid("VDI", snap): 2 * GiB}
    result = P.assess(p.inventory(), vhd_sizes=sizes, snapshots=[p.uuid("VDI", snap)])
    assert next(r for r in result.remedies if r.kind == "delete-snapshots").feasible


def test_healthy_pool_has_no_remedies_and_unknown_srs_are_usage_errors():
    p = PoolRecords()
    sr = p.sr("ext", "ext", 10 * GiB, 1 * GiB)
    p.vm("a", "Running", [p.vdi(sr, GiB, 100 * MiB)])
    sz = size_pool(p.inventory())
    assert P.rank_remedies(sz) == [] and P.choose([]) is None
    with pytest.raises(UsageError, match="no such SR"):
        P.rank_remedies(sz, staging_sr="nope")


def test_plan_json_follows_the_contract(tmp_path):
    p, lvm, nfs, vm, leaf, base = _seed_like()
    sz = size_pool(p.inventory())
    remedies = P.rank_remedies(sz)
    plan = P.make_plan(sz, P.choose(remedies), url="https://pool.example", alternatives=remedies)
    path = P.write_plan(plan, tmp_path / "plan.json")
    data = json.loads(path.read_text())
    assert data["schema"] == "runbook.plan/1"
    assert data["pool"] == {"uuid": p.inventory().pool["uuid"], "name": "seed",
                            "url": "https://pool.example", "inventory": None}
    assert data["sr"]["uuid"] == p.uuid("SR", lvm) and data["sr"]["type"] == "lvm"
    assert data["sr"]["sizes_known"] is False and 0 <= data["sr"]["needed_min"] < data["sr"]["needed"]
    assert set(data["sr"]) >= {"uuid", "name", "type", "size", "free", "needed", "shortfall"}
    assert data["remedy"]["kind"] == "move-vms"
    assert set(data["remedy"]) >= {"bytes_to_move", "frees", "duration_s", "downtime_s", "reason"}
    assert data["staging_sr"]["uuid"] == p.uuid("SR", nfs) and data["staging_sr"]["type"] == "nfs"
    (v,) = data["vms"]
    assert v["uuid"] == p.uuid("VM", vm) and v["power_state"] == "Running" and v["mode"] == "copy"
    assert v["disks"] == [{"vdi": p.uuid("VDI", leaf), "userdevice": "0",
                           "virtual_size": 40 * GiB, "physical_utilisation": 43041947648}]
    assert data["snapshots"] == [] and data["grow_by"] == 0 and data["export_path"] is None
    assert data["wait"]["timeout_s"] > 0
    assert {a["kind"] for a in data["alternatives"]} >= {"grow-sr", "offline-coalesce"}


# ---- against the simulator ------------------------------------------------------------------

def _sim_inventory(scenario):
    from runbook_lib.xapi.inventory import open_inventory

    return open_inventory(url=f"sim:{scenario}")


def test_seed_scenario_is_short_and_the_plan_stages_the_vm_on_nfs(tmp_path):
    inv = _sim_inventory("seed-stuck-leaf-coalesce")
    result = P.assess(inv)
    sata = result.sizing.sr("db4c3909-4b61-e5f6-8548-16dc56780f61")
    assert sata["verdict"] == "short" and sata["shortfall"] > 0
    assert result.chosen.kind == "move-vms"
    plan = result.plan(url="sim:seed-stuck-leaf-coalesce")
    assert plan["staging_sr"]["name"] == "NFS staging" and plan["staging_sr"]["type"] == "nfs"
    assert [v["name"] for v in plan["vms"]] == ["fileserver"]
    # 36 MiB free cannot hold the snapshot of a leaf of unknown size (a live migration would be
    # refused): halted copy. Any size known to fit would also let the GC's coalesce fit.
    assert plan["vms"][0]["mode"] == "copy"
    assert "67558d6a-2f3e-4c8b-a1d9-7e5f3b2c9d10" in {d["vdi"] for d in plan["vms"][0]["disks"]}
    assert plan["pool"]["uuid"] == "5a0c7d2e-31f4-4b8e-9c61-0d2f7e8a9b13"
    P.write_plan(plan, tmp_path / "plan.json")
    assert json.loads((tmp_path / "plan.json").read_text())["remedy"]["kind"] == "move-vms"


def test_staging_choice_prefers_less_downtime_and_more_room_left():
    """Same free space: a shared NFS SR (live migration, thin copy) beats a local LVM SR."""
    p = PoolRecords("two")
    lvm = p.sr("Local SATA Storage", "lvm", 60 * GiB, 58 * GiB)
    local = p.sr("Local LVM 2", "lvm", 1000 * GiB, 500 * GiB)
    host2 = p._add("host", {"name_label": "host2", "address": "10.0.0.2", "enabled": True,
                            "PBDs": [], "resident_VMs": []})
    p.records["PBD"][p.records["SR"][local]["PBDs"][0]]["host"] = host2  # local to the other host
    nfs = p.sr("NFS", "nfs", 1000 * GiB, 500 * GiB, shared=True)
    base = p.vdi(lvm, 40 * GiB, 10762584064, managed=False)
    leaf = p.vdi(lvm, 40 * GiB, 43041947648, parent=base)
    p.vm("big", "Running", [leaf])
    # the leaf is known to hold 1 GiB: its migration's snapshot fits in the 2 GiB free
    sz = size_pool(p.inventory(), vhd_sizes={p.uuid("VDI", leaf): _vhd(40, 512)})
    best = P.choose(P.rank_remedies(sz))
    assert best.staging_sr["uuid"] == p.uuid("SR", nfs) and best.vms[0]["mode"] == "migrate"
    only_local = next(r for r in P.rank_remedies(sz, staging_sr=p.uuid("SR", local))
                      if r.kind == "move-vms")
    assert only_local.vms[0]["mode"] == "copy" and only_local.downtime_s > best.downtime_s


def test_an_unplugged_sr_is_no_staging_sr():
    p, lvm, nfs, *_ = _seed_like()
    p.records["PBD"][p.records["SR"][nfs]["PBDs"][0]]["currently_attached"] = False
    move = next(r for r in P.rank_remedies(size_pool(p.inventory()), staging_sr=p.uuid("SR", nfs))
                if r.kind == "move-vms")
    assert not move.feasible and "not attached" in move.reason


def _plugin_pool(suspend_free: int | None, memory: int = 4 * GiB):
    """A mostly written leaf (35 GiB of 40) whose live need fits, barely; a running VM whose
    suspend image goes to an NFS SR with `suspend_free` bytes free (None: no suspend SR)."""
    from runbook_lib.sizing import lv_size, lvhd_lv_size, vhd_size_for_data

    leaf_vhd = vhd_size_for_data(40 * GiB, 35 * GiB)
    need = lvhd_lv_size(40 * GiB) - 10762584064          # data: min(40 GiB, 35 + 10 GiB)
    live = need - (43041947648 - lv_size(leaf_vhd))
    free = live + 4 * MiB                                  # the live need fits, barely
    p = PoolRecords()
    lvm = p.sr("lvm", "lvm", 200 * GiB, 200 * GiB - free)
    base = p.vdi(lvm, 40 * GiB, 10762584064, managed=False)
    leaf = p.vdi(lvm, 40 * GiB, 43041947648, parent=base)
    vm = p.vm("db", "Running", [leaf])
    p.records["VM"][vm]["memory_static_max"] = str(memory)
    if suspend_free is not None:
        nfs = p.sr("nfs", "nfs", 100 * GiB, 100 * GiB - suspend_free, shared=True)
        pool = next(iter(p.records["pool"]))
        p.records["pool"][pool]["suspend_image_SR"] = nfs
    findings = {"vdis": [{"vdi": p.uuid("VDI", leaf), "verdict": "stuck-timeout", "size": leaf_vhd}]}
    return live, size_pool(p.inventory(), findings=findings, gc_speed_bps=50 * MiB)


def test_offline_coalesce_by_the_host_plugin_when_its_suspend_is_shorter():
    """4 GiB of memory at 100 MiB/s out and back (82 s + 10 s) beats a power cycle (120 s)."""
    live, sz = _plugin_pool(suspend_free=50 * GiB)
    (c,) = sz.coalesces.to_dict("records")
    assert c["needed_live"] == live and c["offline_via"] == "plugin" and c["plugin_host"]
    off = next(r for r in P.rank_remedies(sz, throughput_bps=100 * MiB) if r.kind == "offline-coalesce")
    assert off.feasible and off.vms[0]["coalesce_plugin"] is True and "coalesce-leaf" in off.reason
    suspend = 2 * 4 * GiB / (100 * MiB) + P.PLUGIN_PAUSE_S
    assert off.downtime_s == pytest.approx(suspend + 35 * GiB / (50 * MiB))


def test_the_plugin_is_refused_when_the_suspend_sr_cannot_hold_the_memory():
    """xapi writes memory_static_max x 1.26 + 100 MiB; 4 GiB of memory does not go into 2 GiB."""
    _, sz = _plugin_pool(suspend_free=2 * GiB)
    (c,) = sz.coalesces.to_dict("records")
    assert c["offline_via"] == "force" and "no room for the image" in c["plugin_note"]
    _, none = _plugin_pool(suspend_free=None)
    assert "VM_NO_SUSPEND_SR" in none.coalesces.iloc[0]["plugin_note"]


def test_seed_plan_carried_out_on_the_simulator_leaves_no_shortfall(tmp_path, monkeypatch):
    """Rehearsal: the plan made here, executed by `runbook transfer`, gets the SR healthy."""
    from click.testing import CliRunner

    from runbook_lib.cli import main
    from runbook_lib.sim import Simulator
    from runbook_lib.xapi.inventory import open_inventory

    monkeypatch.setenv("RUNBOOK_OUTPUTS", str(tmp_path / "outputs"))
    with Simulator("seed-stuck-leaf-coalesce", speed=100_000) as sim:  # fast simulated clock
        monkeypatch.setenv("RUNBOOK_TEST_PW", sim.password)
        def inventory():
            return open_inventory(url=sim.url, password_env="RUNBOOK_TEST_PW")
        before = P.assess(inventory())
        plan = before.plan(url=sim.url)
        P.write_plan(plan, tmp_path / "plan.json")
        vm = plan["vms"][0]["uuid"]
        res = CliRunner().invoke(main, ["transfer", "--plan", str(tmp_path / "plan.json"), "--incident", "rehearsal",
                                        "--url", sim.url, "--password-env", "RUNBOOK_TEST_PW",
                                        "--execute", "--confirm", vm], catch_exceptions=False)
        assert res.exit_code == 0, res.output
        after = P.assess(inventory())
    sr = plan["sr"]["uuid"]
    assert before.sizing.sr(sr)["shortfall"] > 0
    row = after.sizing.sr(sr)
    assert row["shortfall"] == 0 and row["verdict"] in ("healthy", "fits") and after.chosen is None
    # the space the plan said the move would give back was really there at the low point
    assert row["free"] >= before.sizing.sr(sr)["free"]


def _migratable_seed():
    """The seed-like pool with the leaf known to hold 1 GiB: it would migrate live to NFS."""
    p, lvm, nfs, vm, leaf, base = _seed_like()
    return p, lvm, nfs, vm, leaf, {p.uuid("VDI", leaf): _vhd(40, 512)}


@pytest.mark.parametrize("field, value, code", [("on_boot", "reset", "VDI_ON_BOOT_MODE_INCOMPATIBLE_WITH_OPERATION"),
                                                ("cbt_enabled", True, "VDI_CBT_ENABLED")])
def test_a_disk_storage_migration_refuses_is_copied_instead(field, value, code):
    """A second, small disk of the VM on the same SR carries the flag: migrate_send would refuse
    the VM's migration, so the plan copies it (with a shutdown) and says why."""
    p, lvm, nfs, vm, leaf, sizes = _migratable_seed()
    scratch = p.vdi(lvm, 1 * GiB, 8 * MiB, name="scratch")
    vbd = p._add("VBD", {"VM": vm, "VDI": scratch, "device": "xvdb", "userdevice": "1", "type": "Disk",
                         "mode": "RW", "bootable": False, "currently_attached": True, "empty": False})
    p.records["VM"][vm]["VBDs"].append(vbd)
    p.records["VDI"][scratch]["VBDs"].append(vbd)
    move = next(r for r in P.rank_remedies(size_pool(p.inventory(), vhd_sizes=sizes)) if r.kind == "move-vms")
    assert move.vms[0]["mode"] == "migrate"
    p.records["VDI"][scratch][field] = value
    move = next(r for r in P.rank_remedies(size_pool(p.inventory(), vhd_sizes=sizes)) if r.kind == "move-vms")
    assert move.vms[0]["mode"] == "copy" and code in move.reason and "copied with a shutdown" in move.reason


def test_a_migration_takes_the_vms_snapshots_along_and_the_staging_sr_must_hold_them():
    """migrate_send moves the disks of the VM's snapshots of a migrated disk to the same SR."""
    p, lvm, nfs, vm, leaf, sizes = _migratable_seed()
    alone = P.choose(P.rank_remedies(size_pool(p.inventory(), vhd_sizes=sizes)))
    snap = p.vdi(lvm, 40 * GiB, 8 * GiB, snapshot_of=leaf, name="before upgrade")
    with_snap = next(r for r in P.rank_remedies(size_pool(p.inventory(), vhd_sizes=sizes)) if r.kind == "move-vms")
    assert with_snap.vms[0]["mode"] == "migrate"
    # the snapshot's data is counted on the staging SR; it is not a disk the transfer moves itself
    assert with_snap.vms[0]["staging_bytes"] > alone.vms[0]["staging_bytes"]
    assert p.uuid("VDI", snap) not in {d["vdi"] for d in with_snap.vms[0]["disks"]}


def test_an_ha_protected_vm_is_staged_on_a_shared_sr_only():
    p = PoolRecords("ha")
    p.records["pool"][next(iter(p.records["pool"]))]["ha_enabled"] = True
    lvm = p.sr("Local SATA Storage", "lvm", 60 * GiB, 58 * GiB)
    local = p.sr("Local big", "lvm", 2000 * GiB, 100 * GiB)
    nfs = p.sr("NFS", "nfs", 1000 * GiB, 500 * GiB, shared=True)
    base = p.vdi(lvm, 40 * GiB, 10762584064, managed=False)
    leaf = p.vdi(lvm, 40 * GiB, 43041947648, parent=base)
    vm = p.vm("big", "Running", [leaf])
    p.records["VM"][vm]["ha_restart_priority"] = "restart"
    sz = size_pool(p.inventory())
    move = next(r for r in P.rank_remedies(sz, staging_sr=p.uuid("SR", local)) if r.kind == "move-vms")
    assert not move.feasible and "HA-protected big can be staged on a shared SR only" in move.reason
    best = next(r for r in P.rank_remedies(sz) if r.kind == "move-vms")
    assert best.feasible and best.staging_sr["uuid"] == p.uuid("SR", nfs)
