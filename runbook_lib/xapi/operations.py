"""The XenAPI calls that change a pool, and the reads the transfer needs around them.

Owned by the transfer (runbook_lib/transfer/). Each function takes a logged-in XenAPI session
(`session.xenapi...`), does one job, and turns wire quirks into plain Python: XML-RPC sends
int64 fields as strings, so sizes are converted with int(); task results arrive as
`<value>OpaqueRef:...</value>`. Nothing here decides whether a change is safe: the transfer's
steps check that before calling.
"""

from __future__ import annotations

import html
import os
import re
import ssl
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Callable

from runbook_lib.errors import PoolError

NULL_REF = "OpaqueRef:NULL"
# A VIF's port filter: a copy's replaced VIFs must keep it (the verify step compares it)
VIF_FILTER = ("locking_mode", "ipv4_allowed", "ipv6_allowed")
_REF_IN_RESULT = re.compile(r"OpaqueRef:[0-9A-Za-z-]+")
# The record fields read through this module, by class: by its own functions, and by the transfer
# from the records they return. `runbook check-pool` checks that a pool's records carry each one.
RECORD_FIELDS: dict[str, tuple[str, ...]] = {
    "pool": ("uuid", "master", "ha_enabled"),
    "SR": ("uuid", "name_label", "type", "shared", "physical_size", "physical_utilisation", "virtual_allocation"),
    "VDI": ("uuid", "name_label", "SR", "VBDs", "virtual_size", "physical_utilisation", "sm_config", "snapshot_of",
            "current_operations", "other_config"),
    "VM": ("uuid", "name_label", "name_description", "power_state", "other_config", "VBDs", "VIFs", "snapshots",
           "is_a_template", "is_a_snapshot", "blocked_operations", "current_operations", "metrics",
           "ha_restart_priority"),
    "VM_metrics": ("start_time",),
    "VBD": ("VDI", "type", "empty", "userdevice", "bootable", "mode"),
    "VIF": ("device", "MAC", "network", "MTU", "other_config", *VIF_FILTER),
    "network": ("uuid",),
    "task": ("status", "progress", "result", "error_info"),
}


class TaskFailed(PoolError):
    """An asynchronous call ended in failure; `details` is its error_info."""

    def __init__(self, details: list[str]):
        details = [str(d) for d in details] or ["FAILURE"]
        super().__init__("task failed: " + " ".join(details))
        self.details = details
        self.code = details[0]


class TaskTimedOut(PoolError):
    """An asynchronous call did not end in the time given (it may still run on the pool)."""


def failure_details(exc: BaseException) -> list[str] | None:
    """ErrorDescription of a XenAPI failure (XenAPI.Failure or TaskFailed), else None."""
    details = getattr(exc, "details", None)
    if isinstance(details, (list, tuple)) and details:
        return [str(d) for d in details]
    return None


# --- reads ---------------------------------------------------------------------------------
def ref_by_uuid(session, cls: str, uuid: str) -> str | None:
    """The object's ref, or None when the pool has no such object."""
    try:
        return getattr(session.xenapi, cls).get_by_uuid(uuid)
    except Exception as exc:  # XenAPI.Failure UUID_INVALID / HANDLE_INVALID
        details = failure_details(exc)
        if details and details[0] in ("UUID_INVALID", "HANDLE_INVALID"):
            return None
        raise


def exists(session, cls: str, ref: str) -> bool:
    try:
        getattr(session.xenapi, cls).get_uuid(ref)
        return True
    except Exception as exc:
        details = failure_details(exc)
        if details and details[0] == "HANDLE_INVALID":
            return False
        raise


def code_of(exc: BaseException) -> str:
    """The XenAPI error code of a failure ("" for anything else)."""
    return (failure_details(exc) or [""])[0]


def power_state(session, vm_ref: str) -> str:
    return session.xenapi.VM.get_power_state(vm_ref)


def vm_record(session, vm_ref: str) -> dict:
    return session.xenapi.VM.get_record(vm_ref)


def vm_uuid(session, vm_ref: str) -> str:
    return session.xenapi.VM.get_uuid(vm_ref)


def vm_operations(session, vm_ref: str) -> dict[str, str]:
    """current_operations: task ref -> operation name (copy, clean_shutdown, ...)."""
    return dict(session.xenapi.VM.get_current_operations(vm_ref) or {})


def vdi_record(session, vdi_ref: str) -> dict:
    return session.xenapi.VDI.get_record(vdi_ref)


