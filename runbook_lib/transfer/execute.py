"""Carry out a plan.json: dry run by default, confirmed execution, resumable from the journal.

The order of things is the safety argument:
1. the plan is read and turned into steps (nothing connected yet);
2. executing needs dry_run=False AND confirm_vm_uuid equal to the plan's VM uuid(s), checked
   before the pool is touched (no input(): papermill cannot answer prompts);
3. the pool is checked read-only: same pool uuid, the VM and the SRs still exist, the power
   state is what the plan expected; a mismatch is refused before any change;
4. a dry run stops here, having called only read methods;
5. each step is journaled (fsynced) before it starts and after it ends. A step the journal
   shows as done is skipped; one that started and never ended is checked against the pool and
   completed or rolled back. A lost connection (xapi restart) is waited out and the step is
   checked the same way, so no call that changes the pool is ever blindly repeated.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from pathlib import Path
from typing import Any

from runbook_lib.errors import InputError, RunbookError, UsageError
from runbook_lib.input_files import read_json
from runbook_lib.transfer import actions
from runbook_lib.transfer.actions import Context, StepFailed
from runbook_lib.transfer.fronts import NEW_PLAN, check_front, execute_with, option, rerun_same
from runbook_lib.transfer.journal import Journal, journal_path
from runbook_lib.transfer.plan_steps import Step, plan_steps, sr_names, steps_table, validate_plan
from runbook_lib.transfer.progress import ConsoleReporter, Reporter
from runbook_lib.xapi import operations as ops
from runbook_lib.xapi.connect import PoolUnreachable

DEFAULT_WAIT_TIMEOUT_S = 3600.0
DEFAULT_RECONNECT_S = 300.0
TRANSIENT_CODES = {"SESSION_INVALID", "FAULT"}
MAX_LOSSES_PER_STEP = 10


class ConfirmationError(UsageError):
    """Executing was asked for without the confirmation that names the VM."""


class PlanMismatch(InputError):
    """The plan does not describe the pool it is run against (any more)."""


class TransferNotFinished(RunbookError):
    """A refused or part-way run, raised after its outcome is shown, so `runbook run` exits 1 with one line."""


class TransferInterrupted(RunbookError):
    """Ctrl-C during an executing run: the journal says where it stopped; re-running continues."""

    exit_code = 130


class KilledForTest(BaseException):
    """Raised by `crash_after` to stand in for a process killed at that point (tests only)."""


@dataclasses.dataclass
class TransferOutcome:
    status: str  # dry-run | refused | stopped | done
    message: str
    next_step: str
    incident: str
    journal: str
    steps: list[Step]
    table: Any  # the plan's steps as a DataFrame
    outcomes: Any  # each step's outcome in this run (DataFrame)
    samples: Any  # free space over time (DataFrame: time, sr, name, free, phase)
    final: dict  # per VM: final uuid, differences, chain depth before/after; per SR: free

    @property
    def exit_code(self) -> int:
        return {"dry-run": 0, "done": 0, "refused": 2}.get(self.status, 1)

    def raise_unless_finished(self) -> None:
        """Fail the notebook when the run was refused or stopped part-way (a dry run or a done one passes)."""
        if self.status in ("refused", "stopped"):
            raise TransferNotFinished(f"transfer {self.status}: {self.message}",
                                      hint=f"next step: {self.next_step}" if self.next_step else None)

    def summary(self) -> dict:
        return {"status": self.status, "message": self.message, "next_step": self.next_step,
                "incident": self.incident, "journal": self.journal, "final": self.final}


def load_plan(path: str | Path) -> dict:
    return validate_plan(read_json(path, "plan"))


def plan_digest(plan: dict) -> str:
    """Identifies what a plan asks for (not when it was written), to tie a journal to its plan."""
    what = {k: v for k, v in plan.items() if k not in ("created", "alternatives")}
    return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()[:16]


def check_confirmation(plan: dict, *, dry_run: bool, confirm_vm_uuid: str, front: str = "notebook") -> None:
    """Raise ConfirmationError unless this is a dry run or the confirmation names every VM of the plan."""
    check_front(front)
    if dry_run:
        return
    confirm = option(front, "confirm")
    expected = sorted(vm["uuid"] for vm in plan["vms"])
    given = sorted(part.strip() for part in (confirm_vm_uuid or "").split(",") if part.strip())
    names = ", ".join(f"{vm.get('name') or '?'} = {vm['uuid']}" for vm in plan["vms"])
    if not given:
        raise ConfirmationError(
            f"executing changes the pool: set {confirm} to the uuid of the VM to move ({names}); "
            "nothing was changed")
    if given != expected:
        raise ConfirmationError(
            f"{confirm} {', '.join(given)} does not match the plan's VM ({names}); nothing was changed")


def is_transient(exc: BaseException) -> bool:
    """A lost connection or session: wait for the pool and check the step again."""
    if isinstance(exc, PoolUnreachable):
        return True
    code = getattr(exc, "code", None)
    if code in TRANSIENT_CODES:
        return True
    details = ops.failure_details(exc)
    return bool(details and details[0] in TRANSIENT_CODES)


def preflight(session, plan: dict, journal: Journal, *, staging: str, front: str = "notebook") -> list[str]:
    """Read-only checks; returns the problems (empty = go)."""
    problems = []
    pool = ops.pool_uuid(session)
    if pool != plan["pool"]["uuid"]:
        return [f"the plan was made on pool {plan['pool']['uuid']}, this is pool {pool}: {NEW_PLAN} on this pool"]
    for label, uuid in (("SR", plan["sr"]["uuid"]), ("staging SR", staging)):
        if uuid and ops.ref_by_uuid(session, "SR", uuid) is None:
            problems.append(f"the plan's {label} {uuid} no longer exists")
    if staging and not problems:
        waiting = [vm for vm in plan["vms"] if vm["mode"] in ("copy", "migrate")
                   and journal.step_status(f"{vm['uuid']}:copy-out") != "done"
                   and not any(journal.step_status(f"{vm['uuid']}:migrate-out:{d.get('userdevice')}") == "done"
                               for d in vm.get("disks") or [])]
        need = sum(int(vm.get("staging_bytes") or vm.get("bytes") or 0) for vm in waiting)
        free = ops.sr_free(session, [staging]).get(staging, 0)
        if need > free:
            problems.append(f"the staging SR has {free / 2**30:,.1f} GiB free now, the plan needs about "
                            f"{need / 2**30:,.1f} GiB there: free space on it or choose another ({option(front, 'staging')})")
    for vm in plan["vms"]:
        st = journal.vm_state(vm["uuid"])
        ref = ops.ref_by_uuid(session, "VM", vm["uuid"])
        if ref is None:
            survivors = [u for u in (st.get("back_uuid"), st.get("copy_uuid"), st.get("imported_uuid"))
                         if u and ops.ref_by_uuid(session, "VM", u)]
            destroying = journal.step_status(f"{vm['uuid']}:destroy-original") is not None
            if not (destroying and (survivors or st.get("export_file"))):
                problems.append(f"the plan's VM {vm.get('name') or ''} {vm['uuid']} no longer exists")
            continue
        if st.get("original"):
            continue  # an earlier run recorded it (and may have shut it down): the journal rules
        rec = session.xenapi.VM.get_record(ref)
        if rec.get("power_state") != vm.get("power_state"):
            problems.append(f"VM {vm.get('name')} is {rec.get('power_state')} now, the plan expected "
                            f"{vm.get('power_state')}: {NEW_PLAN}")
        planned = {d.get("vdi") for d in vm.get("disks") or [] if d.get("vdi")}
        if planned:
            present = {ops.ref_by_uuid(session, "VDI", u) is not None for u in planned}
            if False in present:
                problems.append(f"a disk of VM {vm.get('name')} named in the plan no longer exists: {NEW_PLAN}")
        if vm["mode"] == "copy":
            elsewhere = []
            for vbd in rec.get("VBDs") or []:
                vdi = session.xenapi.VBD.get_VDI(vbd)
                if vdi not in ("", ops.NULL_REF) and session.xenapi.VBD.get_type(vbd) == "Disk":
                    sr_uuid = session.xenapi.SR.get_uuid(session.xenapi.VDI.get_SR(vdi))
                    if sr_uuid != plan["sr"]["uuid"]:
                        elsewhere.append(sr_uuid)
            if elsewhere:
                problems.append(f"VM {vm.get('name')} also has disks on other SRs ({', '.join(sorted(set(elsewhere)))});"
                                " a copy round trip would bring them all back to this SR: use mode migrate or export")
        if vm["mode"] in ("copy", "export"):
            unplanned = [session.xenapi.VM.get_uuid(s) for s in rec.get("snapshots") or []]
            unplanned = [u for u in unplanned if u not in (plan.get("snapshots") or [])]
            if unplanned:
                problems.append(f"VM {vm.get('name')} has snapshot(s) {', '.join(unplanned)} that the plan does not "
                                "delete; a copy does not take them and they keep the old chain on the SR. Delete "
                                "them first or make a plan that names them")
    return problems


def run_transfer(plan: dict | str | Path, session, *, incident: str, dry_run: bool = True,
                 confirm_vm_uuid: str = "", staging_sr_uuid: str = "", wait_timeout_s: float | None = None,
                 reporter: Reporter | None = None, smlog: str | Path | None = None,
                 reconnect_timeout_s: float = DEFAULT_RECONNECT_S, task_timeout_s: float | None = None,
                 crash_after: str | None = None, front: str = "notebook") -> TransferOutcome:
    """Dry-run or execute a plan on a connected session; never raises for an expected failure.

    front ("notebook" or "cli") words the next steps in the options the reader has there.

    crash_after (tests): raise KilledForTest right after the step of that kind is journaled done.
    """
    check_front(front)
    try:
        plan = load_plan(plan) if isinstance(plan, (str, Path)) else validate_plan(plan)
        jpath = journal_path(incident)
    except RunbookError as err:
        return _outcome("refused", str(err), "fix the plan or the incident id", incident, "", [], plan=None)
    journal = Journal(jpath)
    steps = plan_steps(plan, staging_sr_uuid=staging_sr_uuid)
    staging = staging_sr_uuid or (plan.get("staging_sr") or {}).get("uuid") or ""
    reporter = reporter or ConsoleReporter(sr_names(plan, staging_sr_uuid=staging))
    if not reporter.sr_names:
        reporter.sr_names = sr_names(plan, staging_sr_uuid=staging)
    digest = plan_digest(plan)

    def finish(status, message, next_step, final=None):
        event = {"dry-run": "dry-run", "refused": "refused", "done": "finished"}.get(status, "stopped")
        journal.append(event, status=status, message=message, next_step=next_step, plan_digest=digest)
        reporter.message(f"{status}: {message}" + (f"\nnext: {next_step}" if next_step else ""))
        reporter.close()
        return _outcome(status, message, next_step, incident, str(jpath), steps, plan=plan, reporter=reporter,
                        final=final or {}, staging=staging_sr_uuid, steps_journal=journal)

    if journal.executed_before() and digest not in journal.plan_digests():
        return finish("refused", f"incident {incident} already has a journal for another plan",
                      "use a new incident id for a new plan, or re-run with the plan this journal belongs to")
    try:
        check_confirmation(plan, dry_run=dry_run, confirm_vm_uuid=confirm_vm_uuid, front=front)
    except ConfirmationError as err:
        return finish("refused", str(err), f"re-run with {execute_with(front)}")
    try:
        problems = preflight(session, plan, journal, staging=staging, front=front)
    except RunbookError as err:
        return finish("refused", f"could not check the pool: {err}", "check the URL and credentials; nothing was changed")
    if problems:
        return finish("refused", "; ".join(problems), f"nothing was changed; {NEW_PLAN}")
    reporter.sample(ops.sr_free(session, [s for s in (plan["sr"]["uuid"], staging) if s]))
    if dry_run:
        done = sum(journal.step_status(step.id) == "done" for step in steps)
        return finish("dry-run", f"{len(steps)} steps checked against the pool"
                      + (f"; {done} of them already done in incident {incident}'s journal (an executing run "
                         "continues after them)" if done else "") + "; nothing was changed",
                      f"to execute: {execute_with(front, ','.join(vm['uuid'] for vm in plan['vms']))}")

    journal.append("run", plan_digest=digest, incident=incident, vms=[vm["uuid"] for vm in plan["vms"]],
                   staging=staging, resumed=journal.executed_before())
    ctx = Context(session=session, plan=plan, journal=journal, reporter=reporter, source=plan["sr"]["uuid"],
                  staging=staging, incident=incident,
                  wait_timeout_s=float(wait_timeout_s if wait_timeout_s is not None else
                                       (plan.get("wait") or {}).get("timeout_s") or DEFAULT_WAIT_TIMEOUT_S),
                  smlog=str(smlog) if smlog else None, task_timeout_s=task_timeout_s, front=front)
    runner = _StepRunner(ctx, reconnect_timeout_s, crash_after)
    try:
        stop = runner.run_steps(steps)
    except KeyboardInterrupt:
        step = runner.current
        line = interrupted_message(journal, plan, front=front)
        journal.append("interrupted", step=step.id if step else None, vm=step.vm if step else None,
                       kind=step.kind if step else None, message="interrupted by the user (Ctrl-C)")
        journal.append("stopped", status="stopped", message=line, next_step=rerun_same(front), plan_digest=digest)
        raise
    final: dict = {"vms": {}, "srs": _safe_free(ctx)}
    for vm in plan["vms"]:
        st = journal.vm_state(vm["uuid"])
        final["vms"][vm["uuid"]] = {k: st.get(k) for k in ("final_uuid", "differences", "depth_before",
                                                            "depth_after", "wait") if k in st}
    if stop is not None:
        return finish("stopped", *stop, final=final)
    differences = [d for v in final["vms"].values() for d in v.get("differences") or []]
    modes = {vm["mode"] for vm in plan["vms"]}
    message = ("remedy complete; " + ("the VM checked against what it was" if modes == {"offline"} else
                                      "every disk verified on each side of each move" if modes == {"migrate"} else
                                      "every copy verified before anything was destroyed")
               + (f"; differences: {'; '.join(differences)}" if differences else ""))
    return finish("done", message, "" if not differences else "check the differences listed", final=final)


def interrupted_message(journal: Journal, plan: dict, *, front: str = "cli") -> str:
    """One line after Ctrl-C, from the journal alone (the pool may be what was interrupted)."""
    source = plan["sr"].get("name") or plan["sr"]["uuid"]
    parts = [journal.where_vm_is(vm, source) for vm in plan["vms"]]
    if journal.executed_before():
        blocked = []
        for vm in plan["vms"]:
            st = journal.vm_state(vm["uuid"])
            blocked.append(st.get("copy_uuid") if st.get("original_destroyed") else vm["uuid"])
        parts.append(f"its VM.start may still be blocked (a run that ends lifts it; by hand: xe vm-param-remove "
                     f"uuid={','.join(u for u in blocked if u)} param-name=blocked-operations param-key=start)")
    return "interrupted: " + "; ".join(parts) + f"; {rerun_same(front)} to continue"


def _safe_free(ctx: Context) -> dict:
    try:
        return ctx.free()
    except Exception:  # noqa: BLE001 - the summary must not hide the outcome
        return {}


class _StepRunner:
    def __init__(self, ctx: Context, reconnect_timeout_s: float, crash_after: str | None):
        self.ctx = ctx
        self.reconnect_timeout_s = reconnect_timeout_s
        self.crash_after = crash_after
        self.current: Step | None = None  # the step under way, for the journal after a Ctrl-C

    def run_steps(self, steps: list[Step]) -> tuple[str, str] | None:
        """Run the steps in order; None when all are done, else (message, next step)."""
        ctx = self.ctx
        for step in steps:
            if step.kind == "check-pool":
                ctx.reporter.step_ended(step, "ok", "checked before the run")
                continue
            self.current = step
            status = ctx.journal.step_status(step.id)
            if status == "done":
                ctx.reporter.step_ended(step, "done before", "journal")
                continue
            try:
                outcome = self._run_step(step, resumed=(status in ("started", "failed")))
            except StepFailed as err:
                st = ctx.journal.vm_state(step.vm)
                ctx.journal.append("rolled-back" if err.rolled_back else "failed", step=step.id, vm=step.vm,
                                   kind=step.kind, error=err.error or [str(err)], message=str(err),
                                   next_step=err.next_step, after=_safe_free(ctx))
                ctx.reporter.step_ended(step, "failed", str(err))
                restored = self._restore_power(step, st)
                return str(err) + (f"; {restored}" if restored else ""), err.next_step
            except RunbookError as err:  # the pool refused a call: stop here, the journal says where
                ctx.journal.append("failed", step=step.id, vm=step.vm, kind=step.kind,
                                   error=list(getattr(err, "details", None) or [str(err)]), message=str(err),
                                   after=_safe_free(ctx))
                ctx.reporter.step_ended(step, "failed", str(err))
                st = ctx.journal.vm_state(step.vm)
                where = actions._where(ctx, st, step)
                restored = self._restore_power(step, st)
                return (f"{step.kind} failed: {err}" + (f"; {restored}" if restored else ""),
                        f"{where}. Fix the cause, then {rerun_same(ctx.front)}: the step is checked "
                        "against the pool and completed or undone")
            except _PoolGone as gone:
                ctx.reporter.step_ended(step, "stopped", str(gone))
                return (f"lost the pool during {step.kind} and it did not come back within "
                        f"{self.reconnect_timeout_s:,.0f} s ({gone})",
                        f"{rerun_same(self.ctx.front)} when the pool answers: the journal knows where the step was")
            ctx.reporter.step_ended(step, "done", outcome)
            if self.crash_after and step.kind == self.crash_after:
                raise KilledForTest(step.id)
        return None

    def _run_step(self, step: Step, *, resumed: bool) -> str:
        ctx = self.ctx
        action = actions.ACTIONS[step.kind]
        ctx.reporter.step_started(step)
        attempt_resume = resumed
        deadline = None
        losses = 0
        while True:
            try:
                st = ctx.journal.vm_state(step.vm)
                if attempt_resume:
                    verdict, result = (action.probe(ctx, step, st) if action.probe else ("not-started", None))
                    ctx.journal.append("resumed", step=step.id, vm=step.vm, kind=step.kind, pool_shows=verdict)
                    if verdict == "done":
                        ctx.journal.append("done", step=step.id, vm=step.vm, kind=step.kind, result=result or {},
                                           after=ctx.free(), completed_on_resume=True)
                        return "completed after resume (the pool had it)"
                    if verdict == "partial" and action.rollback:
                        undone = action.rollback(ctx, step, st)
                        ctx.journal.append("rolled-back", step=step.id, vm=step.vm, kind=step.kind,
                                           result={"rollback": undone})
                        st = ctx.journal.vm_state(step.vm)
                attempt_resume = False
                before = ctx.free()
                ctx.journal.append("start", step=step.id, vm=step.vm, kind=step.kind, call=step.call,
                                   objects=_objects(step, st), before=before, expected=step.effect)
                result = action.run(ctx, step, st)
                after = ctx.free()
                ctx.journal.append("done", step=step.id, vm=step.vm, kind=step.kind, result=result,
                                   before=before, after=after)
                return _describe(step, result)
            except StepFailed:
                raise
            except Exception as exc:  # noqa: BLE001 - only transient pool errors are handled here
                if not is_transient(exc):
                    raise
                ctx.journal.append("note", step=step.id, vm=step.vm, kind=step.kind,
                                   message=f"lost the pool ({exc}); waiting for it, then checking the step")
                losses += 1
                if losses > MAX_LOSSES_PER_STEP:
                    raise _PoolGone(f"{losses} connection losses in one step; last: {exc}") from None
                deadline = deadline or time.monotonic() + self.reconnect_timeout_s
                self._wait_for_pool(deadline, str(exc))
                attempt_resume = ctx.journal.step_status(step.id) == "started"

    def _wait_for_pool(self, deadline: float, why: str) -> None:
        ctx = self.ctx
        while True:
            try:
                ctx.session.xenapi.pool.get_all()
                return
            except Exception as exc:  # noqa: BLE001
                if not is_transient(exc):
                    raise
                if time.monotonic() >= deadline:
                    raise _PoolGone(why) from None
                ctx.reporter.progress(f"the pool does not answer ({exc}); retrying")
                time.sleep(1.0)

    def _restore_power(self, step: Step, st: dict) -> str:
        """After a stop before the original was destroyed: a VM we shut down is started again."""
        ctx = self.ctx
        if not st.get("original_destroyed"):
            try:  # the run stops with the original kept: it may be started again
                ref = ops.ref_by_uuid(ctx.session, "VM", step.vm)
                if ref and ops.unblock_start(ctx.session, ref):
                    ctx.journal.append("note", vm=step.vm, message="lifted the start block on the original")
            except Exception as exc:  # noqa: BLE001
                ctx.journal.append("note", vm=step.vm, message=f"could not lift the start block: {exc}")
        if not st.get("shut_down_by_us") or st.get("original_destroyed") or step.kind == "shutdown":
            return ""
        try:
            ref = ops.ref_by_uuid(ctx.session, "VM", step.vm)
            if ref and ctx.session.xenapi.VM.get_power_state(ref) == "Halted":
                ops.start_vm(ctx.session, ref)
                ctx.journal.append("rolled-back", step=f"{step.vm}:shutdown", vm=step.vm, kind="shutdown",
                                   result={"rollback": "started the original again"})
                ctx.journal.append("restored-power", vm=step.vm, message="started the original again")
                return "the original VM was started again"
        except Exception as exc:  # noqa: BLE001
            ctx.journal.append("note", vm=step.vm, message=f"could not start the original again: {exc}")
            return f"it could not be started again ({exc}); start it by hand"
        return ""


class _PoolGone(Exception):
    pass


def _objects(step: Step, st: dict) -> dict:
    objects = {"vm": step.vm}
    for key in ("copy_uuid", "back_uuid", "export_file", "imported_uuid"):
        if st.get(key):
            objects[key] = st[key]
    if step.kind == "destroy-original" and st.get("original"):
        objects["vdis"] = [d["vdi"] for d in st["original"]["disks"]]
    if step.disk is not None:
        objects["disk"] = step.disk
    return objects


def _describe(step: Step, result: dict) -> str:
    if "copy_uuid" in result or "back_uuid" in result:
        return f"copy {result.get('copy_uuid') or result.get('back_uuid')}"
    if "wait" in result:
        return f"{result['wait'].get('reason', '')} after {result['wait'].get('elapsed_s', 0)} s"
    if "differences" in result:
        return "round trip intact" if not result["differences"] else "; ".join(result["differences"])
    if "destroyed_vdis" in result:
        return f"{len(result['destroyed_vdis'])} VDI(s) destroyed"
    return ""


def _outcome(status, message, next_step, incident, journal, steps, *, plan, reporter=None, final=None,
             staging="", steps_journal: Journal | None = None) -> TransferOutcome:
    import pandas as pd

    reporter = reporter or Reporter()
    table = (steps_table(steps, plan, staging_sr_uuid=staging, journal=steps_journal) if plan and steps
             else pd.DataFrame())
    return TransferOutcome(status, message, next_step, incident, journal, steps, table,
                           reporter.outcomes_frame(), reporter.samples_frame(), final or {})
