"""What each step kind does to the pool, how it checks whether it already happened, and how it
undoes a half-made result.

Every action is written so that running it twice is harmless: it first looks at the pool and
does only what is still missing. Destroying is guarded twice: the copy that replaces what is
destroyed is verified again in the same step, and a VDI is destroyed only when it sits on the
SR the journal expects and no VM uses it any more.

Per-VM state (`st`) is what earlier steps returned, kept in the journal: `original` (identity
record), `chains`, `old_chain` (VDIs that become garbage), `copy_uuid`, `back_uuid`, ...
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any, Callable

from runbook_lib import sizing
from runbook_lib.errors import RunbookError
from runbook_lib.transfer.fronts import NEW_PLAN, option, rerun_same
from runbook_lib.transfer.plan_steps import BACK_SUFFIX, COPY_SUFFIX, Step
from runbook_lib.transfer.verify import compare_vifs, verify_copy, verify_round_trip
from runbook_lib.transfer.xva import XvaUnreadable, describe_xva
from runbook_lib.transfer.wait import chain_gone, chains_shorter, wait_for_gc
from runbook_lib.xapi import operations as ops

LVM_TYPES = {"lvm", "lvmoiscsi", "lvmohba"}


class StepFailed(RunbookError):
    """A step could not be done; the pool is left as `state` says and `next_step` tells what to do."""

    def __init__(self, message: str, *, next_step: str, rolled_back: bool = False, error: list | None = None):
        super().__init__(message)
        self.next_step = next_step
        self.rolled_back = rolled_back
        self.error = error


@dataclasses.dataclass
class Context:
    """What the actions share during one run."""

    session: Any
    plan: dict
    journal: Any
    reporter: Any
    source: str  # SR uuid whose coalesce is stuck
    staging: str  # staging SR uuid ("" for export/offline)
    incident: str
    wait_timeout_s: float
    smlog: str | None = None
    task_timeout_s: float | None = None
    front: str = "notebook"  # which front end runs this: next steps name its options
    sample_every_s: float = 1.0
    _last_sample: float = 0.0

    def sr_ref(self, uuid: str) -> str:
        ref = ops.ref_by_uuid(self.session, "SR", uuid)
        if ref is None:
            raise StepFailed(f"SR {uuid} no longer exists", next_step="check the pool; the journal shows where the VM is")
        return ref

    def watched_srs(self) -> list[str]:
        return [sr for sr in (self.source, self.staging) if sr]

    def free(self) -> dict[str, int]:
        return ops.sr_free(self.session, self.watched_srs())

    def sample(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last_sample >= self.sample_every_s:
            self._last_sample = now
            self.reporter.sample(self.free())

    def sr_label(self, uuid: str) -> str:
        return f"SR '{self.reporter.sr_names.get(uuid, uuid[:8])}'"

    def task_started(self, step: Step, task_ref: str) -> None:
        self.journal.append("task", step=step.id, vm=step.vm, task=task_ref)

    def last_task(self, step: Step) -> str | None:
        found = None
        for record in self.journal.records():
            if record.get("step") == step.id and record["event"] == "task":
                found = record.get("task")
        return found


def _vm_name(st: dict, step: Step) -> str:
    return (st.get("original") or {}).get("name") or step.vm[:8]


def _vm_ref(ctx: Context, uuid: str | None) -> str | None:
    return ops.ref_by_uuid(ctx.session, "VM", uuid) if uuid else None


def _where(ctx: Context, st: dict, step: Step) -> str:
    """One line: where the VM's data is now, for every next-step message."""
    original = _vm_ref(ctx, step.vm)
    name = _vm_name(st, step)
    for uuid in (st.get("back_uuid"), st.get("imported_uuid")):
        if uuid and _vm_ref(ctx, uuid):
            return f"VM '{name}' is on {ctx.sr_label(ctx.source)} as {uuid}"
    if original:
        identity = ops.vm_identity(ctx.session, original)
        srs = ", ".join(sorted({ctx.sr_label(d["sr"]) for d in identity["disks"]})) or "no SR"
        return f"VM '{name}' ({step.vm}) is {identity['power_state']} with its disks on {srs}"
    if st.get("copy_uuid") and _vm_ref(ctx, st["copy_uuid"]):
        return f"VM '{name}' is safe on {ctx.sr_label(ctx.staging)} as {st['copy_uuid']} (verified copy)"
    if st.get("export_file"):
        return f"VM '{name}' is safe in {st['export_file']} (verified export)"
    return f"VM '{name}': see the journal"


