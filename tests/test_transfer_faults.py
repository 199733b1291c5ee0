"""Each fault of the issue ends with the VM intact on one SR, a journal that says what happened,
a clear next step, and a re-run that completes the remedy where it can."""

import pytest

from runbook_lib.transfer import Journal, run_transfer
from runbook_lib.transfer.journal import journal_path
from runbook_lib.transfer.runner import KilledForTest
from runbook_lib.xapi import operations as ops
from tests.transfer_pool import (
    SOURCE,
    STAGING,
    VM,
    assert_vm_intact_on_one_sr,
    changing_calls,
    depth_of_data_disk,
    make_plan,
    simulated_pool,
    stop_once_task_journaled,
    vms_holding,
)


def execute(plan, session, incident, **kw):
    kw.setdefault("wait_timeout_s", 60)
    return run_transfer(plan, session, incident=incident, dry_run=False, confirm_vm_uuid=VM, **kw)


def events(incident):
    return [(r.get("kind"), r["event"]) for r in Journal(journal_path(incident)).records()]


def finished_ok(outcome, session, original):
    assert outcome.status == "done", (outcome.message, outcome.next_step)
    vm = assert_vm_intact_on_one_sr(session, original)
    assert {d["sr"] for d in vm["disks"]} == {SOURCE} and vm["name"] == original["name"]
    assert vm["power_state"] == original["power_state"]
    assert depth_of_data_disk(session, vm) == 1
    return vm


def test_copy_failing_at_60_percent_leaves_the_original_and_a_rerun_finishes(tmp_path, monkeypatch):
    with simulated_pool(tmp_path, monkeypatch, faults=("copy-fails-at=0.6",)) as (sim, session, calls):
        plan = make_plan(session)
        original = vms_holding(session, "fileserver")[0]
        outcome = execute(plan, session, "copy60")
        assert outcome.status == "stopped" and outcome.exit_code == 1
        assert "VDI_COPY_FAILED" in outcome.message and "re-run" in outcome.next_step
        vm = assert_vm_intact_on_one_sr(session, original)
        assert vm["uuid"] == VM and vm["power_state"] == "Running"  # untouched, started again
        assert ("copy-out", "rolled-back") in events("copy60") and ("destroy-original", "start") not in events("copy60")
        finished_ok(execute(plan, session, "copy60"), session, original)


def test_staging_sr_running_out_of_space_stops_before_anything_is_lost(tmp_path, monkeypatch):
    with simulated_pool(tmp_path, monkeypatch, faults=("staging-full",)) as (sim, session, calls):
        plan = make_plan(session)
        original = vms_holding(session, "fileserver")[0]
        outcome = execute(plan, session, "full")
        assert outcome.status == "stopped"
        # a full NFS SR fails a sparse copy in sparse_dd (VDI_COPY_FAILED), not with SR_BACKEND_FAILURE_44
        assert "VDI_COPY_FAILED" in outcome.message and "ran out of space" in outcome.next_step
        assert "staging_sr_uuid" in outcome.next_step
        assert assert_vm_intact_on_one_sr(session, original)["uuid"] == VM
        failed = Journal(journal_path("full")).step_record(f"{VM}:copy-out", "rolled-back")
        assert failed["error"][0] == "VDI_COPY_FAILED"
        # the staging SR stays full: the re-run refuses before changing anything
        n = len(changing_calls(calls))
        again = execute(plan, session, "full")
        assert again.status == "refused" and "staging SR has" in again.message and "staging_sr_uuid" in again.message
        assert changing_calls(calls)[n:] == []
        assert [c for c in changing_calls(calls)[n:] if "copy" in c.lower()] == []
        assert assert_vm_intact_on_one_sr(session, original)["uuid"] == VM


def test_session_expiry_mid_run_is_survived(tmp_path, monkeypatch):
    with simulated_pool(tmp_path, monkeypatch, faults=("session-expiry=25",)) as (sim, session, calls):
        plan = make_plan(session)
        original = vms_holding(session, "fileserver")[0]
        finished_ok(execute(plan, session, "expiry"), session, original)
        assert session.logins > 2


def test_server_away_mid_run_is_waited_out_and_the_step_checked(tmp_path, monkeypatch):
    with simulated_pool(tmp_path, monkeypatch, faults=("restart=3",)) as (sim, session, calls):
        plan = make_plan(session)
        original = vms_holding(session, "fileserver")[0]
        outcome = execute(plan, session, "restart", reconnect_timeout_s=30)
        finished_ok(outcome, session, original)
        notes = [r for r in Journal(journal_path("restart")).records() if r["event"] == "note"]
        assert notes and "lost the pool" in notes[0]["message"]


