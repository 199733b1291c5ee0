"""What `runbook check-pool` reads of a pool, with calls that change nothing.

- the inventory (one `get_all_records` per class, xapi/inventory.py), its records looked at on the
  way for what the inventory does not keep: each host's `API_version_major/minor` and
  `suspend_image_sr`, the pool's `suspend_image_SR`, each VM's `memory_static_max` and
  `suspend_SR`, and of a PBD's `device_config` the key `allocation` only (the rest may hold
  storage passwords and is dropped at once);
- `task.get_all_records`, `message.get_all_records_where` (class SR, as xapi/health.py reads
  them), `SM.get_all_records`, `VM_metrics.get_all_records`: only which fields they carry;
- on each host that is the master of an SR the GC works on, `host.call_plugin(host,
  "coalesce-leaf", PROBE_FUNCTION, {})`. xapi looks the plugin up first and answers
  `XENAPI_MISSING_PLUGIN [name]` when the host lacks it; otherwise the plugin's dispatcher
  (`XenAPIPlugin.dispatch`) finds no function of that name and answers
  `UNKNOWN_XENAPI_PLUGIN_FUNCTION [fn]` without running anything.

Every field the suite reads (`suite_fields()`: the inventory's FIELDS, operations.RECORD_FIELDS,
health.RECORD_FIELDS and this module's FIELDS) is looked for in every record read.

DataFrames:

hosts    uuid, name, api_major, api_minor (int or None: not in the record), product_brand,
         product_version, platform_version (software_version keys, None when absent),
         suspend_image_sr (SR uuid; the ref itself when it names no SR; None when unset)
vms      uuid, memory_static_max (bytes, 0 when absent), suspend_sr (as suspend_image_sr)
fields   cls, field, records (records of the class read), missing (how many of them lack it)
plugins  host (uuid), plugin, present (True, False, or None: the answer says neither), answer
         (the error code and parameters, or the result, on one line)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from runbook_lib.xapi.inventory import FIELDS as INVENTORY_FIELDS
from runbook_lib.xapi.inventory import Inventory

PLUGIN = "coalesce-leaf"
# No plugin has a function of this name, so the probe never runs one (coalesce-leaf has
# `leaf-coalesce` and `test`)
PROBE_FUNCTION = "runbook-check-pool-probe-no-such-function"
MISSING_PLUGIN = "XENAPI_MISSING_PLUGIN"
UNKNOWN_FUNCTION = "UNKNOWN_XENAPI_PLUGIN_FUNCTION"
NULL_REF = "OpaqueRef:NULL"
# Read by this module beyond the inventory's fields
FIELDS: dict[str, tuple[str, ...]] = {
    "pool": ("default_SR", "suspend_image_SR", "ha_enabled"),
    "host": ("API_version_major", "API_version_minor", "software_version", "suspend_image_sr"),
    "VM": ("memory_static_max", "suspend_SR", "ha_restart_priority"),
    "PBD": ("device_config",),
}
# Read only to see which fields they carry (the inventory reads the other classes)
EXTRA_READS: dict[str, tuple[str, tuple]] = {
    "task": ("get_all_records", ()),
    "message": ("get_all_records_where", ('field "cls" = "SR"',)),
    "SM": ("get_all_records", ()),
    "VM_metrics": ("get_all_records", ()),
}
HOST_COLUMNS = ["uuid", "name", "api_major", "api_minor", "product_brand", "product_version",
                "platform_version", "suspend_image_sr"]
VM_COLUMNS = ["uuid", "memory_static_max", "suspend_sr"]
FIELD_COLUMNS = ["cls", "field", "records", "missing"]
PLUGIN_COLUMNS = ["host", "plugin", "present", "answer"]


def suite_fields() -> dict[str, tuple[str, ...]]:
    """Every record field the suite reads, by class (sorted, each once)."""
    from runbook_lib.xapi.health import RECORD_FIELDS as HEALTH_FIELDS
    from runbook_lib.xapi.operations import RECORD_FIELDS as OPERATION_FIELDS

    merged: dict[str, set[str]] = {}
    for table in (INVENTORY_FIELDS, OPERATION_FIELDS, HEALTH_FIELDS, FIELDS):
        for cls, names in table.items():
            merged.setdefault(cls, set()).update(names)
    return {cls: tuple(sorted(names)) for cls, names in sorted(merged.items())}


@dataclass
class PreflightReads:
    """One read of a pool for `runbook check-pool`; see the module doc for the frames."""

    inventory: Inventory
    hosts: pd.DataFrame
    vms: pd.DataFrame
    fields: pd.DataFrame
    plugins: pd.DataFrame
    pool: dict[str, Any]                 # default_sr, suspend_image_sr (as hosts.suspend_image_sr)
    pbd_allocation: dict[str, str]       # SR uuid -> device_config 'allocation' of one of its PBDs
    errors: dict[str, str] = field(default_factory=dict)   # class or call -> why it could not be read
    dom0: list | None = None             # dom0.reach.Reach per host, with --ssh; None without


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class _Collector:
    """Looks at each class's raw records once, as fetch_inventory reads them."""

    def __init__(self, wanted: dict[str, tuple[str, ...]]):
        self.wanted = wanted
        self.counts: dict[str, tuple[int, dict[str, int]]] = {}
        self.raw_hosts: dict[str, dict] = {}
        self.raw_pool: dict = {}
        self.raw_vms: dict[str, dict] = {}
        self.allocation_by_sr_ref: dict[str, str] = {}

    def __call__(self, cls: str, records: dict[str, dict]) -> None:
        self.count(cls, records)
        if cls == "host":
            self.raw_hosts = {str(ref): {k: rec.get(k) for k in ("API_version_major", "API_version_minor",
                                                                 "suspend_image_sr")}
                              for ref, rec in records.items()}
        elif cls == "pool":
            rec = next(iter(records.values()), {})
            self.raw_pool = {k: rec.get(k) for k in ("default_SR", "suspend_image_SR")}
        elif cls == "VM":
            self.raw_vms = {str(ref): {"memory_static_max": rec.get("memory_static_max"),
                                       "suspend_SR": rec.get("suspend_SR")} for ref, rec in records.items()}
        elif cls == "PBD":
            for rec in records.values():
                allocation = (rec.get("device_config") or {}).get("allocation")  # only this key is kept
                if allocation and rec.get("SR"):
                    self.allocation_by_sr_ref.setdefault(str(rec["SR"]), str(allocation))

    def count(self, cls: str, records: dict[str, dict]) -> None:
        missing = {name: 0 for name in self.wanted.get(cls, ())}
        for rec in records.values():
            for name in missing:
                if not isinstance(rec, dict) or name not in rec:
                    missing[name] += 1
        self.counts[cls] = (len(records), missing)


