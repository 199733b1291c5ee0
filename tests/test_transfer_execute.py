"""Executing a plan: the confirmation gate, the dry run, and the full round trip on the simulator."""

import dataclasses
import json

import pytest

from runbook_lib.transfer import ConfirmationError, Journal, check_confirmation, run_transfer
from runbook_lib.transfer.journal import journal_path
from runbook_lib.xapi import operations as ops
from tests.transfer_pool import (
    SOURCE,
    STAGING,
    assert_vm_intact_on_one_sr,
    changing_calls,
    depth_of_data_disk,
    make_plan,
    simulated_pool,
    vms_holding,
)
from tests.transfer_pool import VM as SIM_VM


@pytest.fixture
def plan(data_dir):
    return json.loads((data_dir / "transfer" / "plan_copy.json").read_text())


VM = "67558d6a-1111-4000-8000-000000000001"


def test_dry_run_needs_no_confirmation(plan):
    check_confirmation(plan, dry_run=True, confirm_vm_uuid="")


@pytest.mark.parametrize("given", ["", "  ", "67558d6a", VM.upper() + "x", "00000000-0000-4000-8000-000000000000"])
def test_execute_without_the_exact_vm_uuid_is_refused(plan, given):
    with pytest.raises(ConfirmationError, match="nothing was changed"):
        check_confirmation(plan, dry_run=False, confirm_vm_uuid=given)
    check_confirmation(plan, dry_run=False, confirm_vm_uuid=f" {VM} ")


def test_multi_vm_plans_need_every_uuid(plan):
    second = dict(plan["vms"][0], uuid="second-vm")
    plan["vms"].append(second)
    with pytest.raises(ConfirmationError):
        check_confirmation(plan, dry_run=False, confirm_vm_uuid=VM)
    check_confirmation(plan, dry_run=False, confirm_vm_uuid=f"second-vm,{VM}")


def test_wrong_confirmation_stops_before_touching_the_pool(plan):
    # session=None: any use of the pool would raise, so reaching the gate first is proven
    outcome = run_transfer(plan, None, incident="INC-1", dry_run=False, confirm_vm_uuid="wrong")
    assert outcome.status == "refused" and outcome.exit_code == 2
    assert "does not match" in outcome.message and "nothing was changed" in outcome.message
    records = Journal(journal_path("INC-1")).records()
    assert [r["event"] for r in records] == ["refused"]
    assert "confirm_vm_uuid" in records[0]["next_step"]


def test_next_steps_name_the_options_of_the_front_end_that_runs(plan):
    cli = run_transfer(plan, None, incident="INC-3", dry_run=False, confirm_vm_uuid="", front="cli")
    assert cli.status == "refused" and "--confirm" in cli.message and "confirm_vm_uuid" not in cli.message
    assert cli.next_step == "re-run with --execute --confirm <the VM's uuid>"
    notebook = run_transfer(plan, None, incident="INC-4", dry_run=False, confirm_vm_uuid="")
    assert notebook.next_step == "re-run with dry_run=False and confirm_vm_uuid=<the VM's uuid>"
    with pytest.raises(ValueError):
        run_transfer(plan, None, incident="INC-5", front="web")


def test_only_a_dry_run_or_a_finished_run_passes_raise_unless_finished(plan):
    from runbook_lib.transfer import TransferNotFinished

    refused = run_transfer(plan, None, incident="INC-6", dry_run=False, confirm_vm_uuid="wrong")
    with pytest.raises(TransferNotFinished, match="transfer refused: .*does not match.*next step: re-run") as err:
        refused.raise_unless_finished()
    assert err.value.exit_code == 1 and err.value._render_traceback_()[0].startswith("TransferNotFinished: ")
    for status in ("dry-run", "done"):
        dataclasses.replace(refused, status=status).raise_unless_finished()
    with pytest.raises(TransferNotFinished, match="transfer stopped"):
        dataclasses.replace(refused, status="stopped").raise_unless_finished()


def test_a_bad_plan_file_is_refused_with_one_line(tmp_path):
    path = tmp_path / "plan.json"
    path.write_text("{not json")
    outcome = run_transfer(path, None, incident="INC-2")
    assert outcome.status == "refused" and "not JSON" in outcome.message
    outcome = run_transfer(tmp_path / "missing.json", None, incident="INC-2")
    assert outcome.status == "refused" and "not found" in outcome.message


# --- on the simulator -------------------------------------------------------------------------


