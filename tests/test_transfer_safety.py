"""The transfer never brings back a stale copy, survives lost answers and kills, leaves nothing
of its own behind, runs once per incident, and copes with a damaged or missing journal."""

import json
import time

import pytest

from runbook_lib.sim.model import ApiFailure
from runbook_lib.transfer import Journal, run_transfer
from runbook_lib.transfer.journal import journal_path
from runbook_lib.transfer.lock import incident_lock
from runbook_lib.transfer.runner import KilledForTest
from runbook_lib.xapi import operations as ops
from tests.chaos_trials import lost_data
from tests.transfer_pool import (
    SOURCE,
    STAGING,
    VM,
    assert_vm_intact_on_one_sr,
    calls_made,
    changing_calls,
    make_plan,
    simulated_pool,
    stop_once_task_journaled,
    vms_holding,
)

COPY_NAME = "fileserver [runbook staging copy]"


def execute(plan, session, incident, **kw):
    kw.setdefault("wait_timeout_s", 60)
    return run_transfer(plan, session, incident=incident, dry_run=False, confirm_vm_uuid=VM, **kw)


def data_vdi(identity):
    return next(d["vdi"] for d in identity["disks"] if d["userdevice"] == "1")


def finished(outcome, session, original):
    assert outcome.status == "done", (outcome.message, outcome.next_step)
    vm = assert_vm_intact_on_one_sr(session, original)
    assert {d["sr"] for d in vm["disks"]} == {SOURCE} and vm["power_state"] == "Running"
    assert session.xenapi.VM.get_by_name_label(COPY_NAME) == []
    return vm


def let_it_run(sim, seconds=0.3):
    """Wall time passes; the simulated VM writes (its disks' data version advances)."""
    time.sleep(seconds)
    sim.pool.tick()


def copy_then_run_the_original(sim, session, plan, incident):
    """The run dies right after its copy; an operator lifts the block, runs the VM, shuts it down."""
    with pytest.raises(KilledForTest):
        execute(plan, session, incident, crash_after="copy-out")
    ref, x = ops.ref_by_uuid(session, "VM", VM), session.xenapi
    x.VM.remove_from_blocked_operations(ref, "start")
    x.VM.start(ref, False, False)
    let_it_run(sim)
    x.VM.clean_shutdown(ref)


def test_a_copy_older_than_the_originals_last_run_is_never_brought_back(tmp_path, monkeypatch):
    """An operator lifts the block and runs the original after its copy was made: the copy no
    longer holds the VM's data. The re-run sees it from the pool (VM_metrics.start_time), removes
    the stale copy instead of destroying the original, and a later run copies again."""
    with simulated_pool(tmp_path, monkeypatch) as (sim, session, calls):
        plan = make_plan(session)
        original = vms_holding(session, "fileserver")[0]
        copy_then_run_the_original(sim, session, plan, "stale")
        outcome = execute(plan, session, "stale")
        x = session.xenapi
        assert outcome.status == "stopped" and "ran after its copy began" in outcome.message, outcome.message
        assert "started at" in outcome.message and "stale" in outcome.message
        assert ops.ref_by_uuid(session, "VM", VM) is not None  # the original is kept
        assert x.VM.get_by_name_label(COPY_NAME) == []  # the stale copy is gone
        assert [r for r in Journal(journal_path("stale")).records() if r["event"] == "stale-copy"]
        vm = finished(execute(plan, session, "stale"), session, original)
        assert lost_data(sim, data_vdi(original), vm) == []


def test_without_the_guard_the_stale_copy_would_come_back(tmp_path, monkeypatch):
    """The check above can fail: with the freshness rule switched off, the old copy comes back
    and the simulator's data version shows the writes that were lost."""
    from runbook_lib.transfer import guard

    monkeypatch.setattr(guard, "stale_reasons", lambda *a, **k: [])
    with simulated_pool(tmp_path, monkeypatch) as (sim, session, calls):
        plan = make_plan(session)
        original = vms_holding(session, "fileserver")[0]
        copy_then_run_the_original(sim, session, plan, "noguard")
        vm = finished(execute(plan, session, "noguard"), session, original)
        assert lost_data(sim, data_vdi(original), vm) != []


