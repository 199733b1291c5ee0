"""What notebook 03 calls, so the notebook stays a list of calls and displays.

Opening the pool (or the embedded simulator) across cells, making a plan when none is given,
and the final picture: each SR's space and the VM's VHD chains after the remedy.
"""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path
from typing import Any

from runbook_lib.locations import outputs_dir
from runbook_lib.units import GIB, gib
from runbook_lib.xapi import operations as ops

DEMO_SCENARIO = "seed-stuck-leaf-coalesce"


@dataclasses.dataclass
class OpenPool:
    """A connection kept open across notebook cells; close() logs out (and stops the simulator)."""

    session: Any
    url: str
    smlog: str | None
    _stack: contextlib.ExitStack

    def close(self) -> None:
        self._stack.close()


def open_pool(url: str, user: str, password_env: str, *, incident: str, password_file: str = "",
              verify_tls: bool = True, ca_bundle: str = "", sim_speed: float | None = None) -> OpenPool:
    """Log in to url; "" starts the bundled simulator (seed scenario) with its SMlog under outputs/<incident>/."""
    from runbook_lib.xapi import connect

    stack = contextlib.ExitStack()
    smlog = None
    options = {}
    if not url or url.startswith("sim:"):
        folder = outputs_dir() / incident
        folder.mkdir(parents=True, exist_ok=True)
        smlog = str(folder / "simulator-SMlog")
        options = {"smlog": smlog}
        if sim_speed:
            options["speed"] = float(sim_speed)
    session = stack.enter_context(connect(url, user, password_env=password_env, password_file=password_file or None,
                                          verify_tls=verify_tls, ca_bundle=ca_bundle or None,
                                          retry_refused_s=60.0, sim_options=options))
    return OpenPool(session=session, url=url, smlog=smlog, _stack=stack)


def load_or_make_plan(plan_path: str, session, *, incident: str = "", staging_sr_uuid: str = "",
                      url: str = "") -> tuple[dict, str]:
    """The plan from plan_path, or one made on the connected pool (notebook 02's way).

    A plan made here is kept as outputs/<incident>/plan.json and reused when the notebook runs
    again with the same incident, so a resumed run carries out the very same plan.
    """
    from runbook_lib.transfer import load_plan

    if plan_path:
        return load_plan(plan_path), f"plan file {plan_path}"
    kept = outputs_dir() / incident / "plan.json" if incident else None
    if kept is not None and kept.is_file():
        return load_plan(kept), f"plan made earlier for incident {incident} ({kept})"
    from runbook_lib.errors import InputError
    from runbook_lib.plan import assess
    from runbook_lib.xapi import fetch_inventory

    inventory = fetch_inventory(session, source_url=url or None)
    result = assess(inventory, staging_sr=staging_sr_uuid or None)
    plan = result.plan(url=url or None)
    if plan is None:
        raise InputError("the pool has no stuck coalesce that a transfer could fix: nothing to plan")
    if kept is not None:
        from runbook_lib.plan import write_plan

        write_plan(plan, kept)
    return plan, f"plan made now on {url or 'the embedded simulator (' + DEMO_SCENARIO + ')'}"