def test_dry_run_calls_nothing_that_changes_the_pool(tmp_path, monkeypatch):
    with simulated_pool(tmp_path, monkeypatch) as (sim, session, calls):
        plan = make_plan(session)
        before = ops.sr_free(session, [SOURCE, STAGING])
        outcome = run_transfer(plan, session, incident="dry")
        assert outcome.status == "dry-run" and outcome.exit_code == 0
        assert "confirm_vm_uuid=" + SIM_VM in outcome.next_step
        assert len(outcome.table) == len(outcome.steps) > 10
        assert ops.sr_free(session, [SOURCE, STAGING]) == before
    assert changing_calls(calls) == []
    methods = {c["method"] for c in __import__("tests.transfer_pool", fromlist=["x"]).calls_made(calls)}
    assert "VM.get_by_uuid" in methods  # the dry run did check the pool


def test_wrong_confirmation_on_a_live_pool_changes_nothing(tmp_path, monkeypatch):
    with simulated_pool(tmp_path, monkeypatch) as (sim, session, calls):
        plan = make_plan(session)
        outcome = run_transfer(plan, session, incident="wrong", dry_run=False, confirm_vm_uuid=STAGING)
        assert outcome.status == "refused" and "does not match" in outcome.message
    assert changing_calls(calls) == []


def test_copy_round_trip_frees_space_and_flattens_the_chain(tmp_path, monkeypatch):
    with simulated_pool(tmp_path, monkeypatch) as (sim, session, calls):
        plan = make_plan(session)
        assert plan["vms"][0]["mode"] == "copy"
        original = vms_holding(session, "fileserver")[0]
        free_before = ops.sr_free(session, [SOURCE])[SOURCE]
        assert depth_of_data_disk(session, original) == 2
        outcome = run_transfer(plan, session, incident="round", dry_run=False, confirm_vm_uuid=SIM_VM,
                               wait_timeout_s=60, smlog=tmp_path / "SMlog")
        assert outcome.status == "done", (outcome.message, outcome.next_step)
        vm = assert_vm_intact_on_one_sr(session, original)
        assert {d["sr"] for d in vm["disks"]} == {SOURCE}
        assert vm["name"] == "fileserver" and vm["description"] == original["description"]
        assert vm["power_state"] == "Running"
        assert vm["other_config"].get("owner") == "it-team"
        assert depth_of_data_disk(session, vm) == 1
        assert ops.sr_free(session, [SOURCE])[SOURCE] > free_before + 1000 * 2**30
        final = outcome.final["vms"][SIM_VM]
        assert final["differences"] == [] and max(final["depth_after"].values()) == 1
        assert not outcome.samples.empty and set(outcome.samples["sr"]) == {SOURCE, STAGING}
    # the original was destroyed only after its copy was verified
    events = [(r.get("kind"), r["event"]) for r in Journal(journal_path("round")).records()]
    assert events.index(("verify-out", "done")) < events.index(("destroy-original", "start"))
    assert events.index(("verify-back", "done")) < events.index(("destroy-staging", "start"))


def test_live_migration_off_a_full_lvm_sr_is_refused_with_nothing_changed(tmp_path, monkeypatch):
    """36 MiB free cannot hold the source snapshot storage motion takes first: the planner copies
    with a shutdown, and a plan edited to migrate anyway fails as a real pool would."""
    with simulated_pool(tmp_path, monkeypatch) as (sim, session, calls):
        plan = make_plan(session, migrate=True)
        assert plan["vms"][0]["mode"] == "copy"
        plan["vms"][0]["mode"] = "migrate"
        original = vms_holding(session, "fileserver")[0]
        outcome = run_transfer(plan, session, incident="full", dry_run=False, confirm_vm_uuid=SIM_VM, wait_timeout_s=60)
        assert outcome.status != "done"
        assert "SR_BACKEND_FAILURE_44" in outcome.message, outcome.message
        vm = assert_vm_intact_on_one_sr(session, original)
        assert {d["sr"] for d in vm["disks"]} == {SOURCE} and vm["power_state"] == "Running"
    assert not any(c.endswith(("VM.clean_shutdown", "VM.copy")) for c in changing_calls(calls))


