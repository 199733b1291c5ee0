"""The coalesce rate an SMlog shows: one definition for notebook 01's per-SR figure and the
sizing's (notebook 02, `runbook size --smlog`).

A finished coalesce is a `Coalescing`/`Leaf-coalescing` line and the same GC process's next
matching done line. Its speed is the bytes the child held (allocated blocks when the printout
shows them, else its VHD size, else its LV size) over the seconds between the two. The rate is
the mean of the last `RATE_SAMPLES` speeds, as the GC keeps a running average of its last few.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

RATE_SAMPLES = 5
_DONE_OF = {"coalesce_start": "coalesce_done", "leaf_coalesce_start": "leaf_coalesce_done"}
_COLUMNS = ["pid", "kind", "sr", "time", "allocated", "size", "lv_size"]


def coalesce_rates(records: pd.DataFrame | None) -> dict[str | None, float]:
    """bytes/s per SR, and under the key None over every SR; an SR without a finished coalesce
    is absent (an empty dict when none finished). `records` is `read_smlog(...).records`."""
    if records is None or records.empty:
        return {}
    rows = records[records["kind"].isin(list(_DONE_OF) + list(_DONE_OF.values())) & records["time"].notna()]
    pending: dict[Any, tuple[Any, int, str, Any]] = {}
    speeds: list[tuple[Any, float]] = []
    for pid, kind, sr, time, *sizes in rows[_COLUMNS].astype(object).itertuples(index=False, name=None):
        if kind in _DONE_OF:
            amount = next((int(v) for v in sizes if v is not None and not pd.isna(v)), None)
            if amount:
                pending[pid] = (time, amount, _DONE_OF[kind], sr)
            else:
                pending.pop(pid, None)
        elif pid in pending and pending[pid][2] == kind:
            began, amount, _, start_sr = pending.pop(pid)
            seconds = (time - began).total_seconds()
            if seconds > 0:
                speeds.append((sr if isinstance(sr, str) else start_sr, amount / seconds))
    by_sr: dict[str | None, list[float]] = {None: [s for _, s in speeds]} if speeds else {}
    for sr, speed in speeds:
        if isinstance(sr, str):
            by_sr.setdefault(sr, []).append(speed)
    return {sr: sum(s[-RATE_SAMPLES:]) / len(s[-RATE_SAMPLES:]) for sr, s in by_sr.items()}
