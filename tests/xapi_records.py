"""Hand-written XenAPI records in the wire shapes of xenapi.md (XML-RPC: ints as strings).

Used by the sizing, chains, plan and inventory tests to build small pools without a server.
"""

from __future__ import annotations

import itertools

_counter = itertools.count(1)


def _uuid(prefix: str) -> str:
    n = next(_counter)
    return f"{n:08x}-{sum(map(ord, prefix)) % 0xffff:04x}-4000-8000-{n:012x}"


class PoolRecords:
    """Build `{class: {ref: record}}` one object at a time."""

    def __init__(self, name: str = "pool"):
        self.records = {c: {} for c in ("pool", "host", "SR", "PBD", "VDI", "VM", "VBD", "VIF")}
        self.host = self._add("host", {"name_label": "host1", "address": "10.0.0.1",
                                       "enabled": True, "PBDs": [], "resident_VMs": []})
        self._add("pool", {"name_label": name, "master": self.host, "default_SR": "OpaqueRef:NULL",
                           "other_config": {}})
        dom0 = self._add("VM", {"name_label": "Control domain", "power_state": "Running",
                                "is_a_template": False, "is_control_domain": True,
                                "is_a_snapshot": False, "snapshot_of": "OpaqueRef:NULL",
                                "snapshots": [], "VBDs": [], "VIFs": [], "resident_on": self.host,
                                "snapshot_time": "19700101T00:00:00Z"})
        self.dom0 = dom0

    def _add(self, cls: str, rec: dict) -> str:
        uuid = _uuid(cls.lower()[:2] + "aa")
        ref = f"OpaqueRef:{uuid}"
        rec = {"uuid": uuid, **rec}
        self.records[cls][ref] = rec
        return ref

    def uuid(self, cls: str, ref: str) -> str:
        return self.records[cls][ref]["uuid"]

    def sr(self, name: str, type_: str, size: int, used: int, *, shared: bool = False) -> str:
        ref = self._add("SR", {"name_label": name, "type": type_, "content_type": "user",
                               "shared": shared, "physical_size": str(size),
                               "physical_utilisation": str(used), "virtual_allocation": "0",
                               "VDIs": [], "PBDs": [], "sm_config": {}, "other_config": {}})
        pbd = self._add("PBD", {"host": self.host, "SR": ref, "currently_attached": True,
                                "device_config": {"device": "/dev/sdb", "password": "hunter2"}})
        self.records["SR"][ref]["PBDs"].append(pbd)
        return ref

    def vdi(self, sr: str, virtual: int, phys: int, *, parent: str | None = None,
            managed: bool = True, snapshot_of: str | None = None, name: str = "disk",
            snapshot_time: str = "19700101T00:00:00Z", leaf_coalesce: str | None = None) -> str:
        sm = {"vdi_type": "vhd"}
        if parent:
            sm["vhd-parent"] = self.uuid("VDI", parent)
        other = {"leaf-coalesce": leaf_coalesce} if leaf_coalesce else {}
        ref = self._add("VDI", {
            "name_label": name, "SR": sr, "type": "user", "virtual_size": str(virtual),
            "physical_utilisation": str(phys), "is_a_snapshot": snapshot_of is not None,
            "snapshot_of": snapshot_of or "OpaqueRef:NULL", "snapshot_time": snapshot_time,
            "snapshots": [], "VBDs": [], "managed": managed, "missing": False,
            "read_only": not managed, "sm_config": sm, "other_config": other,
            "allowed_operations": [], "current_operations": {}})
        self.records["SR"][sr]["VDIs"].append(ref)
        return ref

    def vm(self, name: str, power_state: str, disks: list[str]) -> str:
        ref = self._add("VM", {"name_label": name, "power_state": power_state,
                               "is_a_template": False, "is_control_domain": False,
                               "is_a_snapshot": False, "snapshot_of": "OpaqueRef:NULL",
                               "snapshots": [], "VBDs": [], "VIFs": [],
                               "resident_on": self.host if power_state == "Running" else "OpaqueRef:NULL",
                               "snapshot_time": "19700101T00:00:00Z"})
        for i, vdi in enumerate(disks):
            vbd = self._add("VBD", {"VM": ref, "VDI": vdi, "device": f"xvd{'abcdefgh'[i]}",
                                    "userdevice": str(i), "type": "Disk", "mode": "RW",
                                    "bootable": i == 0,
                                    "currently_attached": power_state == "Running", "empty": False})
            self.records["VM"][ref]["VBDs"].append(vbd)
            self.records["VDI"][vdi]["VBDs"].append(vbd)
        vif = self._add("VIF", {"VM": ref, "device": "0", "MAC": "aa:bb:cc:dd:ee:01",
                                "network": "OpaqueRef:net"})
        self.records["VM"][ref]["VIFs"].append(vif)
        return ref

    def inventory(self, captured: str = "2026-11-26T10:00:00Z"):
        from runbook_lib.xapi.inventory import Inventory, normalise_record

        clean = {c: {ref: normalise_record(c, rec) for ref, rec in recs.items()}
                 for c, recs in self.records.items()}
        return Inventory(clean, captured=captured, source={"url": None, "kind": "test"})