# --- record-original -------------------------------------------------------------------------
def record_original(ctx: Context, step: Step, st: dict) -> dict:
    ref = _vm_ref(ctx, step.vm)
    if ref is None:
        raise StepFailed(f"VM {step.vm} no longer exists", next_step=NEW_PLAN)
    identity = ops.vm_identity(ctx.session, ref)
    identity.pop("ref", None)
    for disk in identity["disks"]:
        disk.pop("vdi_ref", None)
    records = ops.vdi_records(ctx.session)
    source_ref = ctx.sr_ref(ctx.source)
    on_sr = {rec["uuid"]: rec for rec in records.values() if rec.get("SR") == source_ref}
    chains = {d["vdi"]: ops.chain_of(d["vdi"], on_sr) for d in identity["disks"] if d["sr"] == ctx.source}
    ours = set().union(*chains.values()) if chains else set()
    # snapshots the plan deletes go with the VM; any other VDI keeps its ancestors alive
    doomed_snapshot_vdis = set(_planned_snapshot_vdis(ctx, identity))
    shared = set()
    for uuid in on_sr:
        if uuid in ours or uuid in doomed_snapshot_vdis:
            continue
        shared |= set(ops.chain_of(uuid, on_sr))
    old_chain = sorted((ours | doomed_snapshot_vdis) - shared)
    sr_type = ops.sr_record(ctx.session, source_ref).get("type", "")
    return {"original": identity, "chains": chains, "old_chain": old_chain, "source_type": sr_type,
            "doomed_snapshot_vdis": sorted(doomed_snapshot_vdis)}


def _planned_snapshot_vdis(ctx: Context, identity: dict) -> list[str]:
    planned = set(ctx.plan.get("snapshots") or [])
    out = []
    for snap_uuid in identity.get("snapshots") or []:
        if snap_uuid not in planned:
            continue
        ref = _vm_ref(ctx, snap_uuid)
        if ref:
            out += [d["vdi"] for d in ops.vm_identity(ctx.session, ref)["disks"]]
    return out


# --- shutdown / start ------------------------------------------------------------------------
def shutdown(ctx: Context, step: Step, st: dict) -> dict:
    ref = _vm_ref(ctx, step.vm)
    if ref is None:
        raise StepFailed(f"VM {step.vm} no longer exists", next_step=NEW_PLAN)
    if _wait_for_own_shutdown(ctx, ref):
        return {"shut_down_by_us": True}
    state = ctx.session.xenapi.VM.get_power_state(ref)
    if state == "Halted":
        return {"shut_down_by_us": False}
    if state != "Running":
        raise StepFailed(f"VM '{_vm_name(st, step)}' is {state}; only a running VM is shut down",
                         next_step="bring it to Running or Halted and re-run with the same incident")
    try:
        ops.clean_shutdown(ctx.session, ref)
    except Exception as exc:
        details = ops.failure_details(exc)
        if details is None:
            raise
        if ctx.session.xenapi.VM.get_power_state(ref) == "Halted":  # an earlier, interrupted call did it
            return {"shut_down_by_us": True}
        raise StepFailed(
            f"VM '{_vm_name(st, step)}' refused a clean shutdown ({' '.join(details[:3])}); nothing was changed",
            next_step="the VM is still running on its SR. Shut it down from inside the guest (or, if you accept "
                      "the risk, force it off with `xe vm-shutdown force=true`), then re-run with the same incident",
            error=details) from None
    return {"shut_down_by_us": True}


def _wait_for_own_shutdown(ctx: Context, ref: str) -> bool:
    """A shutdown still running (sent before a lost connection or a crash) is waited for, not
    sent again: a second one would fail with OTHER_OPERATION_IN_PROGRESS. True when it halted the VM."""
    running = {task: op for task, op in (ctx.session.xenapi.VM.get_current_operations(ref) or {}).items()
               if op in ("clean_shutdown", "shutdown")}
    for task in running:
        ctx.reporter.progress("a clean shutdown of the VM is already under way; waiting for it")
        try:
            ops.wait_task(ctx.session, task, timeout_s=ctx.task_timeout_s)
        except (ops.TaskFailed, ops.TaskTimedOut):
            pass
        except Exception as exc:  # noqa: BLE001 - the task ended and went between the two reads
            if (ops.failure_details(exc) or [""])[0] != "HANDLE_INVALID":
                raise
    return bool(running) and ctx.session.xenapi.VM.get_power_state(ref) == "Halted"


def probe_halted(ctx: Context, step: Step, st: dict):
    ref = _vm_ref(ctx, step.vm)
    if ref and ctx.session.xenapi.VM.get_power_state(ref) == "Halted":
        return "done", {"shut_down_by_us": True}
    return "not-started", None


def final_vm_uuid(st: dict, step: Step) -> str:
    return st.get("back_uuid") or st.get("imported_uuid") or step.vm


