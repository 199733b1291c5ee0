"""Shutting the VM down cleanly before a copy, and starting it at the end.

The runbook never forces a VM off. A shutdown or start whose answer was lost is not sent
again: one still under way is waited for, and a VM already in the wanted state counts as done.
"""

from __future__ import annotations

from runbook_lib.transfer.context import Context, StepFailed, final_vm_uuid, vm_name, vm_ref
from runbook_lib.transfer.fronts import NEW_PLAN
from runbook_lib.transfer.plan_steps import Step
from runbook_lib.xapi import operations as ops

SHUTDOWN_OPS = ("clean_shutdown", "shutdown")
START_OPS = ("start",)


def shutdown(ctx: Context, step: Step, st: dict) -> dict:
    ref = vm_ref(ctx, step.vm)
    if ref is None:
        raise StepFailed(f"VM {step.vm} no longer exists", next_step=NEW_PLAN)
    if _wait_for_own(ctx, ref, SHUTDOWN_OPS, "Halted"):
        return {"shut_down_by_us": True}
    state = ops.power_state(ctx.session, ref)
    if state == "Halted":  # halted by an earlier attempt whose answer was lost, or halted as planned
        return {"shut_down_by_us": _planned_running(ctx, step)}
    if state != "Running":
        raise StepFailed(f"VM '{vm_name(st, step)}' is {state}; only a running VM is shut down",
                         next_step="bring it to Running or Halted and re-run with the same incident")
    refused = _power_op(ctx, ref, ops.clean_shutdown, SHUTDOWN_OPS, "Halted")
    if refused:
        raise StepFailed(
            f"VM '{vm_name(st, step)}' refused a clean shutdown ({' '.join(refused[:3])}); nothing was changed",
            next_step="the VM is still running on its SR. Shut it down from inside the guest (or, if you accept "
                      "the risk, force it off with `xe vm-shutdown force=true`), then re-run with the same incident",
            error=refused)
    return {"shut_down_by_us": True}


def _planned_running(ctx: Context, step: Step) -> bool:
    vm = next((v for v in ctx.plan["vms"] if v["uuid"] == step.vm), {})
    return vm.get("power_state") == "Running"


def _power_op(ctx: Context, ref: str, call, op_names: tuple[str, ...], wanted: str) -> list[str] | None:
    """Send a power operation once. A refusal that leaves the VM `wanted` anyway (an earlier call
    of ours, whose answer was lost, did it or is still doing it: OTHER_OPERATION_IN_PROGRESS) is
    success: None. Otherwise the pool's refusal (its error details)."""
    try:
        call(ctx.session, ref)
        return None
    except Exception as exc:
        details = ops.failure_details(exc)
        if details is None:
            raise
        _wait_for_own(ctx, ref, op_names, wanted)
        return None if ops.power_state(ctx.session, ref) == wanted else details


def _wait_for_own(ctx: Context, ref: str, op_names: tuple[str, ...], wanted: str) -> bool:
    """A power operation still running (sent before a lost connection or a crash) is waited for,
    not sent again: a second one would fail with OTHER_OPERATION_IN_PROGRESS. True when there was
    one and the VM is now `wanted`."""
    running = [(task, op) for task, op in ops.vm_operations(ctx.session, ref).items() if op in op_names]
    for task, op in running:
        ctx.reporter.progress(f"a {op.replace('_', ' ')} of the VM is already under way; waiting for it")
        try:
            ops.wait_task(ctx.session, task, timeout_s=ctx.task_timeout_s)
        except (ops.TaskFailed, ops.TaskTimedOut):
            pass  # the step itself says what the VM is now
        except Exception as exc:  # noqa: BLE001 - the task ended and went between the two reads
            if ops.code_of(exc) != "HANDLE_INVALID":
                raise
    return bool(running) and ops.power_state(ctx.session, ref) == wanted


def probe_halted(ctx: Context, step: Step, st: dict):
    ref = vm_ref(ctx, step.vm)
    if ref and ops.power_state(ctx.session, ref) == "Halted":
        return "done", {"shut_down_by_us": True}
    return "not-started", None


def start(ctx: Context, step: Step, st: dict) -> dict:
    uuid = final_vm_uuid(st, step.vm)
    ref = vm_ref(ctx, uuid)
    if ref is None:
        raise StepFailed(f"VM {uuid} to start is gone", next_step="check the journal and the pool")
    if ops.power_state(ctx.session, ref) != "Running":
        refused = _power_op(ctx, ref, ops.start_vm, START_OPS, "Running")
        if refused:
            raise StepFailed(f"VM '{vm_name(st, step)}' did not start ({' '.join(refused[:3])})",
                             next_step=f"its data is complete on {ctx.sr_label(ctx.source)}; start it by hand "
                                       f"(xe vm-start uuid={uuid}) and re-run to finish the checks",
                             error=refused)
    return {"started": uuid}


def probe_started(ctx: Context, step: Step, st: dict):
    uuid = final_vm_uuid(st, step.vm)
    ref = vm_ref(ctx, uuid)
    if ref and (ops.power_state(ctx.session, ref) == "Running" or _wait_for_own(ctx, ref, START_OPS, "Running")):
        return "done", {"started": uuid}
    return "not-started", None
