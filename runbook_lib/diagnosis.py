"""One diagnosis from what the admin has: SMlog files, a pool read over XenAPI, or both, with the
storage manager's version and its known defects. `runbook diagnose` and notebook 01 run it.

    result = run_diagnosis(paths=["SMlog"], url="https://xen1.example", sm_version="3.2.5")
    result.to_json()                                   # runbook.diagnosis/1

The pool is only read (its inventory, SR messages, tasks and storage drivers: calls named
get_*, plus login and logout). sm's version is taken from the parameter, else a status
report among the paths (its package list), else XenAPI (see runbook_lib.sm_version).

`runbook.diagnosis/1` fields: schema, verdict, next_step, sources ({smlog: [paths], pool: the
URL or inventory file, or None}), sm_version, known_defects (the rows of the known-defects table
that explain a finding, or apply to this version), srs and vdis (merged rows:
runbook_lib.findings_merge), smlog (the `runbook.smlog.diagnosis/1` object, or None), pool (the
`runbook.pool.diagnosis/1` object, or None), notes (what could not be read).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from runbook_lib.errors import UsageError
from runbook_lib.findings_merge import apply_known_defects, merge_findings, overall
from runbook_lib.schemas import COMBINED_DIAGNOSIS_SCHEMA
from runbook_lib.sm_version import (
    SmVersion,
    choose,
    from_package_list,
    from_products,
    from_sm_records,
    parse_sm_version,
)

SCHEMA = COMBINED_DIAGNOSIS_SCHEMA
log = logging.getLogger(__name__)


@dataclass
class DiagnosisResult:
    """Both diagnoses (either may be None), sm's version, and the merged `runbook.diagnosis/1`."""

    data: dict[str, Any]
    smlog: Any = None          # runbook_lib.smlog.Diagnosis
    pool: Any = None           # runbook_lib.pool_diagnosis.PoolDiagnosis
    sm: SmVersion | None = None
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return self.data

    @property
    def verdict(self) -> str:
        return self.data["verdict"]

    @property
    def next_step(self) -> str:
        return self.data["next_step"]

    @property
    def srs(self) -> pd.DataFrame:
        return _frame(self.data["srs"], ["sr", "name", "type", "verdict", "sources", "to_coalesce", "gc_running",
                                         "gc_progress", "failures", "known_defect", "next_step"])

    @property
    def vdis(self) -> pd.DataFrame:
        return _frame(self.data["vdis"], ["vdi", "sr", "verdict", "sources", "pending", "xo_length", "attempts",
                                          "failures", "findings", "known_defect", "next_step"])

    def smlog_findings(self) -> dict[str, Any] | None:
        """The log's own findings (`runbook.smlog.diagnosis/1`) with sm's version and its known
        defects, as `runbook smlog diagnose --json` prints them; None without a log."""
        if self.smlog is None:
            return None
        return apply_known_defects(self.smlog.to_json(), self.sm)

    @property
    def known_defects(self) -> pd.DataFrame:
        return _frame(self.data["known_defects"], ["id", "applies", "title", "fixed_in", "srs", "vdis", "sources"])


def _frame(rows: list[dict], columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame([{c: r.get(c) for c in columns} for r in rows], columns=columns)


def report_version(paths: list[str]) -> SmVersion | None:
    """sm's version from the first status report among `paths` that lists its packages."""
    from runbook_lib.status_report import read_packages

    for path in paths:
        found = read_packages(path)
        if found.packages:
            sm = from_package_list(found.packages, f"status report {found.path}")
            if sm is not None:
                return sm
    return None


def read_sm_version(sm_version: str | None, paths: list[str], inventory: Any = None,
                    health: Any = None) -> SmVersion | None:
    """The parameter, else a status report's package list, else what XenAPI tells (with the product)."""
    from runbook_lib.known_defects import load_table

    given = parse_sm_version(sm_version, "parameter") if sm_version else None
    report = report_version(paths) if given is None else None
    records = from_sm_records(getattr(health, "sm", None))
    product = from_products(inventory.hosts, list(load_table().product_families)) if inventory is not None else None
    found = choose(given, report, records, product)
    if found is not None and found.product is None and product is not None:
        found = replace(found, product=product.product)
    return found


def _pool(url: str | None, inventory: str | None, pool_options: dict, sr: str | None):
    from runbook_lib.pool_diagnosis import diagnose_pool
    from runbook_lib.xapi.health import open_pool

    inv, health = open_pool(url=url, inventory=inventory, **pool_options)
    found = diagnose_pool(inv.srs, inv.vdis, health.messages, health.tasks, captured=inv.captured_at, sr=sr,
                          source=inv.source)
    return inv, health, found


def run_diagnosis(*, paths: list[str] | tuple = (), url: str | None = None, inventory: str | None = None,
                  sm_version: str | None = None, sr: str | None = None, year: int | None = None,
                  progress: Callable | None = None, **pool_options) -> DiagnosisResult:
    """Diagnose the log, the pool, or both (`pool_options`: user, password_env, password_file,
    verify_tls, ca_bundle, sim_options as for runbook_lib.xapi.connect)."""
    paths = [str(p) for p in paths or ()]
    if not paths and url is None and not inventory:
        raise UsageError("nothing to diagnose: give SMlog paths, a pool (--url URL / url), or both")
    if sm_version:
        parse_sm_version(sm_version)  # a bad value is refused before any reading
    smlog = pool = inv = health = None
    notes: list[str] = []
    if paths:
        from runbook_lib.smlog import diagnose, read_smlog

        read = read_smlog(paths, year=year, progress=progress)
        notes.extend(f"skipped {entry}" for entry in read.skipped)
        smlog = diagnose(read, sr=sr)
    if url is not None or inventory:
        inv, health, pool = _pool(url, inventory, pool_options, sr)
        notes.extend(f"not read from the pool: {what} ({why})" for what, why in health.errors.items())
    sm = read_sm_version(sm_version, paths, inv, health)
    log.info("sm version: %s", sm.describe() if sm else "unknown")
    return DiagnosisResult(data=combine(smlog, pool, sm, paths=paths, pool_source=url if url is not None
                                        else inventory, notes=notes),
                           smlog=smlog, pool=pool, sm=sm, notes=notes)


def combine(smlog: Any, pool: Any, sm: SmVersion | None, *, paths: list[str] | None = None,
            pool_source: str | None = None, notes: list[str] | None = None) -> dict[str, Any]:
    """The `runbook.diagnosis/1` object of two diagnoses (objects with to_json(), or None)."""
    log_json = smlog.to_json() if smlog is not None else None
    pool_json = pool.to_json() if pool is not None else None
    srs, vdis = merge_findings(log_json, pool_json)
    verdict, step = overall(srs, vdis)
    data = {"schema": SCHEMA, "verdict": verdict, "next_step": step,
            "sources": {"smlog": list(paths or []), "pool": pool_source if pool is not None else None},
            "srs": srs, "vdis": vdis, "smlog": log_json, "pool": pool_json, "notes": list(notes or [])}
    sr_types = {row["sr"]: row["type"] for row in srs if row.get("type")}
    return apply_known_defects(data, sm, sr_types)


def describe_sources(data: dict[str, Any]) -> str:
    """One line: what was read."""
    parts = []
    if data["sources"]["smlog"]:
        parts.append(f"SMlog {', '.join(Path(p).name for p in data['sources']['smlog'])}")
    if data["sources"]["pool"] is not None:
        parts.append(f"pool {data['sources']['pool'] or 'sim:'}")
    return " and ".join(parts) or "nothing"
