"""The what-if planner: ways to get a short SR's coalesce going, ranked, and plan.json.

For each SR whose pending coalesces do not fit (sizing verdict "short" or "offline-only")
it weighs four remedies, each with bytes to move, duration, downtime and space freed:

grow-sr           add space (an admin action outside the pool API; the runbook only describes it)
move-vms          stage the smallest set of VMs (by bytes) on another SR so the rest fits; the
                  staging SR's own free space is checked with its own SR type's rules
offline-coalesce  shut the VM(s) down so the leaf-coalesce is not live (no 10 s limit)
delete-snapshots  delete the snapshots the admin names, then let the GC work

Ranking, best first: feasible before infeasible, runbook-executable before admin actions,
then least downtime, least bytes moved, shortest duration.

Durations come from one throughput (bytes/s) for copies and one for coalescing: given, or the
rate notebook 01 measured in SMlog, else DEFAULT_THROUGHPUT_BPS (an assumption, reported).
`make_plan` turns one remedy into the plan.json of docs/plan.md (schema runbook.plan/1).
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from runbook_lib.chains import ancestry
from runbook_lib.errors import UsageError
from runbook_lib.record import to_jsonable
from runbook_lib.schemas import PLAN_SCHEMA
from runbook_lib.sizing import (
    VHD_BLOCK_SIZE,
    GiB,
    Sizing,
    copy_size,
    lv_size,
    migrate_snapshot_need,
    roundup,
    size_pool,
    sr_family,
)

DEFAULT_THROUGHPUT_BPS = 100 * 1024 * 1024   # assumed copy / coalesce rate when nothing is known
MIGRATE_PAUSE_S = 10.0      # storage migration: the VM pauses briefly at the switch-over, each way
POWER_CYCLE_S = 120.0       # clean shutdown + start of a VM
PLUGIN_PAUSE_S = 10.0       # suspend + resume around the coalesce-leaf plugin
EXHAUSTIVE_LIMIT = 12       # VMs on an SR up to which move-vms tries every subset
KINDS = ("grow-sr", "move-vms", "offline-coalesce", "delete-snapshots")


@dataclass
class Remedy:
    kind: str
    sr: str
    vms: list[dict] = field(default_factory=list)
    bytes_to_move: int = 0
    frees: int = 0
    duration_s: float = 0.0
    downtime_s: float = 0.0
    feasible: bool = True
    admin_action: bool = False
    reason: str = ""
    staging_sr: dict | None = None
    snapshots: list[str] = field(default_factory=list)
    grow_by: int = 0

    def rank_key(self):
        return (not self.feasible, self.admin_action, self.downtime_s, self.bytes_to_move,
                self.duration_s)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["vms"] = [v["uuid"] for v in self.vms]
        out["vm_details"] = self.vms
        return out


# ---- helpers over the inventory ----------------------------------------------------------

class _Lookups:
    """Plain dicts over one sizing, built once: the planner asks them thousands of times."""

    def __init__(self, sizing: Sizing):
        inv = sizing.inventory
        nodes = sizing.chains.nodes
        self.parent = {u: (p if isinstance(p, str) else None)
                       for u, p in zip(nodes["uuid"], nodes["parent"])}
        self.phys = dict(zip(nodes["uuid"], nodes["physical_utilisation"]))
        self.hidden = dict(zip(nodes["uuid"], nodes["hidden"]))
        self.children = sizing.chains.children
        self.data = dict(zip(sizing.vhd["uuid"], (int(x) for x in sizing.vhd["data"])))
        self.vhd_size = dict(zip(sizing.vhd["uuid"], (int(x) for x in sizing.vhd["vhd_size"])))
        self.inflated = dict(zip(sizing.vhd["uuid"], sizing.vhd["inflated"]))
        self.size_known = dict(zip(sizing.vhd["uuid"], sizing.vhd["size_known"]))
        self.data_min = dict(zip(sizing.vhd["uuid"], (int(x) for x in sizing.vhd["data_min"])))
        self.vms = {r["uuid"]: r for r in inv.vms.to_dict("records")}
        self.vdi_info = {r["uuid"]: r for r in inv.vdis[["uuid", "sr", "on_boot", "cbt_enabled", "snapshot_of",
                                                          "virtual_size"]].to_dict("records")}
        self.snapshots_of: dict[str, list[str]] = {}
        for uuid, of in zip(inv.vdis["uuid"], inv.vdis["snapshot_of"]):
            if isinstance(of, str):
                self.snapshots_of.setdefault(of, []).append(uuid)
        self.ha_enabled = bool(inv.pool.get("ha_enabled"))
        self.srs = {r["uuid"]: r for r in inv.srs.to_dict("records")}
        self.coalesces: dict[str, list[tuple[str, str, int]]] = {}
        for vdi, sr, parent, needed in sizing.coalesces[["vdi", "sr", "parent", "needed"]].itertuples(
                index=False, name=None):
            self.coalesces.setdefault(sr, []).append((vdi, parent, int(needed)))
        self.disks_of = self._disks_by_vm(inv)

    @staticmethod
    def _disks_by_vm(inv) -> dict[str, list[dict]]:
        """VM uuid -> its Disk VBDs joined with the VDI (device order kept)."""
        vdis = {r["uuid"]: r for r in inv.vdis[["uuid", "sr", "virtual_size", "physical_utilisation"]]
                .to_dict("records")}
        out: dict[str, list[dict]] = {}
        for vm, vdi, userdevice, typ in inv.vbds[["vm", "vdi", "userdevice", "type"]].itertuples(
                index=False, name=None):
            if typ != "Disk" or not vdi or vdi not in vdis or not vm:
                continue
            v = vdis[vdi]
            out.setdefault(vm, []).append({
                "vdi": vdi, "userdevice": userdevice, "sr": v["sr"],
                "virtual_size": int(v["virtual_size"]),
                "physical_utilisation": int(v["physical_utilisation"]),
            })
        for disks in out.values():
            disks.sort(key=lambda d: (str(d["userdevice"]).zfill(4), d["vdi"]))
        return out

    def migrate_snapshot(self, disk: dict) -> int:
        """Free space on an LVM source that snapshotting this inflated leaf for a live storage
        migration takes; a leaf of unknown written size counts as fully written (worst case)."""
        return migrate_snapshot_need(self.vhd_size.get(disk["vdi"], 0))

    def flat_data(self, vdi: str, virtual: int) -> int:
        """Bytes of blocks a flat copy of the VDI's whole chain holds (upper bound)."""
        total = sum(self.data.get(node, 0) for node in ancestry(vdi, self.parent))
        return min(total, roundup(VHD_BLOCK_SIZE, virtual))

    def freed_on_sr(self, leaves: set[str]) -> tuple[set[str], int]:
        """VDIs (and bytes) leaving the SR with these leaves: them, and ancestors left childless."""
        gone = set(leaves)
        frontier = {self.parent.get(u) for u in leaves} - {None}
        while frontier:
            nxt = set()
            for a in frontier:
                if a in gone or not self.hidden.get(a):
                    continue
                if all(k in gone for k in self.children.get(a, [])):
                    gone.add(a)
                    if self.parent.get(a):
                        nxt.add(self.parent[a])
            frontier = nxt
        return gone, sum(self.phys.get(u, 0) for u in gone)

    def remaining_need(self, sr: str, gone: set[str]) -> int:
        """The largest need left on the SR once these VDIs are gone."""
        return max((n for vdi, parent, n in self.coalesces.get(sr, ())
                    if vdi not in gone and parent not in gone), default=0)