def test_live_migration_round_trip_keeps_the_vm_running(tmp_path, monkeypatch):
    """With room on the source for the snapshots (30 GiB free) a migrate plan runs live."""
    with simulated_pool(tmp_path, monkeypatch, source_free="30G") as (sim, session, calls):
        plan = make_plan(session, migrate=True)
        plan["vms"][0]["mode"] = "migrate"   # the planner cannot know the leaves are small
        original = vms_holding(session, "fileserver")[0]
        outcome = run_transfer(plan, session, incident="mig", dry_run=False, confirm_vm_uuid=SIM_VM, wait_timeout_s=60)
        assert outcome.status == "done", (outcome.message, outcome.next_step)
        vm = assert_vm_intact_on_one_sr(session, original)
        assert vm["uuid"] == SIM_VM and vm["power_state"] == "Running"
        assert depth_of_data_disk(session, vm) == 1
    assert not any(c.endswith("VM.clean_shutdown") for c in changing_calls(calls))  # the VM kept running


def test_rerunning_a_finished_incident_repeats_nothing(tmp_path, monkeypatch):
    with simulated_pool(tmp_path, monkeypatch) as (sim, session, calls):
        plan = make_plan(session)
        first = run_transfer(plan, session, incident="twice", dry_run=False, confirm_vm_uuid=SIM_VM, wait_timeout_s=60)
        assert first.status == "done"
        n = len(changing_calls(calls))
        second = run_transfer(plan, session, incident="twice", dry_run=False, confirm_vm_uuid=SIM_VM, wait_timeout_s=60)
        assert second.status == "done"
        assert set(second.outcomes["status"]) <= {"ok", "done before"}
        assert len(changing_calls(calls)) == n


def test_a_plan_for_another_pool_or_a_vanished_vm_or_sr_is_refused(tmp_path, monkeypatch):
    with simulated_pool(tmp_path, monkeypatch) as (sim, session, calls):
        plan = make_plan(session)
        other_pool = json.loads(json.dumps(plan))
        other_pool["pool"]["uuid"] = "00000000-0000-4000-8000-000000000000"
        gone_vm = json.loads(json.dumps(plan))
        gone_vm["vms"][0]["uuid"] = "00000000-0000-4000-8000-0000000000aa"
        gone_sr = json.loads(json.dumps(plan))
        gone_sr["staging_sr"]["uuid"] = "00000000-0000-4000-8000-0000000000bb"
        for incident, bad, words in (("p", other_pool, "pool"), ("v", gone_vm, "VM"), ("s", gone_sr, "staging SR")):
            confirm = bad["vms"][0]["uuid"]
            outcome = run_transfer(bad, session, incident=incident, dry_run=False, confirm_vm_uuid=confirm)
            assert outcome.status == "refused", outcome.message
            assert words in outcome.message and "no longer exists" in outcome.message or "pool" in outcome.message
            assert Journal(journal_path(incident)).records()[-1]["event"] == "refused"
            assert "runbook size --plan-out FILE" in outcome.next_step and "notebook 02" in outcome.next_step
    assert changing_calls(calls) == []


def test_export_round_trip_through_a_mounted_path(tmp_path, monkeypatch):
    mount = tmp_path / "nfs-transfer"
    mount.mkdir()
    with simulated_pool(tmp_path, monkeypatch) as (sim, session, calls):
        plan = make_plan(session, export_path=str(mount))
        assert plan["vms"][0]["mode"] == "export"
        original = vms_holding(session, "fileserver")[0]
        outcome = run_transfer(plan, session, incident="xva", dry_run=False, confirm_vm_uuid=SIM_VM, wait_timeout_s=60)
        assert outcome.status == "done", (outcome.message, outcome.next_step)
        vm = assert_vm_intact_on_one_sr(session, original)
        assert {d["sr"] for d in vm["disks"]} == {SOURCE} and vm["power_state"] == "Running"
        assert depth_of_data_disk(session, vm) == 1
        assert (mount / f"xva_{SIM_VM}.xva").is_file()  # kept until the admin removes it
    methods = changing_calls(calls)
    assert "VM.destroy" in methods and "VM.copy" not in methods and "Async.VM.copy" not in methods


def test_an_export_that_does_not_describe_the_vm_keeps_the_original(tmp_path, monkeypatch):
    from runbook_lib.transfer import checks

    mount = tmp_path / "nfs-transfer"
    mount.mkdir()
    with simulated_pool(tmp_path, monkeypatch) as (sim, session, calls):
        plan = make_plan(session, export_path=str(mount))
        real = checks.describe_xva
        monkeypatch.setattr(checks, "describe_xva", lambda p: dict(real(p), disks=real(p)["disks"][:1]))
        outcome = run_transfer(plan, session, incident="badxva", dry_run=False, confirm_vm_uuid=SIM_VM)
        assert outcome.status == "stopped" and "disk count" in outcome.message
        assert ops.ref_by_uuid(session, "VM", SIM_VM) is not None
        assert session.xenapi.VM.get_power_state(ops.ref_by_uuid(session, "VM", SIM_VM)) == "Running"


