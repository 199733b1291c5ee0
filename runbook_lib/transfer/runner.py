"""Runs the steps in order, each journaled before it starts and after it ends.

A step the journal shows done is skipped; one that started and never ended is first checked
against the pool (its action's probe) and completed or rolled back. A lost connection or
session is waited out and the step checked the same way, so no call that changes the pool is
repeated blindly. A step that fails stops the run with one line and the next step; an
original the runbook had shut down is started again, and any copy of it is discarded first
(once the original runs, that copy is stale).
"""

from __future__ import annotations

import time

from runbook_lib.errors import RunbookError
from runbook_lib.transfer import actions
from runbook_lib.transfer.context import Context, StepFailed, is_transient, where
from runbook_lib.transfer.copies import discard_stale
from runbook_lib.transfer.fronts import rerun_same
from runbook_lib.transfer.offline import unforce_on_stop
from runbook_lib.transfer.plan_steps import Step
from runbook_lib.xapi import operations as ops

MAX_LOSSES_PER_STEP = 10


class KilledForTest(BaseException):
    """Raised by `crash_after` to stand in for a process killed at that point (tests only)."""


class PoolGone(Exception):
    """The pool did not come back within the reconnect time."""


def safe_free(ctx: Context) -> dict:
    try:
        return ctx.free()
    except Exception:  # noqa: BLE001 - the summary must not hide the outcome
        return {}