def _lookups(sizing: Sizing) -> _Lookups:
    cached = getattr(sizing, "_plan_lookups", None)
    if cached is None:
        cached = _Lookups(sizing)
        sizing._plan_lookups = cached
    return cached


@dataclass
class _Candidate:
    vm: dict
    disks: list[dict]        # all the VM's disks
    gone: set[str]           # VDIs on the SR that disappear (incl. ancestors)
    frees: int
    bytes: int
    flat: dict[str, int]     # vdi -> flat data bytes
    migrate_need: int = 0    # source free space its live migration's snapshot takes (worst case)
    migrate_ok: bool = True  # the source has room for it, even if the leaf is fully written
    migrate_blocker: str = ""  # why storage migration refuses a disk (on_boot=reset, CBT), else ""
    snap_disks: list = field(default_factory=list)  # its snapshots' disks, which a migration takes along
    ha_protected: bool = False  # on a pool with HA: it can be staged on a shared SR only

    def live_ok(self, allow_migrate: bool) -> bool:
        return allow_migrate and self.migrate_ok and not self.migrate_blocker


def _mode(vm: dict, staging: dict | None, export_path: str | None, allow_migrate: bool) -> str:
    if export_path:
        return "export"
    if vm["power_state"] == "Running" and allow_migrate and staging is not None and (
            staging.get("shared") or not vm.get("resident_on")
            or vm.get("resident_on") in (staging.get("hosts") or ())):
        return "migrate"
    return "copy"


