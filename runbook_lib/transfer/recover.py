"""When the journal cannot say where the VM is (lost, damaged, or kept under another outputs
folder), the pool can: the runbook's marks (marks.py) name this incident's copies.

`rebuild` writes what the marks prove into a fresh journal as `done` lines (flagged
`recovered`), so the run continues from there: a verified staging copy whose original is gone
means the copy is the VM; a verified copy back on the source SR whose staging copy is gone means
the way back is done. Only a copy marked verified is trusted this way; anything less is copied
again from the VM that is left.
"""

from __future__ import annotations

from runbook_lib.transfer import marks
from runbook_lib.transfer.journal import Journal
from runbook_lib.transfer.plan_steps import BACK_SUFFIX, COPY_SUFFIX, Step
from runbook_lib.xapi import operations as ops


def _verified(session, incident: str, vm: str, role: str) -> dict | None:
    for ref in marks.own_vms(session, incident=incident, original=vm, role=role):
        identity = ops.recorded_identity(session, ref)
        if identity["other_config"].get(marks.VERIFIED) == "yes":
            return identity
    return None


def _as_original(copy: dict, vm: dict, source: str) -> dict:
    """The original as its verified copy shows it (the copy matched it when it was verified)."""
    name = copy["name"]
    for suffix in (COPY_SUFFIX, BACK_SUFFIX):
        name = name[: -len(suffix)] if name.endswith(suffix) else name
    return dict(copy, uuid=vm["uuid"], name=name, power_state=vm.get("power_state"),
                other_config={k: v for k, v in copy["other_config"].items() if not marks.is_mark(k)},
                disks=[dict(d, sr=source) for d in copy["disks"]], snapshots=[])


def proven_steps(session, plan: dict, vm: dict, incident: str) -> dict[str, dict]:
    """kind -> the result the pool proves for it (empty: nothing to rebuild)."""
    if vm["mode"] != "copy" or ops.ref_by_uuid(session, "VM", vm["uuid"]) is not None:
        return {}
    staging = _verified(session, incident, vm["uuid"], marks.STAGING_COPY)
    back = _verified(session, incident, vm["uuid"], marks.COPY_BACK)
    known = staging or back
    if known is None:
        return {}
    source = plan["sr"]["uuid"]
    original = _as_original(known, vm, source)
    sr_type = ops.sr_record(session, ops.ref_by_uuid(session, "SR", source)).get("type", "")
    proven = {"record-original": {"original": original, "chains": {}, "old_chain": [], "source_type": sr_type,
                                  "doomed_snapshot_vdis": []},
              "shutdown": {"shut_down_by_us": vm.get("power_state") == "Running"},
              "verify-out": {"verified_out": True},
              "destroy-original": {"original_destroyed": True, "destroyed_vdis": []}}
    if staging:
        proven["copy-out"] = {"copy_uuid": staging["uuid"], "copy_vdis": [d["vdi"] for d in staging["disks"]]}
        if staging["name"] == original["name"]:
            proven["rename-copy"] = {"copy_renamed": True}
    if back:
        proven["copy-back"] = {"back_uuid": back["uuid"], "back_vdis": [d["vdi"] for d in back["disks"]]}
        proven["verify-back"] = {"verified_back": True}
        proven.update({"rename-copy": {"copy_renamed": True}, "scan-source": {"scanned": True},
                       "wait-gc": {"wait": {"status": "done", "reason": "the copy back exists"}}})
        if not staging:
            proven["copy-out"] = {"copy_uuid": None}
            proven["destroy-staging"] = {"staging_destroyed": True, "destroyed_staging_vdis": []}
    return proven


def rebuild(session, plan: dict, steps: list[Step], journal: Journal, incident: str) -> list[str]:
    """Write what the pool proves of each VM the journal knows nothing about; returns one line
    per VM rebuilt, saying where it was found."""
    lines = []
    for vm in plan["vms"]:
        if journal.vm_state(vm["uuid"]).get("original"):
            continue
        proven = proven_steps(session, plan, vm, incident)
        if not proven:
            continue
        for step in steps:
            if step.vm == vm["uuid"] and step.kind in proven:
                journal.append("done", step=step.id, vm=step.vm, kind=step.kind,
                               result={k: v for k, v in proven[step.kind].items() if v is not None}, recovered=True)
        where = proven.get("copy-back", {}).get("back_uuid") or proven["copy-out"].get("copy_uuid")
        lines.append(f"VM '{proven['record-original']['original']['name']}' found by the runbook's marks as {where}")
    if lines:
        journal.append("recovered", message="; ".join(lines))
    return lines