def start(ctx: Context, step: Step, st: dict) -> dict:
    uuid = final_vm_uuid(st, step)
    ref = _vm_ref(ctx, uuid)
    if ref is None:
        raise StepFailed(f"VM {uuid} to start is gone", next_step="check the journal and the pool")
    if ctx.session.xenapi.VM.get_power_state(ref) != "Running":
        try:
            ops.start_vm(ctx.session, ref)
        except Exception as exc:
            details = ops.failure_details(exc)
            if details is None:
                raise
            if ctx.session.xenapi.VM.get_power_state(ref) == "Running":
                return {"started": uuid}
            raise StepFailed(f"VM '{_vm_name(st, step)}' did not start ({' '.join(details[:3])})",
                             next_step=f"its data is complete on {ctx.sr_label(ctx.source)}; start it by hand "
                                       f"(xe vm-start uuid={uuid}) and re-run to finish the checks",
                             error=details) from None
    return {"started": uuid}


# --- copies ----------------------------------------------------------------------------------
def _copy_need(ctx: Context, identity: dict, dest_sr: str) -> int:
    """A conservative estimate of what a flat copy needs on dest (LVM: fully inflated).

    On a file SR the copy holds every block of the disk's whole chain, not just the leaf's
    (a halted leaf can be tiny above a base of terabytes), so the chain's allocation counts.
    """
    dest_type = ops.sr_record(ctx.session, ctx.sr_ref(dest_sr)).get("type", "")
    if dest_type in LVM_TYPES:
        return sum(sizing.lvhd_lv_size(int(d["virtual_size"])) for d in identity["disks"])
    by_uuid = {rec["uuid"]: rec for rec in ops.vdi_records(ctx.session).values()}
    need = 0
    for d in identity["disks"]:
        chain = ops.chain_of(d["vdi"], by_uuid)
        data = sum(by_uuid[u]["physical_utilisation"] for u in chain) or int(d.get("physical_utilisation") or 0)
        need += sizing.copy_size("file", int(d["virtual_size"]), data)
    return need


def _leftovers(ctx: Context, name: str, keep: set[str]) -> list[str]:
    return [ref for ref in ops.vms_named(ctx.session, name)
            if ctx.session.xenapi.VM.get_uuid(ref) not in keep]


def _destroy_vm_and_disks(ctx: Context, vm_ref: str, sr_uuid: str, keep: set[str]) -> list[str]:
    """Destroy a VM and those of its disks on sr_uuid that nothing else uses. Never one in keep."""
    uuid = ctx.session.xenapi.VM.get_uuid(vm_ref)
    if uuid in keep:
        raise AssertionError(f"refusing to destroy protected VM {uuid}")
    identity = ops.vm_identity(ctx.session, vm_ref)
    if identity["power_state"] != "Halted" and not identity["is_a_snapshot"]:  # a checkpoint is destroyed as it is
        ctx.session.xenapi.VM.hard_shutdown(vm_ref)  # only ever our own copy, never an original
    ops.destroy_vm(ctx.session, vm_ref)
    return _destroy_vdis(ctx, [d["vdi"] for d in identity["disks"]], sr_uuid)


def _destroy_vdis(ctx: Context, vdi_uuids: list[str], sr_uuid: str) -> list[str]:
    sr_ref = ctx.sr_ref(sr_uuid)
    gone = []
    for vdi_uuid in vdi_uuids:
        ref = ops.ref_by_uuid(ctx.session, "VDI", vdi_uuid)
        if ref is None:
            gone.append(vdi_uuid)
            continue
        rec = ctx.session.xenapi.VDI.get_record(ref)
        if rec.get("SR") != sr_ref:
            raise StepFailed(f"VDI {vdi_uuid} is not on {ctx.sr_label(sr_uuid)}; not destroying it",
                             next_step="check the journal and the pool by hand")
        if rec.get("VBDs"):
            raise StepFailed(f"VDI {vdi_uuid} is still attached to a VM; not destroying it",
                             next_step="check which VM uses it (xe vbd-list vdi-uuid=...)")
        ops.destroy_vdi(ctx.session, ref)
        gone.append(vdi_uuid)
    return gone


def _protected(st: dict, step: Step) -> set[str]:
    return {u for u in (step.vm, st.get("copy_uuid"), st.get("back_uuid")) if u}


