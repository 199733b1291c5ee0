"""The pool sizing engine: which coalesces are pending, what each needs, and each SR's verdict.

It applies the storage manager's formulas (`formulas.py`) to the VHD chains of an inventory, with
each VDI's size from the best source (`vhd.py`: dom0, a measured size, the SMlog, the GC's
block map, XenAPI, or the worst case), and decides per pending coalesce what the GC will try
(snapshot-coalesce, live leaf-coalesce under the 10 s limit) and, for a leaf that does not fit,
whether the offline route (`offline.py`: the coalesce-leaf plugin, or a halted VM's leaf forced)
would. Where a size is not known, `needed` is the worst case (an upper bound: a plan made from
it never runs out of room) and `needed_min` the least the same coalesce can need.

Frames of `Sizing` (documented columns):

coalesces  vdi, sr, sr_type, kind ("non-leaf" | "snapshot-coalesce" | "live-leaf" |
           "offline-leaf": a detached leaf, still under the 10 s limit unless forced), parent,
           vms (tuple), virtual_size, data (bytes of the blocks the merged VHD holds: the GC's
           `Num combined blocks` x 2 MiB when both bitmaps are known), work (bytes the coalesce
           copies: the child's blocks), needed (what the GC needs for the kind it will try; an
           upper bound where a size is unknown), needed_min (the least it can be),
           needed_snapshot, needed_live, live_ok (the GC's own test: it will try live), attached,
           fits (needed <= free + garbage now), fits_offline (it would via the offline route),
           offline_via ("plugin" | "force" | None), offline_needed (what that route needs free),
           plugin_host (host uuid the plugin runs on), plugin_note (why the plugin does not apply),
           size_known, size_source ("host" | "given" | "smlog" | "block-map" | "xapi" |
           "upper-bound": where the child's size came from), diagnosis (notebook 01's verdict)
srs        sr, name, type, family ("lvm" | "file" | None), provisioning, size, used, free, garbage
           (bytes of hidden VHDs nobody needs: the GC deletes them first), needed (largest
           pending need: the GC does one coalesce at a time), needed_min, shortfall,
           shortfall_min, sizes_known (every size behind its needs came from the host or another
           exact source), verdict ("healthy" | "fits" | "offline-only" | "short" | "not-sized"),
           coalesces (count), diagnosis (notebook 01's verdict for the SR, or None)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from runbook_lib.record import to_jsonable
from runbook_lib.schemas import SIZING_SCHEMA
from runbook_lib.sizing.findings import findings_by_sr, findings_by_vdi, measured_rate
from runbook_lib.sizing.formulas import (
    VHD_BLOCK_SIZE,
    can_live_coalesce,
    coalesce_need,
    live_leaf_need,
    roundup,
    snapshot_coalesce_need,
    sr_family,
    vhd_size_for_data,
)
from runbook_lib.sizing.given import given_sizes
from runbook_lib.sizing.offline import OfflineRules
from runbook_lib.sizing.vhd import vhd_sizes

COALESCE_COLUMNS = ["vdi", "sr", "sr_type", "kind", "parent", "vms", "virtual_size", "data",
                    "work", "needed", "needed_min", "needed_snapshot", "needed_live", "live_ok",
                    "attached", "fits", "fits_offline", "offline_via", "offline_needed", "plugin_host",
                    "plugin_note", "size_known", "size_source", "diagnosis"]
SR_COLUMNS = ["sr", "name", "type", "family", "provisioning", "size", "used", "free", "garbage", "needed",
              "needed_min", "shortfall", "shortfall_min", "sizes_known", "verdict", "coalesces",
              "diagnosis"]


@dataclass
class Sizing:
    """The sizing of one inventory: per-VDI sizes, pending coalesces, per-SR verdicts."""

    inventory: Any
    chains: Any
    vhd: pd.DataFrame        # vhd.COLUMNS
    coalesces: pd.DataFrame
    srs: pd.DataFrame
    gc_speed_bps: float | None = None
    findings: dict[str, dict] = field(default_factory=dict)
    inputs: dict[str, Any] = field(default_factory=dict)  # findings, vhd_sizes, host_sizes: for what-ifs
    warnings: list[str] = field(default_factory=list)    # one line each: what dom0 could not tell

    def sr(self, uuid: str) -> dict[str, Any]:
        rows = self.srs[self.srs["sr"] == uuid]
        return rows.iloc[0].to_dict() if not rows.empty else {}

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SIZING_SCHEMA,
            "pool": self.inventory.pool,
            "captured": self.inventory.captured,
            "srs": to_jsonable(self.srs),
            "coalesces": to_jsonable(self.coalesces),
            "warnings": list(self.warnings),
        }


class _Pool:
    """Everything one sizing looks up, built once."""

    def __init__(self, inventory, chains, findings, gc_speed_bps, vhd_sizes_given, host_sizes):
        vdis = inventory.vdis
        self.chains = chains
        self.findings = findings
        self.known = findings_by_vdi(findings, list(vdis["uuid"]))
        for uuid, given in given_sizes(vhd_sizes_given or {}, list(vdis["uuid"])).items():
            self.known[uuid] = {**self.known.get(uuid, {}), **given}
        self.speed = gc_speed_bps or measured_rate(findings)
        self.vhd, self.maps, self.exact = vhd_sizes(vdis, self.known, host_sizes)
        self.info = {r["uuid"]: r for r in vdis.to_dict("records")}
        self.size = {r["uuid"]: r for r in self.vhd.to_dict("records")}
        self.sr_rows = {r["uuid"]: r for r in inventory.srs.to_dict("records")}
        self.nodes = chains.nodes.to_dict("records")
        self.garbage = self._garbage()
        self.room = {u: r["free"] + self.garbage.get(u, 0) for u, r in self.sr_rows.items()}
        self.offline = OfflineRules(inventory, self.size)

    def _garbage(self) -> dict[str, int]:
        """Per SR, the hidden leaves the GC deletes first: their space counts as free."""
        out: dict[str, int] = {}
        for node in self.nodes:
            me = self.info[node["uuid"]]
            if node["is_leaf"] and me["hidden"]:
                out[me["sr"]] = out.get(me["sr"], 0) + me["physical_utilisation"]
        return out

    def pending(self, node: dict) -> bool:
        return is_pending(node, self.info, self.chains.children, self.sr_rows)


def is_pending(node: dict, info: dict[str, dict], children: dict[str, list], sr_rows: dict[str, dict]) -> bool:
    """Is this chain node a coalesce the GC wants: a hidden node, or a visible leaf it may take,
    over a parent that has no other child?"""
    uuid, parent = node["uuid"], node["parent"]
    me = info[uuid]
    if sr_family(me["sr_type"]) is None or parent is None or me["sr"] not in sr_rows:
        return False
    if len(children.get(parent, [])) != 1:
        return False
    if not node["is_leaf"]:
        return bool(me["hidden"])
    return bool(me["managed"] and info[parent]["hidden"] and not sr_rows[me["sr"]]["leaf_coalesce_off"]
                and me["leaf_coalesce"] not in ("false", "no") and me["on_boot"] != "reset"
                and not me["allow_caching"])


def pending_pairs(inventory, chains=None) -> list[tuple[str, str]]:
    """(child, parent) of every pending coalesce, without sizing anything (what dom0 is asked about)."""
    from runbook_lib.chains import build_chains

    chains = chains if chains is not None else build_chains(inventory.vdis)
    info = {r["uuid"]: r for r in inventory.vdis.to_dict("records")}
    sr_rows = {r["uuid"]: r for r in inventory.srs.to_dict("records")}
    return [(n["uuid"], n["parent"]) for n in chains.nodes.to_dict("records")
            if is_pending(n, info, chains.children, sr_rows)]


def _data(pool: _Pool, uuid: str, parent: str, vsize: int) -> tuple[int, int, bool, str]:
    """(data, data_min, exact, source) of the merged VHD: the union of both bitmaps when known."""
    c, p = pool.size[uuid], pool.size[parent]
    whole = roundup(VHD_BLOCK_SIZE, vsize)
    data = min(whole, c["data"] + p["data"])
    data_min = max(c["data_min"], p["data_min"])
    source = c["source"] if c["size_known"] or not p["size_known"] else "upper-bound"
    exact = bool(c["size_known"] and p["size_known"])
    if uuid in pool.maps and parent in pool.maps:  # the GC's own count: the union of both maps
        union = min(whole, (pool.maps[uuid] | pool.maps[parent]).bit_count() * VHD_BLOCK_SIZE)
        data_min = max(data_min, union)
        if uuid in pool.exact and parent in pool.exact and exact:
            data = data_min = union
    return data, min(data_min, data), exact, source


def _leaf_kind(pool: _Pool, me: dict, *, snap: int, live: int, room: int, live_ok: bool) -> tuple[str, int]:
    """The GC's choice: snapshot-coalesce if it fits, else the live path if the leaf is small or
    fast enough for the 10 s limit (attached or not), else snapshot-coalesce (which does not fit)."""
    if snap <= room:
        return "snapshot-coalesce", snap
    if live_ok:
        return ("live-leaf" if me["attached"] else "offline-leaf"), live
    return "snapshot-coalesce", snap


def _coalesce_row(pool: _Pool, node: dict) -> dict:
    uuid, parent = node["uuid"], node["parent"]
    me = pool.info[uuid]
    family = sr_family(me["sr_type"])
    c, p = pool.size[uuid], pool.size[parent]
    vsize = me["virtual_size"]
    data, data_min, exact, source = _data(pool, uuid, parent, vsize)
    parent_size = pool.info[parent]["physical_utilisation"] if family == "lvm" else p["vhd_size"]
    need = coalesce_need(family, data=data, virtual_size=vsize, parent_size=parent_size, parent_raw=p["raw"])
    need_lo = coalesce_need(family, data=data_min, virtual_size=vsize, parent_size=parent_size,
                            parent_raw=p["raw"])
    room = pool.room[me["sr"]]
    row = {"vdi": uuid, "sr": me["sr"], "sr_type": me["sr_type"], "parent": parent, "vms": me["vms"],
           "virtual_size": vsize, "data": data, "work": int(c["data"]), "attached": me["attached"],
           "size_known": exact, "size_source": source, "diagnosis": pool.known.get(uuid, {}).get("verdict"),
           "offline_via": None, "offline_needed": 0, "plugin_host": None, "plugin_note": ""}
    if not node["is_leaf"]:
        fits = need <= room
        return {**row, "kind": "non-leaf", "needed": need, "needed_min": need_lo, "needed_snapshot": need,
                "needed_live": need, "live_ok": True, "fits": fits, "fits_offline": fits}
    return {**row, **_leaf(pool, me, c, need, need_lo, room)}


def _leaf(pool: _Pool, me: dict, c: dict, need: int, need_lo: int, room: int) -> dict:
    family, vsize = sr_family(me["sr_type"]), me["virtual_size"]
    leaf_lv = me["physical_utilisation"]
    live = live_leaf_need(family, need, leaf_size=leaf_lv, leaf_vhd_size=c["vhd_size"])
    snap = snapshot_coalesce_need(family, need, virtual_size=vsize, leaf_vhd_size=c["vhd_size"])
    leaf_vhd_lo = c["vhd_size"] if c["size_known"] else vhd_size_for_data(vsize, c["data_min"])
    live_lo = live_leaf_need(family, need_lo, leaf_size=leaf_lv, leaf_vhd_size=leaf_vhd_lo)
    snap_lo = snapshot_coalesce_need(family, need_lo, virtual_size=vsize, leaf_vhd_size=leaf_vhd_lo)
    speed = pool.speed or measured_rate(pool.findings, me["sr"])
    live_ok = can_live_coalesce(c["data"], speed, force=me["leaf_coalesce"] == "force")
    if pool.known.get(me["uuid"], {}).get("verdict") in ("stuck-timeout", "stuck-write-rate"):
        live_ok = False  # the log shows it does not finish in time (or never catches up), whatever the estimate
    kind, needed = _leaf_kind(pool, me, snap=snap, live=live, room=room, live_ok=live_ok)
    fits = needed <= room
    out = {"kind": kind, "needed": needed, "needed_min": int(min(needed, snap_lo if kind == "snapshot-coalesce"
                                                                     else live_lo)),
           "needed_snapshot": snap, "needed_live": live, "live_ok": live_ok, "fits": fits, "fits_offline": fits}
    if not fits:
        route = pool.offline.route(me, live=live, room=room)
        out.update(fits_offline=route.via is not None, offline_via=route.via, offline_needed=route.needed,
                   plugin_host=route.plugin_host, plugin_note=route.plugin_note)
    return out


def _sr_row(pool: _Pool, sr: dict, mine: pd.DataFrame, sr_findings: dict) -> dict:
    family = sr_family(sr["type"])
    room = pool.room.get(sr["uuid"], sr["free"])
    needed = int(mine["needed"].max()) if len(mine) else 0
    needed_min = int(mine["needed_min"].max()) if len(mine) else 0
    if family is None or sr.get("content_type") == "iso":
        verdict = "not-sized"
    elif not len(mine):
        verdict = "healthy"
    elif bool(mine["fits"].all()):
        verdict = "fits"
    elif bool(mine["fits_offline"].all()):
        verdict = "offline-only"
    else:
        verdict = "short"
    return {"sr": sr["uuid"], "name": sr["name"], "type": sr["type"], "family": family,
            "provisioning": sr.get("provisioning", "thick") if family == "lvm" else None,
            "size": sr["size"], "used": sr["used"], "free": sr["free"], "garbage": pool.garbage.get(sr["uuid"], 0),
            "needed": needed, "needed_min": needed_min, "shortfall": max(0, needed - room),
            "shortfall_min": max(0, needed_min - room), "sizes_known": bool(mine["size_known"].all()),
            "verdict": verdict, "coalesces": int(len(mine)),
            "diagnosis": sr_findings.get(sr["uuid"], {}).get("verdict")}


def size_pool(inventory, *, srs: list[str] | None = None, findings: dict[str, Any] | None = None,
              gc_speed_bps: float | None = None, chains=None, vhd_sizes: dict[str, int] | None = None,
              host_sizes=None) -> Sizing:
    """Size every pending coalesce of the inventory and judge each SR's free space.

    `srs` limits the SR table to those uuids; `findings` is notebook 01's diagnosis JSON
    (`runbook smlog diagnose --json`); `gc_speed_bps` the coalesce throughput if known
    (else the rate in the findings, else the GC's no-speed rule applies); `vhd_sizes` VHD
    sizes in bytes the admin measured, by VDI uuid or unique prefix; `host_sizes` what dom0
    answered (sizing.host.HostSizes; default: the inventory's own, from `--ssh`).
    """
    from runbook_lib.chains import build_chains

    host = host_sizes if host_sizes is not None else getattr(inventory, "host_sizes", None)
    chains = chains if chains is not None else build_chains(inventory.vdis)
    pool = _Pool(inventory, chains, findings, gc_speed_bps, vhd_sizes, host.by_vdi if host else None)
    rows = [_coalesce_row(pool, node) for node in pool.nodes if pool.pending(node)]
    coalesces = pd.DataFrame(rows, columns=COALESCE_COLUMNS)
    for column in ("fits", "fits_offline"):
        coalesces[column] = coalesces[column].astype(bool)
    wanted = set(srs) if srs else None
    sr_findings = findings_by_sr(findings, list(pool.sr_rows))
    table = pd.DataFrame([_sr_row(pool, sr, coalesces[coalesces["sr"] == sr["uuid"]], sr_findings)
                          for sr in pool.sr_rows.values() if wanted is None or sr["uuid"] in wanted],
                         columns=SR_COLUMNS)
    if wanted is not None:
        coalesces = coalesces[coalesces["sr"].isin(wanted)].reset_index(drop=True)
    return Sizing(inventory=inventory, chains=chains, vhd=pool.vhd, coalesces=coalesces, srs=table,
                  gc_speed_bps=pool.speed, findings=pool.known,
                  inputs={"findings": findings, "vhd_sizes": vhd_sizes, "host_sizes": host},
                  warnings=list(host.warnings) if host else [])
