"""Destroying: the original once its copy is trusted, the staging copy once the way back is,
and, before a run says done, whatever of this incident's is still on the pool.

Guarded twice: the replacement is checked again in the destroying step itself, and a VDI is
destroyed only on the SR the journal expects and only when no VM uses it. Every destroy
counts an object that is already gone as destroyed, so a step cut short (a kill, a lost
answer) is finished by running it again.
"""

from __future__ import annotations

from runbook_lib.transfer import marks
from runbook_lib.transfer.context import Context, StepFailed, final_vm_uuid, vm_ref
from runbook_lib.transfer.plan_steps import BACK_SUFFIX, COPY_SUFFIX, Step
from runbook_lib.xapi import operations as ops


def destroy_vm_and_disks(ctx: Context, ref: str, sr_uuid: str, keep: set[str]) -> list[str]:
    """Destroy a VM and those of its disks on sr_uuid that nothing else uses. Never one in keep."""
    uuid = ops.vm_uuid(ctx.session, ref)
    if uuid in keep:
        raise AssertionError(f"refusing to destroy protected VM {uuid}")
    identity = ops.vm_identity(ctx.session, ref)
    if identity["power_state"] != "Halted" and not identity["is_a_snapshot"]:  # a checkpoint is destroyed as it is
        ops.hard_shutdown(ctx.session, ref)  # only ever our own copy, never an original
    ops.destroy_vm(ctx.session, ref)
    return destroy_vdis(ctx, [d["vdi"] for d in identity["disks"] if d["sr"] == sr_uuid], sr_uuid)


def destroy_vdis(ctx: Context, vdi_uuids: list[str], sr_uuid: str) -> list[str]:
    sr_ref = ctx.sr_ref(sr_uuid)
    gone = []
    for vdi_uuid in vdi_uuids:
        ref = ops.ref_by_uuid(ctx.session, "VDI", vdi_uuid)
        if ref is None:
            gone.append(vdi_uuid)
            continue
        rec = ops.vdi_record(ctx.session, ref)
        if rec.get("SR") != sr_ref:
            raise StepFailed(f"VDI {vdi_uuid} is not on {ctx.sr_label(sr_uuid)}; not destroying it",
                             next_step="check the journal and the pool by hand")
        if rec.get("VBDs"):
            raise StepFailed(f"VDI {vdi_uuid} is still attached to a VM; not destroying it",
                             next_step="check which VM uses it (xe vbd-list vdi-uuid=...)")
        ops.destroy_vdi(ctx.session, ref)
        gone.append(vdi_uuid)
    return gone


def protected(st: dict, step: Step) -> set[str]:
    return {u for u in (step.vm, st.get("copy_uuid"), st.get("back_uuid")) if u}


def destroy_original(ctx: Context, step: Step, st: dict) -> dict:
    """Only with a verified, fresh copy in hand; idempotent (finishes a destroy that was cut short)."""
    from runbook_lib.transfer.checks import check_replacement

    original = st["original"]
    check_replacement(ctx, step, st)
    ref = vm_ref(ctx, step.vm)
    if ref is not None:
        _check_original_unchanged(ctx, ref, original)
        for snap_uuid in original.get("snapshots") or []:
            snap_ref = vm_ref(ctx, snap_uuid)
            if snap_ref and snap_uuid in (ctx.plan.get("snapshots") or []):
                destroy_vm_and_disks(ctx, snap_ref, ctx.source, keep=protected(st, step))
        ops.destroy_vm(ctx.session, ref)
    vdis = [d["vdi"] for d in original["disks"] if d["sr"] == ctx.source] + list(st.get("doomed_snapshot_vdis") or [])
    gone = destroy_vdis(ctx, vdis, ctx.source)
    ctx.sample(force=True)
    return {"original_destroyed": True, "destroyed_vdis": gone}


def _check_original_unchanged(ctx: Context, ref: str, original: dict) -> None:
    from runbook_lib.transfer.fronts import NEW_PLAN

    current = ops.vm_identity(ctx.session, ref)
    if current["power_state"] != "Halted":
        raise StepFailed(f"the original VM is {current['power_state']} again; it is kept",
                         next_step="someone started it: shut it down and re-run; its copy is checked again and "
                                   "made anew if the VM ran after it")
    if [d["vdi"] for d in current["disks"]] != [d["vdi"] for d in original["disks"]]:
        raise StepFailed("the original VM's disks changed since they were recorded; it is kept",
                         next_step=f"{NEW_PLAN} and run it with a new incident")


def destroy_staging(ctx: Context, step: Step, st: dict) -> dict:
    """The staging copy goes once the copy on the source SR is verified and fresh; its disks go
    even when an earlier attempt destroyed the VM record and stopped before its disks."""
    from runbook_lib.transfer.checks import check_back_copy

    check_back_copy(ctx, step, st)
    copy_ref = vm_ref(ctx, st.get("copy_uuid"))
    gone: list[str] = []
    if copy_ref is not None:
        gone = destroy_vm_and_disks(ctx, copy_ref, ctx.staging, keep={step.vm, st["back_uuid"]})
    gone += [u for u in destroy_vdis(ctx, list(st.get("copy_vdis") or []), ctx.staging) if u not in gone]
    ctx.sample(force=True)
    return {"staging_destroyed": True, "destroyed_staging_vdis": gone}


# --- before saying done ----------------------------------------------------------------------
def leftovers(ctx: Context, vm: dict, st: dict) -> dict:
    """What of this incident's is still on the pool beside the VM that stays: VMs (marked, or by
    the copies' names) and recorded copy disks that no VM uses (the final VM's disks have VBDs)."""
    final = final_vm_uuid(st, vm["uuid"])
    name = (st.get("original") or {}).get("name") or vm.get("name") or ""
    refs = set(marks.own_vms(ctx.session, incident=ctx.incident, original=vm["uuid"]))
    for suffix in (COPY_SUFFIX, BACK_SUFFIX):
        refs |= {r for r in ops.vms_named(ctx.session, name + suffix)
                 if marks.incident_of(ctx.session, r) in (None, ctx.incident)}
    vms = sorted(r for r in refs if ops.vm_uuid(ctx.session, r) != final)
    vdis = []
    for key, sr in (("copy_vdis", ctx.staging), ("back_vdis", ctx.source)):
        for uuid in st.get(key) or []:
            ref = ops.ref_by_uuid(ctx.session, "VDI", uuid)
            if ref and not ops.vdi_record(ctx.session, ref).get("VBDs"):
                vdis.append((uuid, sr))
    return {"vms": vms, "vdis": vdis}


def remove_leftovers(ctx: Context, vm: dict, st: dict) -> list[str]:
    """Remove this incident's leftovers (only once the VM that stays has been checked)."""
    found = leftovers(ctx, vm, st)
    keep = {final_vm_uuid(st, vm["uuid"])}
    removed = []
    for ref in found["vms"]:
        uuid = ops.vm_uuid(ctx.session, ref)
        sr = ctx.staging if any(d["sr"] == ctx.staging for d in ops.vm_identity(ctx.session, ref)["disks"]) \
            else ctx.source
        destroy_vm_and_disks(ctx, ref, sr, keep=keep)
        removed.append(f"VM {uuid}")
    for uuid, sr in found["vdis"]:
        removed += [f"VDI {u}" for u in destroy_vdis(ctx, [uuid], sr)]
    return removed