# ---- the remedies ---------------------------------------------------------------------------

def _grow(sr: dict) -> Remedy:
    grow_by = roundup(GiB, max(sr["shortfall"], 1))
    how = ("add a disk to the volume group or grow the LUN, then resize the SR"
           if sr["family"] == "lvm" else "grow the file system or export behind the SR")
    reason = f"{how}, by at least {grow_by / GiB:.0f} GiB; then SR.scan and wait for the GC"
    if not sr.get("sizes_known", True):
        least = roundup(GiB, sr.get("shortfall_min", 0)) if sr.get("shortfall_min") else 0
        reason += (f" (worst case: a running disk's written size is unknown, the real need may "
                   f"be as low as {least / GiB:.0f} GiB more; measure it first, see --vhd-size)")
    return Remedy(kind="grow-sr", sr=sr["sr"], frees=grow_by, grow_by=grow_by, admin_action=True,
                  reason=reason)


def _move(sizing: Sizing, sr: dict, *, staging_uuids: list[str], throughput: float,
          export_path: str | None, allow_migrate: bool) -> Remedy:
    look = _lookups(sizing)
    room = sr["free"] + sr["garbage"]
    cands: list[_Candidate] = []
    for vm_uuid, disks in look.disks_of.items():
        vm = look.vms.get(vm_uuid)
        if vm is None or vm["is_control_domain"] or vm["is_a_template"] or vm["is_a_snapshot"]:
            continue
        leaves = {d["vdi"] for d in disks if d["sr"] == sr["sr"]}
        if not leaves:
            continue
        gone, frees = look.freed_on_sr(leaves)
        flat = {d["vdi"]: look.flat_data(d["vdi"], d["virtual_size"]) for d in disks}
        vm_rec = {"uuid": vm_uuid, "name": vm["name"], "power_state": vm["power_state"],
                  "resident_on": vm["resident_on"]}
        lvm_leaves = [d for d in disks if sr["family"] == "lvm" and d["sr"] == sr["sr"]
                      and look.inflated.get(d["vdi"])]
        need = max((look.migrate_snapshot(d) for d in lvm_leaves), default=0)
        cands.append(_Candidate(vm=vm_rec, disks=disks, gone=gone, frees=frees,
                                bytes=sum(flat.values()), flat=flat, migrate_need=need,
                                migrate_ok=need <= sr["free"], migrate_blocker=_migrate_blocker(look, leaves),
                                snap_disks=_snapshot_disks(look, leaves),
                                ha_protected=look.ha_enabled and bool(vm.get("ha_protected"))))
    if not cands:
        return Remedy(kind="move-vms", sr=sr["sr"], feasible=False,
                      reason="no VM has a disk on this SR")
    back_size = {c.vm["uuid"]: sum(copy_size(sr["family"], d["virtual_size"], c.flat[d["vdi"]])
                                   for d in c.disks if d["sr"] == sr["sr"]) for c in cands}

    def frees_enough(subset) -> bool:
        """The rest of the SR's coalesces fit, and the VMs fit again when they come back."""
        gone = set().union(*(c.gone for c in subset))
        room_after = room + sum(c.frees for c in subset)
        return (look.remaining_need(sr["sr"], gone) <= room_after
                and sum(back_size[c.vm["uuid"]] for c in subset) <= room_after)

    def staging(st_uuid: str):
        st = look.srs[st_uuid]
        info = {"uuid": st_uuid, "name": st["name"], "type": st["type"], "free": int(st["free"]),
                "shared": bool(st["shared"]), "hosts": tuple(st["hosts"])}
        fam = sr_family(st["type"])

        def need(c: _Candidate) -> float:
            if c.ha_protected and not info["shared"]:
                return math.inf  # HA_CONSTRAINT_VIOLATION_SR_NOT_SHARED: never staged here
            if _mode(c.vm, info, export_path, c.live_ok(allow_migrate)) != "migrate":
                return sum(copy_size(fam, d["virtual_size"], c.flat[d["vdi"]]) for d in c.disks)
            moving = [d for d in c.disks if d["sr"] == sr["sr"]] + c.snap_disks  # snapshots go along
            return sum(copy_size(fam, d["virtual_size"], d.get("flat", c.flat.get(d["vdi"], 0))) for d in moving)
        return info, {c.vm["uuid"]: need(c) for c in cands}

    unconstrained = _smallest_subset(cands, frees_enough)
    if unconstrained is None:
        return Remedy(kind="move-vms", sr=sr["sr"], feasible=False,
                      reason="moving every VM off this SR would still not free enough")
    unplugged = [look.srs[u]["name"] for u in staging_uuids if u in look.srs and not look.srs[u]["hosts"]]
    staging_uuids = [u for u in staging_uuids if u in look.srs and look.srs[u]["hosts"]]
    if not staging_uuids:
        return Remedy(kind="move-vms", sr=sr["sr"], feasible=False,
                      reason=("staging SR not attached to any host: " + ", ".join(unplugged))
                      if unplugged else "no other SR to stage VMs on")
    def downtime_of(subset, info) -> float:
        total = 0.0
        for c in subset:
            mode = _mode(c.vm, info, export_path, c.live_ok(allow_migrate))
            if mode == "migrate":
                total += 2 * MIGRATE_PAUSE_S
            elif c.vm["power_state"] != "Halted":
                total += 2 * c.bytes / throughput + POWER_CYCLE_S
        return total

    def score(subset, info, needs):
        """Fewest bytes, then least downtime, then the most room left on the staging SR."""
        need = sum(needs[c.vm["uuid"]] for c in subset)
        return (sum(c.bytes for c in subset), downtime_of(subset, info), need - info["free"])

    best = None
    for st_uuid in staging_uuids:  # the smallest set, if some staging SR holds it by its own rules
        info, needs = staging(st_uuid)
        if sum(needs[c.vm["uuid"]] for c in unconstrained) <= info["free"]:
            key = score(unconstrained, info, needs)
            if best is None or key < best[0]:
                best = (key, unconstrained, info, needs)
    if best is None:  # no staging SR holds that set: search again within each one's room
        why_not = []
        for st_uuid in staging_uuids:
            info, needs = staging(st_uuid)
            found = _smallest_subset(
                cands, lambda s, n=needs, f=info["free"]: frees_enough(s)
                and sum(n[c.vm["uuid"]] for c in s) <= f)
            if found is None:
                protected = [c.vm["name"] for c in unconstrained if c.ha_protected and not info["shared"]]
                why_not.append(f"{info['name']} (HA-protected {', '.join(protected)} can be staged on a shared SR "
                               "only)" if protected else
                               f"{info['name']} ({info['free'] / GiB:.1f} GiB free, "
                               f"needs {sum(needs[c.vm['uuid']] for c in unconstrained) / GiB:.1f})")
                continue
            key = score(found, info, needs)
            if best is None or key < best[0]:
                best = (key, found, info, needs)
        if best is None:
            return Remedy(kind="move-vms", sr=sr["sr"], feasible=False,
                          reason="no staging SR has room for the VMs: " + "; ".join(why_not[:3]))
    best = best[1:]

    chosen, st_info, needs = best
    st_need = sum(needs[c.vm["uuid"]] for c in chosen)
    vm_entries, downtime, total_bytes = [], 0.0, 0
    for c in chosen:
        mode = _mode(c.vm, st_info, export_path, c.live_ok(allow_migrate))
        moving = c.disks if mode != "migrate" else [d for d in c.disks if d["sr"] == sr["sr"]]
        nbytes = sum(c.flat[d["vdi"]] for d in moving)
        total_bytes += nbytes
        if mode == "migrate":
            downtime += 2 * MIGRATE_PAUSE_S
        elif c.vm["power_state"] != "Halted":
            downtime += 2 * nbytes / throughput + POWER_CYCLE_S
        vm_entries.append({
            "uuid": c.vm["uuid"], "name": c.vm["name"], "power_state": c.vm["power_state"],
            "mode": mode, "bytes": nbytes, "staging_bytes": int(needs[c.vm["uuid"]]),
            "disks": [{k: d[k] for k in ("vdi", "userdevice", "virtual_size", "physical_utilisation")}
                      for d in moving],
        })
    frees = sum(c.frees for c in chosen)
    names = ", ".join(v["name"] or v["uuid"][:8] for v in vm_entries)
    why = ""
    for c in chosen:
        name = c.vm["name"] or c.vm["uuid"][:8]
        if allow_migrate and not export_path and c.vm["power_state"] == "Running" and c.migrate_blocker:
            why += f"; {name} is copied with a shutdown: {c.migrate_blocker}"
        elif allow_migrate and not export_path and c.vm["power_state"] == "Running" and not c.migrate_ok:
            why += (f"; {name} is copied with a shutdown: live migration would first snapshot its "
                    f"disk on this SR, needing {c.migrate_need / GiB:.1f} GiB free there")
            if not all(look.size_known.get(d["vdi"], True) for d in c.disks if d["sr"] == sr["sr"]):
                why += (" (its written size is unknown, so the worst case: measure the disk "
                        "with --vhd-size, a smaller one may migrate live)")
    staging_sr = {k: st_info[k] for k in ("uuid", "name", "type", "free")}
    return Remedy(
        kind="move-vms", sr=sr["sr"], vms=vm_entries, bytes_to_move=total_bytes, frees=frees,
        duration_s=2 * total_bytes / throughput, downtime_s=downtime, staging_sr=staging_sr,
        reason=(f"stage {names} on {st_info['name']} ({st_need / GiB:.1f} GiB of its "
                f"{st_info['free'] / GiB:.1f} GiB free), SR.scan, wait for the GC, move back{why}"))


