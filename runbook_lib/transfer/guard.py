"""A copy is only as new as the moment its source last stopped.

From the start of a copy until the source is destroyed, the source must stay halted: if it
runs again (the runbook starting it after an error, an operator, HA), it writes data the copy
lacks, and bringing that copy back would silently lose those writes. So each copy step records
what the pool says of its source when the copy begins (a `guard` line in the journal), and
before a copy is trusted (verified, or its source destroyed) the pool is asked again:
- the source is still halted;
- `VM_metrics.start_time` is unchanged (the pool's own record of the last start), or, on a
  pool that does not say, the runbook's start block has stayed in place all along;
- the journal shows no restart by the runbook itself after the guard.
A stale copy is removed and its steps are marked rolled back, so a re-run copies again.
"""

from __future__ import annotations

from runbook_lib.transfer.context import Context, vm_ref
from runbook_lib.xapi import operations as ops

GUARD_EVENT = "guard"


def record(ctx: Context, step_id: str, vm: str, source_uuid: str) -> dict:
    """Journal what the pool says of the copy's source as the copy begins."""
    ref = vm_ref(ctx, source_uuid)
    fields = {"source": source_uuid, "power_state": ops.power_state(ctx.session, ref) if ref else None,
              "start_time": ops.vm_start_time(ctx.session, ref) if ref else None}
    return ctx.journal.append(GUARD_EVENT, step=step_id, vm=vm, **fields)


def stale_reasons(ctx: Context, step_id: str, vm: str) -> list[str]:
    """Why the copy made by step_id cannot be trusted (empty: it is fresh, or its source is gone)."""
    guard = ctx.journal.step_record(step_id, GUARD_EVENT)
    if guard is None:
        return []  # a journal from before guards: the block and the power state below still count
    source = guard.get("source") or vm
    ref = vm_ref(ctx, source)
    if ref is None:
        return []  # destroyed, by this runbook, after the copy was checked
    reasons = []
    state = ops.power_state(ctx.session, ref)
    if state != "Halted":
        reasons.append(f"it is {state} now")
    then, now = guard.get("start_time"), ops.vm_start_time(ctx.session, ref)
    if then and now:
        if now != then:
            reasons.append(f"it was started at {now}, after its copy began")
    elif not (ops.start_block(ctx.session, ref) or "").startswith(ops.BLOCK_MARK):
        reasons.append("its start block was lifted while the copy waited, so it may have run")
    if any(r["event"] == "restored-power" and r.get("vm") == vm and int(r.get("seq") or 0) > int(guard.get("seq") or 0)
           for r in ctx.journal.records()):
        reasons.append("this runbook started it again after an error")
    return reasons