def test_when_the_runbook_starts_the_original_again_its_copy_is_discarded(tmp_path, monkeypatch):
    """F1: a handled error after the copy exists makes the runbook start the original again;
    the copy is stale from that moment, so it is removed then, and the next run copies anew."""
    from runbook_lib.errors import PoolError
    from runbook_lib.transfer import checks

    with simulated_pool(tmp_path, monkeypatch) as (sim, session, calls):
        plan = make_plan(session)
        original = vms_holding(session, "fileserver")[0]
        real = checks.verify_or_remove
        monkeypatch.setattr(checks, "verify_or_remove", lambda *a, **k: (_ for _ in ()).throw(PoolError("refused")))
        outcome = execute(plan, session, "restart")
        monkeypatch.setattr(checks, "verify_or_remove", real)
        assert outcome.status == "stopped" and "started again" in outcome.message
        assert session.xenapi.VM.get_by_name_label(COPY_NAME) == []
        assert session.xenapi.VM.get_power_state(ops.ref_by_uuid(session, "VM", VM)) == "Running"
        let_it_run(sim)
        vm = finished(execute(plan, session, "restart"), session, original)
        assert lost_data(sim, data_vdi(original), vm) == []
        assert [c for c in changing_calls(calls) if c == "Async.VM.copy"].count("Async.VM.copy") == 3


def test_a_lost_answer_to_the_copy_never_sends_a_second_copy(tmp_path, monkeypatch):
    """F3: the copy's answer (its task ref) is lost; the re-check finds the copy under way in the
    VM's current operations and waits for it, rather than starting another."""
    with simulated_pool(tmp_path, monkeypatch, faults=("lose-reply=Async.VM.copy@1",)) as (sim, session, calls):
        plan = make_plan(session)
        original = vms_holding(session, "fileserver")[0]
        finished(execute(plan, session, "lostcopy"), session, original)
        assert [c["method"] for c in calls_made(calls)].count("Async.VM.copy") == 2  # one out, one back
        assert sim.pool.faults.replies_lost == ["Async.VM.copy"]


def test_a_lost_answer_to_the_shutdown_is_not_reported_as_refused(tmp_path, monkeypatch):
    """F4: the clean shutdown worked; its answer was lost. No 'refused, force it off'."""
    with simulated_pool(tmp_path, monkeypatch, faults=("lose-reply=Async.VM.clean_shutdown",)) as (sim, session, calls):
        plan = make_plan(session)
        original = vms_holding(session, "fileserver")[0]
        finished(execute(plan, session, "lostshut"), session, original)
        assert [c["method"] for c in calls_made(calls)].count("Async.VM.clean_shutdown") == 1


@pytest.mark.parametrize("method", ["VM.destroy@2", "VDI.destroy@3", "VIF.create@1"])
def test_a_lost_answer_to_a_destroy_or_a_vif_is_finished_not_failed(tmp_path, monkeypatch, method):
    with simulated_pool(tmp_path, monkeypatch, faults=(f"lose-reply={method}",)) as (sim, session, calls):
        plan = make_plan(session)
        original = vms_holding(session, "fileserver")[0]
        staging_before = set(session.xenapi.SR.get_VDIs(ops.ref_by_uuid(session, "SR", STAGING)))
        finished(execute(plan, session, "lostdestroy"), session, original)
        assert set(session.xenapi.SR.get_VDIs(ops.ref_by_uuid(session, "SR", STAGING))) == staging_before