def _migrate_blocker(look: _Lookups, leaves: set[str]) -> str:
    """Why storage migration (migrate_send) would refuse one of these disks, or ""."""
    for vdi in sorted(leaves):
        info = look.vdi_info.get(vdi) or {}
        if info.get("on_boot") == "reset":
            return (f"its disk {vdi[:8]} resets on boot (on_boot=reset), which storage migration refuses "
                    "(VDI_ON_BOOT_MODE_INCOMPATIBLE_WITH_OPERATION)")
        if info.get("cbt_enabled"):
            return (f"its disk {vdi[:8]} has changed block tracking on, which storage migration refuses "
                    "(VDI_CBT_ENABLED)")
    return ""


def _snapshot_disks(look: _Lookups, leaves: set[str]) -> list[dict]:
    """The disks of snapshots taken of these leaves: a storage migration moves them with the leaf."""
    out = []
    for leaf in sorted(leaves):
        for snap in look.snapshots_of.get(leaf, []):
            size = int((look.vdi_info.get(snap) or {}).get("virtual_size") or 0)
            out.append({"vdi": snap, "virtual_size": size, "flat": look.flat_data(snap, size)})
    return out


def _smallest_subset(cands: list[_Candidate], ok) -> list[_Candidate] | None:
    """The set of candidates with the fewest bytes for which ok(set) holds."""
    if len(cands) <= EXHAUSTIVE_LIMIT:
        best = None
        for k in range(1, len(cands) + 1):
            for combo in itertools.combinations(cands, k):
                size = sum(c.bytes for c in combo)
                if best is not None and size >= best[0]:
                    continue
                if ok(combo):
                    best = (size, list(combo))
        return best[1] if best else None
    # many VMs: the best single VM, or a greedy set by space freed per byte moved, pruned
    singles = sorted((c for c in cands if ok([c])), key=lambda c: c.bytes)
    options = [[singles[0]]] if singles else []
    chosen: list[_Candidate] = []
    for c in sorted(cands, key=lambda c: -(c.frees + 1) / (c.bytes + 1)):
        chosen.append(c)
        if ok(chosen):
            for extra in sorted(chosen, key=lambda c: -c.bytes):
                trial = [x for x in chosen if x is not extra]
                if trial and ok(trial):
                    chosen = trial
            options.append(chosen)
            break
    return min(options, key=lambda s: sum(c.bytes for c in s)) if options else None


