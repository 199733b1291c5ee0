"""The planner's lookups over one sizing (plain dicts, built once: the planner asks them
thousands of times) and the VMs that could leave an SR (move-vms candidates)."""

from __future__ import annotations

from dataclasses import dataclass, field

from runbook_lib.chains import ancestry
from runbook_lib.sizing import VHD_BLOCK_SIZE, Sizing, migrate_snapshot_need, roundup


class Lookups:
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


def lookups(sizing: Sizing) -> Lookups:
    cached = getattr(sizing, "_plan_lookups", None)
    if cached is None:
        cached = Lookups(sizing)
        sizing._plan_lookups = cached
    return cached


@dataclass
class Candidate:
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


def move_mode(vm: dict, staging: dict | None, export_path: str | None, allow_migrate: bool) -> str:
    if export_path:
        return "export"
    if vm["power_state"] == "Running" and allow_migrate and staging is not None and (
            staging.get("shared") or not vm.get("resident_on")
            or vm.get("resident_on") in (staging.get("hosts") or ())):
        return "migrate"
    return "copy"