def test_server_away_longer_than_we_wait_stops_with_a_resumable_journal(tmp_path, monkeypatch):
    with simulated_pool(tmp_path, monkeypatch, faults=("restart=4",)) as (sim, session, calls):
        plan = make_plan(session)
        original = vms_holding(session, "fileserver")[0]
        outcome = execute(plan, session, "away", reconnect_timeout_s=1)
        assert outcome.status == "stopped" and "same incident" in outcome.next_step
        wait_until_answering(session)
        finished_ok(execute(plan, session, "away"), session, original)


def wait_until_answering(session, timeout_s=60.0):
    """Until the pool answers again (its restart is over): no fixed sleep on a loaded machine."""
    import time

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return session.xenapi.pool.get_all()
        except Exception:  # noqa: BLE001 - refused or reset while the server is away
            assert time.monotonic() < deadline, "the simulator did not come back"
            time.sleep(0.1)


def test_killed_after_the_original_was_destroyed_resumes_from_the_journal(tmp_path, monkeypatch):
    with simulated_pool(tmp_path, monkeypatch) as (sim, session, calls):
        plan = make_plan(session)
        original = vms_holding(session, "fileserver")[0]
        with pytest.raises(KilledForTest):
            execute(plan, session, "killed", crash_after="destroy-original")
        # the moment of greatest risk: the original is gone, the copy still has its staging name
        assert ops.ref_by_uuid(session, "VM", VM) is None
        holder = assert_vm_intact_on_one_sr(session, original)
        assert holder["name"] == "fileserver [runbook staging copy]" and {d["sr"] for d in holder["disks"]} == {STAGING}
        assert ("destroy-original", "done") in events("killed") and ("rename-copy", "start") not in events("killed")
        outcome = execute(plan, session, "killed")
        finished_ok(outcome, session, original)
        done = [k for k, e in events("killed") if e == "done"]
        assert done.count("copy-out") == 1 and done.count("destroy-original") == 1  # nothing repeated


def test_killed_in_the_middle_of_destroying_the_original_completes_on_resume(tmp_path, monkeypatch):
    with simulated_pool(tmp_path, monkeypatch) as (sim, session, calls):
        plan = make_plan(session)
        original = vms_holding(session, "fileserver")[0]
        real = ops.destroy_vdi

        def die(session_, ref):
            real(session_, ref)
            raise KilledForTest("after the first VDI.destroy")

        monkeypatch.setattr(ops, "destroy_vdi", die)
        with pytest.raises(KilledForTest):
            execute(plan, session, "midkill")
        monkeypatch.setattr(ops, "destroy_vdi", real)
        assert Journal(journal_path("midkill")).step_status(f"{VM}:destroy-original") == "started"
        outcome = execute(plan, session, "midkill")
        finished_ok(outcome, session, original)
        resumed = [r for r in Journal(journal_path("midkill")).records() if r["event"] == "resumed"]
        assert resumed and resumed[0]["kind"] == "destroy-original"


def test_a_gc_that_never_finishes_times_out_with_the_vm_safe_on_staging(tmp_path, monkeypatch):
    with simulated_pool(tmp_path, monkeypatch, faults=("gc-stuck",)) as (sim, session, calls):
        plan = make_plan(session)
        original = vms_holding(session, "fileserver")[0]
        outcome = execute(plan, session, "stuck", wait_timeout_s=1.5, smlog=tmp_path / "SMlog")
        assert outcome.status == "stopped" and "did not finish" in outcome.message
        assert "nothing is at risk" in outcome.next_step and "Re-run" in outcome.next_step
        holder = assert_vm_intact_on_one_sr(session, original)
        assert holder["name"] == "fileserver" and {d["sr"] for d in holder["disks"]} == {STAGING}
        failed = Journal(journal_path("stuck")).step_record(f"{VM}:wait-gc", "failed")
        assert failed["error"][0] == "GC_WAIT_TIMEOUT"


