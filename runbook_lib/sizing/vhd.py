"""Each VDI's VHD size and allocated data, from the best source there is.

Sources, best first (the `source` column): `host` (dom0 answered: vhd-util's own sizes and
block bitmap, docs/sizing.md), `given` (measured by the admin), `smlog` (a GC printout in
notebook 01's findings), `block-map` (the GC's cached bitmap of a read-only VHD), `xapi`
(a file SR's file, a deflated LV: exact to within its 4 MiB rounding), else `upper-bound`
(an inflated LV of a running disk: XenAPI shows the whole LV, so it counts as fully written).

Frame columns: uuid, vhd_size, data (bytes of allocated blocks), size_known, inflated (an LVM
LV at its full size), raw, data_min (the least the data can be), source.
`exact_maps` are the block bitmaps known to be the VHD as it is now (host reads, and the GC's
cached maps of hidden VHDs nobody writes to): their OR is the GC's `Num combined blocks`.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from runbook_lib.sizing.formulas import (
    VHD_BLOCK_SIZE,
    block_map,
    data_in_vhd,
    lvhd_lv_size,
    roundup,
    sr_family,
    vhd_full_size,
    vhd_size_for_data,
)

COLUMNS = ["uuid", "vhd_size", "data", "size_known", "inflated", "raw", "data_min", "source"]


def _hinted_size(hint: dict) -> int | None:
    size = hint.get("size")
    if isinstance(size, bool) or not isinstance(size, (int, float)):
        return None
    if isinstance(size, float) and not math.isfinite(size):
        return None
    return int(size) if size > 0 else None


def _base_size(vdi: dict, family: str | None, inflated: bool, hint: dict, host: dict | None):
    """(VHD bytes, exact?, source) before block maps are looked at."""
    vsize, phys = int(vdi["virtual_size"]), int(vdi["physical_utilisation"])
    if host and host.get("vhd_size"):
        return int(host["vhd_size"]), True, "host"
    hinted = _hinted_size(hint)
    if hinted:
        return hinted, True, hint.get("source") or "smlog"
    if family == "lvm" and inflated:
        return vhd_full_size(vsize), False, "upper-bound"
    return phys, True, "xapi"  # file SRs: the file; deflated LVs: the LV (at most 4 MiB above the VHD)


def _one(vdi: dict, hint: dict, cached: int | None, host: dict | None) -> tuple:
    family = sr_family(vdi["sr_type"])
    vsize = int(vdi["virtual_size"])
    raw = vdi["vdi_type"] in ("aio", "raw")
    whole = roundup(VHD_BLOCK_SIZE, vsize)
    inflated = family == "lvm" and not raw and (
        bool(vdi["attached"]) or int(vdi["physical_utilisation"]) >= lvhd_lv_size(vsize))
    if raw:
        return (vdi["uuid"], vsize, vsize, True, inflated, raw, vsize, "xapi")
    vhd, known, source = _base_size(vdi, family, inflated, hint, host)
    data = data_in_vhd(vsize, vhd)
    if host and host.get("allocated") is not None:  # vhd-util's allocated block count
        data = min(int(host["allocated"]), whole)
    mapped = None if cached is None else min(cached.bit_count() * VHD_BLOCK_SIZE, whole)
    if mapped is not None and source != "host":
        if vdi["hidden"] and not vdi["attached"]:  # read-only: the map is the VHD as it is now
            if not known:
                vhd = vhd_size_for_data(vsize, mapped)
            data, known, source = mapped, True, "block-map"
        else:
            mapped = min(mapped, data)  # VHD blocks are never given back: a lower bound
    data_min = data if known else (mapped or 0)
    return (vdi["uuid"], vhd, data, known, inflated, raw, data_min, source)


def vhd_sizes(vdis: pd.DataFrame, known: dict[str, dict], host: dict[str, dict[str, Any]] | None = None
              ) -> tuple[pd.DataFrame, dict[str, int], set[str]]:
    """Per-VDI sizes (frame above), every block bitmap known by VDI uuid (the GC's cached ones and
    the host's), and the uuids whose bitmap is exact now."""
    host = host or {}
    maps = {u: m for u, m in ((u, block_map(b)) for u, b in zip(vdis["uuid"], vdis["vhd_blocks"])
                              if isinstance(b, str)) if m is not None}
    rows = [_one(v, known.get(v["uuid"]) or {}, maps.get(v["uuid"]), host.get(v["uuid"]))
            for v in vdis[["uuid", "sr_type", "virtual_size", "physical_utilisation", "attached",
                           "vdi_type", "hidden"]].to_dict("records")]
    idle = {u for u, hidden, attached in zip(vdis["uuid"], vdis["hidden"], vdis["attached"])
            if hidden and not attached}
    exact = {u for u in maps if u in idle}
    for uuid, answer in host.items():
        if answer.get("bitmap") is not None:
            maps[uuid] = answer["bitmap"]
            exact.add(uuid)
    return pd.DataFrame(rows, columns=COLUMNS), maps, exact