@pytest.mark.parametrize("plugin", [False, True])
def test_offline_coalesce_flattens_the_chain_in_place(tmp_path, monkeypatch, plugin):
    from tests.transfer_pool import make_offline_plan

    with simulated_pool(tmp_path, monkeypatch, source_free="600G") as (sim, session, calls):
        plan = make_offline_plan(session, plugin=plugin)
        original = vms_holding(session, "fileserver")[0]
        outcome = run_transfer(plan, session, incident="off", dry_run=False, confirm_vm_uuid=SIM_VM, wait_timeout_s=30)
        assert outcome.status == "done", (outcome.message, outcome.next_step)
        vm = assert_vm_intact_on_one_sr(session, original)
        assert vm["uuid"] == SIM_VM and vm["power_state"] == "Running" and depth_of_data_disk(session, vm) == 1
    made = changing_calls(calls)
    assert ("Async.host.call_plugin" in made) == plugin  # the plugin runs as a task (no client timeout)
    assert ("Async.VM.clean_shutdown" in made) != plugin  # long calls go as tasks (no client timeout)
    assert ("VDI.add_to_other_config" in made) != plugin  # without the plugin the halted leaf is forced


def test_offline_coalesce_whose_gc_never_finishes_times_out_and_restarts_the_vm(tmp_path, monkeypatch):
    from tests.transfer_pool import make_offline_plan

    with simulated_pool(tmp_path, monkeypatch, source_free="600G", faults=("gc-stuck",)) as (sim, session, calls):
        plan = make_offline_plan(session, plugin=False)
        original = vms_holding(session, "fileserver")[0]
        outcome = run_transfer(plan, session, incident="off2", dry_run=False, confirm_vm_uuid=SIM_VM,
                               wait_timeout_s=1.0)
        assert outcome.status == "stopped" and "did not finish" in outcome.message
        assert "started again" in outcome.message and "nothing is at risk" in outcome.next_step
        vm = assert_vm_intact_on_one_sr(session, original)
        assert vm["uuid"] == SIM_VM and vm["power_state"] == "Running"


def test_a_journal_belongs_to_one_plan(plan):
    journal = Journal(journal_path("INC-9"))
    journal.append("run", plan_digest="0123456789abcdef")
    journal.append("start", step=f"{VM}:shutdown", vm=VM)
    outcome = run_transfer(plan, None, incident="INC-9", dry_run=False, confirm_vm_uuid=VM)
    assert outcome.status == "refused" and "another plan" in outcome.message
    assert "new incident" in outcome.next_step


def test_two_vms_leave_together_and_both_come_back(tmp_path, monkeypatch):
    mail = "1e3f5a7c-9b2d-4f6e-8a0c-2d4f6b8a0c1e"
    with simulated_pool(tmp_path, monkeypatch) as (sim, session, calls):
        plan = make_plan(session)
        plan["vms"].append(dict(plan["vms"][0], uuid=mail, name="mail", bytes=64 << 30, disks=[]))
        originals = {n: vms_holding(session, n)[0] for n in ("fileserver", "mail")}
        outcome = run_transfer(plan, session, incident="two", dry_run=False, confirm_vm_uuid=f"{SIM_VM},{mail}",
                               wait_timeout_s=60)
        assert outcome.status == "done", outcome.message
        for original in originals.values():
            vm = assert_vm_intact_on_one_sr(session, original)
            assert {d["sr"] for d in vm["disks"]} == {SOURCE} and vm["power_state"] == "Running"
    order = [(r["vm"][:8], r["kind"]) for r in Journal(journal_path("two")).records() if r["event"] == "done"]
    assert order.index((mail[:8], "destroy-original")) < order.index((SIM_VM[:8], "copy-back"))


