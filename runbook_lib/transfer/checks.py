"""The verify steps, and the checks a destroying step repeats before it destroys anything.

A copy is trusted when it matches the original (disks, sizes, device order, VIFs and MACs,
name) and is fresh: its source has not run since the copy began (guard.py).
"""

from __future__ import annotations

from pathlib import Path

from runbook_lib.transfer.context import Context, StepFailed, vm_name, vm_ref
from runbook_lib.transfer.copies import check_fresh, verify_against_original, verify_or_remove
from runbook_lib.transfer.plan_steps import BACK_SUFFIX, COPY_SUFFIX, Step
from runbook_lib.transfer.verify import verify_copy
from runbook_lib.transfer.xva import XvaUnreadable, describe_xva
from runbook_lib.xapi import operations as ops


def expected_srs(ctx: Context, step: Step, st: dict, dest: str) -> str | dict:
    """Where the disks must be: all on dest, or for live migration the planned disks on dest."""
    if ctx.mode(step.vm) != "migrate":
        return dest
    vm = next(v for v in ctx.plan["vms"] if v["uuid"] == step.vm)
    planned = {str(d.get("userdevice")) for d in vm.get("disks") or []}
    return {d["userdevice"]: (dest if d["userdevice"] in planned else d["sr"]) for d in st["original"]["disks"]}


def verify_out(ctx: Context, step: Step, st: dict) -> dict:
    if ctx.staging and st.get("copy_uuid"):
        check_fresh(ctx, step, st, direction="out")
        verify_or_remove(ctx, step, st, direction="out",
                         next_step="the original is untouched; the bad copy was removed. Re-run to copy again; "
                                   "if it differs again, report it (the pool changes the VM when copying)")
        return {"verified_out": True}
    if st.get("migrated"):  # live migration: the same VM, disks now on the staging SR
        problems = verify_against_original(ctx, step, st, uuid=step.vm, name=vm_name(st, step), sr=ctx.staging,
                                           what="VM")
        if problems:
            raise StepFailed("after the migration: " + "; ".join(problems),
                             next_step="the VM is running; check its disks in XenCenter before going on")
        return {"verified_out": True}
    if st.get("export_file"):
        check_fresh(ctx, step, st, direction="out")
        return {"verified_out": True, **verify_export(st)}
    raise StepFailed("nothing to verify: the copy step left no result", next_step="re-run with the same incident")


def verify_back(ctx: Context, step: Step, st: dict) -> dict:
    name = vm_name(st, step)
    if st.get("back_uuid"):
        check_fresh(ctx, step, st, direction="back")
        verify_or_remove(ctx, step, st, direction="back",
                         next_step=f"the VM is safe on {ctx.sr_label(ctx.staging)} as {st['copy_uuid']}; "
                                   "the bad copy was removed. Re-run to copy back again")
        return {"verified_back": True}
    uuid = st.get("imported_uuid") or step.vm
    problems = verify_against_original(ctx, step, st, uuid=uuid, name=name, sr=ctx.source, what="VM")
    if problems:
        raise StepFailed("after the way back: " + "; ".join(problems),
                         next_step="the VM's data is on the source SR; check it before starting it")
    return {"verified_back": True}


def verify_export(st: dict) -> dict:
    """The .xva is complete and describes the original: disks, sizes, device order, MACs, name."""
    path = Path(st["export_file"])
    if not path.is_file() or path.stat().st_size != int(st.get("export_bytes") or -1):
        raise StepFailed(f"the export {path} is missing or not the size written", next_step="re-run the export")
    try:
        described = describe_xva(path)
    except XvaUnreadable as err:
        raise StepFailed(f"the export cannot be read back: {err}", next_step="re-run the export") from None
    original = dict(st["original"], vifs=[dict(v, network=None) for v in st["original"].get("vifs") or []])
    described["vifs"] = [dict(v, network=None) for v in described["vifs"]]
    problems = verify_copy(original, described, expect_name=original["name"], same_vm=True)
    if problems:
        raise StepFailed("the export does not describe the original: " + "; ".join(problems),
                         next_step="the original is untouched; re-run to export again")
    return {"export_verified": True}


def check_replacement(ctx: Context, step: Step, st: dict) -> None:
    """Before the original goes: its copy (or export) still verifies and is still fresh."""
    original = st["original"]
    if not (st.get("copy_uuid") or st.get("export_file")):
        raise StepFailed("no verified copy recorded; the original is kept", next_step="re-run from the copy step")
    check_fresh(ctx, step, st, direction="out")
    if not st.get("copy_uuid"):
        verify_export(st)
        return
    problems = verify_against_original(ctx, step, st, uuid=st["copy_uuid"], name=original["name"] + COPY_SUFFIX,
                                       sr=ctx.staging, what="staging copy")
    copy_ref = vm_ref(ctx, st["copy_uuid"])
    if problems and copy_ref and ops.vm_identity(ctx.session, copy_ref)["name"] == original["name"]:
        problems = []  # already renamed by an earlier, interrupted run
    if problems:
        raise StepFailed("the staging copy no longer verifies: " + "; ".join(problems) + "; the original is kept",
                         next_step="check the staging copy; the original is untouched")


def check_back_copy(ctx: Context, step: Step, st: dict) -> None:
    """Before the staging copy goes: the copy on the source SR still verifies and is fresh."""
    name = vm_name(st, step)
    check_fresh(ctx, step, st, direction="back")
    problems = verify_against_original(ctx, step, st, uuid=st["back_uuid"], name=name + BACK_SUFFIX, sr=ctx.source,
                                       what="copy on the source SR")
    back_ref = vm_ref(ctx, st["back_uuid"])
    if problems and back_ref and ops.vm_identity(ctx.session, back_ref)["name"] == name:
        problems = []
    if problems:
        raise StepFailed("the copy on the source SR no longer verifies: " + "; ".join(problems)
                         + "; the staging copy is kept", next_step="check both copies by hand")
