"""Moves that are not VM copies: live storage migration of each disk, and the export to an
.xva file with its import back (the "transfer VM over an NFS mount" case)."""

from __future__ import annotations

from pathlib import Path

from runbook_lib.transfer import guard, marks
from runbook_lib.transfer.cleanup import destroy_vm_and_disks
from runbook_lib.transfer.context import Context, StepFailed, vm_name, vm_ref
from runbook_lib.transfer.copies import block_source
from runbook_lib.transfer.fronts import NEW_PLAN
from runbook_lib.transfer.plan_steps import Step
from runbook_lib.transfer.verify import verify_copy
from runbook_lib.units import gib
from runbook_lib.xapi import operations as ops


# --- live migration --------------------------------------------------------------------------
def _disk_ref(ctx: Context, step: Step) -> tuple[str, dict]:
    ref = vm_ref(ctx, step.vm)
    if ref is None:
        raise StepFailed(f"VM {step.vm} is gone", next_step="check the pool")
    identity = ops.vm_identity(ctx.session, ref)
    for disk in identity["disks"]:
        if disk["userdevice"] == step.disk:
            return disk["vdi_ref"], disk
    raise StepFailed(f"VM {step.vm} has no disk at device {step.disk}", next_step=NEW_PLAN)


def migrate(ctx: Context, step: Step, st: dict) -> dict:
    dest = ctx.staging if step.kind == "migrate-out" else ctx.source
    vdi_ref, disk = _disk_ref(ctx, step)
    if disk["sr"] == dest:
        return {"migrated": True}
    try:
        ops.pool_migrate_vdi(ctx.session, vdi_ref, ctx.sr_ref(dest), timeout_s=ctx.task_timeout_s,
                             on_task=lambda task: ctx.task_started(step, task),
                             on_progress=lambda f: (ctx.reporter.progress(f"{step.kind} disk {step.disk}: {f:6.1%}"),
                                                    ctx.sample()))
    except (ops.TaskFailed, ops.TaskTimedOut) as exc:
        details = ops.failure_details(exc) or [str(exc)]
        raise StepFailed(f"live migration of disk {step.disk} failed: {' '.join(details[:3])}",
                         next_step="the VM keeps running with its disks where they were; "
                                   "re-run with the same incident, or use mode copy (with downtime)",
                         error=details) from None
    ctx.sample(force=True)
    return {"migrated": True}


def probe_migrate(ctx: Context, step: Step, st: dict):
    task = ctx.last_task(step)
    if task and ops.exists(ctx.session, "task", task):
        try:
            ops.wait_task(ctx.session, task, timeout_s=ctx.task_timeout_s)
        except ops.TaskFailed:
            return "not-started", None
    dest = ctx.staging if step.kind == "migrate-out" else ctx.source
    vdi_ref, disk = _disk_ref(ctx, step)
    if disk["sr"] == dest:
        return "done", {"migrated": True}
    running = [t for t, op in (ops.vdi_record(ctx.session, vdi_ref).get("current_operations") or {}).items()
               if op == "mirror"]
    for task in running:  # sent before a lost answer: wait for it rather than sending another
        try:
            ops.wait_task(ctx.session, task, timeout_s=ctx.task_timeout_s)
        except ops.TaskFailed:
            return "not-started", None
    _, disk = _disk_ref(ctx, step)
    return ("done", {"migrated": True}) if disk["sr"] == dest else ("not-started", None)


# --- export / import -------------------------------------------------------------------------
def export_file_path(ctx: Context, step: Step) -> Path:
    return Path(ctx.plan["export_path"]).expanduser() / f"{ctx.incident}_{step.vm}.xva"


def export_out(ctx: Context, step: Step, st: dict) -> dict:
    dest = export_file_path(ctx, step)
    if not dest.parent.is_dir():
        raise StepFailed(f"export path {dest.parent} is not a mounted directory; nothing was exported",
                         next_step="mount the export path (e.g. the NFS share) and re-run with the same incident")
    original = vm_ref(ctx, step.vm)
    if original:
        block_source(ctx, step, original, step.vm)
        guard.record(ctx, f"{step.vm}:export-out", step.vm, step.vm)
    try:
        size = ops.export_vm(ctx.session, step.vm, dest,
                             on_bytes=lambda n: ctx.reporter.progress(f"export: {gib(n, 2)} written"))
    except OSError as exc:
        dest.with_name(dest.name + ".partial").unlink(missing_ok=True)
        raise StepFailed(f"export to {dest} failed: {exc}", next_step="check the mount and its free space; re-run",
                         rolled_back=True) from None
    return {"export_file": str(dest), "export_bytes": size}


def import_back(ctx: Context, step: Step, st: dict) -> dict:
    try:
        refs = ops.import_vm(ctx.session, Path(st["export_file"]), ctx.sr_ref(ctx.source))
    except OSError as exc:
        _remove_imports(ctx, step, st)
        raise StepFailed(f"the import failed: {exc}", rolled_back=True,
                         next_step=f"the export is safe in {st['export_file']}; free space on "
                                   f"{ctx.sr_label(ctx.source)} if it is short, then re-run with the same "
                                   "incident") from None
    if not refs:
        raise StepFailed("the import returned no VM", next_step=f"the export is safe in {st['export_file']}; "
                                                                "import it by hand (xe vm-import)")
    marks.mark(ctx.session, refs[0], incident=ctx.incident, original=step.vm, role=marks.IMPORT)
    ops.unblock_start(ctx.session, refs[0])  # an import may bring the original's block along
    return {"imported_uuid": ops.vm_uuid(ctx.session, refs[0])}


def _imports(ctx: Context, step: Step, st: dict) -> list[str]:
    return [ref for ref in ops.vms_named(ctx.session, vm_name(st, step)) if ops.vm_uuid(ctx.session, ref) != step.vm]


def _remove_imports(ctx: Context, step: Step, st: dict) -> int:
    found = _imports(ctx, step, st)
    for ref in found:
        destroy_vm_and_disks(ctx, ref, ctx.source, keep={step.vm})
    return len(found)


def probe_import(ctx: Context, step: Step, st: dict):
    found = _imports(ctx, step, st)
    if len(found) == 1:
        identity = ops.vm_identity(ctx.session, found[0])
        if not verify_copy(st["original"], identity, expect_name=st["original"]["name"], expect_sr=ctx.source):
            marks.mark(ctx.session, found[0], incident=ctx.incident, original=step.vm, role=marks.IMPORT)
            ops.unblock_start(ctx.session, found[0])
            return "done", {"imported_uuid": identity["uuid"]}
    return ("partial" if found else "not-started"), None


def rollback_import(ctx: Context, step: Step, st: dict) -> str:
    return f"removed {_remove_imports(ctx, step, st)} half-imported VM(s)"
