"""A plan.json becomes the ordered steps that carry it out.

Pure: no pool is touched here, so the dry run, the notebook's plan table and the executor
all show the same steps. Each step names the XenAPI call, the object it acts on and what it is
expected to do to each SR's free space, so an admin can check the remedy before it runs.

Step kinds (the executor in `actions.py` carries out each kind):
  check-pool        read-only: pool uuid, VM and SRs still exist
  record-original   read-only: the VM's name, disks, VIFs, other_config, power state
  shutdown          VM.clean_shutdown (never a hard shutdown)
  copy-out          Async.VM.copy of the halted VM onto the staging SR (a flat copy); the original's start blocked
  migrate-out       VDI.pool_migrate of one disk of the running VM onto the staging SR
  export-out        HTTP GET /export of the halted VM into an .xva file under export_path; start blocked
  verify-out        read-only: the copy matches the original (disks, sizes, order, VIFs, name)
  destroy-original  VM.destroy + VDI.destroy of the original (only after verify-out)
  rename-copy       VM.set_name_label: the staging copy takes the original's name
  scan-source       SR.scan: the GC notices the garbage and starts
  wait-gc           event.from on SR/VDI: until the old chain is gone (or the coalesce done)
  copy-back / migrate-back / import-back   the same moves in the other direction
  verify-back       read-only: the VM on the source SR matches the original
  destroy-staging   VM.destroy + VDI.destroy of the staging copy (only after verify-back)
  rename-back       VM.set_name_label: the VM on the source SR takes the original's name
  coalesce-plugin   Async.host.call_plugin coalesce-leaf/leaf-coalesce on the SR's master (offline mode,
                    where it applies); the chain is checked afterwards (its "nothing to do" is a success)
  force-leaf        VDI other-config:leaf-coalesce=force on the halted VM's leaves (offline mode)
  unforce-leaf      removes what is left of that key after the wait
  start             VM.start when the VM was running before
  final-check       read-only: name, description, MACs, VBD order, other_config, power state
"""

from __future__ import annotations

import dataclasses
from typing import Any

from runbook_lib.errors import InputError
from runbook_lib.schemas import PLAN_SCHEMA
from runbook_lib.units import gib, gib_number
from runbook_lib.xapi.operations import by_userdevice

MODES = ("copy", "migrate", "export", "offline")
COPY_SUFFIX = " [runbook staging copy]"
BACK_SUFFIX = " [runbook copy back]"


@dataclasses.dataclass(frozen=True)
class Step:
    """One thing the executor does, as shown in the dry run and written to the journal."""

    id: str  # unique within the plan: "<vm uuid>:<kind>[:<userdevice>]"
    vm: str  # uuid of the VM in the plan (the original)
    kind: str
    call: str  # the XenAPI call(s), e.g. "Async.VM.copy"
    target: str  # the object, in words an admin can match against XenCenter / xe
    changes_pool: bool
    effect: dict[str, int]  # SR uuid -> expected change of its free space in bytes (+ frees)
    note: str = ""
    disk: str | None = None  # userdevice, for per-disk steps

    def as_row(self, sr_names: dict[str, str]) -> dict[str, Any]:
        effect = ", ".join(
            f"{sr_names.get(sr, sr[:8])} {'+' if delta >= 0 else '-'}{gib(abs(delta))}"
            for sr, delta in self.effect.items() if delta
        )
        return {"step": self.id.split(":", 1)[1], "vm": self.vm[:8], "call": self.call, "object": self.target,
                "changes pool": self.changes_pool, "free space (expected)": effect or "-", "note": self.note}


def _int_field(value: Any, what: str) -> int:
    if isinstance(value, bool) or (value is not None and not isinstance(value, (int, float, str))):
        raise InputError(f"plan field {what} is not a number")
    try:
        return int(value or 0)
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"plan field {what} is not a number: {value!r}") from None


def _mapping(plan: dict, key: str, *, required: bool) -> dict:
    value = plan.get(key)
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise InputError(f"plan field {key} must be an object" + ("" if required else " or null"))
    return value