def final_state(session, plan: dict, outcome) -> tuple[Any, Any]:
    """Two tables: the plan's SRs (size, free now, free when planned) and the VMs' disk chains."""
    import pandas as pd

    srs = []
    planned = {plan["sr"]["uuid"]: plan["sr"]}
    if plan.get("staging_sr"):
        planned[plan["staging_sr"]["uuid"]] = plan["staging_sr"]
    for uuid, entry in planned.items():
        ref = ops.ref_by_uuid(session, "SR", uuid)
        if ref is None:
            continue
        rec = ops.sr_record(session, ref)
        srs.append({"sr": rec["name_label"], "type": rec["type"], "size GiB": rec["physical_size"] / GIB,
                    "free when planned GiB": int(entry.get("free") or 0) / GIB, "free now GiB": rec["free"] / GIB})
    records = ops.vdi_records(session)
    by_uuid = {rec["uuid"]: rec for rec in records.values()}
    chains = []
    for vm in plan["vms"]:
        final = (outcome.final.get("vms") or {}).get(vm["uuid"], {}) if outcome else {}
        uuid = final.get("final_uuid") or vm["uuid"]
        ref = ops.ref_by_uuid(session, "VM", uuid)
        if ref is None:
            chains.append({"vm": vm.get("name"), "vm uuid": uuid, "disk": None, "sr": None, "chain depth": None,
                           "chain": "VM not found (see the journal)"})
            continue
        identity = ops.vm_identity(session, ref)
        for disk in identity["disks"]:
            chain = ops.chain_of(disk["vdi"], by_uuid)
            chains.append({"vm": identity["name"], "vm uuid": uuid, "disk": disk["userdevice"],
                           "sr": disk["sr"][:8], "chain depth": len(chain),
                           "chain": " <- ".join(c[:8] for c in reversed(chain))})
    return pd.DataFrame(srs), pd.DataFrame(chains)


def outcome_record(outcome, plan: dict) -> dict:
    """What the notebook records for the audit trail and the postmortem (notebook 04)."""
    samples = outcome.samples
    free_before, free_after = {}, {}
    if samples is not None and len(samples):
        for sr, group in samples.sort_values("time").groupby("sr"):
            free_before[sr] = int(group["free"].iloc[0])
            free_after[sr] = int(group["free"].iloc[-1])
    free_after.update({sr: int(v) for sr, v in (outcome.final.get("srs") or {}).items()})
    depth = {uuid: {"before": v.get("depth_before"), "after": v.get("depth_after")}
             for uuid, v in (outcome.final.get("vms") or {}).items()}
    return {**outcome.summary(), "plan_remedy": (plan.get("remedy") or {}).get("kind"),
            "vms": [{"uuid": v["uuid"], "name": v.get("name"), "mode": v["mode"]} for v in plan["vms"]],
            "sr": plan["sr"]["uuid"], "sr_name": plan["sr"].get("name"),
            "staging_sr": (plan.get("staging_sr") or {}).get("uuid"),
            "free_before": free_before, "free_after": free_after, "chain_depth": depth,
            "steps": outcome.outcomes, "free_space": outcome.samples,
            "journal": str(Path(outcome.journal)) if outcome.journal else None}


def demo_parameters(plan_path: str | Path, incident: str) -> dict:
    """Parameters that make notebook 03 execute plan_path on the simulator (a rehearsal)."""
    from runbook_lib.transfer import load_plan

    plan = load_plan(plan_path)
    return {"plan_path": str(plan_path), "incident": incident, "dry_run": False,
            "confirm_vm_uuid": ",".join(vm["uuid"] for vm in plan["vms"])}


def demo_summary(executed_notebook: str | Path) -> list[str]:
    """Lines for `make demo`: the SR's free space and the chain depth before and after."""
    from runbook_lib.record import read_records

    rec = read_records(executed_notebook).get("transfer")
    if not rec:
        return [f"notebook 03 recorded no transfer outcome ({executed_notebook})"]
    lines = [f"transfer: {rec['status']} - {rec['message']}"]
    sr = rec.get("sr")
    before, after = (rec.get("free_before") or {}).get(sr), (rec.get("free_after") or {}).get(sr)
    if before is not None and after is not None:
        lines.append(f"SR '{rec.get('sr_name') or sr}': free {gib(before)} before, "
                     f"{gib(after)} after")
    for vm, depth in (rec.get("chain_depth") or {}).items():
        b, a = depth.get("before") or {}, depth.get("after") or {}
        if b and a:
            lines.append(f"VM {vm[:8]}: deepest VHD chain {max(b.values())} before, {max(a.values())} after")
    if rec.get("next_step"):
        lines.append(f"next: {rec['next_step']}")
    lines.append(f"journal: {rec.get('journal')}")
    return lines