def test_killed_between_the_staging_copys_vm_and_its_disks_leaves_no_orphans(tmp_path, monkeypatch):
    """F2: VM.destroy of the staging copy went through, the process died before its VDIs; the
    re-run destroys the disks it recorded and only then says done."""
    with simulated_pool(tmp_path, monkeypatch) as (sim, session, calls):
        plan = make_plan(session)
        original = vms_holding(session, "fileserver")[0]
        staging_before = set(session.xenapi.SR.get_VDIs(ops.ref_by_uuid(session, "SR", STAGING)))
        real = ops.destroy_vm

        def die(session_, ref):
            back = session_.xenapi.VM.get_name_label(ref) == "fileserver"  # the staging copy, renamed
            real(session_, ref)
            if back and Journal(journal_path("orphans")).step_status(f"{VM}:destroy-staging") == "started":
                raise KilledForTest("after the staging copy's VM.destroy")

        monkeypatch.setattr(ops, "destroy_vm", die)
        with pytest.raises(KilledForTest):
            execute(plan, session, "orphans")
        monkeypatch.setattr(ops, "destroy_vm", real)
        assert set(session.xenapi.SR.get_VDIs(ops.ref_by_uuid(session, "SR", STAGING))) != staging_before
        finished(execute(plan, session, "orphans"), session, original)
        assert set(session.xenapi.SR.get_VDIs(ops.ref_by_uuid(session, "SR", STAGING))) == staging_before


def test_one_executing_run_per_incident(tmp_path, monkeypatch):
    with simulated_pool(tmp_path, monkeypatch) as (sim, session, calls):
        plan = make_plan(session)
        with incident_lock(journal_path("locked"), "locked"):
            n = len(changing_calls(calls))
            outcome = execute(plan, session, "locked")
            assert outcome.status == "refused" and outcome.exit_code == 2
            assert "being executed by another run (pid" in outcome.message and "\n" not in outcome.message
            assert changing_calls(calls)[n:] == []
            assert run_transfer(plan, session, incident="locked").status == "dry-run"  # reading is fine
        assert execute(plan, session, "locked").status == "done"  # released on exit


def test_a_lock_left_by_a_killed_run_is_not_in_the_way(tmp_path, monkeypatch):
    import subprocess
    import sys

    lock_dir = journal_path("stale-lock").parent
    lock_dir.mkdir(parents=True)
    code = ("import fcntl, os; fd = os.open(%r, os.O_RDWR | os.O_CREAT); fcntl.flock(fd, fcntl.LOCK_EX); "
            "os.write(fd, b'pid 1 on elsewhere'); os._exit(9)") % str(lock_dir / "transfer.lock")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 9
    with incident_lock(journal_path("stale-lock"), "stale-lock") as previous:
        assert previous == "pid 1 on elsewhere"




@pytest.mark.parametrize("damage", ["missing", "other-outputs", "garbled", "crafted"])
def test_a_damaged_or_missing_journal_finds_the_vm_by_its_marks_and_finishes(tmp_path, monkeypatch, damage):
    """F7: after the original is gone, the VM lives as the verified staging copy; without a
    usable journal the re-run finds it by the runbook's marks and finishes the remedy."""
    with simulated_pool(tmp_path, monkeypatch) as (sim, session, calls):
        plan = make_plan(session)
        original = vms_holding(session, "fileserver")[0]
        with pytest.raises(KilledForTest):
            execute(plan, session, "lost", crash_after="destroy-original")
        path = journal_path("lost")
        if damage == "missing":
            path.unlink()
        elif damage == "other-outputs":
            monkeypatch.setenv("RUNBOOK_OUTPUTS", str(tmp_path / "elsewhere"))
        elif damage == "garbled":
            path.write_bytes(b"\x00\xff garbage\n" + path.read_bytes()[::7])
        else:  # a hand-edited line: the recorded original is not what the runbook writes
            lines = [json.loads(line) for line in path.read_text().splitlines()]
            for line in lines:
                if line.get("kind") == "record-original" and line["event"] == "done":
                    line["result"]["original"] = {"name": 42}
            path.write_text("".join(json.dumps(line) + "\n" for line in lines))
        vm = finished(execute(plan, session, "lost"), session, original)
        assert lost_data(sim, data_vdi(original), vm) == []
        assert [r for r in Journal(journal_path("lost")).records() if r["event"] == "recovered"]