def _sr_uuid(inv: Inventory, ref: Any) -> str | None:
    """An SR ref as its uuid; the ref itself when it names no SR; None for the null ref."""
    if ref in (None, "", NULL_REF):
        return None
    rec = inv.records["SR"].get(str(ref))
    return rec.get("uuid") if rec else str(ref)


def _host_frame(inv: Inventory, raw: dict[str, dict]) -> pd.DataFrame:
    rows = []
    for ref, rec in inv.records["host"].items():
        extra = raw.get(ref, {})
        software = rec.get("software_version") or {}
        rows.append({"uuid": rec.get("uuid"), "name": rec.get("name_label"),
                     "api_major": _int(extra.get("API_version_major")),
                     "api_minor": _int(extra.get("API_version_minor")),
                     **{k: software.get(k) or None for k in ("product_brand", "product_version", "platform_version")},
                     "suspend_image_sr": _sr_uuid(inv, extra.get("suspend_image_sr"))})
    return pd.DataFrame(rows, columns=HOST_COLUMNS, dtype=object)  # None stays None


def _vm_frame(inv: Inventory, raw: dict[str, dict]) -> pd.DataFrame:
    rows = [{"uuid": rec.get("uuid"), "memory_static_max": _int(raw.get(ref, {}).get("memory_static_max")) or 0,
             "suspend_sr": _sr_uuid(inv, raw.get(ref, {}).get("suspend_SR"))}
            for ref, rec in inv.records["VM"].items()]
    return pd.DataFrame(rows, columns=VM_COLUMNS, dtype=object)


def _field_frame(counts: dict[str, tuple[int, dict[str, int]]]) -> pd.DataFrame:
    rows = [(cls, name, total, missing) for cls, (total, by_field) in sorted(counts.items())
            for name, missing in sorted(by_field.items())]
    return pd.DataFrame(rows, columns=FIELD_COLUMNS)