def _offline(sizing: Sizing, sr: dict, *, gc_speed: float) -> Remedy:
    co = sizing.coalesces[sizing.coalesces["sr"] == sr["sr"]]
    blocking = co[~co["fits"]]
    if blocking.empty:
        return Remedy(kind="offline-coalesce", sr=sr["sr"], feasible=False,
                      reason="every pending coalesce already fits")
    if not bool(blocking["fits_offline"].all()) or (blocking["kind"] == "non-leaf").any() \
            or any(not vms for vms in blocking["vms"]):
        return Remedy(kind="offline-coalesce", sr=sr["sr"], feasible=False,
                      reason="even with the VM shut down the coalesce does not fit")
    look = _lookups(sizing)
    entries, data, downtime, frees = [], 0, 0.0, 0
    for vm_uuid in sorted({vm for row in blocking["vms"] for vm in row}):
        vm = look.vms[vm_uuid]
        mine = blocking[blocking["vms"].apply(lambda v, u=vm_uuid: u in v)]
        on_sr = [d for d in look.disks_of.get(vm_uuid, []) if d["sr"] == sr["sr"]]
        vm_data = int(mine["work"].sum())
        data += vm_data
        # the GC's own way once the VM is down, else the host's coalesce-leaf plugin
        plugin = bool((mine["offline_via"] == "plugin").any())
        if vm["power_state"] != "Halted":
            downtime += vm_data / gc_speed + (PLUGIN_PAUSE_S if plugin else POWER_CYCLE_S)
        if sr["family"] == "lvm" and not plugin:
            frees += sum(max(0, d["physical_utilisation"] - lv_size(look.vhd_size[d["vdi"]]))
                         for d in on_sr if look.inflated.get(d["vdi"]))
        entries.append({"uuid": vm_uuid, "name": vm["name"], "power_state": vm["power_state"],
                        "mode": "offline", "bytes": 0, "coalesce_plugin": plugin,
                        "disks": [{k: d[k] for k in ("vdi", "userdevice", "virtual_size",
                                                     "physical_utilisation")} for d in on_sr]})
    names = ", ".join(e["name"] or e["uuid"][:8] for e in entries)
    if all(e["coalesce_plugin"] for e in entries):
        how = (f"call the host's coalesce-leaf plugin for {names} (suspends the VM, forces the "
               "leaf-coalesce, resumes it)")
    else:
        how = (f"shut down {names} (its disks deflate, the leaf-coalesce is no longer live), "
               "SR.scan, wait for the GC, start again")
    return Remedy(kind="offline-coalesce", sr=sr["sr"], vms=entries, frees=frees,
                  duration_s=data / gc_speed, downtime_s=downtime, reason=how)