def vm_start_time(session, vm_ref: str) -> str | None:
    """When the VM was last started (VM_metrics.start_time), None where the pool does not say."""
    try:
        metrics = session.xenapi.VM.get_metrics(vm_ref)
        if metrics in ("", NULL_REF):
            return None
        return str(session.xenapi.VM_metrics.get_start_time(metrics))
    except Exception as exc:  # noqa: BLE001 - an old pool or a gone record: no proof either way
        if code_of(exc) in ("HANDLE_INVALID", "MESSAGE_METHOD_UNKNOWN"):
            return None
        raise


def vm_disk_srs(session, vm_ref: str) -> list[str]:
    """SR uuids of the VM's disks (CD drives and empty drives left out)."""
    api = session.xenapi
    out = []
    for vbd in api.VM.get_VBDs(vm_ref) or []:
        vdi = api.VBD.get_VDI(vbd)
        if vdi not in ("", NULL_REF) and api.VBD.get_type(vbd) == "Disk":
            out.append(api.SR.get_uuid(api.VDI.get_SR(vdi)))
    return out


def ping(session) -> None:
    """A cheap read: raises while the pool does not answer."""
    session.xenapi.pool.get_all()


def vms_with_other_config(session, wanted: dict[str, str]) -> list[str]:
    """Refs of the VMs (not snapshots or templates) whose other_config holds every key of `wanted`
    with its value (one get_all_records)."""
    return [ref for ref, rec in session.xenapi.VM.get_all_records().items()
            if all((rec.get("other_config") or {}).get(k) == v for k, v in wanted.items())
            and not rec.get("is_a_snapshot") and not rec.get("is_a_template")]


def vm_other_config(session, vm_ref: str) -> dict[str, str]:
    return dict(session.xenapi.VM.get_other_config(vm_ref) or {})


def ha_enabled(session) -> bool:
    pools = session.xenapi.pool.get_all_records()
    return bool(next(iter(pools.values()), {}).get("ha_enabled"))


def pool_uuid(session) -> str:
    pools = session.xenapi.pool.get_all_records()
    return next(iter(pools.values()))["uuid"] if pools else ""


def sr_record(session, sr_ref: str) -> dict:
    rec = session.xenapi.SR.get_record(sr_ref)
    for key in ("physical_size", "physical_utilisation", "virtual_allocation"):
        rec[key] = int(rec.get(key) or 0)
    rec["free"] = rec["physical_size"] - rec["physical_utilisation"]
    return rec


def sr_free(session, sr_uuids: list[str]) -> dict[str, int]:
    """Free bytes of each SR that still exists, by uuid."""
    free = {}
    for uuid in sr_uuids:
        ref = ref_by_uuid(session, "SR", uuid)
        if ref:
            free[uuid] = sr_record(session, ref)["free"]
    return free


def vm_identity(session, vm_ref: str) -> dict[str, Any]:
    """What must survive a round trip: see runbook_lib/transfer/verify.py for the shape."""
    api = session.xenapi
    vm = api.VM.get_record(vm_ref)
    disks, cds = [], []
    for vbd_ref in vm.get("VBDs") or []:
        vbd = api.VBD.get_record(vbd_ref)
        if vbd.get("type") != "Disk" or vbd.get("VDI") in (None, "", NULL_REF):
            inserted = vbd.get("VDI") not in (None, "", NULL_REF) and not vbd.get("empty")
            cds.append({"userdevice": str(vbd.get("userdevice")), "empty": bool(vbd.get("empty")),
                        "vdi": api.VDI.get_uuid(vbd["VDI"]) if inserted else None})
            continue
        vdi = api.VDI.get_record(vbd["VDI"])
        disks.append({"userdevice": str(vbd.get("userdevice")), "virtual_size": int(vdi.get("virtual_size") or 0),
                      "physical_utilisation": int(vdi.get("physical_utilisation") or 0),
                      "vdi": vdi["uuid"], "vdi_ref": vbd["VDI"], "sr": api.SR.get_uuid(vdi["SR"]),
                      "bootable": bool(vbd.get("bootable")), "mode": vbd.get("mode"),
                      "vdi_name": vdi.get("name_label", "")})
    vifs = []
    for vif_ref in vm.get("VIFs") or []:
        vif = api.VIF.get_record(vif_ref)
        network = vif.get("network")
        vifs.append({"device": str(vif.get("device")), "mac": vif.get("MAC", ""),
                     "network": api.network.get_uuid(network) if network not in (None, "", NULL_REF) else None,
                     "mtu": int(vif.get("MTU") or 1500), "other_config": dict(vif.get("other_config") or {}),
                     **{k: vif[k] for k in VIF_FILTER if k in vif}})
    return {"uuid": vm["uuid"], "ref": vm_ref, "name": vm.get("name_label", ""),
            "description": vm.get("name_description", ""), "power_state": vm.get("power_state"),
            "other_config": dict(vm.get("other_config") or {}),
            "disks": sorted(disks, key=by_userdevice), "cds": sorted(cds, key=by_userdevice),
            "vifs": sorted(vifs, key=lambda v: v["device"]),
            "snapshots": [api.VM.get_uuid(s) for s in vm.get("snapshots") or []],
            "is_a_template": bool(vm.get("is_a_template")), "is_a_snapshot": bool(vm.get("is_a_snapshot"))}


