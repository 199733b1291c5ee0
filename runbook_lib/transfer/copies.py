"""Copy steps (copy-out, copy-back) and the checks that decide whether a copy can be trusted.

A copy is made of a halted source whose VM.start is blocked for as long as the copy matters,
guarded (guard.py), marked as this incident's (marks.py), given the original's MACs back, and
verified against the original before anything it replaces is destroyed. A re-run never starts
a second copy while one is under way: the source's current operations and the journaled task
are adopted instead, and what the pool already made is found by its marks or its name.
"""

from __future__ import annotations

from runbook_lib import sizing
from runbook_lib.transfer import guard, marks
from runbook_lib.transfer.cleanup import destroy_vm_and_disks
from runbook_lib.transfer.context import Context, StepFailed, is_transient, short_of_space, vm_ref
from runbook_lib.transfer.fronts import option, rerun_same
from runbook_lib.transfer.plan_steps import BACK_SUFFIX, COPY_SUFFIX, Step
from runbook_lib.transfer.verify import compare_vifs, verify_copy
from runbook_lib.units import GIB
from runbook_lib.xapi import operations as ops


def direction_of(kind: str) -> str:
    """"out" for the steps of the way out (copy, verify, export), "back" for the way back."""
    return "out" if kind.endswith("-out") else "back"


def copy_args(ctx: Context, vm: str, st: dict, direction: str) -> dict:
    """One direction's copy: source, destination, name, journal keys, mark role, and what its
    clean-up must never touch (the original; on the way back the staging copy too)."""
    name = (st.get("original") or {}).get("name") or vm[:8]
    if direction == "out":
        return dict(vm=vm, src_uuid=vm, dest_sr=ctx.staging, name=name + COPY_SUFFIX, key="copy_uuid",
                    vdis_key="copy_vdis", role=marks.STAGING_COPY, copy_step=f"{vm}:copy-out", keep={vm})
    return dict(vm=vm, src_uuid=st.get("copy_uuid"), dest_sr=ctx.source, name=name + BACK_SUFFIX, key="back_uuid",
                vdis_key="back_vdis", role=marks.COPY_BACK, copy_step=f"{vm}:copy-back",
                keep={vm, st["copy_uuid"]} if st.get("copy_uuid") else {vm})


def step_args(ctx: Context, step: Step, st: dict) -> dict:
    return copy_args(ctx, step.vm, st, direction_of(step.kind))


def own_copies(ctx: Context, args: dict) -> list[str]:
    """This direction's copies on the pool: marked as this incident's, or carrying the copy's name
    and no other incident's mark (a copy whose run died before it could mark it)."""
    found = marks.own_vms(ctx.session, incident=ctx.incident, original=args["vm"], role=args["role"])
    found += [ref for ref in ops.vms_named(ctx.session, args["name"])
              if ref not in found and marks.incident_of(ctx.session, ref) in (None, ctx.incident)]
    return [ref for ref in found if ops.vm_uuid(ctx.session, ref) not in args["keep"]]


def _unmarked(ctx: Context, refs: list[str]) -> list[str]:
    return [ref for ref in refs if marks.incident_of(ctx.session, ref) is None]


def _other_incidents(ctx: Context, name: str) -> list[str]:
    return [ref for ref in ops.vms_named(ctx.session, name)
            if marks.incident_of(ctx.session, ref) not in (None, ctx.incident)]


def _copy_need(ctx: Context, identity: dict, dest_sr: str) -> int:
    """A conservative estimate of what a flat copy needs on dest (LVM: fully inflated).

    On a file SR the copy holds every block of the disk's whole chain, not just the leaf's
    (a halted leaf can be tiny above a base of terabytes), so the chain's allocation counts.
    """
    dest_type = ops.sr_record(ctx.session, ctx.sr_ref(dest_sr)).get("type", "")
    if dest_type in sizing.LVM_TYPES:
        return sum(sizing.lvhd_lv_size(int(d["virtual_size"])) for d in identity["disks"])
    by_uuid = {rec["uuid"]: rec for rec in ops.vdi_records(ctx.session).values()}
    need = 0
    for d in identity["disks"]:
        chain = ops.chain_of(d["vdi"], by_uuid)
        data = sum(by_uuid[u]["physical_utilisation"] for u in chain) or int(d.get("physical_utilisation") or 0)
        need += sizing.copy_size("file", int(d["virtual_size"]), data)
    return need