def test_a_journal_path_that_is_a_directory_is_one_line(tmp_path, monkeypatch):
    with simulated_pool(tmp_path, monkeypatch) as (sim, session, calls):
        plan = make_plan(session)
        journal_path("dir").mkdir(parents=True)
        for dry in (True, False):
            outcome = run_transfer(plan, session, incident="dir", dry_run=dry, confirm_vm_uuid=VM)
            assert outcome.status == "refused" and "is a directory" in outcome.message, outcome.message
        assert changing_calls(calls) == []


def test_a_failed_task_stops_with_one_line_and_a_journal_line(tmp_path, monkeypatch):
    """A task that fails (SR.scan here) is a RunbookError: one line, the step's failure journaled,
    the VM safe; once the cause is gone the re-run finishes."""
    with simulated_pool(tmp_path, monkeypatch) as (sim, session, calls):
        plan = make_plan(session)
        original = vms_holding(session, "fileserver")[0]
        real = sim.pool.op_SR_scan

        def failing(sr):
            raise ApiFailure("SR_BACKEND_FAILURE_40", "", "The SR scan failed", "")

        monkeypatch.setattr(sim.pool, "op_SR_scan", failing)
        sim.dispatcher._build()
        outcome = execute(plan, session, "scanfail")
        assert outcome.status == "stopped" and "SR_BACKEND_FAILURE_40" in outcome.message
        assert Journal(journal_path("scanfail")).step_status(f"{VM}:scan-source") == "failed"
        assert "is safe on SR" in outcome.next_step
        monkeypatch.setattr(sim.pool, "op_SR_scan", real)
        sim.dispatcher._build()
        finished(execute(plan, session, "scanfail"), session, original)


def test_done_is_said_only_after_looking_at_the_pool(tmp_path, monkeypatch):
    """F8: a finished incident re-run says done only when the VM is there; if it is gone it says so."""
    with simulated_pool(tmp_path, monkeypatch) as (sim, session, calls):
        plan = make_plan(session)
        original = vms_holding(session, "fileserver")[0]
        vm = finished(execute(plan, session, "twice"), session, original)
        n = len(changing_calls(calls))
        assert execute(plan, session, "twice").status == "done"
        assert changing_calls(calls)[n:] == []
        x = session.xenapi
        ref = x.VM.get_by_uuid(vm["uuid"])
        x.VM.hard_shutdown(ref)
        x.VM.destroy(ref)
        again = execute(plan, session, "twice")
        assert again.status == "refused" and "no copy of it by this runbook was found" in again.message


def test_a_start_block_set_by_someone_else_is_never_taken_over(tmp_path, monkeypatch):
    with simulated_pool(tmp_path, monkeypatch) as (sim, session, calls):
        plan = make_plan(session)
        ref = ops.ref_by_uuid(session, "VM", VM)
        session.xenapi.VM.add_to_blocked_operations(ref, "start", "maintenance by alice")
        outcome = execute(plan, session, "theirs")
        assert outcome.status == "stopped" and "maintenance by alice" in outcome.message
        assert "Async.VM.copy" not in changing_calls(calls)
        assert session.xenapi.VM.get_blocked_operations(ref) == {"start": "maintenance by alice"}


def test_the_simulator_refuses_to_start_a_vm_while_it_is_being_copied(tmp_path, monkeypatch):
    with simulated_pool(tmp_path, monkeypatch) as (sim, session, calls):
        x = session.xenapi
        ref = ops.ref_by_uuid(session, "VM", VM)
        x.VM.hard_shutdown(ref)
        sim.pool.clock.speed = 1.0  # the copy now takes hours of wall time
        task = x.Async.VM.copy(ref, "slow copy", ops.ref_by_uuid(session, "SR", STAGING))
        with pytest.raises(Exception) as refused:
            x.VM.start(ref, False, False)
        assert "OTHER_OPERATION_IN_PROGRESS" in str(refused.value)
        x.task.cancel(task)