def _snapshot_vdis(inv, names: list[str]) -> tuple[list[str], list[str]]:
    """Snapshot VM or VDI uuids -> (VDI uuids, unknown names)."""
    vdis = inv.vdis.set_index("uuid")
    vms = inv.vms.set_index("uuid")
    out, unknown = [], []
    for name in names:
        if name in vdis.index and vdis.loc[name, "is_a_snapshot"]:
            out.append(name)
        elif name in vms.index and vms.loc[name, "is_a_snapshot"]:
            out.extend(vms.loc[name, "vdis"])
        else:
            unknown.append(name)
    return out, unknown


def what_if_removed(inventory, vdi_uuids: set[str]):
    """A copy of the inventory with these VDIs (and their VBDs) gone and the SR space back."""
    from runbook_lib.xapi.inventory import Inventory

    recs = {c: dict(r) for c, r in inventory.records.items()}
    refs = {ref for ref, r in recs["VDI"].items() if r.get("uuid") in vdi_uuids}
    for ref in refs:
        vdi = recs["VDI"].pop(ref)
        sr = dict(recs["SR"].get(vdi.get("SR"), {}))
        if sr:
            sr["physical_utilisation"] = (int(sr.get("physical_utilisation", 0))
                                          - int(vdi.get("physical_utilisation", 0)))
            sr["VDIs"] = [v for v in sr.get("VDIs", []) if v != ref]
            recs["SR"][vdi["SR"]] = sr
    recs["VBD"] = {ref: r for ref, r in recs["VBD"].items() if r.get("VDI") not in refs}
    return Inventory(recs, captured=inventory.captured, source=inventory.source)


def _delete_snapshots(sizing: Sizing, sr: dict, names: list[str], *, gc_speed: float) -> Remedy:
    inv = sizing.inventory
    vdis, unknown = _snapshot_vdis(inv, names)
    if unknown:
        return Remedy(kind="delete-snapshots", sr=sr["sr"], feasible=False, snapshots=list(names),
                      reason=f"not snapshots in this pool: {', '.join(u[:8] for u in unknown)}")
    on_sr = set(inv.vdis[inv.vdis["uuid"].isin(vdis) & (inv.vdis["sr"] == sr["sr"])]["uuid"])
    given = {k: n for k, n in (sizing.inputs.get("vhd_sizes") or {}).items()
             if not any(u.startswith(k) for u in on_sr)}  # sizes of deleted VDIs go with them
    after = size_pool(what_if_removed(inv, on_sr), srs=[sr["sr"]],
                      gc_speed_bps=sizing.gc_speed_bps,
                      findings=sizing.inputs.get("findings"), vhd_sizes=given)
    row = after.sr(sr["sr"])
    frees = int(inv.vdis[inv.vdis["uuid"].isin(on_sr)]["physical_utilisation"].sum())
    work = int(after.coalesces["work"].sum()) if len(after.coalesces) else 0
    feasible = bool(row) and row["shortfall"] == 0
    reason = ("delete the named snapshots, SR.scan, wait for the GC"
              if feasible else
              f"deleting them frees {frees / GiB:.1f} GiB but the SR is still short by "
              f"{row.get('shortfall', 0) / GiB:.1f} GiB")
    return Remedy(kind="delete-snapshots", sr=sr["sr"], snapshots=list(names), frees=frees,
                  duration_s=work / gc_speed, feasible=feasible, reason=reason)


