"""Notebook 01's findings as sizing input: per-VDI and per-SR verdicts, sizes the SMlog printout
showed, and the coalesce rate it measured (`runbook smlog diagnose --json`, or SMlog files)."""

from __future__ import annotations

import math
from typing import Any

QCOW2_UNUSED = ("size", "lv_size", "coalesced_size")  # a QCOW2 image's printed sizes, kept out of VHD formulas


def findings_by_vdi(findings: dict[str, Any] | None, uuids: list[str]) -> dict[str, dict]:
    """Map notebook 01's per-VDI findings (short 8-char ids or full uuids) onto inventory uuids."""
    if not findings:
        return {}
    by_prefix: dict[str, list[str]] = {}
    for u in uuids:
        by_prefix.setdefault(u[:8], []).append(u)
    out: dict[str, dict] = {}
    for item in findings.get("vdis") or []:
        if not isinstance(item, dict):
            continue
        key = str(item.get("vdi") or "").lower()
        if not key:
            continue
        if str(item.get("format") or "").lower() == "qcow2":  # its sizes are not VHD sizes: not sized here
            item = {k: v for k, v in item.items() if k not in QCOW2_UNUSED}
        if key in by_prefix.get(key[:8], []):
            out[key] = item
        else:
            match = [u for u in by_prefix.get(key[:8], []) if u.startswith(key)]
            if len(match) == 1:
                out[match[0]] = item
    return out


def findings_by_sr(findings: dict[str, Any] | None, uuids: list[str]) -> dict[str, dict]:
    """Notebook 01's per-SR findings (short or full SR ids) by inventory SR uuid."""
    out: dict[str, dict] = {}
    for item in (findings or {}).get("srs") or []:
        if not isinstance(item, dict):
            continue
        key = str(item.get("sr") or "").lower()
        match = [u for u in uuids if key and u.startswith(key)]
        if len(match) == 1:
            out[match[0]] = item
    return out


def _rate(value: Any) -> float | None:
    try:
        rate = float(value)
    except (TypeError, ValueError):
        return None
    return rate if math.isfinite(rate) and rate > 0 else None


def measured_rate(findings: dict[str, Any] | None, sr: str | None = None) -> float | None:
    """Coalesce throughput (bytes/s) the SMlog showed: the SR's own (notebook 01 gives
    `srs[].coalesce_rate_bps`), else a pool-wide figure, else (no SR asked) the SRs' mean."""
    if not findings:
        return None
    for item in findings.get("srs") or []:
        if not isinstance(item, dict) or not sr or not item.get("sr"):
            continue
        if sr.startswith(str(item["sr"]).lower()):
            for key in ("coalesce_rate_bps", "rate_bps", "speed_bps"):
                if _rate(item.get(key)):
                    return _rate(item[key])
    for key in ("coalesce_rate_bps", "rate_bps", "gc_speed_bps"):
        if _rate(findings.get(key)):
            return _rate(findings[key])
    if sr is None:  # no pool-wide figure: the mean of the SRs' own rates
        rates = [_rate(item.get("coalesce_rate_bps")) for item in findings.get("srs") or []
                 if isinstance(item, dict)]
        rates = [r for r in rates if r]
        if rates:
            return sum(rates) / len(rates)
    return None


def load_findings(source) -> dict[str, Any] | None:
    """Notebook 01's diagnosis: a dict, a JSON file path, or None. Bad input is a one-line error."""
    from pathlib import Path

    from runbook_lib.errors import InputError

    if source is None or source == "" or isinstance(source, dict):
        return source or None
    from runbook_lib.input_files import read_json

    path = Path(source)
    data = read_json(path, "findings")
    if not isinstance(data, dict) or not isinstance(data.get("vdis", []), list) \
            or not isinstance(data.get("srs", []), list):
        raise InputError(f"{path} is not SMlog findings (runbook smlog diagnose --json)")
    return data


def findings_from_smlog(paths, *, year: int | None = None) -> dict[str, Any]:
    """Diagnose SMlog files (notebook 01's code) and add the measured coalesce rate."""
    from runbook_lib.smlog import diagnose, read_smlog
    from runbook_lib.smlog.rate import coalesce_rates

    read = read_smlog([str(p) for p in paths], year=year or None)
    findings = diagnose(read).to_json()
    rate = coalesce_rates(read.records).get(None)
    if rate:
        findings["coalesce_rate_bps"] = rate
    return findings


def gather_findings(findings_file=None, smlog_paths=(), *, year: int | None = None) -> dict[str, Any] | None:
    """Findings from a JSON file (notebook 01) and/or SMlog files (diagnosed here, with the rate)."""
    findings = load_findings(findings_file)
    paths = [p for p in (smlog_paths or ()) if str(p).strip()]
    if not paths:
        return findings
    from_log = findings_from_smlog(paths, year=year)
    if findings is None:
        return from_log
    findings = dict(findings)
    if from_log.get("coalesce_rate_bps") and not findings.get("coalesce_rate_bps"):
        findings["coalesce_rate_bps"] = from_log["coalesce_rate_bps"]
    return findings
