"""What the pool says about its garbage collector beyond the inventory: messages, GC tasks and
the storage drivers, read with three calls that change nothing.

- `message.get_all_records_where('field "cls" = "SR"')`: the messages about SRs, where the GC
  posts `SM_GC_NO_SPACE`, "failed to unpause tapdisk" and its coalesce errors;
- `task.get_all_records()`: the GC's `Garbage Collection` task (other_config `applies_to` =
  the SR's ref, `progress` = coalesce steps done / (done + still coalescable));
- `SM.get_all_records()`: one record per storage driver (`type`, `version` = the driver's
  `driver_version`, "1.0" on every sm release: see runbook_lib.sm_version).

DataFrame columns:

messages  ref, uuid, name, priority (int), cls, obj_uuid, timestamp (UTC Timestamp), body
tasks     ref, uuid, name, status, progress (0..1), created, finished (UTC Timestamps or NaT),
          applies_to (SR ref or None), sr (its uuid, None when not an SR of the inventory)
sm        type, name, version, required_api_version, vendor
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from runbook_lib.xapi.inventory import Inventory, as_iso

MESSAGE_FILTER = 'field "cls" = "SR"'
GC_TASK = "Garbage Collection"
MESSAGE_COLUMNS = ["ref", "uuid", "name", "priority", "cls", "obj_uuid", "timestamp", "body"]
TASK_COLUMNS = ["ref", "uuid", "name", "status", "progress", "created", "finished", "applies_to", "sr"]
SM_COLUMNS = ["type", "name", "version", "required_api_version", "vendor"]
# The record fields read here, by class (`runbook check-pool` checks that a pool's records carry them)
RECORD_FIELDS: dict[str, tuple[str, ...]] = {
    "message": ("uuid", "name", "priority", "cls", "obj_uuid", "timestamp", "body"),
    "task": ("uuid", "name_label", "status", "progress", "created", "finished", "other_config"),
    "SM": ("type", "name_label", "version", "required_api_version", "vendor"),
}


def _stamp(value: Any) -> pd.Timestamp:
    text = as_iso(value)
    return pd.Timestamp(text) if text else pd.NaT


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def message_frame(records: dict[str, dict]) -> pd.DataFrame:
    rows = [{"ref": str(ref), "uuid": r.get("uuid"), "name": str(r.get("name") or ""),
             "priority": _int(r.get("priority")), "cls": str(r.get("cls") or ""),
             "obj_uuid": r.get("obj_uuid") or None, "timestamp": _stamp(r.get("timestamp")),
             "body": str(r.get("body") or "")}
            for ref, r in (records or {}).items() if isinstance(r, dict)]
    frame = pd.DataFrame(rows, columns=MESSAGE_COLUMNS)
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    return frame.sort_values("timestamp", kind="stable").reset_index(drop=True)


def task_frame(records: dict[str, dict], sr_uuid_by_ref: dict[str, str]) -> pd.DataFrame:
    """The GC's tasks only (other tasks say nothing about coalescing)."""
    rows = []
    for ref, r in (records or {}).items():
        if not isinstance(r, dict) or r.get("name_label") != GC_TASK:
            continue
        applies = (r.get("other_config") or {}).get("applies_to") or None
        rows.append({"ref": str(ref), "uuid": r.get("uuid"), "name": r.get("name_label"),
                     "status": str(r.get("status") or ""), "progress": _float(r.get("progress")),
                     "created": _stamp(r.get("created")), "finished": _stamp(r.get("finished")),
                     "applies_to": applies, "sr": sr_uuid_by_ref.get(applies) if applies else None})
    frame = pd.DataFrame(rows, columns=TASK_COLUMNS)
    for col in ("created", "finished"):
        frame[col] = pd.to_datetime(frame[col], utc=True)
    return frame


def sm_frame(records: dict[str, dict]) -> pd.DataFrame:
    rows = [{"type": r.get("type"), "name": r.get("name_label"), "version": r.get("version"),
             "required_api_version": r.get("required_api_version"), "vendor": r.get("vendor")}
            for r in (records or {}).values() if isinstance(r, dict)]
    return pd.DataFrame(rows, columns=SM_COLUMNS).sort_values("type", kind="stable").reset_index(drop=True)


@dataclass
class PoolHealth:
    """Messages, GC tasks and storage drivers of one pool read (None: not read)."""

    messages: pd.DataFrame | None = None
    tasks: pd.DataFrame | None = None
    sm: pd.DataFrame | None = None
    errors: dict[str, str] = field(default_factory=dict)   # what could not be read, and why


def fetch_health(session, inventory: Inventory) -> PoolHealth:
    """Read messages, tasks and SM records; a call the server refuses leaves its frame None."""
    from runbook_lib.xapi.connect import PoolCallFailed

    api = session.xenapi
    health = PoolHealth()
    sr_by_ref = {ref: rec.get("uuid") for ref, rec in inventory.records["SR"].items()}
    reads = (("messages", lambda: message_frame(api.message.get_all_records_where(MESSAGE_FILTER))),
             ("tasks", lambda: task_frame(api.task.get_all_records(), sr_by_ref)),
             ("sm", lambda: sm_frame(api.SM.get_all_records())))
    for name, read in reads:
        try:
            setattr(health, name, read())
        except PoolCallFailed as err:  # e.g. a read-only role that may not list messages
            health.errors[name] = str(err)
    return health


def open_pool(*, url: str | None = None, inventory: str | None = None, user: str = "root",
              password_env: str | None = "XEN_PASSWORD", password_file=None, verify_tls: bool = True,
              ca_bundle=None, sim_options: dict | None = None) -> tuple[Inventory, PoolHealth]:
    """The inventory and the health records in one session (a saved inventory: no health)."""
    from runbook_lib.xapi.connect import connect
    from runbook_lib.xapi.inventory import fetch_inventory, open_inventory

    if inventory:
        return open_inventory(url=url, inventory=inventory), PoolHealth(errors={
            "all": "a saved inventory holds no messages, tasks or storage drivers"})
    if url is None:
        return open_inventory(url=url, inventory=inventory), PoolHealth()  # raises the usage error
    with connect(url, user=user, password_env=password_env, password_file=password_file,
                 verify_tls=verify_tls, ca_bundle=ca_bundle, sim_options=sim_options) as session:
        inv = fetch_inventory(session, source_url=url or "sim:")
        return inv, fetch_health(session, inv)