def rank_remedies(sizing: Sizing, *, sr: str | None = None, staging_sr: str | None = None,
                  throughput_bps: float | None = None, snapshots: list[str] | tuple = (),
                  export_path: str | None = None, allow_migrate: bool = True) -> list[Remedy]:
    """Every remedy for every SR that needs one (or just `sr`), best first."""
    throughput = throughput_bps or sizing.gc_speed_bps or DEFAULT_THROUGHPUT_BPS
    gc_speed = sizing.gc_speed_bps or throughput
    inv = sizing.inventory
    known = set(inv.srs["uuid"])
    for uuid, what in ((sr, "--sr"), (staging_sr, "--staging-sr")):
        if uuid and uuid not in known:
            raise UsageError(f"{what} {uuid}: no such SR in the pool")
    targets = sizing.srs[sizing.srs["verdict"].isin(["short", "offline-only"])]
    if sr:
        targets = targets[targets["sr"] == sr]
    targets = targets.sort_values("shortfall", ascending=False, kind="stable")
    out: list[Remedy] = []
    for target in targets.to_dict("records"):
        if staging_sr:
            staging = [staging_sr] if staging_sr != target["sr"] else []
        else:
            cand = inv.srs[(inv.srs["uuid"] != target["sr"]) & (inv.srs["content_type"] != "iso")]
            cand = cand[cand["type"].map(sr_family).notna()].sort_values("free", ascending=False)
            staging = list(cand["uuid"])
        remedies = [
            _move(sizing, target, staging_uuids=staging, throughput=throughput,
                  export_path=export_path, allow_migrate=allow_migrate),
            _offline(sizing, target, gc_speed=gc_speed),
            _grow(target),
        ]
        if snapshots:
            remedies.append(_delete_snapshots(sizing, target, list(snapshots), gc_speed=gc_speed))
        out.extend(sorted(remedies, key=Remedy.rank_key))
    return out


def make_plan(sizing: Sizing, remedy: Remedy, *, url: str | None = None,
              inventory_path: str | None = None, export_path: str | None = None,
              wait_timeout_s: float = 3600.0, alternatives: list[Remedy] | None = None) -> dict:
    """The plan.json document (docs/plan.md) for one remedy."""
    inv = sizing.inventory
    sr = sizing.sr(remedy.sr)
    pool = inv.pool
    plan = {
        "schema": PLAN_SCHEMA,
        "created": pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ"),
        "pool": {"uuid": pool["uuid"], "name": pool["name"], "url": url or None,
                 "inventory": str(inventory_path) if inventory_path else None},
        "sr": {k: sr.get(k) for k in ("name", "type", "size", "free", "needed", "shortfall",
                                      "needed_min", "shortfall_min", "sizes_known")}
              | {"uuid": remedy.sr},
        "remedy": {"kind": remedy.kind, "bytes_to_move": int(remedy.bytes_to_move),
                   "frees": int(remedy.frees), "duration_s": float(remedy.duration_s),
                   "downtime_s": float(remedy.downtime_s), "reason": remedy.reason,
                   "feasible": remedy.feasible},
        "staging_sr": remedy.staging_sr if remedy.kind == "move-vms" else None,
        "vms": remedy.vms,
        "snapshots": list(remedy.snapshots) if remedy.kind == "delete-snapshots" else [],
        "grow_by": int(remedy.grow_by) if remedy.kind == "grow-sr" else 0,
        "export_path": export_path if any(v["mode"] == "export" for v in remedy.vms) else None,
        "wait": {"timeout_s": float(wait_timeout_s)},
        "coalesces": [
            {k: c[k] for k in ("vdi", "kind", "needed", "fits")}
            for c in sizing.coalesces[sizing.coalesces["sr"] == remedy.sr].to_dict("records")
        ],
        "alternatives": [{"kind": r.kind, "feasible": r.feasible, "reason": r.reason}
                         for r in (alternatives or []) if r is not remedy and r.sr == remedy.sr],
    }
    return to_jsonable(plan)