def test_a_vm_that_refuses_to_shut_down_is_left_running_untouched(tmp_path, monkeypatch):
    with simulated_pool(tmp_path, monkeypatch, faults=("vm-wont-stop",)) as (sim, session, calls):
        plan = make_plan(session)
        original = vms_holding(session, "fileserver")[0]
        outcome = execute(plan, session, "wontstop")
        assert outcome.status == "stopped" and "VM_SHUTDOWN_TIMEOUT" in outcome.message
        assert "inside the guest" in outcome.next_step
        vm = assert_vm_intact_on_one_sr(session, original)
        assert vm["uuid"] == VM and vm["power_state"] == "Running"
        assert [c for c in changing_calls(calls) if c != "VM.clean_shutdown" and "clean_shutdown" not in c] == []
        # the admin shuts it down from inside the guest; the re-run carries on
        session.xenapi.VM.hard_shutdown(ops.ref_by_uuid(session, "VM", VM))
        outcome = execute(plan, session, "wontstop")
        assert outcome.status == "done", outcome.message
        vm = assert_vm_intact_on_one_sr(session, original)
        assert {d["sr"] for d in vm["disks"]} == {SOURCE} and depth_of_data_disk(session, vm) == 1


@pytest.mark.parametrize("kind", ["copy-out", "copy-back"])
def test_killed_while_a_copy_task_runs_picks_the_task_up_on_resume(tmp_path, monkeypatch, kind):

    with simulated_pool(tmp_path, monkeypatch) as (sim, session, calls):
        plan = make_plan(session)
        original = vms_holding(session, "fileserver")[0]
        undo = stop_once_task_journaled(monkeypatch, kind, KilledForTest)  # journaled, then the process dies
        with pytest.raises(KilledForTest):
            execute(plan, session, "killcopy")
        undo()
        outcome = execute(plan, session, "killcopy")
        finished_ok(outcome, session, original)
        resumed = [r for r in Journal(journal_path("killcopy")).records() if r["event"] == "resumed"]
        assert [(r["kind"], r["pool_shows"]) for r in resumed] == [(kind, "done")]
        done = [k for k, e in events("killcopy") if e == "done"]
        assert done.count(kind) == 1
        copies = [c for c in changing_calls(calls) if c == "Async.VM.copy"]
        assert len(copies) == 2  # one out, one back: the interrupted copy was not started again


@pytest.mark.parametrize("copy_kind, copy_name, safe_on", [
    ("copy-out", "fileserver [runbook staging copy]", SOURCE),
    ("copy-back", "fileserver [runbook copy back]", STAGING),
])
def test_a_copy_that_does_not_match_is_removed_and_nothing_is_destroyed(tmp_path, monkeypatch, copy_kind, copy_name,
                                                                         safe_on):
    """Verify before destroy: a copy whose VIFs differ from the original's (here one is removed
    between the copy and its check) fails the check, is removed, and what it would replace stays."""
    with simulated_pool(tmp_path, monkeypatch) as (sim, session, calls):
        plan = make_plan(session)
        original = vms_holding(session, "fileserver")[0]
        with pytest.raises(KilledForTest):
            execute(plan, session, "tamper", crash_after=copy_kind)
        copy_ref = session.xenapi.VM.get_by_name_label(copy_name)[0]
        for vif in session.xenapi.VM.get_VIFs(copy_ref):
            session.xenapi.VIF.destroy(vif)
        outcome = execute(plan, session, "tamper")
        assert outcome.status == "stopped" and "does not match the original" in outcome.message
        assert "VIF devices differ" in outcome.message
        assert session.xenapi.VM.get_by_name_label(copy_name) == []  # the bad copy is gone
        holder = assert_vm_intact_on_one_sr(session, original)
        assert {d["sr"] for d in holder["disks"]} == {safe_on}
        kinds = events("tamper")
        destroys = {"copy-out": "destroy-original", "copy-back": "destroy-staging"}[copy_kind]
        assert (destroys, "start") not in kinds and (copy_kind, "rolled-back") in kinds
        finished_ok(execute(plan, session, "tamper"), session, original)  # a re-run copies again and finishes