def validate_plan(plan: Any) -> dict:
    """The plan's shape, checked before anything else, with a one-line error for each problem."""
    if not isinstance(plan, dict):
        raise InputError("plan is not a JSON object")
    if plan.get("schema") != PLAN_SCHEMA:
        raise InputError(f"plan schema is {plan.get('schema')!r}, this runbook reads {PLAN_SCHEMA!r}")
    pool = _mapping(plan, "pool", required=True)
    if not pool.get("uuid") or not isinstance(pool["uuid"], str):
        raise InputError("plan has no pool.uuid: it cannot be checked against the pool")
    sr = _mapping(plan, "sr", required=True)
    if not sr.get("uuid") or not isinstance(sr["uuid"], str):
        raise InputError("plan has no sr.uuid (the SR whose coalesce is stuck)")
    _int_field(sr.get("free"), "sr.free")
    staging = _mapping(plan, "staging_sr", required=False)
    if staging and not isinstance(staging.get("uuid"), str):
        raise InputError("plan field staging_sr has no uuid")
    if staging:
        _int_field(staging.get("free"), "staging_sr.free")
    remedy = _mapping(plan, "remedy", required=False)
    _int_field(remedy.get("frees"), "remedy.frees")
    _int_field(_mapping(plan, "wait", required=False).get("timeout_s"), "wait.timeout_s")
    if plan.get("export_path") is not None and not isinstance(plan["export_path"], str):
        raise InputError("plan field export_path must be a path or null")
    if not isinstance(plan.get("snapshots") or [], list):
        raise InputError("plan field snapshots must be a list")
    vms = plan.get("vms")
    if not isinstance(vms, list) or not vms:
        raise InputError("plan has no VMs to act on (remedy "
                         f"{remedy.get('kind')!r}); nothing for transfer to do")
    for vm in vms:
        _validate_vm(vm, plan, staging)
    return plan


def _validate_vm(vm: Any, plan: dict, staging: dict) -> None:
    if not isinstance(vm, dict) or not vm.get("uuid") or not isinstance(vm["uuid"], str):
        raise InputError("plan has a VM entry without a uuid")
    if vm.get("name") is not None and not isinstance(vm["name"], str):
        raise InputError(f"plan VM {vm['uuid']} has a name that is not text")
    mode = vm.get("mode")
    if mode not in MODES:
        raise InputError(f"plan VM {vm['uuid']} has mode {mode!r}; expected one of {', '.join(MODES)}")
    if mode in ("copy", "migrate") and not staging.get("uuid"):
        raise InputError(f"plan VM {vm['uuid']} has mode {mode} but the plan names no staging_sr")
    if mode == "export" and not plan.get("export_path"):
        raise InputError(f"plan VM {vm['uuid']} has mode export but the plan names no export_path")
    if vm.get("power_state") not in ("Running", "Halted"):
        raise InputError(f"plan VM {vm['uuid']} has power_state {vm.get('power_state')!r};"
                         " only Running or Halted VMs can be moved")
    if mode == "migrate" and vm.get("power_state") != "Running":
        raise InputError(f"plan VM {vm['uuid']} is Halted: live migration needs a running VM (use mode copy)")
    _int_field(vm.get("bytes"), f"vms[{vm['uuid']}].bytes")
    _int_field(vm.get("staging_bytes"), f"vms[{vm['uuid']}].staging_bytes")
    disks = vm.get("disks") or []
    if not isinstance(disks, list) or not all(isinstance(d, dict) for d in disks):
        raise InputError(f"plan VM {vm['uuid']} has disks that are not a list of objects")
    for d in disks:
        _int_field(d.get("physical_utilisation"), "disks[].physical_utilisation")
        _int_field(d.get("virtual_size"), "disks[].virtual_size")


def _disks(vm: dict) -> list[dict]:
    return sorted(vm.get("disks") or [], key=by_userdevice)