def choose(remedies: list[Remedy]) -> Remedy | None:
    """The remedy a plan is made of: the best feasible one of the SR with the worst need."""
    feasible = [r for r in remedies if r.feasible]
    return feasible[0] if feasible else None


def write_plan(plan: dict, path: str | Path) -> Path:
    """Write plan.json atomically, readable by its owner only, like every run output."""
    import os

    from runbook_lib.errors import InputError
    from runbook_lib.input_files import check_output_file

    path = check_output_file(path, "the plan")
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(json.dumps(plan, indent=2) + "\n")
        os.chmod(tmp, 0o600)
        tmp.replace(path)
    except OSError as err:
        raise InputError(f"cannot write the plan to {path}: {err.strerror or err}") from None
    return path


def remedies_json(remedies: list[Remedy]) -> list[dict]:
    return [to_jsonable(r.to_json()) for r in remedies]


def resolve_sr(inventory, text: str | None, what: str = "SR") -> str | None:
    """An SR's uuid from its uuid, a unique uuid prefix (8 characters will do) or its name."""
    if not text:
        return None
    srs = inventory.srs
    if text in set(srs["uuid"]):
        return text
    hits = srs[srs["uuid"].str.startswith(text.lower()) | (srs["name"] == text)]
    if len(hits) == 1:
        return hits.iloc[0]["uuid"]
    if hits.empty:
        raise UsageError(f"{what} {text}: no such SR in the pool")
    raise UsageError(f"{what} {text} matches {len(hits)} SRs: "
                     + ", ".join(f"{n} ({u[:8]})" for u, n in zip(hits["uuid"], hits["name"])))


@dataclass
class Assessment:
    """Sizing plus ranked remedies plus the chosen one: what `runbook size` and notebook 02 show."""

    sizing: Sizing
    remedies: list[Remedy]
    chosen: Remedy | None
    throughput_bps: float
    throughput_source: str

    def to_json(self) -> dict[str, Any]:
        out = self.sizing.to_json()
        out["remedies"] = remedies_json(self.remedies)
        out["chosen"] = self.chosen.kind if self.chosen else None
        out["throughput_bps"] = self.throughput_bps
        out["throughput_source"] = self.throughput_source
        return out

    def plan(self, **kwargs) -> dict | None:
        if self.chosen is None:
            return None
        return make_plan(self.sizing, self.chosen, alternatives=self.remedies, **kwargs)


def assess(inventory, *, sr: str | None = None, staging_sr: str | None = None,
           findings: dict | None = None, throughput_bps: float | None = None,
           gc_speed_bps: float | None = None, snapshots: list[str] | tuple = (),
           export_path: str | None = None, allow_migrate: bool = True,
           vhd_sizes: dict[str, int] | None = None) -> Assessment:
    """Size the pool (or one SR) and rank what would get its coalesces going."""
    from runbook_lib.sizing import measured_rate

    if throughput_bps is not None and not throughput_bps > 0:
        raise UsageError(f"throughput must be a positive rate, not {throughput_bps / 2**20:g} MiB/s "
                         "(0 or nothing: measured in the SMlog, else 100 MiB/s)")
    sr = resolve_sr(inventory, sr, "--sr")
    staging_sr = resolve_sr(inventory, staging_sr, "--staging-sr")
    sizing = size_pool(inventory, srs=[sr] if sr else None, findings=findings,
                       gc_speed_bps=gc_speed_bps, vhd_sizes=vhd_sizes)
    if throughput_bps:
        source = "given"
    elif measured_rate(findings):
        throughput_bps, source = measured_rate(findings), "measured in SMlog"
    else:
        throughput_bps, source = DEFAULT_THROUGHPUT_BPS, "assumed (100 MiB/s)"
    remedies = rank_remedies(sizing, sr=sr, staging_sr=staging_sr, throughput_bps=throughput_bps,
                             snapshots=snapshots, export_path=export_path,
                             allow_migrate=allow_migrate)
    return Assessment(sizing=sizing, remedies=remedies, chosen=choose(remedies),
                      throughput_bps=float(throughput_bps), throughput_source=source)
