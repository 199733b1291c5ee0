"""The storage manager's space formulas and what each pending coalesce needs on its SR.

Formulas: the open-source storage manager's VHD / LVHD arithmetic (reference:
gc-space-rules.md). Everything is int bytes; GiB only when displayed.

`size_pool(inventory)` applies them to a pool: which coalesces are pending (from the VHD
chains), the extra free space each needs on that SR type, whether a live leaf-coalesce can
finish inside the GC's pause limit, and per SR free / needed / shortfall / verdict.

XenAPI does not show how many blocks a VHD really holds. Where it cannot be derived (an
inflated LV of a running VM's disk) `needed` assumes the worst, a fully written disk: an
upper bound, so a plan made from it never runs out of room. `needed_min` is the least the
same coalesce can need: the leaf holding no block beyond what the GC's last block map shows
(sm_config 'vhd-blocks', which the GC caches on every VDI it sizes; VHD blocks are never
given back, so that map is a lower bound) or, without a map, nothing beyond its parent.
A running disk's real VHD size comes from SMlog findings (notebook 01) whose printout shows
it, or from `vhd_sizes` measured on the host (`exact_size_hint`); `size_source` says which.

Frames of `Sizing` (documented columns):

coalesces  vdi, sr, sr_type, kind ("non-leaf" | "snapshot-coalesce" | "live-leaf" |
           "offline-leaf"), parent, vms (tuple), virtual_size, data (bytes of the blocks the
           merged VHD will hold, an upper bound), work (bytes the coalesce copies: the
           child's blocks), needed (what the GC needs for the kind it
           will try; an upper bound: it takes the child's blocks as all new), needed_min (the
           least it can be: the child's blocks all over the parent's, or the GC's block maps),
           needed_snapshot, needed_live, live_ok (a live leaf-coalesce can finish
           within the limit), attached, fits (the GC can do it now: needed <= free + garbage,
           and not parked as leaf-coalesce=offline while attached), fits_offline (it would
           with the VM shut down, or via the host's coalesce-leaf plugin), offline_via
           ("shutdown" | "plugin" | None), size_known, size_source ("xapi" | "smlog" | "given" |
           "block-map" | "upper-bound": where the child's size came from), diagnosis
           (notebook 01 verdict or None)
srs        sr, name, type, family ("lvm" | "file" | None), size, used, free, garbage (bytes of
           hidden VHDs nobody needs: the GC deletes them first), needed (largest pending
           need: the GC does one coalesce at a time), needed_min, shortfall, shortfall_min
           (with needed_min), sizes_known (every VHD size behind its needs is known), verdict ("healthy" | "fits" |
           "offline-only" | "short" | "not-sized"), coalesces (count), diagnosis (notebook 01's
           verdict for the SR, or None)
"""

from __future__ import annotations

import base64
import binascii
import math
import zlib
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from runbook_lib.record import to_jsonable
from runbook_lib.schemas import SIZING_SCHEMA
from runbook_lib.units import GIB as GiB
from runbook_lib.units import KIB as KiB
from runbook_lib.units import MIB as MiB
from runbook_lib.units import TIB as TiB
from runbook_lib.units import gc_gib

VHD_BLOCK_SIZE = 2 * MiB
VHD_MAX_SIZE = 2040 * GiB
VHD_MAX_CHAIN = 30
LVM_SIZE_INCREMENT = 4 * MiB
MSIZE = 2 * TiB  # LVM VHDs preallocate metadata for this virtual size
LIVE_COALESCE_TIMEOUT_S = 10.0  # a live leaf-coalesce pauses the VM at most this long
TIMEOUT_SAFETY_MARGIN = 0.5     # only this share of the timeout may be planned for
LIVE_COALESCE_MAX_SIZE = 20 * MiB  # allowed without a measured speed