def _moved_bytes(vm: dict) -> int:
    """Bytes the flat copy takes: the plan's estimate, or the disks' allocation."""
    if int(vm.get("bytes") or 0) > 0:
        return int(vm["bytes"])
    return sum(int(d.get("physical_utilisation") or 0) for d in vm.get("disks") or [])


def _freed_at_once(vm: dict) -> int:
    """What deleting the leaves frees before the GC runs (the leaves' own allocation)."""
    return sum(int(d.get("physical_utilisation") or 0) for d in vm.get("disks") or [])


def plan_steps(plan: dict, *, staging_sr_uuid: str = "") -> list[Step]:
    """Every step of the plan in order, for every VM; `staging_sr_uuid` overrides the plan's."""
    validate_plan(plan)
    source = plan["sr"]["uuid"]
    staging = staging_sr_uuid or (plan.get("staging_sr") or {}).get("uuid") or ""
    names = sr_names(plan, staging_sr_uuid=staging)
    remedy_frees = int((plan.get("remedy") or {}).get("frees") or 0)
    steps: list[Step] = []
    vms = plan["vms"]
    for vm in vms:
        steps += _vm_steps(plan, vm, source, staging, names, remedy_frees // len(vms))
    # Several VMs leave together, the GC works while all are away, then they come back: moving
    # them one after the other would never free what the plan counted on.
    return sorted(steps, key=lambda s: PHASES.get(s.kind, 2))


PHASES = {kind: 0 for kind in ("check-pool", "record-original", "shutdown", "copy-out", "migrate-out", "export-out",
                               "verify-out", "destroy-original", "rename-copy", "coalesce-plugin", "force-leaf")}
PHASES.update({"scan-source": 1, "wait-gc": 1})


def sr_names(plan: dict, *, staging_sr_uuid: str = "") -> dict[str, str]:
    names = {plan["sr"]["uuid"]: plan["sr"].get("name") or plan["sr"]["uuid"][:8]}
    staging = plan.get("staging_sr") or {}
    if staging.get("uuid"):
        names[staging["uuid"]] = staging.get("name") or staging["uuid"][:8]
    if staging_sr_uuid and staging_sr_uuid not in names:
        names[staging_sr_uuid] = staging_sr_uuid[:8]
    return names


def _vm_steps(plan: dict, vm: dict, source: str, staging: str, names: dict, frees: int) -> list[Step]:
    uuid, mode, name = vm["uuid"], vm["mode"], vm.get("name") or vm["uuid"][:8]
    running = vm.get("power_state") == "Running"
    moved = _moved_bytes(vm)
    on_staging = int(vm.get("staging_bytes") or 0) or moved  # by the staging SR type's rules, if the plan says
    at_once = _freed_at_once(vm)
    disk_total = sum(int(d.get("physical_utilisation") or 0) for d in vm.get("disks") or []) or 1
    after_gc = max(frees - at_once, 0)
    vm_label = f"VM '{name}' ({uuid})"
    src_label = f"SR '{names[source]}' ({source})"
    stg_label = f"SR '{names.get(staging, staging[:8])}' ({staging})" if staging else ""
    out: list[Step] = []

    def add(kind, call, target, changes, effect=None, note="", disk=None):
        sid = f"{uuid}:{kind}" + (f":{disk}" if disk is not None else "")
        out.append(Step(sid, uuid, kind, call, target, changes, dict(effect or {}), note, disk))

    add("check-pool", "pool.get_all_records, VM/SR.get_by_uuid", f"{vm_label}, {src_label}"
        + (f", {stg_label}" if stg_label and mode in ('copy', 'migrate') else ""), False,
        note="refuse if the pool, the VM or an SR is not the one the plan was made on")
    add("record-original", "VM/VBD/VDI/VIF.get_record", vm_label, False,
        note="journal what must survive: name, description, disks, MACs, other_config, power state")

    if mode == "offline":
        _offline_steps(add, vm, vm_label, src_label, source, frees, after_gc)
        return out

    if mode == "migrate":
        for disk in _disks(vm):
            size = int(disk.get("physical_utilisation") or 0)
            there = on_staging * size // disk_total
            add("migrate-out", "VDI.pool_migrate", f"disk {disk.get('userdevice')} of {vm_label} -> {stg_label}",
                True, {staging: -there, source: size}, disk=str(disk.get("userdevice")),
                note="live storage migration; the VM keeps running")
        add("verify-out", "VM/VBD/VDI.get_record", vm_label, False,
            note="every disk now on the staging SR with the same size and order")
        add("scan-source", "Async.SR.scan", src_label, True, note="kicks the GC on the old chain")
        add("wait-gc", "event.from(sr, vdi) + SMlog", src_label, False, {source: after_gc},
            note="until the old chain is gone and the VM's disks fit back")
        for disk in _disks(vm):
            size = int(disk.get("physical_utilisation") or 0)
            there = on_staging * size // disk_total
            add("migrate-back", "VDI.pool_migrate", f"disk {disk.get('userdevice')} of {vm_label} -> {src_label}",
                True, {source: -size, staging: there}, disk=str(disk.get("userdevice")))
        add("verify-back", "VM/VBD/VDI.get_record", vm_label, False)
        add("final-check", "VM/VBD/VDI/VIF.get_record", vm_label, False,
            note="name, description, MACs, VBD order, other_config, power state as before")
        return out

    if running:
        add("shutdown", "Async.VM.clean_shutdown", vm_label, True, note="a consistent copy needs a halted VM")
    if mode == "copy":
        add("copy-out", "VM.add_to_blocked_operations + Async.VM.copy + VIF.create", f"{vm_label} -> {stg_label}",
            True, {staging: -on_staging},
            note=f"copy named '{name}{COPY_SUFFIX}' (flat VHDs); its VIFs get the original MACs; "
                 "the original cannot be started until it is destroyed")
    else:
        add("export-out", "VM.add_to_blocked_operations + HTTP GET /export?uuid=",
            f"{vm_label} -> {plan['export_path']}", True,
            note=f"{gib(moved)} into an .xva file on the mounted path; "
                 "the original cannot be started until it is destroyed")
    add("verify-out", "VM/VBD/VDI/VIF.get_record" if mode == "copy" else "read the .xva header",
        f"copy of {vm_label}", False, note="disks, virtual sizes, device order, VIFs/MACs, name")
    add("destroy-original", "VM.destroy + VDI.destroy", f"{vm_label} on {src_label}", True, {source: at_once},
        note="only after verify-out passed; snapshots named in the plan go with it")
    if mode == "copy":
        add("rename-copy", "VM.set_name_label", f"staging copy -> '{name}'", True,
            note="the VM keeps its name while it waits on the staging SR")
    add("scan-source", "Async.SR.scan", src_label, True, note="the old chain becomes garbage for the GC")
    add("wait-gc", "event.from(sr, vdi) + SMlog", src_label, False, {source: after_gc},
        note="until the old chain is gone and the VM fits back")
    if mode == "copy":
        add("copy-back", "Async.VM.copy + VIF.create", f"staging copy -> {src_label}", True, {source: -moved},
            note=f"named '{name}{BACK_SUFFIX}' until verified; original MACs")
        add("verify-back", "VM/VBD/VDI/VIF.get_record", f"copy of {vm_label} on {src_label}", False)
        add("destroy-staging", "VM.destroy + VDI.destroy", f"staging copy on {stg_label}", True, {staging: on_staging},
            note="only after verify-back passed")
        add("rename-back", "VM.set_name_label", f"copy on {src_label} -> '{name}'", True)
    else:
        add("import-back", "HTTP PUT /import?sr_id=", f"{plan['export_path']} -> {src_label}", True,
            {source: -moved})
        add("verify-back", "VM/VBD/VDI/VIF.get_record", f"imported {vm_label}", False,
            note="the .xva file stays until the admin removes it")
    if running:
        add("start", "Async.VM.start", vm_label, True, note="the VM was running before")
    add("final-check", "VM/VBD/VDI/VIF.get_record", vm_label, False,
        note="name, description, MACs, VBD order, other_config, power state as before")
    return out


def _offline_steps(add, vm: dict, vm_label: str, src_label: str, source: str, frees: int, after_gc: int) -> None:
    """The offline coalesce as sm behaves (docs/plan.md): the coalesce-leaf plugin on the SR's
    master, or the VM halted and its leaf forced (leaf-coalesce=force, removed afterwards)."""
    running = vm.get("power_state") == "Running"
    leaves = ", ".join(v[:8] for v in vm.get("leaves") or []) or "its leaves"
    if vm.get("coalesce_plugin"):
        host = (vm.get("plugin_host") or "the SR's master")[:8]
        what = "suspends the VM, forces the leaf-coalesce, resumes it" if running else \
            "forces the leaf-coalesce of the halted VM"
        add("coalesce-plugin", "Async.host.call_plugin coalesce-leaf leaf-coalesce", f"{vm_label} on host {host}",
            True, {source: after_gc}, note=what + "; then the chain is checked")
    else:
        if running:
            add("shutdown", "Async.VM.clean_shutdown", vm_label, True,
                note="a leaf is forced only while no VM writes to it")
        add("force-leaf", "VDI.add_to_other_config leaf-coalesce=force", f"disks {leaves} of {vm_label}", True,
            note="lifts the GC's 10 s limit for this leaf (only with the VM halted)")
        add("scan-source", "Async.SR.scan", src_label, True, note="kicks the GC")
        add("wait-gc", "event.from(sr, vdi) + SMlog", src_label, False, {source: frees},
            note="until the VM's chain is shorter (leaf-coalesce done)")
        add("unforce-leaf", "VDI.remove_from_other_config leaf-coalesce", f"disks {leaves} of {vm_label}", True,
            note="the GC removes the key after its try; whatever is left of ours goes")
        if running:
            add("start", "Async.VM.start", vm_label, True)
    add("final-check", "VM/VBD/VDI/VIF.get_record", vm_label, False,
        note="power state, disks and chain depth after the coalesce")


JOURNAL_STATUS = {"done": "done", "started": "under way when it stopped", "failed": "failed",
                  "rolled-back": "rolled back"}


def steps_table(steps: list[Step], plan: dict, *, staging_sr_uuid: str = "", journal=None):
    """The steps as a DataFrame (one row per step) for the dry run and the notebook, with each
    SR's expected free space after the step (GiB), so a staging SR that would run dry shows.

    With the incident's journal, a `journal` column says which steps an earlier run finished
    (a resumed run skips them), so a dry run after a stop does not look like a fresh start.
    """
    import pandas as pd

    names = sr_names(plan, staging_sr_uuid=staging_sr_uuid)
    free = expected_free(plan, [], staging_sr_uuid=staging_sr_uuid)
    rows = []
    for step in steps:
        for sr, delta in step.effect.items():
            free[sr] = free.get(sr, 0) + delta
        row = step.as_row(names)
        for sr in free:
            row[f"{names.get(sr, sr[:8])} free GiB after"] = gib_number(free[sr], 1)
        rows.append(row)
    table = pd.DataFrame(rows)
    if journal is not None and steps:
        statuses = [JOURNAL_STATUS.get(journal.step_status(step.id) or "", "") for step in steps]
        if any(statuses):
            table.insert(1, "journal", statuses)
    return table


def expected_free(plan: dict, steps: list[Step], *, staging_sr_uuid: str = "") -> dict[str, int]:
    """Each SR's free space after all steps, as the plan expects it."""
    free = {plan["sr"]["uuid"]: int(plan["sr"].get("free") or 0)}
    staging = plan.get("staging_sr") or {}
    if staging.get("uuid"):
        free[staging_sr_uuid or staging["uuid"]] = int(staging.get("free") or 0)
    for step in steps:
        for sr, delta in step.effect.items():
            free[sr] = free.get(sr, 0) + delta
    return free
