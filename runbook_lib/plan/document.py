"""plan.json: one remedy as the document notebook 03 executes (docs/plan.md, schema
runbook.plan/1), written atomically and readable by its owner only."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from runbook_lib.plan.remedy import Remedy
from runbook_lib.record import to_jsonable
from runbook_lib.schemas import PLAN_SCHEMA
from runbook_lib.sizing import Sizing


def make_plan(sizing: Sizing, remedy: Remedy, *, url: str | None = None,
              inventory_path: str | None = None, export_path: str | None = None,
              wait_timeout_s: float = 3600.0, alternatives: list[Remedy] | None = None) -> dict:
    """The plan.json document (docs/plan.md) for one remedy."""
    inv = sizing.inventory
    sr = sizing.sr(remedy.sr)
    pool = inv.pool
    plan = {
        "schema": PLAN_SCHEMA,
        "created": pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ"),
        "pool": {"uuid": pool["uuid"], "name": pool["name"], "url": url or None,
                 "inventory": str(inventory_path) if inventory_path else None},
        "sr": {k: sr.get(k) for k in ("name", "type", "provisioning", "size", "free", "needed", "shortfall",
                                      "needed_min", "shortfall_min", "sizes_known")}
              | {"uuid": remedy.sr},
        "remedy": {"kind": remedy.kind, "bytes_to_move": int(remedy.bytes_to_move),
                   "frees": int(remedy.frees), "duration_s": float(remedy.duration_s),
                   "downtime_s": float(remedy.downtime_s), "needed": int(remedy.needed), "reason": remedy.reason,
                   "feasible": remedy.feasible},
        "staging_sr": remedy.staging_sr if remedy.kind == "move-vms" else None,
        "vms": remedy.vms,
        "snapshots": list(remedy.snapshots) if remedy.kind == "delete-snapshots" else [],
        "grow_by": int(remedy.grow_by) if remedy.kind == "grow-sr" else 0,
        "export_path": export_path if any(v["mode"] == "export" for v in remedy.vms) else None,
        "wait": {"timeout_s": float(wait_timeout_s)},
        "coalesces": [
            {k: c[k] for k in ("vdi", "kind", "needed", "needed_min", "fits", "offline_via", "size_known",
                               "size_source")}
            for c in sizing.coalesces[sizing.coalesces["sr"] == remedy.sr].to_dict("records")
        ],
        "warnings": list(sizing.warnings),
        "alternatives": [{"kind": r.kind, "feasible": r.feasible, "downtime_s": float(r.downtime_s),
                          "reason": r.reason}
                         for r in (alternatives or []) if r is not remedy and r.sr == remedy.sr],
    }
    return to_jsonable(plan)


def choose(remedies: list[Remedy]) -> Remedy | None:
    """The remedy a plan is made of: the best feasible one of the SR with the worst need."""
    feasible = [r for r in remedies if r.feasible]
    return feasible[0] if feasible else None


def write_plan(plan: dict, path: str | Path) -> Path:
    """Write plan.json atomically, readable by its owner only, like every run output."""
    import os

    from runbook_lib.errors import InputError
    from runbook_lib.input_files import check_output_file

    path = check_output_file(path, "the plan")
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(json.dumps(plan, indent=2) + "\n")
        os.chmod(tmp, 0o600)
        tmp.replace(path)
    except OSError as err:
        raise InputError(f"cannot write the plan to {path}: {err.strerror or err}") from None
    return path


def remedies_json(remedies: list[Remedy]) -> list[dict]:
    return [to_jsonable(r.to_json()) for r in remedies]