def recorded_identity(session, vm_ref: str) -> dict[str, Any]:
    """vm_identity as the journal keeps it: uuids only (refs do not outlive a xapi restart)."""
    identity = vm_identity(session, vm_ref)
    identity.pop("ref", None)
    for disk in identity["disks"]:
        disk.pop("vdi_ref", None)
    return identity


def userdevice_key(value) -> tuple:
    """Device order as xapi numbers them: 0, 1, ... 10 (numerically), then named devices."""
    text = str(value)
    return (0, int(text), "") if text.isdigit() else (1, 0, text)


def by_userdevice(disk: dict) -> tuple:
    return userdevice_key(disk.get("userdevice"))


def vms_named(session, name: str) -> list[str]:
    """Refs of the (non-snapshot, non-template) VMs with this exact name."""
    refs = session.xenapi.VM.get_by_name_label(name)
    out = []
    for ref in refs:
        rec = session.xenapi.VM.get_record(ref)
        if not rec.get("is_a_snapshot") and not rec.get("is_a_template"):
            out.append(ref)
    return out


def vdi_records(session) -> dict[str, dict]:
    """Every VDI record by ref (one call), sizes as ints."""
    records = session.xenapi.VDI.get_all_records()
    for rec in records.values():
        for key in ("virtual_size", "physical_utilisation"):
            rec[key] = int(rec.get(key) or 0)
    return records


def chain_of(vdi_uuid: str, by_uuid: dict[str, dict]) -> list[str]:
    """The VHD chain from a leaf up to its base, by uuid, over VDI records keyed by uuid."""
    from runbook_lib.chains import VhdParents, ancestry

    return ancestry(vdi_uuid, VhdParents(by_uuid))


# --- tasks and events ---------------------------------------------------------------------
def event_from(session, classes: list[str], token: str, timeout: float) -> dict:
    """event.from, its server-side wait kept under the client's socket timeout (a wait longer
    than that would look like a lost connection)."""
    socket_timeout = getattr(session, "timeout", None)
    if isinstance(socket_timeout, (int, float)) and socket_timeout > 0:
        timeout = min(float(timeout), socket_timeout / 2)
    return getattr(session.xenapi.event, "from")(classes, token, float(timeout))


def task_result_ref(result: str) -> str | None:
    match = _REF_IN_RESULT.search(result or "")
    return match.group(0) if match else None


def wait_task(session, task_ref: str, *, on_progress: Callable[[float], None] | None = None,
              timeout_s: float | None = None, poll_s: float = 5.0) -> str:
    """Block until the task ends (event-driven); return its result ref, raise TaskFailed."""
    api = session.xenapi
    deadline = time.monotonic() + timeout_s if timeout_s else None
    token = ""
    while True:
        rec = api.task.get_record(task_ref)
        status = rec.get("status")
        if on_progress:
            on_progress(float(rec.get("progress") or 0.0))
        if status == "success":
            try:
                api.task.destroy(task_ref)
            except Exception:
                pass
            return task_result_ref(rec.get("result", "")) or rec.get("result", "")
        if status in ("failure", "cancelled"):
            raise TaskFailed(rec.get("error_info") or [status.upper()])
        if deadline and time.monotonic() > deadline:
            raise TaskTimedOut(f"task {task_ref} still {status} after {timeout_s:.0f} s")
        wait = poll_s if not deadline else max(0.05, min(poll_s, deadline - time.monotonic()))
        try:
            token = event_from(session, ["task"], token, wait).get("token", token)
        except Exception as exc:
            details = failure_details(exc)
            if details and details[0] in ("EVENTS_LOST", "MESSAGE_METHOD_UNKNOWN"):
                token = ""
                time.sleep(min(wait, 1.0))
            else:
                raise