def _do_copy(ctx: Context, step: Step, st: dict, *, src_uuid: str, dest_sr: str, name: str, key: str) -> dict:
    src_ref = _vm_ref(ctx, src_uuid)
    if src_ref is None:
        raise StepFailed(f"VM {src_uuid} to copy is gone", next_step="check the journal and the pool")
    if ctx.session.xenapi.VM.get_power_state(src_ref) != "Halted":
        raise StepFailed(f"VM {src_uuid} is not halted; a consistent copy needs a halted VM",
                         next_step="shut it down cleanly and re-run with the same incident")
    if _leftovers(ctx, name, _protected(st, step)):
        raise StepFailed(f"a VM named {name!r} already exists; it is not one this journal knows",
                         next_step="rename or remove it (it is not the original) and re-run")
    identity = ops.vm_identity(ctx.session, src_ref)
    need = _copy_need(ctx, identity, dest_sr)
    free = ops.sr_free(ctx.session, [dest_sr]).get(dest_sr, 0)
    if need > free:
        raise StepFailed(f"{ctx.sr_label(dest_sr)} has {free / 2**30:,.1f} GiB free, the copy needs about "
                         f"{need / 2**30:,.1f} GiB; nothing was copied",
                         next_step=f"free space there or choose another staging SR ({option(ctx.front, 'staging')}) and re-run")
    dest_ref = ctx.sr_ref(dest_sr)
    if key == "copy_uuid":
        _block_original(ctx, step, src_ref)

    def progress(fraction: float) -> None:
        ctx.reporter.progress(f"{step.kind}: {fraction:6.1%} of VM '{identity['name']}' -> {ctx.sr_label(dest_sr)}")
        ctx.sample()

    try:
        new_ref = ops.copy_vm(ctx.session, src_ref, name, dest_ref, on_progress=progress,
                              on_task=lambda task: ctx.task_started(step, task), timeout_s=ctx.task_timeout_s)
    except (ops.TaskFailed, ops.TaskTimedOut) as exc:
        details = ops.failure_details(exc) or [str(exc)]
        removed = _rollback_copy(ctx, keep=_keep_for(step, st), name=name, dest_sr=dest_sr)
        raise StepFailed(f"{step.kind} failed: {' '.join(details[:3]).strip()}"
                         + (f"; removed {removed} half-made copy" if removed else "; nothing half-made was left"),
                         next_step=_copy_failed_next(ctx, details, dest_sr), rolled_back=True, error=details) from None
    macs = _adopt_copy(ctx, new_ref, st["original"])
    ctx.sample(force=True)
    return {key: ctx.session.xenapi.VM.get_uuid(new_ref), "macs_restored": macs}


def _block_original(ctx: Context, step: Step, vm_ref: str) -> None:
    ops.block_start(ctx.session, vm_ref,
                    f"incident {ctx.incident} is copying this VM and destroys it once the copy is verified; "
                    f"if that run is abandoned: xe vm-param-remove uuid={step.vm} param-name=blocked-operations "
                    "param-key=start")


def _adopt_copy(ctx: Context, vm_ref: str, original: dict) -> bool:
    """A copy carries the original's start block (xapi copies blocked_operations): lift it, and
    give the copy the original's MACs. Returns whether the VIFs were replaced."""
    ops.unblock_start(ctx.session, vm_ref)
    return _match_vifs(ctx, vm_ref, original)


def _match_vifs(ctx: Context, vm_ref: str, original: dict) -> bool:
    """VM.copy gives the copy new MACs (as xapi does); the copy gets the original's VIFs back."""
    current = ops.vm_identity(ctx.session, vm_ref)
    if not compare_vifs(original, current):
        return False
    ops.replace_vifs(ctx.session, vm_ref, original.get("vifs") or [])
    return True


def _copy_failed_next(ctx: Context, details: list[str], dest_sr: str) -> str:
    code = details[0] if details else ""
    if code in ("SR_BACKEND_FAILURE_44", "SR_FULL"):
        return (f"{ctx.sr_label(dest_sr)} ran out of space: free space there (or pass another "
                f"{option(ctx.front, 'staging')}), then {rerun_same(ctx.front)}")
    return "re-run with the same incident to try the copy again; if it fails again, read the host's SMlog"


def _rollback_copy(ctx: Context, *, keep: set[str], name: str, dest_sr: str) -> int:
    """Remove every VM called `name` (our copy's name) except those in keep, with its disks on dest_sr."""
    removed = 0
    for ref in _leftovers(ctx, name, keep):
        _destroy_vm_and_disks(ctx, ref, dest_sr, keep=keep)
        removed += 1
    return removed


def _keep_for(step: Step, st: dict) -> set[str]:
    """What a copy step's clean-up must never touch: the original, and on the way back the staging copy."""
    keep = {step.vm}
    if step.kind in ("copy-back", "verify-back") and st.get("copy_uuid"):
        keep.add(st["copy_uuid"])
    return keep


def _copy_args(ctx: Context, step: Step, st: dict) -> dict:
    name = _vm_name(st, step)
    if step.kind == "copy-out":
        return dict(src_uuid=step.vm, dest_sr=ctx.staging, name=name + COPY_SUFFIX, key="copy_uuid")
    return dict(src_uuid=st["copy_uuid"], dest_sr=ctx.source, name=name + BACK_SUFFIX, key="back_uuid")


def copy(ctx: Context, step: Step, st: dict) -> dict:
    return _do_copy(ctx, step, st, **_copy_args(ctx, step, st))