def test_the_original_cannot_be_started_while_its_copy_waits_to_be_checked(tmp_path, monkeypatch):
    """Between the copy and the destroy nobody may boot the original (its new writes would be
    lost with it); the copy itself carries no block, and a run that stops lifts the block."""
    with simulated_pool(tmp_path, monkeypatch, faults=("copy-fails-at=0.6",)) as (sim, session, calls):
        plan = make_plan(session)
        x = session.xenapi
        stopped = execute(plan, session, "blocked")  # the copy fails: the original runs again, unblocked
        assert stopped.status == "stopped" and x.VM.get_blocked_operations(ops.ref_by_uuid(session, "VM", VM)) == {}
        with pytest.raises(KilledForTest):
            execute(plan, session, "blocked", crash_after="copy-out")
        original = ops.ref_by_uuid(session, "VM", VM)
        with pytest.raises(Exception) as refused:
            x.VM.start(original, False, False)
        assert "OPERATION_BLOCKED" in str(refused.value)
        copy = x.VM.get_by_name_label("fileserver [runbook staging copy]")[0]
        assert "start" not in x.VM.get_blocked_operations(copy)
        assert execute(plan, session, "blocked").status == "done"


def test_a_staging_sr_with_room_for_the_leaf_but_not_the_chain_is_refused_before_copying(tmp_path, monkeypatch):
    """The flat copy holds the whole chain's blocks: a file SR that fits only the (halted,
    small) leaf is refused before anything is copied, even when the plan gives no sizes."""
    with simulated_pool(tmp_path, monkeypatch) as (sim, session, calls):
        plan = make_plan(session)
        for vm in plan["vms"]:
            vm["bytes"] = vm["staging_bytes"] = 0  # an old or hand-made plan: preflight cannot check
        staging = sim.pool.storage.srs[ops.ref_by_uuid(session, "SR", STAGING)]
        records = ops.vdi_records(session)
        base_bytes = next(r["physical_utilisation"] for r in records.values() if r["uuid"].startswith("3f0b7c2e"))
        free = sim.pool.storage.free(ops.ref_by_uuid(session, "SR", STAGING))
        staging.other_used += free - base_bytes // 2  # room for the halted leaf, not for the base's data
        sim.pool.storage.refresh(ops.ref_by_uuid(session, "SR", STAGING))
        original = vms_holding(session, "fileserver")[0]
        outcome = execute(plan, session, "leafonly")
        assert outcome.status == "stopped" and "nothing was copied" in outcome.message, outcome.message
        assert [c for c in changing_calls(calls) if "copy" in c.lower()] == []
        assert assert_vm_intact_on_one_sr(session, original)["uuid"] == VM


def test_ctrl_c_mid_copy_is_journaled_and_the_dry_run_and_the_rerun_take_up_from_there(tmp_path, monkeypatch):
    from runbook_lib.transfer import interrupted_message

    with simulated_pool(tmp_path, monkeypatch) as (sim, session, calls):
        plan = make_plan(session)
        original = vms_holding(session, "fileserver")[0]
        undo = stop_once_task_journaled(monkeypatch, "copy-out", KeyboardInterrupt)
        with pytest.raises(KeyboardInterrupt):
            execute(plan, session, "ctrlc", front="cli")
        undo()
        journal = Journal(journal_path("ctrlc"))
        interrupted, stopped = journal.records()[-2:]
        assert (interrupted["event"], interrupted["step"]) == ("interrupted", f"{VM}:copy-out")
        assert journal.step_status(f"{VM}:copy-out") == "started"  # left for the next run to check
        line = interrupted_message(journal, plan, front="cli")
        assert stopped["event"] == "stopped" and stopped["message"] == line and "\n" not in line
        assert line.startswith(f"interrupted: VM 'fileserver': the original {VM} is intact on SR "
                               "'Local SATA Storage', shut down by this run (last finished step: shutdown; "
                               "stopped during copy-out, which the next run checks against the pool)")
        assert "VM.start may still be blocked" in line and f"uuid={VM} param-name=blocked-operations" in line
        assert line.endswith("re-run with the same --incident and --plan to continue")

        dry = run_transfer(plan, session, incident="ctrlc")
        status = dict(zip(dry.table["step"], dry.table["journal"]))
        assert status["record-original"] == status["shutdown"] == "done"
        assert status["copy-out"] == "under way when it stopped" and status["destroy-original"] == ""
        assert "2 of them already done" in dry.message

        finished_ok(execute(plan, session, "ctrlc"), session, original)
        copies = [c for c in changing_calls(calls) if c == "Async.VM.copy"]
        assert len(copies) == 2  # the interrupted copy's task was picked up, not started again


def test_a_fresh_incident_shows_no_journal_column(tmp_path, monkeypatch):
    with simulated_pool(tmp_path, monkeypatch) as (sim, session, calls):
        plan = make_plan(session)
        assert "journal" not in run_transfer(plan, session, incident="fresh").table.columns