def _wait_or_cancel(session, task_ref: str, *, on_progress, timeout_s: float | None) -> str:
    """wait_task; on a timeout the task is cancelled and waited out, so no copy is still being
    made behind the caller's back while it cleans up."""
    try:
        return wait_task(session, task_ref, on_progress=on_progress, timeout_s=timeout_s)
    except TaskTimedOut:
        try:
            session.xenapi.task.cancel(task_ref)
            wait_task(session, task_ref, timeout_s=max(timeout_s or 0.0, 300.0))
        except Exception:  # noqa: BLE001 - cancelled, failed or already gone: the timeout is what counts
            pass
        raise


# --- changes -------------------------------------------------------------------------------
def _async(session, method: str, *args, timeout_s: float | None = None) -> str:
    """Run `method` as Async.<method> and wait for its task: a clean shutdown, a start or an
    SR scan can outlast the client's socket timeout on a busy pool, and a call that times out
    on the client side has not necessarily stopped on the server."""
    api = session.xenapi.Async
    for part in method.split("."):
        api = getattr(api, part)
    return wait_task(session, api(*args), timeout_s=timeout_s)


def clean_shutdown(session, vm_ref: str) -> None:
    _async(session, "VM.clean_shutdown", vm_ref)


def start_vm(session, vm_ref: str) -> None:
    _async(session, "VM.start", vm_ref, False, False)


def copy_vm(session, vm_ref: str, new_name: str, sr_ref: str, *, on_progress=None,
            on_task: Callable[[str], None] | None = None, timeout_s: float | None = None) -> str:
    """Async.VM.copy (a full, flat copy of a halted VM onto sr); returns the new VM's ref."""
    task = session.xenapi.Async.VM.copy(vm_ref, new_name, sr_ref)
    if on_task:
        on_task(task)
    return _wait_or_cancel(session, task, on_progress=on_progress, timeout_s=timeout_s)


def pool_migrate_vdi(session, vdi_ref: str, sr_ref: str, *, on_progress=None,
                     on_task: Callable[[str], None] | None = None, timeout_s: float | None = None) -> str:
    """Async.VDI.pool_migrate (live storage motion of one disk); returns the new VDI ref."""
    task = session.xenapi.Async.VDI.pool_migrate(vdi_ref, sr_ref, {})
    if on_task:
        on_task(task)
    return _wait_or_cancel(session, task, on_progress=on_progress, timeout_s=timeout_s)


BLOCK_MARK = "runbook transfer"


class BlockedByOthers(PoolError):
    """VM.start is blocked by someone else; the runbook never takes over a block it did not set."""


def start_block(session, vm_ref: str) -> str | None:
    """The reason of the VM's start block, None when it has none."""
    blocked = session.xenapi.VM.get_blocked_operations(vm_ref) or {}
    return str(blocked["start"]) if "start" in blocked else None


def block_start(session, vm_ref: str, why: str) -> None:
    """VM.start is refused (OPERATION_BLOCKED) until unblock_start: nobody boots an original
    whose copy is being made or checked, so no data is written that the copy lacks. Our own
    block already there is kept (xapi refuses a second add with MAP_DUPLICATE_KEY)."""
    current = start_block(session, vm_ref)
    if current is not None:
        if current.startswith(BLOCK_MARK):
            return
        raise BlockedByOthers(f"VM.start of this VM is already blocked by someone else ({current!r}); "
                              "the runbook does not take over a block it did not set",
                              hint="remove that block (xe vm-param-remove ... param-name=blocked-operations "
                                   "param-key=start) or wait for whoever set it, then re-run")
    try:
        session.xenapi.VM.add_to_blocked_operations(vm_ref, "start", f"{BLOCK_MARK}: {why}")
    except Exception as exc:
        if code_of(exc) != "MAP_DUPLICATE_KEY":  # set meanwhile (a call whose answer was lost)
            raise
        block_start(session, vm_ref, why)


def unblock_start(session, vm_ref: str) -> bool:
    """Lift our start block (never one someone else set); True when there was one."""
    if not (start_block(session, vm_ref) or "").startswith(BLOCK_MARK):
        return False
    session.xenapi.VM.remove_from_blocked_operations(vm_ref, "start")
    return True