def probe_copy(ctx: Context, step: Step, st: dict):
    args = _copy_args(ctx, step, st)
    task = ctx.last_task(step)
    if task and ops.exists(ctx.session, "task", task):
        try:
            new_ref = ops.wait_task(ctx.session, task, timeout_s=ctx.task_timeout_s)
        except ops.TaskFailed:
            return "partial", None
        macs = _adopt_copy(ctx, new_ref, st["original"])
        return "done", {args["key"]: ctx.session.xenapi.VM.get_uuid(new_ref), "macs_restored": macs}
    found = _leftovers(ctx, args["name"], _keep_for(step, st))
    if not found:
        return "not-started", None
    if len(found) == 1:
        _adopt_copy(ctx, found[0], st["original"])
        copy_identity = ops.vm_identity(ctx.session, found[0])
        if not verify_copy(st["original"], copy_identity, expect_name=args["name"], expect_sr=args["dest_sr"]):
            return "done", {args["key"]: copy_identity["uuid"]}
    return "partial", None


def rollback_copy(ctx: Context, step: Step, st: dict) -> str:
    args = _copy_args(ctx, step, st)
    removed = _rollback_copy(ctx, keep=_keep_for(step, st), name=args["name"], dest_sr=args["dest_sr"])
    return f"removed {removed} half-made copy" if removed else "nothing half-made found"


# --- verification ----------------------------------------------------------------------------
def _expect(ctx: Context, step: Step, st: dict, dest: str) -> str | dict:
    """Where the disks must be: all on dest, or for live migration the planned disks on dest."""
    if _mode(ctx, step) != "migrate":
        return dest
    vm = next(v for v in ctx.plan["vms"] if v["uuid"] == step.vm)
    planned = {str(d.get("userdevice")) for d in vm.get("disks") or []}
    return {d["userdevice"]: (dest if d["userdevice"] in planned else d["sr"]) for d in st["original"]["disks"]}


def _verify(ctx: Context, step: Step, st: dict, *, uuid: str, name: str, sr: str, what: str) -> list[str]:
    ref = _vm_ref(ctx, uuid)
    if ref is None:
        return [f"the {what} {uuid} is gone"]
    return verify_copy(st["original"], ops.vm_identity(ctx.session, ref), expect_name=name,
                       expect_sr=_expect(ctx, step, st, sr), same_vm=(uuid == step.vm))


def _verify_or_remove(ctx: Context, step: Step, st: dict, *, uuid: str, name: str, sr: str, what: str,
                      copy_kind: str, next_step: str) -> None:
    """A copy that does not match the original is removed (never the original) and the step fails."""
    problems = _verify(ctx, step, st, uuid=uuid, name=name, sr=sr, what=what)
    if not problems:
        return
    removed = _rollback_copy(ctx, keep=_keep_for(step, st), name=name, dest_sr=sr)
    ctx.journal.append("rolled-back", step=f"{step.vm}:{copy_kind}", vm=step.vm, kind=copy_kind,
                       result={"removed": removed, "reason": f"{step.kind} failed"})
    raise StepFailed(f"the {what} does not match the original: " + "; ".join(problems), next_step=next_step,
                     rolled_back=True)


def verify_out(ctx: Context, step: Step, st: dict) -> dict:
    name = _vm_name(st, step)
    if ctx.staging and st.get("copy_uuid"):
        _verify_or_remove(ctx, step, st, uuid=st["copy_uuid"], name=name + COPY_SUFFIX, sr=ctx.staging,
                          what="staging copy", copy_kind="copy-out",
                          next_step="the original is untouched; the bad copy was removed. Re-run to copy again; "
                                    "if it differs again, report it (the pool changes the VM when copying)")
        return {"verified_out": True}
    if st.get("migrated"):  # live migration: the same VM, disks now on the staging SR
        problems = _verify(ctx, step, st, uuid=step.vm, name=name, sr=ctx.staging, what="VM")
        if problems:
            raise StepFailed("after the migration: " + "; ".join(problems),
                             next_step="the VM is running; check its disks in XenCenter before going on")
        return {"verified_out": True}
    if st.get("export_file"):
        return {"verified_out": True, **verify_export(st)}
    raise StepFailed("nothing to verify: the copy step left no result", next_step="re-run with the same incident")


def verify_back(ctx: Context, step: Step, st: dict) -> dict:
    name = _vm_name(st, step)
    if st.get("back_uuid"):
        _verify_or_remove(ctx, step, st, uuid=st["back_uuid"], name=name + BACK_SUFFIX, sr=ctx.source,
                          what="copy on the source SR", copy_kind="copy-back",
                          next_step=f"the VM is safe on {ctx.sr_label(ctx.staging)} as {st['copy_uuid']}; "
                                    "the bad copy was removed. Re-run to copy back again")
        return {"verified_back": True}
    uuid = st.get("imported_uuid") or step.vm
    problems = _verify(ctx, step, st, uuid=uuid, name=name, sr=ctx.source, what="VM")
    if problems:
        raise StepFailed("after the way back: " + "; ".join(problems),
                         next_step="the VM's data is on the source SR; check it before starting it")
    return {"verified_back": True}