def block_source(ctx: Context, step: Step, src_ref: str, src_uuid: str) -> None:
    """Nobody boots the source while its copy is made or waits to be trusted."""
    try:
        ops.block_start(ctx.session, src_ref,
                        f"{_block_lead(ctx.incident)}is copying this VM and destroys it once the copy is verified; "
                        f"if that run is abandoned: xe vm-param-remove uuid={src_uuid} param-name=blocked-operations "
                        "param-key=start")
    except ops.BlockedByOthers as err:
        raise StepFailed(str(err), next_step="nothing was copied; " + (err.hint or "")) from None


def _block_lead(incident: str) -> str:
    return f"incident {incident} "


def blocked_by(reason: str | None, incident: str) -> bool:
    """Is this start block (its reason) the one this incident's copy step set?"""
    return (reason or "").startswith(f"{ops.BLOCK_MARK}: {_block_lead(incident)}")


def _running_copy(ctx: Context, src_ref: str) -> str | None:
    """The task of a copy of this VM still under way (sent by an earlier attempt)."""
    return next((task for task, op in ops.vm_operations(ctx.session, src_ref).items() if op == "copy"), None)


def copy(ctx: Context, step: Step, st: dict) -> dict:
    args = step_args(ctx, step, st)
    src_ref = vm_ref(ctx, args["src_uuid"])
    if src_ref is None:
        raise StepFailed(f"VM {args['src_uuid']} to copy is gone", next_step="check the journal and the pool")
    running = _running_copy(ctx, src_ref)
    if running:  # a copy sent before a lost answer or a crash: wait for it, never send another
        return _finish_copy(ctx, step, st, args, _wait_copy(ctx, step, st, args, running))
    if ops.power_state(ctx.session, src_ref) != "Halted":
        raise StepFailed(f"VM {args['src_uuid']} is not halted; a consistent copy needs a halted VM",
                         next_step="shut it down cleanly and re-run with the same incident")
    _clear_way(ctx, step, st, args)
    identity = ops.vm_identity(ctx.session, src_ref)
    short = short_of_space(ctx, args["dest_sr"], _copy_need(ctx, identity, args["dest_sr"]), "the copy")
    if short:
        raise short
    block_source(ctx, step, src_ref, args["src_uuid"])
    guard.record(ctx, args["copy_step"], step.vm, args["src_uuid"])

    def progress(fraction: float) -> None:
        ctx.reporter.progress(f"{step.kind}: {fraction:6.1%} of VM '{identity['name']}' -> "
                              f"{ctx.sr_label(args['dest_sr'])}")
        ctx.sample()

    try:
        new_ref = ops.copy_vm(ctx.session, src_ref, args["name"], ctx.sr_ref(args["dest_sr"]), on_progress=progress,
                              on_task=lambda task: ctx.task_started(step, task), timeout_s=ctx.task_timeout_s)
    except (ops.TaskFailed, ops.TaskTimedOut) as exc:
        raise _copy_failed(ctx, step, st, args, exc) from None
    return _finish_copy(ctx, step, st, args, new_ref)


def _clear_way(ctx: Context, step: Step, st: dict, args: dict) -> None:
    """Before a new copy: this incident's earlier copies (never trusted, or stale) are removed;
    a copy by that name that is not this incident's stops the step."""
    found = own_copies(ctx, args)
    if _unmarked(ctx, found) or _other_incidents(ctx, args["name"]):
        raise StepFailed(f"a VM named {args['name']!r} already exists and is not one of incident {ctx.incident}'s",
                         next_step="rename or remove it (it is not the original) and re-run")
    for ref in found:
        destroy_vm_and_disks(ctx, ref, args["dest_sr"], keep=args["keep"])
        ctx.journal.append("note", step=step.id, vm=step.vm, message="removed an earlier copy of this incident "
                           "that was never trusted, before copying again")


def _wait_copy(ctx: Context, step: Step, st: dict, args: dict, task: str) -> str:
    ctx.reporter.progress(f"{step.kind}: a copy sent earlier is still under way; waiting for it")
    ctx.task_started(step, task)
    try:
        return ops.wait_task(ctx.session, task, timeout_s=ctx.task_timeout_s)
    except (ops.TaskFailed, ops.TaskTimedOut) as exc:
        raise _copy_failed(ctx, step, st, args, exc) from None


def _copy_failed(ctx: Context, step: Step, st: dict, args: dict, exc: Exception) -> StepFailed:
    details = ops.failure_details(exc) or [str(exc)]
    removed = rollback_copies(ctx, args)
    return StepFailed(f"{step.kind} failed: {' '.join(details[:3]).strip()}"
                      + (f"; removed {removed} half-made copy" if removed else "; nothing half-made was left"),
                      next_step=copy_failed_next(ctx, details, args["dest_sr"]), rolled_back=True, error=details)


