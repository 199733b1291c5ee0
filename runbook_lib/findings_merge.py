"""Findings brought together: the SMlog diagnosis and the pool diagnosis merged per SR and VDI,
and the storage manager's known defects applied to the verdicts they explain. Pure: JSON in,
JSON out.

`merge_findings(smlog, pool)` takes a `runbook.smlog.diagnosis/1` and a
`runbook.pool.diagnosis/1` object (either may be None). A log names an SR or VDI by its full
uuid or by the short id it prints; a row of the log and a row of the pool are one when the
pool's uuid starts with the log's id and no other uuid of the pool does. A merged row has the
fields of both (the log's sizes, attempts and failures; the pool's count, GC task, switches
and findings), `sources` (["smlog", "pool"]), `smlog_verdict` and `pool_verdict`, and the
worse verdict with that side's next step (the log's on a tie: it says more).

`apply_known_defects(findings, sm, sr_types)` adds `sm_version` and `known_defects` to any
such object and, on each row whose symptom a defect of the table has on that SR type, a
`known_defect` field: {id, applies}. "yes" replaces the row's next step with the defect's
("update sm", not "free space"); "maybe" (the version, or the build's release, is not known)
adds to it what to check and what the answer is then.
"""

from __future__ import annotations

import copy

from runbook_lib.known_defects import KnownDefect, load_table
from runbook_lib.pool_diagnosis import severity
from runbook_lib.sm_version import SmVersion

_SR_KEEP = ("name", "type")


def _match(key: str | None, uuids: list[str]) -> str | None:
    """The one pool uuid a log id (full or short) stands for, else None."""
    if not isinstance(key, str) or not key:
        return None
    key = key.lower()
    found = [u for u in uuids if u.startswith(key)]
    return found[0] if len(found) == 1 else None


def _merge_row(log_row: dict | None, pool_row: dict | None, id_key: str) -> dict:
    if pool_row is None:
        return {**log_row, "sources": ["smlog"], "smlog_verdict": log_row["verdict"], "pool_verdict": None}
    if log_row is None:
        return {**pool_row, "sources": ["pool"], "smlog_verdict": None, "pool_verdict": pool_row["verdict"]}
    row = {**pool_row, **{k: v for k, v in log_row.items() if v is not None or k not in pool_row}}
    row[id_key] = pool_row[id_key]
    if id_key == "vdi":
        row["sr"] = pool_row.get("sr") or log_row.get("sr")
    for key in _SR_KEEP:
        row[key] = pool_row.get(key) or log_row.get(key)
    pool_wins = severity(pool_row["verdict"]) > severity(log_row["verdict"])
    row["verdict"] = pool_row["verdict"] if pool_wins else log_row["verdict"]
    row["next_step"] = pool_row["next_step"] if pool_wins else log_row["next_step"]
    row["evidence"] = list(log_row.get("evidence") or []) + list(pool_row.get("evidence") or [])
    row.update(sources=["smlog", "pool"], smlog_verdict=log_row["verdict"], pool_verdict=pool_row["verdict"])
    return row


def _merge_rows(log_rows: list[dict], pool_rows: list[dict], id_key: str) -> list[dict]:
    by_uuid = {r[id_key]: r for r in pool_rows}
    uuids = list(by_uuid)
    merged, used = [], set()
    for log_row in log_rows:
        uuid = _match(log_row.get(id_key), uuids)
        if uuid is not None and uuid not in used:
            used.add(uuid)
            merged.append(_merge_row(log_row, by_uuid[uuid], id_key))
        else:
            merged.append(_merge_row(log_row, None, id_key))
    merged.extend(_merge_row(None, r, id_key) for r in pool_rows if r[id_key] not in used)
    if id_key == "vdi":  # a log VDI row names its SR by the log's id: use the pool's uuid
        sr_uuids = [r["sr"] for r in pool_rows if r.get("sr")]
        for row in merged:
            row["sr"] = _match(row.get("sr"), sorted(set(sr_uuids))) or row.get("sr")
    merged.sort(key=lambda r: (-severity(r["verdict"]), str(r.get("sr") or ""), str(r[id_key])))
    return merged


