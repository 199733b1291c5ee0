"""What notebook 03 shows of a dry run besides the transfer's own reporter: each SR's free space
as the plan expects it after every step (a dry run measures nothing over time, so this is its
free-space plot). Only display: the numbers come from runbook_lib.transfer.plan_steps.
"""

from __future__ import annotations

from runbook_lib.transfer.plan_steps import Step, expected_free, sr_names
from runbook_lib.units import GIB


def expected_free_frame(plan: dict, steps: list[Step], *, staging_sr_uuid: str = ""):
    """One row per SR and point: `position` 0 is now, i the state after step i; `step`, `sr`
    (uuid), `name`, `free` (bytes)."""
    import pandas as pd

    names = sr_names(plan, staging_sr_uuid=staging_sr_uuid)
    rows = []
    for position in range(len(steps) + 1):
        free = expected_free(plan, steps[:position], staging_sr_uuid=staging_sr_uuid)
        label = "now" if position == 0 else steps[position - 1].id.split(":", 1)[1]
        for sr, value in free.items():
            rows.append({"position": position, "step": label, "sr": sr, "name": names.get(sr, sr[:8]),
                         "free": value})
    return pd.DataFrame(rows, columns=["position", "step", "sr", "name", "free"])


def expected_free_space_figure(plan: dict, steps: list[Step], *, staging_sr_uuid: str = ""):
    """A step plot of each SR's expected free space (GiB) from now through the last step."""
    import matplotlib.pyplot as plt

    frame = expected_free_frame(plan, steps, staging_sr_uuid=staging_sr_uuid)
    fig, ax = plt.subplots(figsize=(8, 3.6))
    for name, group in frame.groupby("name", sort=False):
        ax.step(group["position"], group["free"] / GIB, where="post", marker="o", markersize=3, label=name)
    labels = frame.drop_duplicates("position")
    ax.set_xticks(list(labels["position"]), list(labels["step"]), rotation=45, ha="right", fontsize="small")
    ax.set_ylabel("free (GiB)")
    ax.set_title("SR free space the plan expects after each step (dry run: nothing changed)")
    ax.legend(loc="best", fontsize="small")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    return fig