def out_of_space(ctx: Context, details: list[str], dest_sr: str) -> bool:
    """An LVM SR refuses a disk that does not fit (SR_BACKEND_FAILURE_44, SR_FULL); a file SR
    takes the sparse file and the copy fails in sparse_dd when the SR is full (VDI_COPY_FAILED,
    its log naming the write error), so for that code the SR's free space decides."""
    code = details[0] if details else ""
    if code in ("SR_BACKEND_FAILURE_44", "SR_FULL"):
        return True
    if code != "VDI_COPY_FAILED":
        return False
    text = " ".join(details[1:]).lower()
    return "no space" in text or "enospc" in text or \
        ops.sr_free(ctx.session, [dest_sr]).get(dest_sr, 0) < NEARLY_FULL


NEARLY_FULL = GIB  # a copy that failed with less than this left on its SR ran out of space


def copy_failed_next(ctx: Context, details: list[str], dest_sr: str) -> str:
    if out_of_space(ctx, details, dest_sr):
        return (f"{ctx.sr_label(dest_sr)} ran out of space: free space there (or pass another "
                f"{option(ctx.front, 'staging')}), then {rerun_same(ctx.front)}")
    return "re-run with the same incident to try the copy again; if it fails again, read the host's SMlog"


def _finish_copy(ctx: Context, step: Step, st: dict, args: dict, new_ref: str) -> dict:
    """Adopt a finished copy: mark it, lift the block it inherited, give it the original's MACs.
    A copy that cannot be adopted (not a lost connection: a refusal) is removed."""
    try:
        macs = adopt(ctx, new_ref, st["original"], step, args["role"])
    except Exception as exc:
        if is_transient(exc):
            raise
        rollback_copies(ctx, args)
        raise StepFailed(f"{step.kind}: the new copy could not be set up ({exc}); it was removed",
                         next_step=f"{rerun_same(ctx.front)} to copy again", rolled_back=True,
                         error=ops.failure_details(exc)) from None
    ops.update_sr(ctx.session, ctx.sr_ref(args["dest_sr"]))  # a file SR publishes the copy's size only then
    ctx.sample(force=True)
    identity = ops.vm_identity(ctx.session, new_ref)
    return {args["key"]: identity["uuid"], args["vdis_key"]: [d["vdi"] for d in identity["disks"]],
            "macs_restored": macs}


def adopt(ctx: Context, new_ref: str, original: dict, step: Step, role: str) -> bool:
    """Returns whether the VIFs were replaced (VM.copy gives a copy new MACs, as xapi does)."""
    marks.mark(ctx.session, new_ref, incident=ctx.incident, original=step.vm, role=role)
    ops.unblock_start(ctx.session, new_ref)  # xapi gives a copy none; an import may bring one along
    current = ops.vm_identity(ctx.session, new_ref)
    if not compare_vifs(original, current):
        return False
    ops.replace_vifs(ctx.session, new_ref, original.get("vifs") or [])
    return True


def probe_copy(ctx: Context, step: Step, st: dict):
    """After a lost answer or a crash: did the copy happen, is it under way, or never started?"""
    args = step_args(ctx, step, st)
    src_ref = vm_ref(ctx, args["src_uuid"])
    task = ctx.last_task(step)
    if task and ops.exists(ctx.session, "task", task):
        try:
            new_ref = ops.wait_task(ctx.session, task, timeout_s=ctx.task_timeout_s)
            return "done", _finish_copy(ctx, step, st, args, new_ref)
        except ops.TaskFailed:
            return "partial", None
    running = _running_copy(ctx, src_ref) if src_ref else None
    if running:
        try:
            return "done", _finish_copy(ctx, step, st, args, ops.wait_task(ctx.session, running,
                                                                            timeout_s=ctx.task_timeout_s))
        except ops.TaskFailed:
            return "partial", None
    found = own_copies(ctx, args)
    if not found:
        return "not-started", None
    if len(found) == 1:
        result = _finish_copy(ctx, step, st, args, found[0])
        identity = ops.vm_identity(ctx.session, found[0])
        if not verify_copy(st["original"], identity, expect_name=args["name"], expect_sr=args["dest_sr"]):
            return "done", result
    return "partial", None


