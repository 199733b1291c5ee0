"""The delete-snapshots remedy: delete the snapshots the admin names, then let the GC work
(sized again on a copy of the inventory without them)."""

from __future__ import annotations

from runbook_lib.plan.remedy import Remedy
from runbook_lib.sizing import Sizing, size_pool
from runbook_lib.units import gib


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


def delete_snapshots_remedy(sizing: Sizing, sr: dict, names: list[str], *, gc_speed: float) -> Remedy:
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
                      findings=sizing.inputs.get("findings"), vhd_sizes=given,
                      host_sizes=sizing.inputs.get("host_sizes"))
    row = after.sr(sr["sr"])
    frees = int(inv.vdis[inv.vdis["uuid"].isin(on_sr)]["physical_utilisation"].sum())
    work = int(after.coalesces["work"].sum()) if len(after.coalesces) else 0
    feasible = bool(row) and row["shortfall"] == 0
    reason = ("delete the named snapshots, SR.scan, wait for the GC"
              if feasible else
              f"deleting them frees {gib(frees)} but the SR is still short by "
              f"{gib(row.get('shortfall', 0))}")
    return Remedy(kind="delete-snapshots", sr=sr["sr"], snapshots=list(names), frees=frees,
                  duration_s=work / gc_speed, feasible=feasible, reason=reason)
