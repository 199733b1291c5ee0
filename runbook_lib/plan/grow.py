"""The grow-sr remedy: an admin action outside the pool API (the runbook only describes it)."""

from __future__ import annotations

from runbook_lib.plan.remedy import Remedy
from runbook_lib.sizing import GiB, roundup
from runbook_lib.units import gib


def grow_remedy(sr: dict) -> Remedy:
    grow_by = roundup(GiB, max(sr["shortfall"], 1))
    how = ("add a disk to the volume group or grow the LUN, then resize the SR"
           if sr["family"] == "lvm" else "grow the file system or export behind the SR")
    reason = f"{how}, by at least {gib(grow_by, 0)}; then SR.scan and wait for the GC"
    if not sr.get("sizes_known", True):
        least = roundup(GiB, sr.get("shortfall_min", 0)) if sr.get("shortfall_min") else 0
        reason += (f" (worst case: a running disk's written size is unknown: at least {gib(least, 0)}, at most "
                   f"{gib(grow_by, 0)}; let --ssh ask the host, or measure it with --vhd-size)")
    return Remedy(kind="grow-sr", sr=sr["sr"], frees=grow_by, grow_by=grow_by, admin_action=True,
                  reason=reason)
