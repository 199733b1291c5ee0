"""What each step kind does to the pool, how it checks whether it already happened, and how it
undoes a half-made result: the table `ACTIONS` maps each step kind to those three.

Every action is written so that running it twice is harmless: it first looks at the pool and
does only what is still missing. The kinds live by what they decide: copies and their checks
(`copies.py`, `checks.py`), destroying (`cleanup.py`), power (`power.py`), migration and
export (`moves.py`); the short ones are here.

Per-VM state (`st`) is what earlier steps returned, kept in the journal: `original` (identity
record), `chains`, `old_chain` (VDIs that become garbage), `copy_uuid`, `copy_vdis`, `back_uuid`, ...
"""

from __future__ import annotations

import dataclasses
from typing import Callable

from runbook_lib import sizing
from runbook_lib.transfer import marks
from runbook_lib.transfer.checks import expected_srs, verify_back, verify_out
from runbook_lib.transfer.cleanup import destroy_original, destroy_staging, remove_leftovers
from runbook_lib.transfer.context import Context, StepFailed, final_vm_uuid, vm_ref, where
from runbook_lib.transfer.copies import copy, probe_copy, rollback_copy
from runbook_lib.transfer.fronts import NEW_PLAN, option
from runbook_lib.transfer.moves import export_out, import_back, migrate, probe_import, probe_migrate, rollback_import
from runbook_lib.transfer.offline import coalesce_plugin, force_leaf, probe_force, probe_plugin, unforce_leaf
from runbook_lib.transfer.plan_steps import Step
from runbook_lib.transfer.power import probe_halted, probe_started, shutdown, start
from runbook_lib.transfer.verify import verify_round_trip
from runbook_lib.transfer.wait import chain_gone, chains_shorter, wait_for_gc
from runbook_lib.xapi import operations as ops


# --- record-original -------------------------------------------------------------------------
def record_original(ctx: Context, step: Step, st: dict) -> dict:
    ref = vm_ref(ctx, step.vm)
    if ref is None:
        raise StepFailed(f"VM {step.vm} no longer exists", next_step=NEW_PLAN)
    identity = ops.recorded_identity(ctx.session, ref)
    records = ops.vdi_records(ctx.session)
    source_ref = ctx.sr_ref(ctx.source)
    on_sr = {rec["uuid"]: rec for rec in records.values() if rec.get("SR") == source_ref}
    chains = {d["vdi"]: ops.chain_of(d["vdi"], on_sr) for d in identity["disks"] if d["sr"] == ctx.source}
    ours = set().union(*chains.values()) if chains else set()
    # snapshots the plan deletes go with the VM, and a storage migration takes the snapshots of
    # each disk it moves along; any other VDI keeps its ancestors alive
    doomed_snapshot_vdis = set(_planned_snapshot_vdis(ctx, identity))
    moved_along = _snapshots_of(records, set(chains)) & set(on_sr) if ctx.mode(step.vm) == "migrate" else set()
    leaving = doomed_snapshot_vdis | moved_along
    shared = set()
    for uuid in on_sr:
        if uuid in ours or uuid in leaving:
            continue
        shared |= set(ops.chain_of(uuid, on_sr))
    old_chain = sorted((ours | leaving) - shared)
    sr_type = ops.sr_record(ctx.session, source_ref).get("type", "")
    return {"original": identity, "chains": chains, "old_chain": old_chain, "source_type": sr_type,
            "doomed_snapshot_vdis": sorted(doomed_snapshot_vdis)}


def _snapshots_of(records: dict[str, dict], leaves: set[str]) -> set[str]:
    """Uuids of the VDIs snapshotted from these leaves (VDI.snapshot_of), over records by ref."""
    uuid_of = {ref: rec["uuid"] for ref, rec in records.items()}
    return {rec["uuid"] for rec in records.values() if uuid_of.get(rec.get("snapshot_of")) in leaves}


def _planned_snapshot_vdis(ctx: Context, identity: dict) -> list[str]:
    planned = set(ctx.plan.get("snapshots") or [])
    out = []
    for snap_uuid in identity.get("snapshots") or []:
        if snap_uuid not in planned:
            continue
        ref = vm_ref(ctx, snap_uuid)
        if ref:
            out += [d["vdi"] for d in ops.vm_identity(ctx.session, ref)["disks"]]
    return out