# --- destroying ------------------------------------------------------------------------------
def destroy_original(ctx: Context, step: Step, st: dict) -> dict:
    """Only with a verified copy in hand; idempotent (finishes a destroy that was cut short)."""
    original = st["original"]
    replacement = st.get("copy_uuid") or st.get("export_file")
    if not replacement:
        raise StepFailed("no verified copy recorded; the original is kept", next_step="re-run from the copy step")
    if st.get("copy_uuid"):
        problems = _verify(ctx, step, st, uuid=st["copy_uuid"], name=original["name"] + COPY_SUFFIX,
                           sr=ctx.staging, what="staging copy")
        if problems and _vm_ref(ctx, st["copy_uuid"]) and ops.vm_identity(
                ctx.session, _vm_ref(ctx, st["copy_uuid"]))["name"] == original["name"]:
            problems = []  # already renamed by an earlier, interrupted run
        if problems:
            raise StepFailed("the staging copy no longer verifies: " + "; ".join(problems) + "; the original is kept",
                             next_step="check the staging copy; the original is untouched")
    else:
        verify_export(st)
    ref = _vm_ref(ctx, step.vm)
    if ref is not None:
        current = ops.vm_identity(ctx.session, ref)
        if current["power_state"] != "Halted":
            raise StepFailed(f"the original VM is {current['power_state']} again; it is kept",
                             next_step="someone started it: shut it down and re-run (a new copy is not needed "
                                       "unless it wrote data; to be safe, run again with a new incident)")
        if [d["vdi"] for d in current["disks"]] != [d["vdi"] for d in original["disks"]]:
            raise StepFailed("the original VM's disks changed since they were recorded; it is kept",
                             next_step=f"{NEW_PLAN} and run it with a new incident")
        for snap_uuid in original.get("snapshots") or []:
            snap_ref = _vm_ref(ctx, snap_uuid)
            if snap_ref and snap_uuid in (ctx.plan.get("snapshots") or []):
                _destroy_vm_and_disks(ctx, snap_ref, ctx.source, keep=_protected(st, step))
        ops.destroy_vm(ctx.session, ref)
    vdis = [d["vdi"] for d in original["disks"] if d["sr"] == ctx.source] + list(st.get("doomed_snapshot_vdis") or [])
    gone = _destroy_vdis(ctx, vdis, ctx.source)
    ctx.sample(force=True)
    return {"original_destroyed": True, "destroyed_vdis": gone}


def destroy_staging(ctx: Context, step: Step, st: dict) -> dict:
    name = _vm_name(st, step)
    problems = _verify(ctx, step, st, uuid=st["back_uuid"], name=name + BACK_SUFFIX, sr=ctx.source,
                       what="copy on the source SR")
    back_ref = _vm_ref(ctx, st["back_uuid"])
    if problems and back_ref and ops.vm_identity(ctx.session, back_ref)["name"] == name:
        problems = []
    if problems:
        raise StepFailed("the copy on the source SR no longer verifies: " + "; ".join(problems)
                         + "; the staging copy is kept", next_step="check both copies by hand")
    copy_ref = _vm_ref(ctx, st["copy_uuid"])
    gone: list[str] = []
    if copy_ref is not None:
        gone = _destroy_vm_and_disks(ctx, copy_ref, ctx.staging, keep={step.vm, st["back_uuid"]})
    ctx.sample(force=True)
    return {"staging_destroyed": True, "destroyed_staging_vdis": gone}


# --- names and identity ----------------------------------------------------------------------
def rename_copy(ctx: Context, step: Step, st: dict) -> dict:
    ref = _vm_ref(ctx, st["copy_uuid"])
    if ref is None:
        raise StepFailed(f"the staging copy {st['copy_uuid']} is gone", next_step="check the pool by hand")
    ops.set_name(ctx.session, ref, st["original"]["name"])
    return {"copy_renamed": True}


def rename_back(ctx: Context, step: Step, st: dict) -> dict:
    """The VM on the source SR gets back its name, and description / other_config if the copy lost them."""
    ref = _vm_ref(ctx, st["back_uuid"])
    if ref is None:
        raise StepFailed(f"the copy on the source SR {st['back_uuid']} is gone", next_step="check the pool by hand")
    original = st["original"]
    ops.set_name(ctx.session, ref, original["name"])
    restored = restore_identity(ctx, ref, original)
    return {"back_renamed": True, "restored": restored}


