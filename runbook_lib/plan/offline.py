"""The offline-coalesce remedy, as the storage manager really behaves (docs/plan.md):

- `plugin`: the host's coalesce-leaf plugin on the SR's master; a running VM is suspended for
  the forced coalesce (its memory written to the suspend SR and read back), a halted one not;
- `force`: halt the VM if it runs, set other-config:leaf-coalesce=force on its leaf (removed
  again afterwards), SR.scan, wait for the chain to shorten, start the VM again.

Per VM the route with less downtime is taken. Downtime counts the data the coalesce really
moves (the leaf's allocated blocks: exact when dom0 answered) at the coalesce rate, plus the
power cycle or the suspend and resume. On a thick LVM SR (the default) a shutdown frees no
space; only a thin SR's VMs give their inflated LVs back.
"""

from __future__ import annotations

from runbook_lib.plan.lookups import lookups
from runbook_lib.plan.remedy import PLUGIN_PAUSE_S, POWER_CYCLE_S, Remedy
from runbook_lib.sizing import Sizing
from runbook_lib.units import gib_or_mib


def _downtimes(vm: dict, rows: list[dict], *, gc_speed: float, throughput: float) -> dict[str, float]:
    """Route -> the VM's downtime along it (only the routes every one of its leaves allows)."""
    work = sum(int(r["work"]) for r in rows) / gc_speed
    running = vm["power_state"] != "Halted"
    out = {}
    if all(r["offline_via"] == "plugin" for r in rows):
        suspend = 2 * int(vm.get("memory") or 0) / throughput + PLUGIN_PAUSE_S if running else 0.0
        out["plugin"] = (suspend + work) if running else 0.0
    if all(r["offline_via"] == "force" or _force_ok(r) for r in rows):
        out["force"] = (POWER_CYCLE_S + work) if running else 0.0
    return out


def _force_ok(row: dict) -> bool:
    """A leaf the plugin could take can also be forced with its VM halted (the need is the same)."""
    return row["offline_via"] in ("plugin", "force")


def _entry(look, vm_uuid: str, sr: str, rows: list[dict], route: str, downtime: float) -> dict:
    vm = look.vms[vm_uuid]
    on_sr = [d for d in look.disks_of.get(vm_uuid, []) if d["sr"] == sr]
    return {"uuid": vm_uuid, "name": vm["name"], "power_state": vm["power_state"], "mode": "offline",
            "bytes": 0, "coalesce_plugin": route == "plugin", "route": route,
            "plugin_host": rows[0]["plugin_host"] if route == "plugin" else None,
            "leaves": sorted(r["vdi"] for r in rows), "work": int(sum(int(r["work"]) for r in rows)),
            "needed": int(max(int(r["offline_needed"]) for r in rows)), "downtime_s": float(downtime),
            "disks": [{k: d[k] for k in ("vdi", "userdevice", "virtual_size", "physical_utilisation")}
                      for d in on_sr]}


def _reason(entries: list[dict], sr: dict, gc_speed: float) -> str:
    parts = []
    for e in entries:
        name = e["name"] or e["uuid"][:8]
        data = f"{gib_or_mib(e['work'])} to coalesce at {gc_speed / 2**20:.0f} MiB/s"
        if e["route"] == "plugin":
            how = "suspends it, forces the leaf-coalesce, resumes it" if e["power_state"] != "Halted" else \
                "forces the leaf-coalesce of the halted VM"
            parts.append(f"call the coalesce-leaf plugin for {name} on its SR's master ({how}; {data})")
        else:
            halt = f"shut down {name}, " if e["power_state"] != "Halted" else ""
            start = ", start it again" if e["power_state"] != "Halted" else ""
            parts.append(f"{halt}set leaf-coalesce=force on {', '.join(v[:8] for v in e['leaves'])} (removed "
                         f"afterwards), SR.scan, wait for the GC ({data}){start}")
    if sr.get("family") == "lvm" and sr.get("provisioning", "thick") == "thick":
        parts.append("on this thick LVM SR a shutdown frees no space; the forced coalesce needs only "
                     f"{gib_or_mib(max(e['needed'] for e in entries))} free")
    return "; ".join(parts)


def offline_remedy(sizing: Sizing, sr: dict, *, gc_speed: float, throughput: float) -> Remedy:
    co = sizing.coalesces[sizing.coalesces["sr"] == sr["sr"]]
    blocking = co[~co["fits"]]
    if blocking.empty:
        return Remedy(kind="offline-coalesce", sr=sr["sr"], feasible=False,
                      reason="every pending coalesce already fits")
    if not bool(blocking["fits_offline"].all()) or (blocking["kind"] == "non-leaf").any() \
            or any(not vms for vms in blocking["vms"]):
        notes = "; ".join(n for n in blocking["plugin_note"] if n)
        return Remedy(kind="offline-coalesce", sr=sr["sr"], feasible=False,
                      reason="even with the VM offline the coalesce does not fit" + (f" ({notes})" if notes else ""))
    look = lookups(sizing)
    rows = blocking.to_dict("records")
    entries = []
    for vm_uuid in sorted({vm for row in rows for vm in row["vms"]}):
        mine = [r for r in rows if vm_uuid in r["vms"]]
        options = _downtimes(look.vms[vm_uuid], mine, gc_speed=gc_speed, throughput=throughput)
        route = min(options, key=lambda k: (options[k], k != "force")) if options else "force"
        entries.append(_entry(look, vm_uuid, sr["sr"], mine, route, options.get(route, 0.0)))
    work = sum(e["work"] for e in entries)
    frees = 0
    if sr.get("family") == "lvm" and sr.get("provisioning") == "thin":
        frees = sum(sizing_deflation(look, sr["sr"], e["uuid"]) for e in entries if e["power_state"] != "Halted")
    return Remedy(kind="offline-coalesce", sr=sr["sr"], vms=entries, frees=frees, bytes_to_move=0,
                  duration_s=work / gc_speed + sum(e["downtime_s"] for e in entries if e["route"] == "plugin"),
                  downtime_s=sum(e["downtime_s"] for e in entries), needed=max(e["needed"] for e in entries),
                  reason=_reason(entries, sr, gc_speed))


def sizing_deflation(look, sr: str, vm_uuid: str) -> int:
    """What a thin SR gets back when the VM shuts down: its inflated LVs deflate to their VHDs."""
    from runbook_lib.sizing import lv_size

    return sum(max(0, d["physical_utilisation"] - lv_size(look.vhd_size[d["vdi"]]))
               for d in look.disks_of.get(vm_uuid, []) if d["sr"] == sr and look.inflated.get(d["vdi"]))