def set_name(session, vm_ref: str, name: str) -> None:
    session.xenapi.VM.set_name_label(vm_ref, name)


def set_description(session, vm_ref: str, text: str) -> None:
    session.xenapi.VM.set_name_description(vm_ref, text)


def set_other_config(session, vm_ref: str, other_config: dict) -> None:
    session.xenapi.VM.set_other_config(vm_ref, other_config)


def destroy_vm(session, vm_ref: str) -> bool:
    """VM.destroy: the VM record and its VBDs/VIFs go; its VDIs stay (destroy them separately).
    A VM that is already gone (an earlier call whose answer was lost) counts as destroyed."""
    return _gone_is_done(session.xenapi.VM.destroy, vm_ref)


def destroy_vdi(session, vdi_ref: str) -> bool:
    return _gone_is_done(session.xenapi.VDI.destroy, vdi_ref)


def hard_shutdown(session, vm_ref: str) -> None:
    """Only ever for the runbook's own copies, never for an original."""
    _async(session, "VM.hard_shutdown", vm_ref)


def _gone_is_done(call, ref: str) -> bool:
    """True when this call destroyed the object, False when it was already gone."""
    try:
        call(ref)
        return True
    except Exception as exc:
        if code_of(exc) == "HANDLE_INVALID":
            return False
        raise


def set_other_config_keys(session, vm_ref: str, values: dict[str, str]) -> None:
    """Set these other_config keys without add_to's MAP_DUPLICATE_KEY: a key already there with
    the same value is left alone, one with another value is removed first."""
    api = session.xenapi
    current = api.VM.get_other_config(vm_ref) or {}
    for key, value in values.items():
        if current.get(key) == value:
            continue
        if key in current:
            api.VM.remove_from_other_config(vm_ref, key)
        api.VM.add_to_other_config(vm_ref, key, value)


def remove_other_config_keys(session, vm_ref: str, keys) -> list[str]:
    api = session.xenapi
    current = api.VM.get_other_config(vm_ref) or {}
    removed = [k for k in keys if k in current]
    for key in removed:
        api.VM.remove_from_other_config(vm_ref, key)
    return removed


def scan_sr(session, sr_ref: str) -> None:
    _async(session, "SR.scan", sr_ref)


def update_sr(session, sr_ref: str) -> None:
    """SR.update: the storage manager writes the SR's and its VDIs' current sizes (a file SR
    publishes a new copy's size only on a scan or an update)."""
    _async(session, "SR.update", sr_ref)


def call_plugin(session, host_ref: str, plugin: str, fn: str, args: dict[str, str]) -> str:
    return session.xenapi.host.call_plugin(host_ref, plugin, fn, args)


PLUGIN_TASK = "Async.host.call_plugin"  # the name xapi gives the task of an async plugin call


def call_plugin_async(session, host_ref: str, plugin: str, fn: str, args: dict[str, str], *,
                      on_task: Callable[[str], None] | None = None, timeout_s: float | None = None) -> str:
    """Async.host.call_plugin and wait on its task (the coalesce-leaf plugin can run as long as a GC
    run plus the coalesce, far beyond a socket timeout); `on_task` gets the task first, to journal it.
    Returns the plugin's text; a failure raises TaskFailed with the plugin's message."""
    task = session.xenapi.Async.host.call_plugin(host_ref, plugin, fn, args)
    if on_task:
        on_task(task)
    return plugin_result(wait_task(session, task, timeout_s=timeout_s))


def plugin_result(result: str) -> str:
    """A task's result holds the plugin's string as an XML-RPC value."""
    text = str(result or "")
    match = re.fullmatch(r"\s*<value>(.*)</value>\s*", text, re.DOTALL)
    return html.unescape(match.group(1)) if match else text


def pending_tasks(session, name: str) -> list[str]:
    """Refs of tasks with this name still pending (a call sent before a lost answer or a crash)."""
    return [ref for ref, rec in session.xenapi.task.get_all_records().items()
            if rec.get("name_label") == name and rec.get("status") == "pending"]


def vdi_leaf_coalesce(session, vdi_ref: str) -> str | None:
    return (session.xenapi.VDI.get_other_config(vdi_ref) or {}).get("leaf-coalesce")


def set_vdi_leaf_coalesce(session, vdi_ref: str, value: str | None) -> None:
    """other-config:leaf-coalesce on a VDI: `force` lifts the GC's 10 s limit; None removes the key."""
    api = session.xenapi
    current = vdi_leaf_coalesce(session, vdi_ref)
    if current == value:
        return
    if current is not None:
        api.VDI.remove_from_other_config(vdi_ref, "leaf-coalesce")
    if value is not None:
        api.VDI.add_to_other_config(vdi_ref, "leaf-coalesce", value)


