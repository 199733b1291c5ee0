"""Figures for notebook 01. pyplot is used so Jupyter's inline backend shows (and closes) them."""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

SERIES = (("gc_runs", "GC runs", "#4c72b0"), ("coalesces", "coalesces finished", "#55a868"),
          ("failures", "coalesce failures", "#c44e52"))


def plot_timeline(timeline: pd.DataFrame, title: str = "GC activity per hour") -> Figure:
    """Grouped bars per hour: GC runs, finished coalesces, failures (Diagnosis.timeline)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 3.2), layout="constrained")
    if timeline.empty:
        ax.text(0.5, 0.5, "no timed GC events in this log", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return fig
    hours = pd.DatetimeIndex(timeline.index).tz_convert(None).to_pydatetime()
    width = pd.Timedelta(minutes=18).to_pytimedelta()
    for i, (col, label, color) in enumerate(SERIES):
        offset = (i - 1) * width
        ax.bar([h + offset for h in hours], timeline[col], width=width, label=label, color=color, align="center")
    ax.set_ylim(0, max(1, int(timeline[[c for c, _, _ in SERIES]].to_numpy().max())) * 1.35)  # room for the legend
    ax.set_title(title)
    ax.set_ylabel("events")
    ax.set_xlabel("hour (UTC, as logged)")
    ax.legend(loc="upper left", frameon=False, ncols=3)
    ax.grid(axis="y", alpha=0.3)
    fig.autofmt_xdate()
    return fig