def restore_identity(ctx: Context, ref: str, original: dict) -> list[str]:
    current = ops.vm_identity(ctx.session, ref)
    restored = []
    if (current.get("description") or "") != (original.get("description") or ""):
        ops.set_description(ctx.session, ref, original.get("description") or "")
        restored.append("description")
    if verify_round_trip(original, current, checks=("other_config",)):
        ops.set_other_config(ctx.session, ref, {**current.get("other_config", {}), **original.get("other_config", {})})
        restored.append("other_config")
    return restored


# --- SR scan and the wait ----------------------------------------------------------------------
def scan_source(ctx: Context, step: Step, st: dict) -> dict:
    ops.scan_sr(ctx.session, ctx.sr_ref(ctx.source))
    ctx.sample(force=True)
    return {"scanned": True}


def wait_gc(ctx: Context, step: Step, st: dict) -> dict:
    mode = _mode(ctx, step)
    if mode == "offline":
        depth = {leaf: len(chain) for leaf, chain in (st.get("chains") or {}).items()}
        if all(d <= 1 for d in depth.values()):
            return {"wait": {"status": "done", "reason": "chains already flat"}}
        condition = chains_shorter(depth)
    else:
        # every VM still away must fit back, not just this one (several VMs leave together)
        need = 0
        for vm in ctx.plan["vms"]:
            if vm["mode"] == "offline":
                continue
            other = st if vm["uuid"] == step.vm else ctx.journal.vm_state(vm["uuid"])
            if other.get("original") and not other.get("verified_back"):
                need += _need_back(ctx, other)
        condition = chain_gone(set(st.get("old_chain") or []), need)
    result = wait_for_gc(ctx.session, ctx.source, condition, timeout_s=ctx.wait_timeout_s, reporter=ctx.reporter,
                         smlog=ctx.smlog, label=ctx.sr_label(ctx.source))
    summary = {"status": result.status, "reason": result.reason, "elapsed_s": round(result.elapsed_s, 1),
               "free": result.free, "smlog_tail": result.smlog_tail[-5:], "events": result.events}
    if result.status != "done":
        raise StepFailed(
            f"the GC did not finish within {ctx.wait_timeout_s:,.0f} s ({result.reason})",
            next_step=f"{_where(ctx, st, step)}; nothing is at risk. Re-run with the same incident to keep waiting "
                      f"(a longer {option(ctx.front, 'wait')}), or diagnose the GC with notebook 01 on the host's SMlog",
            error=["GC_WAIT_TIMEOUT", result.reason])
    return {"wait": summary}


def _need_back(ctx: Context, st: dict) -> int:
    """Free space the way back needs on the source SR (LVM: a fully inflated LV per disk)."""
    original = st["original"]
    if (st.get("source_type") or "") in LVM_TYPES:
        return sum(sizing.lvhd_lv_size(int(d["virtual_size"])) for d in original["disks"])
    if st.get("copy_uuid") and _vm_ref(ctx, st["copy_uuid"]):
        identity = ops.vm_identity(ctx.session, _vm_ref(ctx, st["copy_uuid"]))
        return sum(int(d.get("physical_utilisation") or 0) for d in identity["disks"])
    return sum(int(d.get("physical_utilisation") or 0) for d in original["disks"])


def _mode(ctx: Context, step: Step) -> str:
    return next(vm["mode"] for vm in ctx.plan["vms"] if vm["uuid"] == step.vm)


# --- live migration --------------------------------------------------------------------------
def _disk_ref(ctx: Context, step: Step) -> tuple[str, dict]:
    ref = _vm_ref(ctx, step.vm)
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
    _, disk = _disk_ref(ctx, step)
    return ("done", {"migrated": True}) if disk["sr"] == dest else ("not-started", None)


# --- export / import (the "transfer VM with an NFS mount" case) --------------------------------
def export_file_path(ctx: Context, step: Step) -> Path:
    return Path(ctx.plan["export_path"]).expanduser() / f"{ctx.incident}_{step.vm}.xva"


def export_out(ctx: Context, step: Step, st: dict) -> dict:
    dest = export_file_path(ctx, step)
    if not dest.parent.is_dir():
        raise StepFailed(f"export path {dest.parent} is not a mounted directory; nothing was exported",
                         next_step="mount the export path (e.g. the NFS share) and re-run with the same incident")
    original = _vm_ref(ctx, step.vm)
    if original:
        _block_original(ctx, step, original)
    try:
        size = ops.export_vm(ctx.session, step.vm, dest,
                             on_bytes=lambda n: ctx.reporter.progress(f"export: {n / 2**30:,.2f} GiB written"))
    except OSError as exc:
        dest.with_name(dest.name + ".partial").unlink(missing_ok=True)
        raise StepFailed(f"export to {dest} failed: {exc}", next_step="check the mount and its free space; re-run",
                         rolled_back=True) from None
    return {"export_file": str(dest), "export_bytes": size}


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