def _locked_vm_with_an_iso(scenario):
    """fileserver with a locked VIF (allowed addresses) and the tools ISO in its CD drive."""
    scenario["vdis"].append({"uuid": "0d1f2e3c-4b5a-4697-8877-665544332211", "sr": "XenServer Tools",
                             "name_label": "guest-tools.iso", "virtual_size": "60M", "allocated": "60M"})
    vm = next(v for v in scenario["vms"] if v["name_label"] == "fileserver")
    next(b for b in vm["vbds"] if b.get("type") == "CD")["vdi"] = "0d1f2e3c-4b5a-4697-8877-665544332211"
    vm["vifs"][0].update(locking_mode="locked", ipv4_allowed=["192.0.2.10"], ipv6_allowed=["2001:db8::10"])
    return scenario


def test_the_vifs_port_filter_and_the_inserted_iso_survive_the_round_trip(tmp_path, monkeypatch):
    """xapi keeps a VIF's locking mode and allowed addresses on a copy, and a CD keeps its ISO;
    the copy's VIFs are replaced to bring the MACs back, so the suite must carry them over."""
    from runbook_lib.sim import load_scenario

    scenario = _locked_vm_with_an_iso(load_scenario("seed-stuck-leaf-coalesce"))
    monkeypatch.setattr("tests.transfer_pool.load_scenario", lambda name: scenario)
    with simulated_pool(tmp_path, monkeypatch, source_free="36M") as (sim, session, calls):
        plan = make_plan(session)
        original = vms_holding(session, "fileserver")[0]
        assert original["vifs"][0]["locking_mode"] == "locked" and original["cds"][0]["vdi"]
        outcome = run_transfer(plan, session, incident="filter", dry_run=False, confirm_vm_uuid=SIM_VM,
                               wait_timeout_s=60)
        assert outcome.status == "done", outcome.message
        vm = assert_vm_intact_on_one_sr(session, original)
        assert vm["vifs"][0]["locking_mode"] == "locked"
        assert vm["vifs"][0]["ipv4_allowed"] == ["192.0.2.10"] and vm["vifs"][0]["ipv6_allowed"] == ["2001:db8::10"]
        assert vm["cds"] == original["cds"]


def test_a_copy_whose_vif_lost_its_filter_is_not_trusted(tmp_path, monkeypatch):
    from runbook_lib.sim import load_scenario
    from runbook_lib.transfer.runner import KilledForTest

    scenario = _locked_vm_with_an_iso(load_scenario("seed-stuck-leaf-coalesce"))
    monkeypatch.setattr("tests.transfer_pool.load_scenario", lambda name: scenario)
    with simulated_pool(tmp_path, monkeypatch, source_free="36M") as (sim, session, calls):
        plan = make_plan(session)
        with pytest.raises(KilledForTest):
            run_transfer(plan, session, incident="lost-filter", dry_run=False, confirm_vm_uuid=SIM_VM,
                         crash_after="copy-out")
        x = session.xenapi
        copy = x.VM.get_by_name_label("fileserver [runbook staging copy]")[0]
        vif = x.VM.get_VIFs(copy)[0]
        rec = x.VIF.get_record(vif)
        x.VIF.destroy(vif)
        x.VIF.create({"VM": copy, "network": rec["network"], "device": rec["device"], "MAC": rec["MAC"],
                      "MTU": rec["MTU"], "other_config": {}, "qos_algorithm_type": "", "qos_algorithm_params": {}})
        outcome = run_transfer(plan, session, incident="lost-filter", dry_run=False, confirm_vm_uuid=SIM_VM)
        assert outcome.status == "stopped" and "locking_mode" in outcome.message
        assert ops.ref_by_uuid(session, "VM", SIM_VM) is not None  # the original is kept


def _seed_with(monkeypatch, change):
    from runbook_lib.sim import load_scenario

    scenario = load_scenario("seed-stuck-leaf-coalesce")
    change(scenario)
    monkeypatch.setattr("tests.transfer_pool.load_scenario", lambda name: scenario)


def _fileserver(scenario) -> dict:
    return next(v for v in scenario["vms"] if v["name_label"] == "fileserver")