def _read_extra(session, collector: _Collector, errors: dict[str, str]) -> None:
    from runbook_lib.xapi.connect import PoolCallFailed

    for cls, (method, args) in EXTRA_READS.items():
        try:
            records = getattr(getattr(session.xenapi, cls), method)(*args)
        except PoolCallFailed as err:  # e.g. a role that may not list messages
            errors[cls] = str(err)
            continue
        collector.count(cls, records if isinstance(records, dict) else {})


def probe_plugin(session, host_ref: str, plugin: str = PLUGIN) -> tuple[bool | None, str]:
    """(present, answer) for one host: a call of a function no plugin has, which runs nothing."""
    from runbook_lib.xapi.operations import call_plugin, failure_details

    try:
        result = call_plugin(session, host_ref, plugin, PROBE_FUNCTION, {})
    except Exception as exc:  # noqa: BLE001 - any XenAPI failure is an answer; others propagate
        details = failure_details(exc)
        if details is None:
            raise
        answer = " ".join(details[:4])
        if details[0] == UNKNOWN_FUNCTION:
            return True, answer
        if details[0] == MISSING_PLUGIN:
            return False, answer
        return None, answer
    return True, f"answered {str(result)[:80]!r}"


def plugin_hosts(inv: Inventory) -> list[str]:
    """Uuids of the hosts that master an SR the GC works on (where the plugin would run)."""
    from runbook_lib.pool_diagnosis import GC_SR_TYPES

    gc_srs = set(inv.srs.loc[inv.srs["type"].isin(GC_SR_TYPES), "uuid"])
    return sorted({host for sr, host in inv.sr_masters.items() if sr in gc_srs and host})


def _probe_all(session, inv: Inventory) -> pd.DataFrame:
    ref_of = {rec.get("uuid"): ref for ref, rec in inv.records["host"].items()}
    rows = [(host, PLUGIN, *probe_plugin(session, ref_of[host])) for host in plugin_hosts(inv) if host in ref_of]
    return pd.DataFrame(rows, columns=PLUGIN_COLUMNS, dtype=object)


def fetch_preflight(session, *, source_url: str | None = None) -> PreflightReads:
    """Everything check-pool looks at, read in one session; nothing on the pool changes."""
    from runbook_lib.xapi.inventory import fetch_inventory

    collector = _Collector(suite_fields())
    inv = fetch_inventory(session, source_url=source_url, on_raw=collector)
    errors: dict[str, str] = {}
    _read_extra(session, collector, errors)
    pool = {"default_sr": _sr_uuid(inv, collector.raw_pool.get("default_SR")),
            "suspend_image_sr": _sr_uuid(inv, collector.raw_pool.get("suspend_image_SR"))}
    allocation = {uuid: collector.allocation_by_sr_ref[ref] for ref, rec in inv.records["SR"].items()
                  if (uuid := rec.get("uuid")) and ref in collector.allocation_by_sr_ref}
    return PreflightReads(inventory=inv, hosts=_host_frame(inv, collector.raw_hosts),
                          vms=_vm_frame(inv, collector.raw_vms), fields=_field_frame(collector.counts),
                          plugins=_probe_all(session, inv), pool=pool, pbd_allocation=allocation, errors=errors)


def open_preflight(url: str, *, user: str = "root", password_env: str | None = "XEN_PASSWORD",
                   password_file=None, verify_tls: bool = True, ca_bundle=None,
                   sim_options: dict | None = None, ssh=None) -> PreflightReads:
    """Log in (url "" or "sim:<scenario>": the bundled simulator), read, log out. With `ssh`
    (dom0.ssh.SshOptions) each host's dom0 is asked one read-only question too."""
    from runbook_lib.xapi.connect import connect
    from runbook_lib.xapi.inventory import with_dom0

    with connect(url, user=user, password_env=password_env, password_file=password_file,
                 verify_tls=verify_tls, ca_bundle=ca_bundle, sim_options=with_dom0(url, ssh, sim_options)) as session:
        reads = fetch_preflight(session, source_url=url or "sim:")
        if ssh is not None:
            reads.dom0 = _probe_dom0(reads.inventory, ssh, getattr(session, "simulator", None))
        return reads


def _probe_dom0(inv, ssh, simulator=None) -> list:
    """dom0.reach for each host."""
    from runbook_lib.dom0.reach import probe_dom0
    from runbook_lib.xapi.inventory import dom0_access

    with dom0_access(inv, simulator) as access:
        return probe_dom0(inv, ssh, **access)
