"""A pool's inventory: one `get_all_records` per class, kept as plain records and DataFrames.

The records are trimmed to the fields the runbooks use (a PBD's `device_config`, which may
hold storage passwords, is never kept), normalised (ints as ints whatever the wire sent,
dates as ISO-8601 UTC) and can be saved to / loaded from a JSON file, so sizing and
postmortems give the same answer offline as on the pool.

DataFrame columns (one row per object; `ref` is the XenAPI reference, links use uuids):

hosts   uuid, ref, name, address, enabled, is_master, suspend_sr (host.suspend_image_sr: the
        third choice for a suspend image), product_brand, product_version,
        build_number (host.software_version: the product release, not the storage manager's)
srs     uuid, ref, name, type, content_type, shared, size (physical_size),
        used (physical_utilisation), free (size - used, never below 0),
        virtual_allocation, vdis (count), hosts (tuple of host uuids with an attached PBD),
        gc_no_space (sm_config: the GC's SM_GC_NO_SPACE message ref, or None), leaf_coalesce_off
        (other_config coalesce=false or leaf-coalesce=false: the GC does no leaf-coalesce there),
        gc, coalesce, leaf_coalesce, auto_scan (the other_config switches as set, else None),
        provisioning ("thick" unless sm_config allocation=thin: on thick LVM a shutdown frees nothing),
        vdi_order (tuple of the SR's VDI uuids in its `VDIs` field's order)
pbds    uuid, ref, host, sr, currently_attached                (device_config is never kept)
vdis    uuid, ref, name, sr, sr_type, type, virtual_size, physical_utilisation,
        vhd_parent (uuid or None), vdi_type (sm_config vdi_type, e.g. "vhd"/"aio", or None),
        vhd_blocks (sm_config 'vhd-blocks': the GC's cached block bitmap, base64 of zlib, as
        of its last look at the VHD; None if it never looked),
        managed, hidden (= not managed: an internal chain node or base copy), missing,
        read_only, is_a_snapshot, snapshot_of (VDI uuid or None), snapshot_time (UTC
        Timestamp or NaT), snapshot_age_days (at capture time, NaN if not a snapshot),
        leaf_coalesce (other_config 'leaf-coalesce', or None), on_boot ("persist" | "reset":
        the GC never leaf-coalesces a reset-on-boot disk), cbt_enabled (changed block tracking:
        storage migration refuses the disk), attached (a VBD is
        currently attached), vms (tuple of VM uuids that have a VBD on it),
        gc_no_space, paused, relinking, activating (those sm_config keys as set, else None: the
        GC found no room for it; a pause, relink or attach in progress or left behind),
        allow_caching (IntelliCache: the GC skips its leaf-coalesce)
vms     uuid, ref, name, power_state, is_a_template, is_control_domain, is_a_snapshot,
        snapshot_of (VM uuid or None), snapshot_time, resident_on (host uuid or None),
        disks (count of Disk VBDs with a VDI), vdis (tuple of VDI uuids), srs (tuple of SR
        uuids), disk_virtual_size, disk_physical_utilisation, snapshots (tuple of VM uuids),
        ha_protected (ha_restart_priority "restart": on a pool with HA its disks stay on shared SRs),
        memory (memory_static_max: what a suspend image holds), suspend_sr (VM.suspend_SR or None)
vbds    uuid, ref, vm, vdi (uuid or None), device, userdevice, type, mode, bootable,
        currently_attached, empty
vifs    uuid, ref, vm, device, mac, network (ref)

`records["network"]` keeps each network's uuid, name_label, bridge and MTU (no DataFrame).
`sr_masters` maps each SR's uuid to its master's (the pool master for a shared SR, the host
whose PBD attaches a local one), where the GC and the coalesce-leaf plugin run.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from functools import cached_property
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from runbook_lib.errors import InputError
from runbook_lib.schemas import INVENTORY_SCHEMA

SCHEMA = INVENTORY_SCHEMA
NULL_REF = "OpaqueRef:NULL"

# class -> fields kept. Anything not listed (device_config, most other_config) is dropped.
FIELDS: dict[str, tuple[str, ...]] = {
    "pool": ("uuid", "name_label", "master", "default_SR", "ha_enabled", "suspend_image_SR"),
    "host": ("uuid", "name_label", "address", "enabled", "PBDs", "resident_VMs", "software_version",
             "suspend_image_sr"),
    "SR": ("uuid", "name_label", "type", "content_type", "shared", "physical_size",
           "physical_utilisation", "virtual_allocation", "VDIs", "PBDs", "sm_config", "other_config"),
    "PBD": ("uuid", "host", "SR", "currently_attached"),
    "VDI": ("uuid", "name_label", "SR", "type", "virtual_size", "physical_utilisation",
            "is_a_snapshot", "snapshot_of", "snapshot_time", "snapshots", "VBDs", "managed",
            "missing", "read_only", "sm_config", "other_config", "allowed_operations", "on_boot",
            "cbt_enabled", "allow_caching"),
    "VM": ("uuid", "name_label", "power_state", "is_a_template", "is_control_domain",
           "is_a_snapshot", "snapshot_of", "snapshot_time", "snapshots", "VBDs", "VIFs",
           "resident_on", "ha_restart_priority", "memory_static_max", "suspend_SR"),
    "VBD": ("uuid", "VM", "VDI", "device", "userdevice", "type", "mode", "bootable",
            "currently_attached", "empty"),
    "VIF": ("uuid", "VM", "device", "MAC", "network"),
    # kept so a snapshot scenario gives VIFs the same networks (inventories saved before have none)
    "network": ("uuid", "name_label", "bridge", "MTU"),
}
CLASSES = tuple(FIELDS)
INT_FIELDS = {"physical_size", "physical_utilisation", "virtual_allocation", "virtual_size", "MTU",
              "memory_static_max"}
BOOL_FIELDS = {"shared", "enabled", "currently_attached", "is_a_snapshot", "managed", "missing",
               "read_only", "is_a_template", "is_control_domain", "bootable", "empty", "allow_caching",
               "cbt_enabled", "ha_enabled"}
MAP_FIELDS = {"sm_config", "other_config", "software_version"}
LIST_FIELDS = {"PBDs", "VDIs", "VBDs", "VIFs", "snapshots", "resident_VMs", "allowed_operations"}
DATE_FIELDS = {"snapshot_time"}
# only these keys of a map survive; other keys may carry site data nobody asked us to copy
MAP_KEYS = {
    ("VDI", "other_config"): {"leaf-coalesce"},
    ("VDI", "sm_config"): {"vhd-parent", "vdi_type", "vhd-blocks", "paused", "host_OpaqueRef", "relinking",
                           "activating", "gc_no_space"},
    ("SR", "sm_config"): {"gc_no_space", "allocation", "use_vhd", "devserial"},
    ("SR", "other_config"): {"coalesce", "leaf-coalesce", "gc", "auto-scan"},  # the GC's per-SR switches
    ("host", "software_version"): {"product_brand", "product_version", "product_version_text", "platform_name",
                                   "platform_version", "build_number", "xapi", "xen"},
}


def _as_int(value: Any, where: str = "") -> int:
    if value in (None, ""):
        return 0
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"{where or 'a size field'} is not a whole number: {str(value)[:40]!r}") from None


def as_iso(value: Any) -> str | None:
    """XML-RPC DateTime, JSON string or datetime -> 'YYYY-MM-DDTHH:MM:SSZ' (None for the epoch)."""
    if value is None or value == "":
        return None
    text = getattr(value, "value", value)  # xmlrpc.client.DateTime keeps its text in .value
    if isinstance(text, dt.datetime):
        stamp = pd.Timestamp(text)
    else:
        text = str(text)
        try:
            stamp = pd.Timestamp(dt.datetime.strptime(text.rstrip("Z"), "%Y%m%dT%H:%M:%S"))
        except ValueError:
            try:
                stamp = pd.Timestamp(text)
            except (ValueError, TypeError, OverflowError):
                return None  # an unreadable snapshot time is shown as unknown, not fatal
    if stamp is pd.NaT or pd.isna(stamp):
        return None
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    if stamp.year <= 1970:
        return None
    return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")


def normalise_record(cls: str, record: dict[str, Any]) -> dict[str, Any]:
    """Keep the listed fields of one XenAPI record, with ints and dates in one form."""
    out: dict[str, Any] = {}
    for field in FIELDS[cls]:
        if field not in record:
            continue
        value = record[field]
        if field in INT_FIELDS:
            value = _as_int(value, f"{cls} {record.get('uuid', '?')} {field}")
        elif field in DATE_FIELDS:
            value = as_iso(value)
        elif field in BOOL_FIELDS:
            value = value if isinstance(value, bool) else str(value).strip().lower() in ("true", "1", "yes")
        elif field in MAP_FIELDS:
            keep = MAP_KEYS.get((cls, field))
            value = ({str(k): str(v) for k, v in value.items() if keep is None or k in keep}
                     if isinstance(value, dict) else {})
        elif field in LIST_FIELDS:
            value = [str(v) for v in value] if isinstance(value, (list, tuple)) else []
        elif value is not None:
            value = str(value)
        out[field] = value
    return out


def fetch_inventory(session, *, source_url: str | None = None,
                    on_raw: Callable[[str, dict[str, dict]], None] | None = None) -> "Inventory":
    """Read a pool with one `get_all_records` per class (no call per object). `on_raw(cls, records)`
    sees each class's records as the pool sent them, before they are trimmed."""
    api = session.xenapi
    records = {}
    for cls in CLASSES:
        raw = getattr(api, cls).get_all_records()
        if on_raw is not None:
            on_raw(cls, raw)
        records[cls] = {str(ref): normalise_record(cls, rec) for ref, rec in raw.items()}
    captured = None
    try:
        pool = next(iter(records["pool"].values()), None)
        if pool and pool.get("master") in records["host"]:
            captured = as_iso(api.host.get_servertime(pool["master"]))
    except Exception:  # older/partial servers: fall back to our own clock
        captured = None
    captured = captured or pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")
    kind = "simulator" if getattr(session, "simulator", None) is not None else "pool"
    return Inventory(records, captured=captured, source={"url": source_url, "kind": kind})