def overall(srs: list[dict], vdis: list[dict]) -> tuple[str, str]:
    """The verdict and next step of the whole: the worst VDI, else the worst SR (VDI first on a tie)."""
    top_vdi = vdis[0] if vdis else None
    top_sr = srs[0] if srs else None
    if top_vdi and (top_sr is None or severity(top_vdi["verdict"]) >= severity(top_sr["verdict"])):
        return top_vdi["verdict"], top_vdi["next_step"]
    if top_sr:
        return top_sr["verdict"], top_sr["next_step"]
    return "unknown", "nothing was read: give SMlog paths, a pool URL, or both"


def merge_findings(smlog: dict | None, pool: dict | None) -> tuple[list[dict], list[dict]]:
    """SR rows and VDI rows of both diagnoses, merged, worst first."""
    srs = _merge_rows(list((smlog or {}).get("srs") or []), list((pool or {}).get("srs") or []), "sr")
    vdis = _merge_rows(list((smlog or {}).get("vdis") or []), list((pool or {}).get("vdis") or []), "vdi")
    return srs, vdis


# ---- known defects ------------------------------------------------------------------------------

def log_sr_kinds(findings: dict) -> dict[str, str]:
    """SR id -> "lvm" | "file" from the log's VDI printouts (an LV size is printed on LVM only)."""
    kinds: dict[str, str] = {}
    for v in findings.get("vdis") or []:
        sr = v.get("sr")
        if not sr or v.get("virtual_size") is None:
            continue
        if v.get("lv_size") is not None:
            kinds[sr] = "lvm"
        else:
            kinds.setdefault(sr, "file")
    return kinds


def _sr_type(sr: str | None, sr_types: dict[str, str], log_kinds: dict[str, str]) -> str | None:
    if not sr:
        return None
    for source in (sr_types, log_kinds):
        for key, value in source.items():
            if key.startswith(sr) or sr.startswith(key):
                return value
    return None


def _shows(defect: KnownDefect, row: dict) -> bool:
    if defect.symptom_kind == "verdict":
        return row.get("verdict") == defect.symptom
    return defect.symptom in (row.get("findings") or [])


def _hit(defect: KnownDefect, row: dict, sr_type: str | None) -> bool:
    if not _shows(defect, row):
        return False
    if sr_type == "file":  # known from the log's printouts only: any file SR type
        return bool(defect.sr_types - {"lvm", "lvmoiscsi", "lvmohba", "lvmofcoe", "linstor"})
    return defect.hits(sr_type) is not False


def _maybe_step(step: str, defect: KnownDefect, row_step: str) -> str:
    return (f"{row_step}; but first check sm's version on the SR master (`rpm -q sm`; or give it with "
            f"--sm-version / sm_version): from sm {defect.affects_from} and before {defect.fixed_in_text()}, this "
            f"is the known defect {defect.id}, and then: {step}")


def apply_known_defects(findings: dict, sm: SmVersion | None, sr_types: dict[str, str] | None = None,
                        defects: tuple[KnownDefect, ...] | None = None) -> dict:
    """A copy of `findings` (smlog, pool or merged object) with the defects that explain its rows."""
    out = copy.deepcopy(findings)
    defects = load_table().defects if defects is None else defects
    types, kinds = dict(sr_types or {}), log_sr_kinds(findings)
    summary: dict[str, dict] = {}
    changed: dict[str, str] = {}  # a row's next step before -> after
    for defect in defects:
        applies = defect.applies(sm)
        if applies == "no":
            continue
        seen = {"srs": [], "vdis": []}
        for group, id_key in (("srs", "sr"), ("vdis", "vdi")):
            for row in out.get(group) or []:
                if not _hit(defect, row, _sr_type(row.get("sr"), types, kinds)):
                    continue
                step = defect.step(row.get("sr"), row.get("vdi"))
                row["known_defect"] = {"id": defect.id, "applies": applies}
                new = step if applies == "yes" else _maybe_step(step, defect, row["next_step"])
                changed[row["next_step"]] = new
                row["next_step"] = new
                seen[group].append(row[id_key])
        if applies == "yes" or seen["srs"] or seen["vdis"]:
            summary[defect.id] = {**defect.to_json(), "applies": applies, **seen}
    out["sm_version"] = sm.to_json() if sm is not None else None
    out["known_defects"] = list(summary.values())
    if out.get("next_step") in changed:  # the overall step came from a row a defect explains
        out["next_step"] = changed[out["next_step"]]
    return out