class StepRunner:
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
                return self._failed(step, err, err.error or [str(err)], err.next_step,
                                    "rolled-back" if err.rolled_back else "failed")
            except RunbookError as err:  # the pool refused a call: stop here, the journal says where
                st = ctx.journal.vm_state(step.vm)
                next_step = (f"{where(ctx, st, step)}. Fix the cause, then {rerun_same(ctx.front)}: the step is "
                             "checked against the pool and completed or undone")
                return self._failed(step, err, list(getattr(err, "details", None) or [str(err)]), next_step,
                                    "failed", prefix=f"{step.kind} failed: ")
            except PoolGone as gone:
                ctx.reporter.step_ended(step, "stopped", str(gone))
                return (f"lost the pool during {step.kind} and it did not come back within "
                        f"{self.reconnect_timeout_s:,.0f} s ({gone})",
                        f"{rerun_same(ctx.front)} when the pool answers: the journal knows where the step was")
            ctx.reporter.step_ended(step, "done", outcome)
            if self.crash_after and step.kind == self.crash_after:
                raise KilledForTest(step.id)
        return None

    def _failed(self, step: Step, err: Exception, error: list, next_step: str, event: str,
                prefix: str = "") -> tuple[str, str]:
        ctx = self.ctx
        ctx.journal.append(event, step=step.id, vm=step.vm, kind=step.kind, error=error, message=str(err),
                           next_step=next_step, after=safe_free(ctx))
        ctx.reporter.step_ended(step, "failed", str(err))
        restored = self._restore_power(step, ctx.journal.vm_state(step.vm))
        return f"{prefix}{err}" + (f"; {restored}" if restored else ""), next_step

    def _run_step(self, step: Step, *, resumed: bool) -> str:
        ctx = self.ctx
        ctx.reporter.step_started(step)
        attempt_resume = resumed
        deadline = None
        losses = 0
        while True:
            try:
                if attempt_resume:
                    done = self._resume(step)
                    if done:
                        return done
                attempt_resume = False
                return self._attempt(step)
            except StepFailed:
                raise
            except Exception as exc:  # noqa: BLE001 - only transient pool errors are handled here
                if not is_transient(exc):
                    raise
                ctx.journal.append("note", step=step.id, vm=step.vm, kind=step.kind,
                                   message=f"lost the pool ({exc}); waiting for it, then checking the step")
                losses += 1
                if losses > MAX_LOSSES_PER_STEP:
                    raise PoolGone(f"{losses} connection losses in one step; last: {exc}") from None
                deadline = deadline or time.monotonic() + self.reconnect_timeout_s
                self._wait_for_pool(deadline, str(exc))
                attempt_resume = ctx.journal.step_status(step.id) == "started"

    def _resume(self, step: Step) -> str | None:
        """Ask the pool what became of a step that started and never ended."""
        ctx = self.ctx
        action = actions.ACTIONS[step.kind]
        st = ctx.journal.vm_state(step.vm)
        verdict, result = (action.probe(ctx, step, st) if action.probe else ("not-started", None))
        ctx.journal.append("resumed", step=step.id, vm=step.vm, kind=step.kind, pool_shows=verdict)
        if verdict == "done":
            ctx.journal.append("done", step=step.id, vm=step.vm, kind=step.kind, result=result or {},
                               after=ctx.free(), completed_on_resume=True)
            return "completed after resume (the pool had it)"
        if verdict == "partial" and action.rollback:
            undone = action.rollback(ctx, step, st)
            ctx.journal.append("rolled-back", step=step.id, vm=step.vm, kind=step.kind, result={"rollback": undone})
        return None

    def _attempt(self, step: Step) -> str:
        ctx = self.ctx
        st = ctx.journal.vm_state(step.vm)
        before = ctx.free()
        ctx.journal.append("start", step=step.id, vm=step.vm, kind=step.kind, call=step.call,
                           objects=_objects(step, st), before=before, expected=step.effect)
        result = actions.ACTIONS[step.kind].run(ctx, step, st)
        ctx.journal.append("done", step=step.id, vm=step.vm, kind=step.kind, result=result,
                           before=before, after=ctx.free())
        return _describe(step, result)

    def _wait_for_pool(self, deadline: float, why: str) -> None:
        while True:
            try:
                ops.ping(self.ctx.session)
                return
            except Exception as exc:  # noqa: BLE001
                if not is_transient(exc):
                    raise
                if time.monotonic() >= deadline:
                    raise PoolGone(why) from None
                self.ctx.reporter.progress(f"the pool does not answer ({exc}); retrying")
                time.sleep(1.0)

    def _restore_power(self, step: Step, st: dict) -> str:
        """After a stop before the original was destroyed: any copy of it is discarded (once the
        original runs, that copy is stale), the start block lifted, and a VM we shut down started."""
        ctx = self.ctx
        try:
            if st.get("original_destroyed"):
                return self._unblock_staging_copy(st)
            self._discard_copies(step, st)
            ref = ops.ref_by_uuid(ctx.session, "VM", step.vm)
            if ref and ops.unblock_start(ctx.session, ref):
                ctx.journal.append("note", vm=step.vm, message="lifted the start block on the original")
        except Exception as exc:  # noqa: BLE001 - the stop itself is already journaled and reported
            ctx.journal.append("note", vm=step.vm, message=f"could not tidy up after the stop: {exc}")
            return f"could not tidy up after the stop ({exc}); the original is kept and not started"
        if not st.get("shut_down_by_us") or step.kind == "shutdown":
            return ""
        unforced = unforce_on_stop(ctx, st)  # no leaf stays forced under a VM that runs again
        if unforced:
            ctx.journal.append("note", vm=step.vm, message="removed leaf-coalesce=force from "
                               + ", ".join(u[:8] for u in unforced) + " before starting the VM again")
        return self._start_original(step)

    def _discard_copies(self, step: Step, st: dict) -> None:
        copying = self.ctx.journal.step_status(f"{step.vm}:copy-out") in ("started", "done")
        if not (st.get("copy_uuid") or st.get("export_file") or copying):
            return
        if st.get("shut_down_by_us") and step.kind != "shutdown":
            discard_stale(self.ctx, step, st, direction="out",
                          reasons=["the runbook starts the original again after the stop"])

    def _unblock_staging_copy(self, st: dict) -> str:
        """The VM lives on as the staging copy: a block set for the way back is lifted."""
        ctx = self.ctx
        if st.get("copy_uuid") and not st.get("staging_destroyed"):
            ref = ops.ref_by_uuid(ctx.session, "VM", st["copy_uuid"])
            if ref and ops.unblock_start(ctx.session, ref):
                ctx.journal.append("note", vm=st["copy_uuid"], message="lifted the start block on the staging copy")
        return ""

    def _start_original(self, step: Step) -> str:
        ctx = self.ctx
        try:
            ref = ops.ref_by_uuid(ctx.session, "VM", step.vm)
            if ref and ops.power_state(ctx.session, ref) == "Halted":
                ops.start_vm(ctx.session, ref)
                ctx.journal.append("rolled-back", step=f"{step.vm}:shutdown", vm=step.vm, kind="shutdown",
                                   result={"rollback": "started the original again"})
                ctx.journal.append("restored-power", vm=step.vm, message="started the original again")
                return "the original VM was started again (any copy of it was discarded)"
        except Exception as exc:  # noqa: BLE001
            ctx.journal.append("note", vm=step.vm, message=f"could not start the original again: {exc}")
            return f"it could not be started again ({exc}); start it by hand"
        return ""


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