def _leaf_coalesce_off(other_config: dict[str, Any]) -> bool:
    """The GC skips every leaf-coalesce of an SR whose other-config says coalesce=false or
    leaf-coalesce=false ('no' in older releases)."""
    return (other_config.get("coalesce") == "false"
            or other_config.get("leaf-coalesce") in ("false", "no"))


SWITCH_COLUMNS = ("gc", "coalesce", "leaf_coalesce", "auto_scan")
VDI_GC_KEYS = ("gc_no_space", "paused", "relinking", "activating")


def _switches(other_config: dict[str, Any]) -> dict[str, str | None]:
    """The SR's GC switches as set in other_config (None where unset)."""
    return {column: other_config.get(column.replace("_", "-")) or None for column in SWITCH_COLUMNS}


def _sole(values) -> Any:
    return next(iter(values), None)


class Inventory:
    """A pool's records at one moment, with DataFrames built on first use."""

    def __init__(self, records: dict[str, dict[str, dict[str, Any]]], *, captured: str,
                 source: dict[str, Any] | None = None):
        # sorted by reference, so a live read and its saved file give the same row order
        self.records = {cls: dict(sorted((records.get(cls) or {}).items())) for cls in CLASSES}
        for recs in self.records.values():
            for ref, rec in recs.items():
                if not isinstance(rec.get("uuid"), str) or not rec["uuid"]:
                    rec["uuid"] = ref.split(":", 1)[-1] or ref  # a record without uuid: name it by ref
        self.captured = captured
        self.source = dict(source or {})
        self.host_sizes = None  # sizing.host.HostSizes when dom0 was asked (--ssh); saved with the file

    # ---- file round trip -------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        pool = _sole(self.records["pool"].values()) or {}
        return {
            "schema": SCHEMA,
            "captured": self.captured,
            "source": self.source,
            "pool": {"uuid": pool.get("uuid"), "name": pool.get("name_label")},
            "records": self.records,
            **({"host_sizes": self.host_sizes.to_json()} if self.host_sizes is not None else {}),
        }

    def save(self, path: str | Path) -> Path:
        from runbook_lib.input_files import check_output_file

        path = check_output_file(path, "the inventory")
        tmp = path.with_name(path.name + ".tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(self.to_json(), indent=1, sort_keys=True))
            tmp.replace(path)
        except OSError as err:
            raise InputError(f"cannot write the inventory to {path}: {err.strerror or err}") from None
        return path

    @classmethod
    def from_json(cls, data: dict[str, Any], *, origin: str = "inventory") -> "Inventory":
        if not isinstance(data, dict) or data.get("schema") != SCHEMA:
            found = data.get("schema") if isinstance(data, dict) else type(data).__name__
            raise InputError(f"{origin} is not a {SCHEMA} file (schema: {found!r})")
        records = data.get("records") or {}
        if not isinstance(records, dict) or not all(
                isinstance(records.get(c) or {}, dict)
                and all(isinstance(r, dict) for r in (records.get(c) or {}).values()) for c in CLASSES):
            raise InputError(f"{origin}: 'records' must map each class to {{ref: record}}")
        clean = {c: {str(ref): normalise_record(c, rec) for ref, rec in (records.get(c) or {}).items()}
                 for c in CLASSES}
        inv = cls(clean, captured=data.get("captured") or "", source=data.get("source"))
        if data.get("host_sizes") is not None:
            from runbook_lib.sizing.host import HostSizes

            inv.host_sizes = HostSizes.from_json(data["host_sizes"])
        return inv

    @classmethod
    def load(cls, path: str | Path) -> "Inventory":
        from runbook_lib.input_files import read_json

        path = Path(path)
        data = read_json(path, "inventory")
        inv = cls.from_json(data, origin=str(path))
        inv.source.setdefault("file", str(path))
        inv.source["file"] = str(path)
        return inv

    # ---- lookups ---------------------------------------------------------------------
    def _uuid(self, cls: str, ref: str | None) -> str | None:
        if not ref or ref == NULL_REF:
            return None
        rec = self.records[cls].get(ref)
        return rec.get("uuid") if rec else None

    @property
    def pool(self) -> dict[str, Any]:
        rec = _sole(self.records["pool"].values()) or {}
        return {"uuid": rec.get("uuid"), "name": rec.get("name_label"),
                "master": self._uuid("host", rec.get("master")), "ha_enabled": bool(rec.get("ha_enabled", False)),
                "suspend_sr": self._uuid("SR", rec.get("suspend_image_SR"))}

    @cached_property
    def captured_at(self) -> pd.Timestamp:
        try:
            stamp = pd.Timestamp(self.captured)
        except ValueError:
            return pd.Timestamp.now(tz="UTC")
        return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")

    # ---- DataFrames ------------------------------------------------------------------
    @cached_property
    def hosts(self) -> pd.DataFrame:
        master = self.pool["master"]
        rows = [{"uuid": r.get("uuid"), "ref": ref, "name": r.get("name_label"),
                 "address": r.get("address"), "enabled": bool(r.get("enabled", True)),
                 "is_master": r.get("uuid") == master,
                 "suspend_sr": self._uuid("SR", r.get("suspend_image_sr")),
                 **{k: (r.get("software_version") or {}).get(k) or None
                    for k in ("product_brand", "product_version", "build_number")}}
                for ref, r in self.records["host"].items()]
        return pd.DataFrame(rows, columns=["uuid", "ref", "name", "address", "enabled", "is_master", "suspend_sr",
                                           "product_brand", "product_version", "build_number"])

    @cached_property
    def pbds(self) -> pd.DataFrame:
        rows = [{"uuid": r.get("uuid"), "ref": ref, "host": self._uuid("host", r.get("host")),
                 "sr": self._uuid("SR", r.get("SR")),
                 "currently_attached": bool(r.get("currently_attached", False))}
                for ref, r in self.records["PBD"].items()]
        return pd.DataFrame(rows, columns=["uuid", "ref", "host", "sr", "currently_attached"])

    @cached_property
    def srs(self) -> pd.DataFrame:
        attached: dict[str, list[str]] = {}
        for row in self.pbds.itertuples():
            if row.currently_attached and row.sr and row.host:
                attached.setdefault(row.sr, []).append(row.host)
        rows = []
        for ref, r in self.records["SR"].items():
            size = int(r.get("physical_size", 0))
            used = int(r.get("physical_utilisation", 0))
            rows.append({
                "uuid": r.get("uuid"), "ref": ref, "name": r.get("name_label"),
                "type": r.get("type"), "content_type": r.get("content_type"),
                "shared": bool(r.get("shared", False)), "size": size, "used": used,
                "free": max(0, size - used),
                "virtual_allocation": int(r.get("virtual_allocation", 0)),
                "vdis": len(r.get("VDIs", [])),
                "hosts": tuple(sorted(attached.get(r.get("uuid"), []))),
                "gc_no_space": (r.get("sm_config") or {}).get("gc_no_space") or None,
                "leaf_coalesce_off": _leaf_coalesce_off(r.get("other_config") or {}),
                "provisioning": "thin" if (r.get("sm_config") or {}).get("allocation") == "thin" else "thick",
                **_switches(r.get("other_config") or {}),
                "vdi_order": tuple(u for u in (self._uuid("VDI", v) for v in r.get("VDIs", [])) if u),
            })
        cols = ["uuid", "ref", "name", "type", "content_type", "shared", "size", "used", "free",
                "virtual_allocation", "vdis", "hosts", "gc_no_space", "leaf_coalesce_off", "provisioning",
                *SWITCH_COLUMNS, "vdi_order"]
        return pd.DataFrame(rows, columns=cols)

    @cached_property
    def sr_masters(self) -> dict[str, str | None]:
        """SR uuid -> uuid of its master: the pool master for a shared SR, the host whose PBD
        attaches a local one (None: no PBD). The GC and the coalesce-leaf plugin run there."""
        pbd_hosts: dict[str, list[str]] = {}
        for row in self.pbds.sort_values("currently_attached", ascending=False, kind="stable").itertuples():
            if row.sr and row.host:
                pbd_hosts.setdefault(row.sr, []).append(row.host)
        master = self.pool["master"]
        return {row.uuid: master if row.shared else _sole(pbd_hosts.get(row.uuid, ()))
                for row in self.srs.itertuples()}

    @cached_property
    def vbds(self) -> pd.DataFrame:
        rows = [{"uuid": r.get("uuid"), "ref": ref, "vm": self._uuid("VM", r.get("VM")),
                 "vdi": self._uuid("VDI", r.get("VDI")), "device": r.get("device"),
                 "userdevice": r.get("userdevice"), "type": r.get("type"), "mode": r.get("mode"),
                 "bootable": bool(r.get("bootable", False)),
                 "currently_attached": bool(r.get("currently_attached", False)),
                 "empty": bool(r.get("empty", False))}
                for ref, r in self.records["VBD"].items()]
        cols = ["uuid", "ref", "vm", "vdi", "device", "userdevice", "type", "mode", "bootable",
                "currently_attached", "empty"]
        return pd.DataFrame(rows, columns=cols)

    @cached_property
    def vifs(self) -> pd.DataFrame:
        rows = [{"uuid": r.get("uuid"), "ref": ref, "vm": self._uuid("VM", r.get("VM")),
                 "device": r.get("device"), "mac": r.get("MAC"), "network": r.get("network")}
                for ref, r in self.records["VIF"].items()]
        return pd.DataFrame(rows, columns=["uuid", "ref", "vm", "device", "mac", "network"])

    @cached_property
    def vdis(self) -> pd.DataFrame:
        vms_of: dict[str, list[str]] = {}
        attached: set[str] = set()
        control = {ref for ref, r in self.records["VM"].items() if r.get("is_control_domain")}
        for r in self.records["VBD"].values():
            vdi = self._uuid("VDI", r.get("VDI"))
            if vdi is None or r.get("VM") in control:
                continue
            vm = self._uuid("VM", r.get("VM"))
            if vm:
                vms_of.setdefault(vdi, []).append(vm)
            if r.get("currently_attached"):
                attached.add(vdi)
        sr_type = {ref: r.get("type") for ref, r in self.records["SR"].items()}
        now = self.captured_at
        rows = []
        for ref, r in self.records["VDI"].items():
            uuid = r.get("uuid")
            sm = r.get("sm_config") or {}
            managed = bool(r.get("managed", True))
            snap_time = pd.Timestamp(r["snapshot_time"]) if r.get("snapshot_time") else pd.NaT
            is_snap = bool(r.get("is_a_snapshot", False))
            age = (now - snap_time).total_seconds() / 86400 if (is_snap and snap_time is not pd.NaT) else float("nan")
            rows.append({
                "uuid": uuid, "ref": ref, "name": r.get("name_label"),
                "sr": self._uuid("SR", r.get("SR")), "sr_type": sr_type.get(r.get("SR")),
                "type": r.get("type"), "virtual_size": int(r.get("virtual_size", 0)),
                "physical_utilisation": int(r.get("physical_utilisation", 0)),
                "vhd_parent": sm.get("vhd-parent") or None, "vdi_type": sm.get("vdi_type") or None,
                "vhd_blocks": sm.get("vhd-blocks") or None,
                "managed": managed, "hidden": not managed, "missing": bool(r.get("missing", False)),
                "read_only": bool(r.get("read_only", False)), "is_a_snapshot": is_snap,
                "snapshot_of": self._uuid("VDI", r.get("snapshot_of")),
                "snapshot_time": snap_time, "snapshot_age_days": age,
                "leaf_coalesce": (r.get("other_config") or {}).get("leaf-coalesce") or None,
                "on_boot": r.get("on_boot") or None, "cbt_enabled": bool(r.get("cbt_enabled", False)),
                "attached": uuid in attached, "vms": tuple(sorted(set(vms_of.get(uuid, [])))),
                **{key: sm.get(key) or None for key in VDI_GC_KEYS},
                "allow_caching": bool(r.get("allow_caching", False)),
            })
        cols = ["uuid", "ref", "name", "sr", "sr_type", "type", "virtual_size",
                "physical_utilisation", "vhd_parent", "vdi_type", "vhd_blocks", "managed", "hidden",
                "missing", "read_only", "is_a_snapshot", "snapshot_of", "snapshot_time", "snapshot_age_days",
                "leaf_coalesce", "on_boot", "cbt_enabled", "attached", "vms", *VDI_GC_KEYS, "allow_caching"]
        frame = pd.DataFrame(rows, columns=cols)
        frame["snapshot_time"] = pd.to_datetime(frame["snapshot_time"], utc=True)
        return frame

    @cached_property
    def vms(self) -> pd.DataFrame:
        vdi_rec = self.records["VDI"]
        rows = []
        for ref, r in self.records["VM"].items():
            vdis, srs = [], []
            vsize = psize = 0
            for vbd_ref in r.get("VBDs", []):
                vbd = self.records["VBD"].get(vbd_ref)
                if not vbd or vbd.get("type", "Disk") != "Disk":
                    continue
                vdi = vdi_rec.get(vbd.get("VDI") or "")
                if not vdi:
                    continue
                vdis.append(vdi.get("uuid"))
                sr = self._uuid("SR", vdi.get("SR"))
                if sr and sr not in srs:
                    srs.append(sr)
                vsize += int(vdi.get("virtual_size", 0))
                psize += int(vdi.get("physical_utilisation", 0))
            rows.append({
                "uuid": r.get("uuid"), "ref": ref, "name": r.get("name_label"),
                "power_state": r.get("power_state"),
                "is_a_template": bool(r.get("is_a_template", False)),
                "is_control_domain": bool(r.get("is_control_domain", False)),
                "is_a_snapshot": bool(r.get("is_a_snapshot", False)),
                "snapshot_of": self._uuid("VM", r.get("snapshot_of")),
                "snapshot_time": pd.Timestamp(r["snapshot_time"]) if r.get("snapshot_time") else pd.NaT,
                "resident_on": self._uuid("host", r.get("resident_on")),
                "disks": len(vdis), "vdis": tuple(vdis), "srs": tuple(srs),
                "disk_virtual_size": vsize, "disk_physical_utilisation": psize,
                "snapshots": tuple(u for u in (self._uuid("VM", s) for s in r.get("snapshots", [])) if u),
                "ha_protected": r.get("ha_restart_priority") == "restart",
                "memory": int(r.get("memory_static_max") or 0),
                "suspend_sr": self._uuid("SR", r.get("suspend_SR")),
            })
        cols = ["uuid", "ref", "name", "power_state", "is_a_template", "is_control_domain",
                "is_a_snapshot", "snapshot_of", "snapshot_time", "resident_on", "disks", "vdis",
                "srs", "disk_virtual_size", "disk_physical_utilisation", "snapshots", "ha_protected", "memory",
                "suspend_sr"]
        frame = pd.DataFrame(rows, columns=cols)
        frame["snapshot_time"] = pd.to_datetime(frame["snapshot_time"], utc=True)
        return frame

    def summary(self) -> dict[str, Any]:
        """Counts per class, for a one-line report."""
        return {"pool": self.pool.get("name"), "captured": self.captured,
                **{cls: len(recs) for cls, recs in self.records.items()}}


def open_inventory(*, url: str | None = None, inventory: str | Path | None = None,
                   user: str = "root", password_env: str | None = "XEN_PASSWORD",
                   password_file: str | Path | None = None, verify_tls: bool = True,
                   ca_bundle: str | Path | None = None, sim_options: dict | None = None,
                   ssh=None) -> Inventory:
    """An inventory from a file, or read from a pool (url "" / "sim:<scenario>": the simulator).

    `ssh` (dom0.ssh.SshOptions): also ask each host's dom0 the exact sizes (sizing.host), kept
    in `inventory.host_sizes` and saved with the file; a saved file keeps the sizes it has.
    """
    from runbook_lib.errors import UsageError
    from runbook_lib.xapi.connect import connect

    if inventory and url is not None:
        raise UsageError("give either --url or --inventory, not both")
    if inventory:
        return Inventory.load(inventory)
    if url is None:
        raise UsageError("say where the pool is: --url URL (sim:<scenario> for the bundled "
                         "simulator) or --inventory FILE (from `runbook inventory save`)")
    with connect(url, user=user, password_env=password_env, password_file=password_file,
                 verify_tls=verify_tls, ca_bundle=ca_bundle, sim_options=with_dom0(url, ssh, sim_options)) as session:
        inv = fetch_inventory(session, source_url=url or "sim:")
        if ssh is not None:
            inv.host_sizes = ask_dom0(inv, ssh, getattr(session, "simulator", None))
        return inv


def with_dom0(url: str, ssh, sim_options: dict | None) -> dict | None:
    """Check the SSH options; the embedded simulator then serves SSH for its hosts too."""
    from runbook_lib.xapi.connect import is_simulator_url

    if ssh is None:
        return sim_options
    ssh.check()
    return {**(sim_options or {}), "ssh": True} if is_simulator_url(url) else sim_options


@contextlib.contextmanager
def dom0_access(inv: Inventory, simulator=None):
    """Keyword arguments that reach dom0: none for a real pool; for the in-process simulator its own
    SSH endpoints, a known_hosts file with its host keys, and its login."""
    if simulator is None or getattr(simulator, "ssh", None) is None:
        yield {}
        return
    import tempfile

    from runbook_lib.dom0.ssh import Endpoint

    names = dict(zip(inv.hosts["uuid"], inv.hosts["name"]))
    endpoints = {uuid: Endpoint(host=uuid, name=names.get(uuid) or uuid[:8], address=addr, port=port)
                 for uuid, (addr, port) in simulator.ssh.endpoints().items()}
    with tempfile.TemporaryDirectory() as tmp:
        known = Path(tmp) / "known_hosts"
        known.write_text("\n".join(simulator.ssh.known_hosts_lines()) + "\n")
        yield {"endpoints": endpoints, "known_hosts": str(known), "password": simulator.password}


def ask_dom0(inv: Inventory, ssh, simulator=None):
    """dom0's sizes (sizing.host)."""
    from runbook_lib.sizing.host import read_host_sizes

    with dom0_access(inv, simulator) as access:
        return read_host_sizes(inv, ssh, **access)
