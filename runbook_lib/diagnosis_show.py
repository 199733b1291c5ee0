"""What notebook 01 shows of a diagnosis (runbook_lib.diagnosis): the verdict first, then tables."""

from __future__ import annotations

import pandas as pd

from runbook_lib.smlog.show import VERDICT_WORDS
from runbook_lib.units import gib

WORDS = {**VERDICT_WORDS, "stuck-disabled": "STUCK: a switch keeps the GC from its work",
         "unknown": "unknown: no GC evidence"}


def verdict_markdown(result) -> str:
    """Verdict, next step, what was read, sm's version and the known defects that apply."""
    data = result.to_json()
    lines = [f"### Verdict: {WORDS.get(data['verdict'], data['verdict'])}", f"**Next step:** {data['next_step']}"]
    read = []
    log = data["smlog"]
    if log is not None:
        read.append(f"SMlog: {len(log['files'])} file(s), {log['lines']:,} lines ({log['unparsed']:,} unparsed), "
                    f"{log['first'] or '?'} to {log['last'] or '?'}")
        read += [f"**Warning:** truncated input, read what was readable: {f['path']}"
                 for f in log["files"] if f["truncated"]]
    pool = data["pool"]
    if pool is not None:
        what = "messages, tasks and storage drivers" if all(pool["read"].values()) else "the inventory only"
        read.append(f"Pool {data['sources']['pool'] or 'sim:'} ({what}), captured {pool['captured']}")
    sm = data.get("sm_version")
    read.append(f"Storage manager: {sm['summary'] if sm else 'version unknown'}")
    lines.append("; ".join(read[:1]) if len(read) == 1 else "\n".join(f"- {r}" for r in read))
    for d in data.get("known_defects") or []:
        where = ", ".join(d["srs"] + d["vdis"]) or "not seen in what was read"
        lines.append(f"**Known defect** `{d['id']}` ({d['applies']}; fixed in {d['fixed_in']}): {d['title']} "
                     f"Seen on: {where}.")
    lines += [f"**Note:** {n}" for n in data.get("notes") or []]
    return "\n\n".join(lines)


def sr_table(result) -> pd.DataFrame:
    """One row per SR: verdict, from which source, XO's count, the GC task, the log's failures."""
    table = result.srs.copy()
    table["sources"] = table["sources"].map(lambda s: "+".join(s or []))
    table["gc_progress"] = table["gc_progress"].map(lambda p: None if p is None or pd.isna(p) else f"{p:.0%}")
    table["known_defect"] = table["known_defect"].map(lambda d: d["id"] if isinstance(d, dict) else None)
    return table.drop(columns=["next_step"])


def vdi_table(result) -> pd.DataFrame:
    """One row per VDI: verdict, source, the coalesce that waits, the log's tries, sizes in GiB."""
    rows = result.to_json()["vdis"]
    table = result.vdis.copy()
    table["sources"] = table["sources"].map(lambda s: "+".join(s or []))
    table["findings"] = table["findings"].map(lambda f: ", ".join(f) if isinstance(f, list) else None)
    table["known_defect"] = table["known_defect"].map(lambda d: d["id"] if isinstance(d, dict) else None)
    for col in ("virtual_size", "size", "lv_size"):
        table[col] = [gib(r.get(col)) for r in rows]
    return table.drop(columns=["next_step"])


def pool_findings(result) -> pd.DataFrame | str:
    """Everything the pool showed (findings with their verdict, or "note"), or why there is nothing."""
    if result.pool is None:
        return "No pool was read (set url, or inventory_path for a saved inventory)."
    frame = result.pool.findings_frame.copy()
    frame["verdict"] = frame["verdict"].fillna("note")
    return frame