def rollback_copies(ctx: Context, args: dict) -> int:
    """Remove this direction's copies (never the original, never the staging copy on the way back)."""
    found = own_copies(ctx, args)
    for ref in found:
        destroy_vm_and_disks(ctx, ref, args["dest_sr"], keep=args["keep"])
    return len(found)


def rollback_copy(ctx: Context, step: Step, st: dict) -> str:
    removed = rollback_copies(ctx, step_args(ctx, step, st))
    return f"removed {removed} half-made copy" if removed else "nothing half-made found"


# --- can the copy be trusted? -------------------------------------------------------------
def check_fresh(ctx: Context, step: Step, st: dict, *, direction: str) -> None:
    """Raise StepFailed (after removing the copy) when its source ran after the copy began."""
    copy_step = f"{step.vm}:{'copy-out' if direction == 'out' else 'copy-back'}"
    reasons = guard.stale_reasons(ctx, copy_step, step.vm)
    if not reasons:
        return
    what = "original VM" if direction == "out" else "VM on the staging SR"
    removed = discard_stale(ctx, step, st, direction=direction, reasons=reasons)
    raise StepFailed(f"the {what} ran after its copy began ({'; '.join(reasons)}): that copy is stale and "
                     f"{'was removed' if removed else 'is not used'}; the {what} is kept as it is",
                     next_step=f"{rerun_same(ctx.front)}: it shuts the VM down again if it runs and makes a new copy",
                     rolled_back=True, error=["STALE_COPY", *reasons])


def discard_stale(ctx: Context, step: Step, st: dict, *, direction: str, reasons: list[str]) -> int:
    """Remove a stale copy (or set a stale export aside) and roll its steps back in the journal."""
    kinds = ("copy-out", "verify-out", "export-out") if direction == "out" else ("copy-back", "verify-back")
    removed = rollback_copies(ctx, copy_args(ctx, step.vm, st, direction)) if ctx.staging or direction == "back" else 0
    if direction == "out" and st.get("export_file"):
        removed += _set_export_aside(st["export_file"])
    ctx.journal.append("stale-copy", step=step.id, vm=step.vm, reasons=reasons, removed=removed)
    for kind in kinds:
        if ctx.journal.step_status(f"{step.vm}:{kind}") is not None:
            ctx.journal.append("rolled-back", step=f"{step.vm}:{kind}", vm=step.vm, kind=kind,
                               result={"rollback": "stale copy discarded"})
    source = vm_ref(ctx, step.vm if direction == "out" else st.get("copy_uuid"))
    if direction == "out" and source and ops.power_state(ctx.session, source) != "Halted" \
            and ctx.journal.step_status(f"{step.vm}:shutdown") == "done":
        ctx.journal.append("rolled-back", step=f"{step.vm}:shutdown", vm=step.vm, kind="shutdown",
                           result={"rollback": "the VM runs again; it is shut down again on the next run"})
    return removed


def _set_export_aside(path: str) -> int:
    from pathlib import Path

    src = Path(path)
    if not src.exists():
        return 0
    src.replace(src.with_name(src.name + ".stale"))
    return 1


def verify_against_original(ctx: Context, step: Step, st: dict, *, uuid: str, name: str, sr: str,
                            what: str) -> list[str]:
    from runbook_lib.transfer.checks import expected_srs

    ref = vm_ref(ctx, uuid)
    if ref is None:
        return [f"the {what} {uuid} is gone"]
    return verify_copy(st["original"], ops.vm_identity(ctx.session, ref), expect_name=name,
                       expect_sr=expected_srs(ctx, step, st, sr), same_vm=(uuid == step.vm))


def verify_or_remove(ctx: Context, step: Step, st: dict, *, direction: str, next_step: str) -> None:
    """A copy that does not match the original is removed (never the original) and the step fails;
    one that matches is marked verified."""
    args = copy_args(ctx, step.vm, st, direction)
    what = "staging copy" if direction == "out" else "copy on the source SR"
    uuid = st[args["key"]]
    problems = verify_against_original(ctx, step, st, uuid=uuid, name=args["name"], sr=args["dest_sr"], what=what)
    if not problems:
        marks.mark_verified(ctx.session, vm_ref(ctx, uuid))
        return
    copy_kind = "copy-out" if direction == "out" else "copy-back"
    removed = rollback_copies(ctx, args)
    ctx.journal.append("rolled-back", step=f"{step.vm}:{copy_kind}", vm=step.vm, kind=copy_kind,
                       result={"removed": removed, "reason": f"{step.kind} failed"})
    raise StepFailed(f"the {what} does not match the original: " + "; ".join(problems), next_step=next_step,
                     rolled_back=True)
