"""The GC's VHD tree printout -> a chain table, and short ids -> full UUIDs.

After `SR db4c ('Local SATA Storage') (5 VDIs in 4 VHD trees):` the GC prints one VDI per
line, indented 8 spaces for a tree root and 4 more per level:

            *85ff84a8[VHD](65.000G///33.836G|n)
                67558d6a[VHD](2020.000G//2023.953G|ao)

Chain table columns: `vdi` (8-hex id as printed), `parent` (id or None), `depth` (0 = root),
`root`, `hidden`, `vdi_type`, `format` (`vhd`, `qcow2`, `raw`), `virtual_size`, `size`,
`allocated`, `lv_size` (bytes), `flags`. XCP-ng 8.3 with QCOW2 prints the same tree under
`(... COW trees)`, with the type in lower case (`[qcow2]`) or after a file SR's sizes.
Forum copies often lose the indentation; then every line is a root at depth 0.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable

import pandas as pd

from runbook_lib.smlog.printout import parse_printout
from runbook_lib.units import gib_short

CHAIN_COLUMNS = ["vdi", "parent", "depth", "root", "hidden", "vdi_type", "format", "virtual_size", "size",
                 "allocated", "lv_size", "flags"]
BASE_INDENT = 8
STEP = 4


def chain_rows(tree_text: str) -> list[dict]:
    """Rows of the chain table for one printed tree block (lines joined with newlines)."""
    rows: list[dict] = []
    stack: list[str] = []  # ids of the current path from the root
    for raw in tree_text.splitlines():
        p = parse_printout(raw)
        if p is None:
            continue
        indent = len(raw) - len(raw.lstrip(" "))
        depth = max(0, (indent - BASE_INDENT) // STEP) if indent >= BASE_INDENT else 0
        depth = min(depth, len(stack))
        del stack[depth:]
        parent = stack[-1] if stack else None
        stack.append(p.uuid8)
        rows.append({"vdi": p.uuid8, "parent": parent, "depth": depth, "root": stack[0],
                     "hidden": p.hidden, "vdi_type": p.vdi_type, "format": p.format, "virtual_size": p.virtual_size,
                     "size": p.size, "allocated": p.allocated, "lv_size": p.lv_size, "flags": p.flags})
    return rows


def chain_table(tree_text: str) -> pd.DataFrame:
    return pd.DataFrame(chain_rows(tree_text), columns=CHAIN_COLUMNS)


def link_ids(short_ids: Iterable[str], full_uuids: Iterable[str]) -> dict[str, str]:
    """Map each short id (a UUID prefix such as `db4c` or `67558d6a`) to the one full UUID
    in the log that starts with it; ambiguous or unknown prefixes stay unmapped."""
    fulls = sorted(set(full_uuids))
    mapping: dict[str, str] = {}
    for short in set(short_ids):
        if not short or len(short) >= 36:
            continue
        i = bisect.bisect_left(fulls, short)
        hits = []
        while i < len(fulls) and fulls[i].startswith(short) and len(hits) < 2:
            hits.append(fulls[i])
            i += 1
        if len(hits) == 1:
            mapping[short] = hits[0]
    return mapping


def render_tree(chains: pd.DataFrame) -> str:
    """The chains as an indented text tree with human sizes, for notebooks and the CLI."""
    lines = []
    for row in chains.itertuples(index=False):
        sizes = "/".join(gib_short(v, missing="?") for v in (row.virtual_size, row.size, row.lv_size))
        mark = "*" if row.hidden else " "
        flags = f" [{row.flags}]" if isinstance(row.flags, str) and row.flags else ""
        fmt = f" {row.format}" if isinstance(row.format, str) and row.format != "vhd" else ""
        lines.append(f"{'    ' * int(row.depth)}{mark}{row.vdi}  {sizes}{flags}{fmt}")
    return "\n".join(lines)