# --- names and identity ----------------------------------------------------------------------
def rename_copy(ctx: Context, step: Step, st: dict) -> dict:
    ref = vm_ref(ctx, st["copy_uuid"])
    if ref is None:
        raise StepFailed(f"the staging copy {st['copy_uuid']} is gone", next_step="check the pool by hand")
    ops.set_name(ctx.session, ref, st["original"]["name"])
    return {"copy_renamed": True}


def rename_back(ctx: Context, step: Step, st: dict) -> dict:
    """The VM on the source SR gets back its name, and description / other_config if the copy lost them."""
    ref = vm_ref(ctx, st["back_uuid"])
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
        kept = {k: v for k, v in current.get("other_config", {}).items() if not marks.is_mark(k)}
        ops.set_other_config(ctx.session, ref, {**kept, **original.get("other_config", {})})
        restored.append("other_config")
    return restored


# --- SR scan and the wait ----------------------------------------------------------------------
def scan_source(ctx: Context, step: Step, st: dict) -> dict:
    ops.scan_sr(ctx.session, ctx.sr_ref(ctx.source))
    ctx.sample(force=True)
    return {"scanned": True}


def wait_gc(ctx: Context, step: Step, st: dict) -> dict:
    mode = ctx.mode(step.vm)
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
            next_step=f"{where(ctx, st, step)}; nothing is at risk. Re-run with the same incident to keep waiting "
                      f"(a longer {option(ctx.front, 'wait')}), or diagnose the GC with notebook 01 on the host's "
                      "SMlog",
            error=["GC_WAIT_TIMEOUT", result.reason])
    return {"wait": summary}


def _need_back(ctx: Context, st: dict) -> int:
    """Free space the way back needs on the source SR (LVM: a fully inflated LV per disk)."""
    original = st["original"]
    if (st.get("source_type") or "") in sizing.LVM_TYPES:
        return sum(sizing.lvhd_lv_size(int(d["virtual_size"])) for d in original["disks"])
    if st.get("copy_uuid") and vm_ref(ctx, st["copy_uuid"]):
        identity = ops.vm_identity(ctx.session, vm_ref(ctx, st["copy_uuid"]))
        return sum(int(d.get("physical_utilisation") or 0) for d in identity["disks"])
    return sum(int(d.get("physical_utilisation") or 0) for d in original["disks"])


# --- the last look -----------------------------------------------------------------------------
def final_check(ctx: Context, step: Step, st: dict) -> dict:
    uuid = final_vm_uuid(st, step.vm)
    ref = vm_ref(ctx, uuid)
    if ref is None:
        raise StepFailed(f"VM {uuid} is not there at the end", next_step="check the journal and the pool")
    identity = ops.vm_identity(ctx.session, ref)
    problems = verify_round_trip(st["original"], identity, expect_sr=expected_srs(ctx, step, st, ctx.source))
    records = ops.vdi_records(ctx.session)
    source_ref = ctx.sr_ref(ctx.source)
    on_sr = {rec["uuid"]: rec for rec in records.values() if rec.get("SR") == source_ref}
    depth_after = {d["vdi"]: len(ops.chain_of(d["vdi"], on_sr)) for d in identity["disks"]}
    depth_before = {leaf: len(chain) for leaf, chain in (st.get("chains") or {}).items()}
    return {"final_uuid": uuid, "differences": problems, "depth_before": depth_before, "depth_after": depth_after,
            **tidy_up(ctx, step, st)}


def tidy_up(ctx: Context, step: Step, st: dict) -> dict:
    """Nothing of the runbook's stays behind the VM that stays: its marks, a start block of ours,
    and this incident's other copies and their disks."""
    vm = next(v for v in ctx.plan["vms"] if v["uuid"] == step.vm)
    ref = vm_ref(ctx, final_vm_uuid(st, step.vm))
    unmarked = marks.unmark(ctx.session, ref) if ref else []
    unblocked = ops.unblock_start(ctx.session, ref) if ref else False
    removed = remove_leftovers(ctx, vm, st)
    return {"tidied": {"marks": unmarked, "start_block": unblocked, "removed": removed}}


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
    "coalesce-plugin": Action(coalesce_plugin, probe_plugin),
    "force-leaf": Action(force_leaf, probe_force),
    "unforce-leaf": Action(unforce_leaf),
    "start": Action(start, probe_started),
    "final-check": Action(final_check),
}