def test_a_resume_after_the_pool_forgot_the_copy_task_finds_the_copy(tmp_path, monkeypatch):
    """The run dies once the copy's task is journaled; the re-run comes after xapi has destroyed
    the finished task (about 65 minutes): the copy is found by its name, adopted and verified,
    and no second copy is made."""

    with simulated_pool(tmp_path, monkeypatch) as (sim, session, calls):
        plan = make_plan(session)
        original = vms_holding(session, "fileserver")[0]
        undo = stop_once_task_journaled(monkeypatch, "copy-out", KilledForTest)
        with pytest.raises(KilledForTest) as killed:
            execute(plan, session, "forgot")
        undo()
        task = str(killed.value)
        assert sim.wait_until(lambda s: not s.pool.store.exists("task", task) or
                              s.pool.store.get("task", task)["status"] != "pending", timeout=30)
        let_it_run(sim, 0.2)  # 65 simulated minutes pass
        sim.dispatcher.task_min_wall_s = 0.0  # expiry by the simulated clock alone, for this once
        session.xenapi.pool.get_all()  # any call: xapi's GC runs by itself
        assert not sim.pool.store.exists("task", task)
        sim.dispatcher.task_min_wall_s = 5.0
        finished(execute(plan, session, "forgot"), session, original)
        assert [c["method"] for c in calls_made(calls)].count("Async.VM.copy") == 2


def test_a_lost_journal_before_the_original_went_copies_again_and_removes_its_own_old_copy(tmp_path, monkeypatch):
    """The journal is gone while the original still exists (halted by the runbook, its start
    blocked) and a copy of this incident waits on staging: the re-run accepts the halted VM as its
    own doing, removes that untrusted copy (it would hold the space) and copies again."""
    with simulated_pool(tmp_path, monkeypatch) as (sim, session, calls):
        plan = make_plan(session)
        original = vms_holding(session, "fileserver")[0]
        with pytest.raises(KilledForTest):
            execute(plan, session, "early", crash_after="copy-out")
        journal_path("early").unlink()
        vm = finished(execute(plan, session, "early"), session, original)
        assert [c["method"] for c in calls_made(calls)].count("Async.VM.copy") == 3  # out, out again, back
        assert lost_data(sim, data_vdi(original), vm) == []


def test_a_copy_back_whose_vifs_cannot_be_set_up_is_removed_and_the_vm_stays_on_staging(tmp_path, monkeypatch):
    """F8: the copy back exists but giving it the original's VIFs is refused: that copy is removed
    (not left half set up), the VM is safe on the staging SR, and the re-run finishes."""
    from runbook_lib.errors import PoolError

    with simulated_pool(tmp_path, monkeypatch) as (sim, session, calls):
        plan = make_plan(session)
        original = vms_holding(session, "fileserver")[0]
        real = ops.replace_vifs

        def refuse_on_the_way_back(session_, ref, vifs):
            if session_.xenapi.VM.get_name_label(ref).endswith("[runbook copy back]"):
                raise PoolError("VIF.create failed: INTERNAL_ERROR")
            return real(session_, ref, vifs)

        monkeypatch.setattr(ops, "replace_vifs", refuse_on_the_way_back)
        outcome = execute(plan, session, "vifback")
        monkeypatch.setattr(ops, "replace_vifs", real)
        assert outcome.status == "stopped" and "could not be set up" in outcome.message
        assert session.xenapi.VM.get_by_name_label("fileserver [runbook copy back]") == []
        holder = assert_vm_intact_on_one_sr(session, original)
        assert {d["sr"] for d in holder["disks"]} == {STAGING}
        finished(execute(plan, session, "vifback"), session, original)