def test_an_ha_protected_vm_is_not_staged_on_an_sr_that_is_not_shared(tmp_path, monkeypatch):
    """xapi refuses to put an HA-protected VM's disks on an SR that is not shared
    (HA_CONSTRAINT_VIOLATION_SR_NOT_SHARED); the dry run says so before anything is copied."""
    def ha(scenario):
        scenario["pool"]["ha_enabled"] = True
        _fileserver(scenario)["ha_restart_priority"] = "restart"
        next(s for s in scenario["srs"] if s["name_label"] == "NFS staging")["shared"] = False

    _seed_with(monkeypatch, ha)
    with simulated_pool(tmp_path, monkeypatch, source_free="36M") as (sim, session, calls):
        from runbook_lib.plan import assess
        from runbook_lib.xapi import fetch_inventory

        move = next(r for r in assess(fetch_inventory(session)).remedies if r.kind == "move-vms")
        assert not move.feasible and "HA-protected fileserver can be staged on a shared SR only" in move.reason
    _seed_with(monkeypatch, lambda s: (s["pool"].update(ha_enabled=True),
                                       _fileserver(s).update(ha_restart_priority="restart")))
    with simulated_pool(tmp_path, monkeypatch, source_free="36M") as (sim, session, calls):
        plan = make_plan(session)  # shared NFS staging: fine
        assert plan["staging_sr"]["name"] == "NFS staging"
        staging_ref = ops.ref_by_uuid(session, "SR", STAGING)
        with sim.pool.lock:
            sim.pool.store.set("SR", staging_ref, shared=False)
        outcome = run_transfer(plan, session, incident="ha", dry_run=False, confirm_vm_uuid=SIM_VM)
        assert outcome.status == "refused" and "HA_CONSTRAINT_VIOLATION_SR_NOT_SHARED" in outcome.message
        assert changing_calls(calls) == []


def test_a_reset_on_boot_disk_is_refused_for_migration_before_anything_moves(tmp_path, monkeypatch):
    with simulated_pool(tmp_path, monkeypatch, source_free="30G") as (sim, session, calls):
        plan = make_plan(session, migrate=True)
        plan["vms"][0]["mode"] = "migrate"
        data = next(d["vdi"] for d in plan["vms"][0]["disks"] if d["userdevice"] == "1")
        data_ref = ops.ref_by_uuid(session, "VDI", data)
        with sim.pool.lock:
            sim.pool.store.set("VDI", data_ref, on_boot="reset")
        outcome = run_transfer(plan, session, incident="reset", dry_run=False, confirm_vm_uuid=SIM_VM)
        assert outcome.status == "refused" and "VDI_ON_BOOT_MODE_INCOMPATIBLE_WITH_OPERATION" in outcome.message
        assert changing_calls(calls) == []


def test_a_migration_takes_the_disks_snapshots_along_and_back(tmp_path, monkeypatch):
    """migrate_send moves the snapshots of a moved disk with it: the old chain leaves the SR
    whole, the GC frees it, and the snapshot comes back with the disk."""
    snap_uuid = "5e5e5e5e-0000-4000-8000-00000000abcd"

    def snapshot(scenario):
        scenario["vdis"].append({"uuid": snap_uuid, "sr": "Local SATA Storage", "name_label": "data before upgrade",
                                 "parent": "3f0b7c2e-8d41-4a6b-9e27-5c1d0f9a8b34", "virtual_size": "2020G",
                                 "allocated": "10M", "is_a_snapshot": True,
                                 "snapshot_of": "67558d6a-2f3e-4c8b-a1d9-7e5f3b2c9d10"})
        # thin: the copies come back deflated (on a thick SR each copy back stays a full LV)
        scenario["srs"][0]["sm_config"] = {"allocation": "thin"}

    with simulated_pool(tmp_path, monkeypatch, source_free="30G") as (sim, session, calls):
        plan = make_plan(session, migrate=True)  # made before the snapshot (with it, nothing is stuck)
        plan["vms"][0]["mode"] = "migrate"
    _seed_with(monkeypatch, snapshot)
    with simulated_pool(tmp_path, monkeypatch, source_free="30G") as (sim, session, calls):
        original = vms_holding(session, "fileserver")[0]
        outcome = run_transfer(plan, session, incident="snapmig", dry_run=False, confirm_vm_uuid=SIM_VM,
                               wait_timeout_s=60)
        assert outcome.status == "done", outcome.message
        vm = assert_vm_intact_on_one_sr(session, original)
        assert {d["sr"] for d in vm["disks"]} == {SOURCE} and depth_of_data_disk(session, vm) == 1
        snaps = [r for r in session.xenapi.VDI.get_all_records().values()
                 if r["is_a_snapshot"] and r["name_label"] == "data before upgrade"]
        assert len(snaps) == 1 and session.xenapi.SR.get_uuid(snaps[0]["SR"]) == SOURCE
        assert "vhd-parent" not in snaps[0]["sm_config"]  # a flat copy: the old chain is gone
