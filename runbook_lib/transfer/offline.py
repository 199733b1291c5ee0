"""The offline coalesce steps (mode offline), as the storage manager behaves (docs/transfer.md):

force-leaf       other-config:leaf-coalesce=force on the halted VM's leaves (never while it runs:
                 the GC would pause its I/O for the whole coalesce); journaled as `forced`
unforce-leaf     after the wait: the key is removed where it is still ours (`force`)
coalesce-plugin  Async.host.call_plugin coalesce-leaf on the SR's master, its task journaled; a
                 resume waits on that task (or any such task still pending) instead of calling the
                 plugin again; afterwards the chain must be shorter: the plugin's "VM has no
                 leaf-coalesceable VDIs" is a success that did nothing.
"""

from __future__ import annotations

from runbook_lib.transfer.context import Context, StepFailed, vm_ref, where
from runbook_lib.transfer.fronts import rerun_same
from runbook_lib.transfer.plan_steps import Step
from runbook_lib.xapi import operations as ops

FORCE = "force"


def _plan_vm(ctx: Context, step: Step) -> dict:
    return next(v for v in ctx.plan["vms"] if v["uuid"] == step.vm)


def _leaves(ctx: Context, step: Step, st: dict) -> list[str]:
    """The leaves to force: the plan's, else the VM's disks on the source SR that have a parent."""
    planned = _plan_vm(ctx, step).get("leaves") or []
    chains = st.get("chains") or {}
    return [leaf for leaf in (planned or sorted(chains)) if len(chains.get(leaf, [leaf, leaf])) > 1]


def force_leaf(ctx: Context, step: Step, st: dict) -> dict:
    ref = vm_ref(ctx, step.vm)
    if ref is None or ops.power_state(ctx.session, ref) != "Halted":
        raise StepFailed(f"VM {step.vm} is not halted: its leaf is never forced while it runs",
                         next_step=f"shut it down cleanly, then {rerun_same(ctx.front)}")
    forced = []
    for leaf in _leaves(ctx, step, st):
        vdi = ops.ref_by_uuid(ctx.session, "VDI", leaf)
        if vdi is None:
            continue
        if ops.vdi_leaf_coalesce(ctx.session, vdi) not in (None, FORCE):
            ctx.journal.append("note", step=step.id, vm=step.vm,
                               message=f"VDI {leaf[:8]} had leaf-coalesce={ops.vdi_leaf_coalesce(ctx.session, vdi)}; "
                                       "replaced by force for the offline coalesce")
        ops.set_vdi_leaf_coalesce(ctx.session, vdi, FORCE)
        forced.append(leaf)
    return {"forced": forced}


def probe_force(ctx: Context, step: Step, st: dict):
    """Every leaf already carries force: done (setting it again would be harmless, too)."""
    leaves = _leaves(ctx, step, st)
    refs = [ops.ref_by_uuid(ctx.session, "VDI", leaf) for leaf in leaves]
    if leaves and all(r and ops.vdi_leaf_coalesce(ctx.session, r) == FORCE for r in refs):
        return "done", {"forced": leaves}
    return "not-started", None


def unforce_leaf(ctx: Context, step: Step, st: dict) -> dict:
    removed = []
    for leaf in st.get("forced") or _leaves(ctx, step, st):
        vdi = ops.ref_by_uuid(ctx.session, "VDI", leaf)
        if vdi is not None and ops.vdi_leaf_coalesce(ctx.session, vdi) == FORCE:
            ops.set_vdi_leaf_coalesce(ctx.session, vdi, None)
            removed.append(leaf)
    return {"unforced": removed}


def unforce_on_stop(ctx: Context, st: dict) -> list[str]:
    """Before a VM the runbook shut down is started again after a stop: no leaf of it stays forced."""
    removed = []
    for leaf in st.get("forced") or []:
        vdi = ops.ref_by_uuid(ctx.session, "VDI", leaf)
        if vdi is not None and ops.vdi_leaf_coalesce(ctx.session, vdi) == FORCE:
            ops.set_vdi_leaf_coalesce(ctx.session, vdi, None)
            removed.append(leaf)
    return removed


