"""What notebook 01 and the CLI show: the verdict first, then tables with human sizes."""

from __future__ import annotations

import pandas as pd

from runbook_lib.smlog.diagnose import Diagnosis
from runbook_lib.smlog.tree import render_tree
from runbook_lib.units import gib, mib_per_s

VERDICT_WORDS = {
    "stuck-timeout": "STUCK: the live leaf-coalesce keeps timing out",
    "stuck-no-space": "STUCK: not enough free space to coalesce",
    "stuck-error": "STUCK: the coalesce fails with an error",
    "stuck-write-rate": "STUCK: the VM writes faster than the GC can merge its leaf (the chain is not damaged)",
    "coalescing": "coalescing: the GC has work in hand",
    "healthy": "healthy: the GC finishes its coalesces",
    "unknown": "unknown: no GC activity in this log",
}


def verdict_markdown(d: Diagnosis) -> str:
    """The answer in three lines: verdict, next step, what was read."""
    j = d.to_json()
    span = f"{j['first'] or '?'} to {j['last'] or '?'}"
    truncated = [f["path"] for f in j["files"] if f["truncated"]]
    lines = [f"### Verdict: {VERDICT_WORDS.get(j['verdict'], j['verdict'])}",
             f"**Next step:** {j['next_step']}",
             f"Read {len(j['files'])} file(s), {j['lines']:,} lines ({j['unparsed']:,} unparsed), {span}.",
             f"**Storage manager:** {release_text(j)}"]
    if truncated:
        lines.append(f"**Warning:** truncated input, read what was readable: {', '.join(truncated)}")
    return "\n\n".join(lines)


def release_text(j: dict) -> str:
    """The release family and the lines that told it (`unknown` says why)."""
    markers = [m for m in j.get("release_markers") or [] if m.get("family")]
    if not markers:
        return f"{j.get('release', 'unknown')}: no line of this log tells the release"
    shown = ", ".join(f"`{m['marker']}` ({m['since']}, {m['first'].rsplit('/', 1)[-1]})" for m in markers[-3:])
    return f"{j['release']}, told by {sum(m['count'] for m in markers):,} marker(s) such as {shown}"


def _evidence(ev: list[str], shown: int = 4) -> str:
    """`SMlog:111, SMlog:117 and 9 more`: file names and line numbers, the first few of them."""
    text = ", ".join(e.rsplit("/", 1)[-1] for e in ev[:shown])
    return text + (f" and {len(ev) - shown} more" if len(ev) > shown else "")


def vdi_table(d: Diagnosis) -> pd.DataFrame:
    """Per-VDI findings with sizes in GiB, the evidence shortened to line numbers; a QCOW2 VDI's
    sizes are shown as read, with `sizing` saying it is not sized (the formulas are VHD-only)."""
    v = d.vdis.copy()
    for col in ("virtual_size", "size", "lv_size", "coalesced_size"):
        v[col] = v[col].map(gib)
    v["evidence"] = v["evidence"].map(_evidence)
    v["sizing"] = v["sizing_note"].map(lambda note: "not sized (QCOW2)" if isinstance(note, str) else "")
    return v.drop(columns=["next_step", "sizing_note"])


def sr_table(d: Diagnosis) -> pd.DataFrame:
    """Per-SR findings as a person reads them: the coalesce rate in MiB/s, the evidence as line
    numbers, the next step in full."""
    s = d.srs.copy()
    s["coalesce_rate"] = s.pop("coalesce_rate_bps").map(mib_per_s)
    s["evidence"] = s["evidence"].map(_evidence)
    columns = [c for c in s.columns if c != "next_step"] + ["next_step"]
    return s[columns]


def chains_text(d: Diagnosis) -> str:
    """Every SR's last printed VHD tree as indented text; `*` = hidden node."""
    chains = d.chains
    if chains.empty:
        return "(the log holds no VHD tree printout: the GC prints one when a tree changes)"  # or a COW tree
    parts = []
    for (sr, name), group in chains.groupby(["sr", "sr_name"], sort=False, dropna=False):
        parts.append(f"SR {sr} ({name})\n" + render_tree(group))
    return "\n\n".join(parts)
