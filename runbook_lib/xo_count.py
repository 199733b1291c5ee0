"""Xen Orchestra's count of VDIs waiting to coalesce, computed as XO computes it.

XO shows it per SR ("VDI to coalesce (N)" on the SR's Advanced tab, the dashboard's Health
view, a warning from 10 on), from `getVdiChainsInfo` in xo-server
(packages/xo-server/src/xapi/mixins/storage.mjs, read at vatesfr/xen-orchestra 2026-08-21):

- the SR's VDIs are grouped by `sm_config['vhd-parent']`, which gives each VDI its children;
- from every managed VDI that is not a snapshot, XO walks up the `vhd-parent` links; each VDI
  on the way with exactly one child counts once for the SR (`nUnhealthyVdis`, the N shown)
  and adds one to the walking VDI's "length";
- a `vhd-parent` naming no VDI of the pool puts the walking VDI in `vdisWithUnknownVhdParent`
  ("VDIs with invalid VHD parent").

XO keeps one running record per chain top and adds each walk's count to it, so the lengths it
shows can depend on the order it meets the VDIs (the SR's `VDIs` field): where a branch with a
single-child VDI hangs below a shared ancestor, a VDI walked after that branch shows the
branch's count too. The function follows the same order and the same sharing, so its lengths
are XO's; N does not depend on the order. A `vhd-parent` loop (damaged metadata), where XO
would not end, counts as an unknown parent here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

XO_WARNING_AT = 10  # xo-web VDIS_TO_COALESCE_LIMIT: the SR gets a warning from this many on


@dataclass
class XoChains:
    """One SR's figures as XO shows them."""

    to_coalesce: int = 0                                   # nUnhealthyVdis: "VDI to coalesce (N)"
    lengths: dict[str, int] = field(default_factory=dict)  # managed VDI uuid -> its "length"
    unknown_parent: dict[str, str] = field(default_factory=dict)  # VDI uuid -> the missing parent

    @property
    def warning(self) -> bool:
        return self.to_coalesce >= XO_WARNING_AT


def xo_chains(vdis: pd.DataFrame, sr: str, order: list[str] | tuple[str, ...] | None = None) -> XoChains:
    """XO's figures for SR `sr` over the pool's VDIs (`Inventory.vdis`: uuid, sr, vhd_parent,
    managed, is_a_snapshot). `order` is the SR's `VDIs` field as uuids (XO's order); without
    it the frame's order is used."""
    parent_of = dict(zip(vdis["uuid"], vdis["vhd_parent"]))
    mine = vdis[vdis["sr"] == sr]
    if order:
        rank = {u: i for i, u in enumerate(order)}
        mine = mine.assign(_rank=mine["uuid"].map(lambda u: rank.get(u, len(rank)))).sort_values(
            "_rank", kind="stable")
    children: dict[str, list[str]] = {}
    for uuid, parent in zip(mine["uuid"], mine["vhd_parent"]):
        if isinstance(parent, str) and parent:
            children.setdefault(parent, []).append(uuid)
    out = XoChains()
    walk = _Walk(parent_of, children, out)
    for uuid, managed, snapshot in zip(mine["uuid"], mine["managed"], mine["is_a_snapshot"]):
        if not managed or snapshot:
            continue
        info = walk.info(uuid, set())
        if info["length"]:
            out.lengths[uuid] = info["length"]
        if info.get("missing"):
            out.unknown_parent[uuid] = info["missing"]
    return out


class _Walk:
    def __init__(self, parent_of: dict[str, Any], children: dict[str, list[str]], out: XoChains):
        self.parent_of, self.children, self.out = parent_of, children, out
        self.cache: dict[str, dict] = {}

    def info(self, uuid: str, visiting: set[str]) -> dict:
        cached = self.cache.get(uuid)
        if cached is not None:
            return cached
        if uuid in visiting:  # back where this walk started: a loop, counted once already
            return {"length": 0, "missing": uuid}
        kids = self.children.get(uuid)
        single = 1 if kids is not None and len(kids) == 1 else 0
        self.out.to_coalesce += single
        if uuid not in self.parent_of:
            info = {"length": single, "missing": uuid}
        else:
            parent = self.parent_of[uuid]
            if isinstance(parent, str) and parent:
                info = self.info(parent, visiting | {uuid})
                info["length"] += single  # shared with every VDI below the same top, as in XO
            else:
                info = {"length": single}
        self.cache[uuid] = info
        return info