LVM_TYPES = frozenset({"lvm", "lvmoiscsi", "lvmohba", "lvmofcoe"})
FILE_TYPES = frozenset({"ext", "nfs", "file", "smb", "cifs", "xfs", "zfs", "glusterfs", "cephfs"})
SCHEMA = SIZING_SCHEMA


def roundup(divisor: int, value: int) -> int:
    return ((value + divisor - 1) // divisor) * divisor


# ---- the storage manager's formulas ------------------------------------------------------

def overhead_empty(virtual_size: int) -> int:
    """VHD metadata (footer, header, BAT, batmap) for a virtual size."""
    mb = virtual_size // MiB
    overhead = 3 * KiB
    overhead += (mb // 2) * 4
    overhead = roundup(512, overhead)
    overhead += (mb // 2) // 8
    return roundup(4096, overhead)


def overhead_bitmap(virtual_size: int) -> int:
    """One 4 KiB sector bitmap per (partial) 2 MiB block."""
    return -(-virtual_size // VHD_BLOCK_SIZE) * 4096


def vhd_full_size(virtual_size: int) -> int:
    """Bytes of a fully allocated VHD file."""
    return virtual_size + overhead_empty(virtual_size) + overhead_bitmap(virtual_size)


def lvhd_lv_size(virtual_size: int) -> int:
    """Bytes of a fully inflated VHD LV (metadata sized for MSIZE)."""
    return roundup(LVM_SIZE_INCREMENT,
                   virtual_size + overhead_empty(MSIZE) + overhead_bitmap(virtual_size))


def lv_size(vhd_bytes: int) -> int:
    """Bytes of a deflated LV holding a VHD of that many bytes."""
    return roundup(LVM_SIZE_INCREMENT, vhd_bytes)


# Live storage migration snapshots the disk on the *source* SR first. On LVM that snapshot
# deflates the inflated leaf to its VHD and keeps it as the base, then adds the VM's new leaf
# (inflated again), a thin leaf (8 MiB: the MSIZE metadata) and two journal LVs (4 MiB each,
# assumed): the source needs about the leaf's VHD size free, which a stuck SR rarely has.
MIGRATE_SNAPSHOT_EXTRA = 16 * 1024 * 1024


def migrate_snapshot_need(vhd_bytes: int) -> int:
    """Free space an LVM source needs for the snapshot a live storage migration of an attached
    leaf of that VHD size takes first; the planner and the simulator both use it."""
    return lv_size(vhd_bytes) + MIGRATE_SNAPSHOT_EXTRA


def sr_family(sr_type: str | None) -> str | None:
    """'lvm' for thick LVM SRs, 'file' for VHD-file SRs, None for what the GC does not size."""
    if sr_type in LVM_TYPES:
        return "lvm"
    if sr_type in FILE_TYPES:
        return "file"
    return None


def vhd_size_for_data(virtual_size: int, data: int) -> int:
    """Bytes of a VHD file holding `data` bytes of blocks (metadata + bitmaps + blocks)."""
    data = roundup(VHD_BLOCK_SIZE, max(0, data))
    return overhead_empty(virtual_size) + data + overhead_bitmap(data)


def data_in_vhd(virtual_size: int, vhd_size: int) -> int:
    """Bytes of allocated blocks in a VHD of that file size (the inverse of vhd_size_for_data)."""
    blocks = max(0, vhd_size - overhead_empty(virtual_size)) // (VHD_BLOCK_SIZE + 4096)
    return min(blocks * VHD_BLOCK_SIZE, roundup(VHD_BLOCK_SIZE, virtual_size))


def coalesce_need(family: str, *, data: int, virtual_size: int, parent_size: int,
                  parent_raw: bool = False) -> int:
    """Extra bytes a (non-leaf) coalesce of a child into its parent needs on the SR.

    File SRs: data + bitmaps(data) + metadata(virtual) - parent VHD file size.
    LVM SRs: the parent's LV inflated to lvhd_lv_size(data), minus its current LV
    (`parent_size`); nothing when the parent is a raw LV.
    """
    if family == "lvm":
        if parent_raw:
            return 0
        return max(0, lvhd_lv_size(data) - parent_size)
    return max(0, data + overhead_bitmap(data) + overhead_empty(virtual_size) - parent_size)


def live_leaf_need(family: str, need: int, *, leaf_size: int, leaf_vhd_size: int) -> int:
    """A live leaf-coalesce: on LVM the leaf is deflated first, which gives some space back."""
    if family == "lvm":
        return max(0, need - max(0, leaf_size - lv_size(leaf_vhd_size)))
    return need


def snapshot_coalesce_need(family: str, need: int, *, virtual_size: int, leaf_vhd_size: int) -> int:
    """Snapshot-coalesce (the GC's first try at a leaf): the coalesce plus a temporary leaf."""
    if family == "lvm":
        return need + lv_size(leaf_vhd_size)
    return need + overhead_empty(virtual_size)


def block_map(text: Any) -> int | None:
    """The GC's cached block bitmap (sm_config 'vhd-blocks': base64 of zlib) as an int whose
    set bits are the VHD's allocated 2 MiB blocks; None when absent or unreadable.

    Little-endian, so two maps of different lengths line up block for block when OR-ed.
    """
    if not isinstance(text, str) or not text:
        return None
    try:
        return int.from_bytes(zlib.decompress(base64.b64decode(text)), "little")
    except (ValueError, zlib.error, binascii.Error):
        return None


def can_live_coalesce(allocated_leaf_bytes: int, speed_bps: float | None = None, *,
                      force: bool = False) -> bool:
    """Can a live leaf-coalesce finish inside half the 10 s pause? (the GC's own test)"""
    if force:
        return True
    if speed_bps and speed_bps > 0:
        return allocated_leaf_bytes / speed_bps < TIMEOUT_SAFETY_MARGIN * LIVE_COALESCE_TIMEOUT_S
    return allocated_leaf_bytes < LIVE_COALESCE_MAX_SIZE


def copy_size(family: str | None, virtual_size: int, data: int) -> int:
    """Free space a fresh flat copy needs while it is written to an SR of that family.

    LVM writes into a fully inflated LV; a file SR holds only the allocated blocks.
    """
    if family == "lvm":
        return lvhd_lv_size(virtual_size)
    return vhd_size_for_data(virtual_size, min(data, roundup(VHD_BLOCK_SIZE, virtual_size)))


fmt_gib = gc_gib  # the GC's way of printing a size (display only); defined in runbook_lib.units


# ---- diagnosis (notebook 01) input ------------------------------------------------------

def findings_by_vdi(findings: dict[str, Any] | None, uuids: list[str]) -> dict[str, dict]:
    """Map notebook 01's per-VDI findings (short 8-char ids or full uuids) onto inventory uuids."""
    if not findings:
        return {}
    by_prefix: dict[str, list[str]] = {}
    for u in uuids:
        by_prefix.setdefault(u[:8], []).append(u)
    out: dict[str, dict] = {}
    for item in findings.get("vdis") or []:
        if not isinstance(item, dict):
            continue
        key = str(item.get("vdi") or "").lower()
        if not key:
            continue
        if key in by_prefix.get(key[:8], []):
            out[key] = item
        else:
            match = [u for u in by_prefix.get(key[:8], []) if u.startswith(key)]
            if len(match) == 1:
                out[match[0]] = item
    return out


def findings_by_sr(findings: dict[str, Any] | None, uuids: list[str]) -> dict[str, dict]:
    """Notebook 01's per-SR findings (short or full SR ids) by inventory SR uuid."""
    out: dict[str, dict] = {}
    for item in (findings or {}).get("srs") or []:
        if not isinstance(item, dict):
            continue
        key = str(item.get("sr") or "").lower()
        match = [u for u in uuids if key and u.startswith(key)]
        if len(match) == 1:
            out[match[0]] = item
    return out


def _rate(value: Any) -> float | None:
    try:
        rate = float(value)
    except (TypeError, ValueError):
        return None
    return rate if math.isfinite(rate) and rate > 0 else None


def measured_rate(findings: dict[str, Any] | None, sr: str | None = None) -> float | None:
    """Coalesce throughput (bytes/s) the SMlog showed: the SR's own (notebook 01 gives
    `srs[].coalesce_rate_bps`), else a pool-wide figure, else (no SR asked) the SRs' mean."""
    if not findings:
        return None
    for item in findings.get("srs") or []:
        if not isinstance(item, dict) or not sr or not item.get("sr"):
            continue
        if sr.startswith(str(item["sr"]).lower()):
            for key in ("coalesce_rate_bps", "rate_bps", "speed_bps"):
                if _rate(item.get(key)):
                    return _rate(item[key])
    for key in ("coalesce_rate_bps", "rate_bps", "gc_speed_bps"):
        if _rate(findings.get(key)):
            return _rate(findings[key])
    if sr is None:  # no pool-wide figure: the mean of the SRs' own rates
        rates = [_rate(item.get("coalesce_rate_bps")) for item in findings.get("srs") or []
                 if isinstance(item, dict)]
        rates = [r for r in rates if r]
        if rates:
            return sum(rates) / len(rates)
    return None


# ---- sizing a pool ------------------------------------------------------------------------

COALESCE_COLUMNS = ["vdi", "sr", "sr_type", "kind", "parent", "vms", "virtual_size", "data",
                    "work", "needed", "needed_min", "needed_snapshot", "needed_live", "live_ok",
                    "attached", "fits", "fits_offline", "offline_via", "size_known", "size_source",
                    "diagnosis"]
SR_COLUMNS = ["sr", "name", "type", "family", "size", "used", "free", "garbage", "needed",
              "needed_min", "shortfall", "shortfall_min", "sizes_known", "verdict", "coalesces",
              "diagnosis"]


@dataclass
class Sizing:
    """The sizing of one inventory: per-VDI sizes, pending coalesces, per-SR verdicts."""

    inventory: Any
    chains: Any
    vhd: pd.DataFrame        # uuid, vhd_size, data, size_known, inflated, raw, data_min, source
    coalesces: pd.DataFrame
    srs: pd.DataFrame
    gc_speed_bps: float | None = None
    findings: dict[str, dict] = field(default_factory=dict)
    inputs: dict[str, Any] = field(default_factory=dict)  # findings, vhd_sizes: for what-ifs

    def sr(self, uuid: str) -> dict[str, Any]:
        rows = self.srs[self.srs["sr"] == uuid]
        return rows.iloc[0].to_dict() if not rows.empty else {}

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "pool": self.inventory.pool,
            "captured": self.inventory.captured,
            "srs": to_jsonable(self.srs),
            "coalesces": to_jsonable(self.coalesces),
        }


def _vhd_sizes(vdis: pd.DataFrame, known: dict[str, dict], maps: dict[str, int]) -> pd.DataFrame:
    """VHD file size and allocated data per VDI, from XenAPI sizes (worst case if unknown)."""
    rows = []
    for uuid, sr_type, vsize, phys, attached, vdi_type, hidden in vdis[
            ["uuid", "sr_type", "virtual_size", "physical_utilisation", "attached", "vdi_type",
             "hidden"]
    ].itertuples(index=False, name=None):
        family = sr_family(sr_type)
        vsize, phys = int(vsize), int(phys)
        raw = vdi_type in ("aio", "raw")
        inflated = family == "lvm" and not raw and (attached or phys >= lvhd_lv_size(vsize))
        hint = known.get(uuid) or {}
        hinted = hint.get("size")
        if isinstance(hinted, bool) or (isinstance(hinted, float) and not math.isfinite(hinted)):
            hinted = None
        if raw:
            vhd, size_known, source = vsize, True, "xapi"
        elif isinstance(hinted, (int, float)) and hinted > 0:
            vhd, size_known, source = int(hinted), True, hint.get("source") or "smlog"
        elif family == "lvm" and inflated:
            vhd, size_known, source = vhd_full_size(vsize), False, "upper-bound"
        else:  # file SRs: the file size; deflated LVs: the LV (at most 4 MiB above the VHD)
            vhd, size_known, source = phys, True, "xapi"
        data = vsize if raw else data_in_vhd(vsize, vhd)
        mapped = None if raw or uuid not in maps else maps[uuid].bit_count() * VHD_BLOCK_SIZE
        if mapped is not None:
            mapped = min(mapped, roundup(VHD_BLOCK_SIZE, vsize))
            if hidden and not attached:  # read-only: the map is the VHD as it is now
                if not size_known:
                    vhd = vhd_size_for_data(vsize, mapped)
                data, size_known, source = mapped, True, "block-map"
            else:
                mapped = min(mapped, data)
        data_min = data if size_known else (mapped or 0)
        rows.append((uuid, vhd, data, size_known, inflated, raw, data_min, source))
    return pd.DataFrame(rows, columns=["uuid", "vhd_size", "data", "size_known", "inflated", "raw",
                                       "data_min", "source"])


def _deflation_by_vm(inventory, size: dict[str, dict]) -> dict[tuple[str, str], int]:
    """(VM, SR) -> bytes its inflated LVs there give back when the VM shuts down."""
    out: dict[tuple[str, str], int] = {}
    vdis = inventory.vdis
    for uuid, sr, phys, vms in vdis[["uuid", "sr", "physical_utilisation", "vms"]].itertuples(
            index=False, name=None):
        s = size.get(uuid)
        if not s or not s["inflated"] or not vms:
            continue
        back = max(0, int(phys) - lv_size(s["vhd_size"]))
        for vm in vms:
            out[(vm, sr)] = out.get((vm, sr), 0) + back
    return out


def _plugin_eligible(inventory, chains) -> dict[str, bool]:
    """VM -> can the coalesce-leaf plugin take it: each of its disks with a parent sits on a
    single base (chain of two) that has no other child."""
    parent = {u: (p if isinstance(p, str) else None)
              for u, p in zip(chains.nodes["uuid"], chains.nodes["parent"])}
    out: dict[str, bool] = {}
    for vm_uuid, vdis in inventory.vms[["uuid", "vdis"]].itertuples(index=False, name=None):
        ok = True
        for vdi in vdis:
            p = parent.get(vdi)
            if p is not None and (parent.get(p) is not None or len(chains.children.get(p, [])) != 1):
                ok = False
        out[vm_uuid] = ok
    return out


def exact_size_hint(vdi: str, sr: str, option: str = "--vhd-size") -> str:
    """How an admin measures a running LVM disk's real VHD size on the host, for `vhd_sizes`."""
    return (f"vhd-util query -s -n /dev/VG_XenStorage-{sr}/VHD-{vdi}  "
            f"(bytes; pass it as {option} {vdi[:8]}=BYTES)")


def parse_vhd_sizes(text: str | dict | None) -> dict[str, int]:
    """'uuid=bytes,uuid:bytes' (uuid or a unique prefix) -> {key: bytes}; bad text is a UsageError.

    ':' is accepted because papermill cannot read a parameters line whose help holds '='.
    """
    from runbook_lib.errors import UsageError

    if not text:
        return {}
    if isinstance(text, dict):
        items = list(text.items())
    else:
        items = []
        for part in (p.strip() for p in str(text).split(",")):
            if not part:
                continue
            key, sep, value = part.partition("=") if "=" in part else part.partition(":")
            if not sep:
                raise UsageError(f"VHD size {part!r}: write it as VDI_UUID=BYTES")
            items.append((key, value))
    out: dict[str, int] = {}
    for key, value in items:
        try:
            number = int(str(value).strip())
        except ValueError:
            number = -1
        if number <= 0 or not str(key).strip():
            raise UsageError(f"VHD size {key}={value}: give a VDI uuid and a whole number of bytes")
        out[str(key).strip().lower()] = number
    return out


def _given_sizes(sizes: dict[str, int], uuids: list[str]) -> dict[str, dict]:
    from runbook_lib.errors import UsageError

    out = {}
    for key, number in sizes.items():
        hits = [u for u in uuids if u.startswith(key)]
        if len(hits) != 1:
            raise UsageError(f"VHD size for {key}: {'no' if not hits else len(hits)} VDIs match"
                             + ("" if not hits else "; give more of the uuid"))
        out[hits[0]] = {"size": number, "source": "given"}
    return out


def size_pool(inventory, *, srs: list[str] | None = None, findings: dict[str, Any] | None = None,
              gc_speed_bps: float | None = None, chains=None,
              vhd_sizes: dict[str, int] | None = None) -> Sizing:
    """Size every pending coalesce of the inventory and judge each SR's free space.

    `srs` limits the SR table to those uuids; `findings` is notebook 01's diagnosis JSON
    (`runbook smlog diagnose --json`); `gc_speed_bps` the coalesce throughput if known
    (else the rate in the findings, else the GC's no-speed rule applies); `vhd_sizes` VHD
    sizes in bytes the admin measured (`exact_size_hint`), by VDI uuid or unique prefix.
    """
    from runbook_lib.chains import build_chains

    vdis = inventory.vdis
    chains = chains if chains is not None else build_chains(vdis)
    known = findings_by_vdi(findings, list(vdis["uuid"]))
    for uuid, given in _given_sizes(vhd_sizes or {}, list(vdis["uuid"])).items():
        known[uuid] = {**known.get(uuid, {}), **given}
    speed = gc_speed_bps or measured_rate(findings)
    maps = {u: m for u, m in ((u, block_map(b)) for u, b in zip(vdis["uuid"], vdis["vhd_blocks"])
                              if isinstance(b, str)) if m is not None}
    vhd = _vhd_sizes(vdis, known, maps)
    info = {r["uuid"]: r for r in vdis.to_dict("records")}
    size = {r["uuid"]: r for r in vhd.to_dict("records")}
    sr_rows = {r["uuid"]: r for r in inventory.srs.to_dict("records")}

    nodes = chains.nodes.to_dict("records")
    garbage: dict[str, int] = {}
    for node in nodes:  # the GC deletes these first, so their space counts as free
        me = info[node["uuid"]]
        if node["is_leaf"] and me["hidden"]:
            garbage[me["sr"]] = garbage.get(me["sr"], 0) + me["physical_utilisation"]
    room = {u: r["free"] + garbage.get(u, 0) for u, r in sr_rows.items()}
    leaf_off = {u: bool(r["leaf_coalesce_off"]) for u, r in sr_rows.items()}
    gain = _deflation_by_vm(inventory, size)
    plugin_ok = _plugin_eligible(inventory, chains)

    coalesce_rows = []
    for node in nodes:
        uuid, parent = node["uuid"], node["parent"]
        me = info[uuid]
        family = sr_family(me["sr_type"])
        if family is None or parent is None or me["sr"] not in room:
            continue
        if len(chains.children.get(parent, [])) != 1:
            continue
        if node["is_leaf"]:
            # a visible leaf over a hidden parent that has no other child
            # ... and none the GC is told to leave alone (see gc-space-rules; 'no' in old releases)
            if (not me["managed"] or not info[parent]["hidden"] or leaf_off.get(me["sr"])
                    or me["leaf_coalesce"] in ("false", "no") or me["on_boot"] == "reset"):
                continue
        elif not me["hidden"]:
            continue
        p = size[parent]
        c = size[uuid]
        vsize = me["virtual_size"]
        whole = roundup(VHD_BLOCK_SIZE, vsize)
        data = min(whole, c["data"] + p["data"])
        data_min = max(c["data_min"], p["data_min"])
        source = c["source"] if c["size_known"] or not p["size_known"] else "upper-bound"
        if uuid in maps and parent in maps:  # the GC's own count: the union of both maps
            union = min(whole, (maps[uuid] | maps[parent]).bit_count() * VHD_BLOCK_SIZE)
            data_min = max(data_min, union)
            if c["source"] == "block-map" and p["size_known"]:
                data = union
        data_min = min(data_min, data)
        exact = bool(c["size_known"] and p["size_known"])
        parent_size = info[parent]["physical_utilisation"] if family == "lvm" else p["vhd_size"]
        need = coalesce_need(family, data=data, virtual_size=vsize, parent_size=parent_size,
                             parent_raw=p["raw"])
        need_lo = coalesce_need(family, data=data_min, virtual_size=vsize,
                                parent_size=parent_size, parent_raw=p["raw"])
        leaf_vhd_lo = c["vhd_size"] if c["size_known"] else vhd_size_for_data(vsize, c["data_min"])
        diag = known.get(uuid, {}).get("verdict")
        r = room[me["sr"]]
        via = None
        if not node["is_leaf"]:
            kind, needed, snap, live, live_ok = "non-leaf", need, need, need, True
            needed_min = need_lo
            fits = needed <= r
            fits_offline = fits
        else:
            live = live_leaf_need(family, need, leaf_size=me["physical_utilisation"],
                                  leaf_vhd_size=c["vhd_size"])
            snap = snapshot_coalesce_need(family, need, virtual_size=vsize,
                                          leaf_vhd_size=c["vhd_size"])
            live_lo = live_leaf_need(family, need_lo, leaf_size=me["physical_utilisation"],
                                     leaf_vhd_size=leaf_vhd_lo)
            snap_lo = snapshot_coalesce_need(family, need_lo, virtual_size=vsize,
                                             leaf_vhd_size=leaf_vhd_lo)
            sr_speed = speed or measured_rate(findings, me["sr"])
            live_ok = can_live_coalesce(c["data"], sr_speed, force=me["leaf_coalesce"] == "force")
            if diag == "stuck-timeout":
                live_ok = False  # the log shows it does not finish in time, whatever the estimate
            # the GC: snapshot-coalesce if it fits, else the live path if the leaf is small
            # enough for the pause; a detached leaf's "live" path pauses nothing
            if snap <= r:
                kind, needed = "snapshot-coalesce", snap
            elif live_ok:
                kind, needed = ("live-leaf" if me["attached"] else "offline-leaf"), live
            else:
                kind, needed = "snapshot-coalesce", snap
            needed_min = min(needed, snap_lo if kind == "snapshot-coalesce" else live_lo)
            fits = needed <= r
            if me["attached"] and me["leaf_coalesce"] == "offline":
                fits = False  # the GC leaves it alone while the VM runs
            fits_offline = fits
            if not fits and me["attached"]:
                # shut down: every inflated LV of the VM(s) on this SR deflates first
                freed = sum(gain.get((vm, me["sr"]), 0) for vm in me["vms"])
                if snap <= r + freed or (live_ok and need <= r + freed):
                    fits_offline, via = True, "shutdown"
                # the host's coalesce-leaf plugin: forced live coalesce, VM suspended meanwhile
                elif (family == "lvm" and all(plugin_ok.get(vm) for vm in me["vms"])
                      and live <= sr_rows[me["sr"]]["free"]):
                    fits_offline, via = True, "plugin"
        coalesce_rows.append({
            "vdi": uuid, "sr": me["sr"], "sr_type": me["sr_type"], "kind": kind,
            "parent": parent, "vms": me["vms"], "virtual_size": vsize, "data": data,
            "work": int(c["data"]), "needed": needed, "needed_min": int(needed_min),
            "needed_snapshot": snap, "needed_live": live, "live_ok": live_ok,
            "attached": me["attached"], "fits": bool(fits), "fits_offline": bool(fits_offline),
            "offline_via": via, "size_known": exact, "size_source": source, "diagnosis": diag,
        })

    coalesces = pd.DataFrame(coalesce_rows, columns=COALESCE_COLUMNS)
    coalesces["fits"] = coalesces["fits"].astype(bool)
    coalesces["fits_offline"] = coalesces["fits_offline"].astype(bool)

    rows = []
    sr_findings = findings_by_sr(findings, list(sr_rows))
    wanted = set(srs) if srs else None
    for sr in sr_rows.values():
        if wanted is not None and sr["uuid"] not in wanted:
            continue
        family = sr_family(sr["type"])
        mine = coalesces[coalesces["sr"] == sr["uuid"]]
        needed = int(mine["needed"].max()) if len(mine) else 0
        needed_min = int(mine["needed_min"].max()) if len(mine) else 0
        shortfall = max(0, needed - room.get(sr["uuid"], sr["free"]))
        shortfall_min = max(0, needed_min - room.get(sr["uuid"], sr["free"]))
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
        rows.append({"sr": sr["uuid"], "name": sr["name"], "type": sr["type"], "family": family,
                     "size": sr["size"], "used": sr["used"], "free": sr["free"],
                     "garbage": garbage.get(sr["uuid"], 0), "needed": needed,
                     "needed_min": needed_min, "shortfall": shortfall,
                     "shortfall_min": shortfall_min, "sizes_known": bool(mine["size_known"].all()),
                     "verdict": verdict, "coalesces": int(len(mine)),
                     "diagnosis": sr_findings.get(sr["uuid"], {}).get("verdict")})
    table = pd.DataFrame(rows, columns=SR_COLUMNS)
    if wanted is not None:
        coalesces = coalesces[coalesces["sr"].isin(wanted)].reset_index(drop=True)
    return Sizing(inventory=inventory, chains=chains, vhd=vhd, coalesces=coalesces, srs=table,
                  gc_speed_bps=speed, findings=known,
                  inputs={"findings": findings, "vhd_sizes": vhd_sizes})


def load_findings(source) -> dict[str, Any] | None:
    """Notebook 01's diagnosis: a dict, a JSON file path, or None. Bad input is a one-line error."""
    from pathlib import Path

    from runbook_lib.errors import InputError

    if source is None or source == "" or isinstance(source, dict):
        return source or None
    from runbook_lib.input_files import read_json

    path = Path(source)
    data = read_json(path, "findings")
    if not isinstance(data, dict) or not isinstance(data.get("vdis", []), list) \
            or not isinstance(data.get("srs", []), list):
        raise InputError(f"{path} is not SMlog findings (runbook smlog diagnose --json)")
    return data


def findings_from_smlog(paths, *, year: int | None = None) -> dict[str, Any]:
    """Diagnose SMlog files (notebook 01's code) and add the measured coalesce rate."""
    from runbook_lib.smlog import diagnose, read_smlog
    from runbook_lib.smlog.rate import coalesce_rates

    read = read_smlog([str(p) for p in paths], year=year or None)
    findings = diagnose(read).to_json()
    rate = coalesce_rates(read.records).get(None)
    if rate:
        findings["coalesce_rate_bps"] = rate
    return findings


def gather_findings(findings_file=None, smlog_paths=(), *, year: int | None = None) -> dict[str, Any] | None:
    """Findings from a JSON file (notebook 01) and/or SMlog files (diagnosed here, with the rate)."""
    findings = load_findings(findings_file)
    paths = [p for p in (smlog_paths or ()) if str(p).strip()]
    if not paths:
        return findings
    from_log = findings_from_smlog(paths, year=year)
    if findings is None:
        return from_log
    findings = dict(findings)
    if from_log.get("coalesce_rate_bps") and not findings.get("coalesce_rate_bps"):
        findings["coalesce_rate_bps"] = from_log["coalesce_rate_bps"]
    return findings