def master_host(session) -> str:
    pools = session.xenapi.pool.get_all_records()
    return next(iter(pools.values()))["master"]


# --- HTTP handlers (export / import) --------------------------------------------------------
def _http_url(session, path: str, query: dict[str, str]) -> str:
    """The pool's HTTP handler URL with the session ref (PoolSession.url/.handle)."""
    url = str(getattr(session, "url", "") or "")
    handle = getattr(session, "handle", None)
    if not url or not handle:
        raise ValueError("the session does not say which URL it talks to")
    parts = urllib.parse.urlsplit(url)
    query = {**query, "session_id": handle}
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, urllib.parse.urlencode(query), ""))


def _context(session) -> ssl.SSLContext | None:
    if not str(getattr(session, "url", "")).startswith("https"):
        return None
    if getattr(session, "verify_tls", True):
        return ssl.create_default_context(cafile=getattr(session, "ca_bundle", None) or None)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def export_vm(session, vm_uuid: str, dest: Path, *, on_bytes: Callable[[int], None] | None = None,
              chunk: int = 1 << 20) -> int:
    """GET /export?uuid= into dest (written to dest.partial, fsynced, renamed when complete); returns bytes."""
    url = _http_url(session, "/export", {"uuid": vm_uuid})
    partial = dest.with_name(dest.name + ".partial")
    total = 0
    with urllib.request.urlopen(url, context=_context(session)) as response, partial.open("wb") as fh:  # noqa: S310
        while True:
            block = response.read(chunk)
            if not block:
                break
            fh.write(block)
            total += len(block)
            if on_bytes:
                on_bytes(total)
        fh.flush()
        os.fsync(fh.fileno())
    partial.replace(dest)
    return total


def import_vm(session, source: Path, sr_ref: str, *, timeout_s: float | None = 3600.0) -> list[str]:
    """PUT /import?sr_id= streaming an .xva file; returns the refs of the imported VMs.

    xapi reports the new VM in the task named by task_id (the response body is empty); the
    bundled simulator answers with the ref in the body. Both are read.
    """
    try:
        task = session.xenapi.task.create("runbook import", f"import of {source.name}")
    except Exception as exc:  # a server without task.create (the simulator) answers in the body
        if (failure_details(exc) or [""])[0] != "MESSAGE_METHOD_UNKNOWN":
            raise
        task = None
    try:
        url = _http_url(session, "/import", {"sr_id": sr_ref, **({"task_id": task} if task else {})})
        size = source.stat().st_size
        with source.open("rb") as fh:
            request = urllib.request.Request(url, data=fh, method="PUT",
                                             headers={"Content-Type": "application/octet-stream",
                                                      "Content-Length": str(size)})
            with urllib.request.urlopen(request, context=_context(session)) as response:  # noqa: S310
                body = response.read().decode("utf-8", "replace")
        refs = _REF_IN_RESULT.findall(body)
        if refs or task is None:
            return refs
        rec = session.xenapi.task.get_record(task)
        if rec.get("status") == "pending":
            wait_task(session, task, timeout_s=timeout_s)
            rec = session.xenapi.task.get_record(task)
        return _REF_IN_RESULT.findall(rec.get("result") or "")
    finally:
        if task is not None:
            try:
                session.xenapi.task.destroy(task)
            except Exception:  # noqa: BLE001 - already gone (wait_task destroys finished tasks)
                pass


def replace_vifs(session, vm_ref: str, vifs: list[dict]) -> None:
    """Give a halted VM exactly these VIFs (device, MAC, network uuid, MTU, other_config)."""
    api = session.xenapi
    for vif_ref in api.VM.get_VIFs(vm_ref):
        _gone_is_done(api.VIF.destroy, vif_ref)
    for vif in vifs:
        network = api.network.get_by_uuid(vif["network"]) if vif.get("network") else NULL_REF
        api.VIF.create({"VM": vm_ref, "network": network, "device": str(vif["device"]), "MAC": vif["mac"],
                        "MTU": str(vif.get("mtu") or 1500), "other_config": dict(vif.get("other_config") or {}),
                        "qos_algorithm_type": "", "qos_algorithm_params": {},
                        **{k: vif[k] for k in VIF_FILTER if k in vif}})