def import_back(ctx: Context, step: Step, st: dict) -> dict:
    try:
        refs = ops.import_vm(ctx.session, Path(st["export_file"]), ctx.sr_ref(ctx.source))
    except OSError as exc:
        _remove_imports(ctx, step, st)
        raise StepFailed(f"the import failed: {exc}", rolled_back=True,
                         next_step=f"the export is safe in {st['export_file']}; free space on "
                                   f"{ctx.sr_label(ctx.source)} if it is short, then re-run with the same incident") from None
    if not refs:
        raise StepFailed("the import returned no VM", next_step=f"the export is safe in {st['export_file']}; "
                                                                "import it by hand (xe vm-import)")
    ops.unblock_start(ctx.session, refs[0])  # an import may bring the original's block along
    return {"imported_uuid": ctx.session.xenapi.VM.get_uuid(refs[0])}


def _imports(ctx: Context, step: Step, st: dict) -> list[str]:
    return [ref for ref in ops.vms_named(ctx.session, _vm_name(st, step))
            if ctx.session.xenapi.VM.get_uuid(ref) != step.vm]


def _remove_imports(ctx: Context, step: Step, st: dict) -> int:
    found = _imports(ctx, step, st)
    for ref in found:
        _destroy_vm_and_disks(ctx, ref, ctx.source, keep={step.vm})
    return len(found)


def probe_import(ctx: Context, step: Step, st: dict):
    found = _imports(ctx, step, st)
    if len(found) == 1:
        identity = ops.vm_identity(ctx.session, found[0])
        if not verify_copy(st["original"], identity, expect_name=st["original"]["name"], expect_sr=ctx.source):
            return "done", {"imported_uuid": identity["uuid"]}
    return ("partial" if found else "not-started"), None


def rollback_import(ctx: Context, step: Step, st: dict) -> str:
    return f"removed {_remove_imports(ctx, step, st)} half-imported VM(s)"


# --- offline coalesce via the host plugin ------------------------------------------------------
def coalesce_plugin(ctx: Context, step: Step, st: dict) -> dict:
    host = ops.master_host(ctx.session)
    try:
        out = ops.call_plugin(ctx.session, host, "coalesce-leaf", "leaf-coalesce", {"vm_uuid": step.vm})
    except Exception as exc:
        details = ops.failure_details(exc)
        if details is None:
            raise
        raise StepFailed(f"the coalesce-leaf plugin failed: {' '.join(details[:3])}",
                         next_step="use mode offline without the plugin (shut down, scan, wait)", error=details) from None
    return {"plugin_output": str(out)[:500]}


# --- the last look -----------------------------------------------------------------------------
def final_check(ctx: Context, step: Step, st: dict) -> dict:
    uuid = final_vm_uuid(st, step)
    ref = _vm_ref(ctx, uuid)
    if ref is None:
        raise StepFailed(f"VM {uuid} is not there at the end", next_step="check the journal and the pool")
    identity = ops.vm_identity(ctx.session, ref)
    problems = verify_round_trip(st["original"], identity, expect_sr=_expect(ctx, step, st, ctx.source))
    records = ops.vdi_records(ctx.session)
    source_ref = ctx.sr_ref(ctx.source)
    on_sr = {rec["uuid"]: rec for rec in records.values() if rec.get("SR") == source_ref}
    depth_after = {d["vdi"]: len(ops.chain_of(d["vdi"], on_sr)) for d in identity["disks"]}
    depth_before = {leaf: len(chain) for leaf, chain in (st.get("chains") or {}).items()}
    return {"final_uuid": uuid, "differences": problems, "depth_before": depth_before, "depth_after": depth_after}


@dataclasses.dataclass(frozen=True)
class Action:
    run: Callable[[Context, Step, dict], dict]
    probe: Callable[[Context, Step, dict], tuple[str, dict | None]] | None = None  # None: just run again
    rollback: Callable[[Context, Step, dict], str] | None = None


ACTIONS: dict[str, Action] = {
    "record-original": Action(record_original),
    "shutdown": Action(shutdown, probe_halted),
    "copy-out": Action(copy, probe_copy, rollback_copy),
    "copy-back": Action(copy, probe_copy, rollback_copy),
    "migrate-out": Action(migrate, probe_migrate),
    "migrate-back": Action(migrate, probe_migrate),
    "export-out": Action(export_out),
    "import-back": Action(import_back, probe_import, rollback_import),
    "verify-out": Action(verify_out),
    "verify-back": Action(verify_back),
    "destroy-original": Action(destroy_original),
    "rename-copy": Action(rename_copy),
    "scan-source": Action(scan_source),
    "wait-gc": Action(wait_gc),
    "destroy-staging": Action(destroy_staging),
    "rename-back": Action(rename_back),
    "coalesce-plugin": Action(coalesce_plugin),
    "start": Action(start),
    "final-check": Action(final_check),
}