# --- the coalesce-leaf plugin ------------------------------------------------------------------
def _depths(ctx: Context, st: dict) -> dict[str, int]:
    records = ops.vdi_records(ctx.session)
    source_ref = ctx.sr_ref(ctx.source)
    on_sr = {rec["uuid"]: rec for rec in records.values() if rec.get("SR") == source_ref}
    return {leaf: len(ops.chain_of(leaf, on_sr)) if leaf in on_sr else 0 for leaf in (st.get("chains") or {})}


def _shorter(ctx: Context, st: dict) -> bool:
    before = {leaf: len(chain) for leaf, chain in (st.get("chains") or {}).items()}
    after = _depths(ctx, st)
    return any(after.get(leaf, 0) < depth for leaf, depth in before.items() if depth > 1)


def _host(ctx: Context, step: Step) -> str:
    uuid = _plan_vm(ctx, step).get("plugin_host")
    ref = ops.ref_by_uuid(ctx.session, "host", uuid) if uuid else None
    return ref or ops.master_host(ctx.session)


def _checked(ctx: Context, step: Step, st: dict, text: str) -> dict:
    if not _shorter(ctx, st):
        raise StepFailed(f"the coalesce-leaf plugin answered {text.splitlines()[0][:80]!r} but the chain is as long "
                         "as before: nothing was coalesced",
                         next_step=f"{where(ctx, st, step)}; nothing changed. Make a new plan: the offline "
                                   "coalesce with the VM halted and its leaf forced",
                         error=["PLUGIN_DID_NOTHING", text[:200]])
    return {"plugin_output": text[:500], "depth_after": _depths(ctx, st)}


def coalesce_plugin(ctx: Context, step: Step, st: dict) -> dict:
    pending = ops.pending_tasks(ctx.session, ops.PLUGIN_TASK)
    try:
        if pending:  # a call sent before a lost answer or a crash: wait for it, never send another
            ctx.task_started(step, pending[0])
            text = ops.plugin_result(ops.wait_task(ctx.session, pending[0], timeout_s=ctx.task_timeout_s))
        else:
            text = ops.call_plugin_async(ctx.session, _host(ctx, step), "coalesce-leaf", "leaf-coalesce",
                                         {"vm_uuid": step.vm}, on_task=lambda task: ctx.task_started(step, task),
                                         timeout_s=ctx.task_timeout_s)
    except (ops.TaskFailed, ops.TaskTimedOut) as exc:
        details = ops.failure_details(exc) or [str(exc)]
        raise StepFailed(f"the coalesce-leaf plugin failed: {' '.join(details[:4])[:200]}",
                         next_step="make a new plan: the offline coalesce with the VM halted and its leaf forced",
                         error=details) from None
    return _checked(ctx, step, st, text)


def probe_plugin(ctx: Context, step: Step, st: dict):
    """After a lost answer or a crash: the journaled task (or any plugin task still pending) is
    waited for; else the chain tells whether the plugin ran. Never a second call while one runs."""
    task = ctx.last_task(step)
    candidates = [task] if task and ops.exists(ctx.session, "task", task) else []
    candidates += [t for t in ops.pending_tasks(ctx.session, ops.PLUGIN_TASK) if t not in candidates]
    for ref in candidates:
        try:
            text = ops.plugin_result(ops.wait_task(ctx.session, ref, timeout_s=ctx.task_timeout_s))
        except ops.TaskFailed:
            return "not-started", None
        return "done", _checked(ctx, step, st, text)
    if _shorter(ctx, st):
        return "done", {"plugin_output": "(found done on resume)", "depth_after": _depths(ctx, st)}
    return "not-started", None
