"""A pool's inventory as a simulator scenario, so a plan can be rehearsed on a copy of it.

Reads the pool through runbook_lib.xapi (connect + fetch_inventory: the same code for a real
pool and for the simulator). What XenAPI does not show is filled in conservatively:
- a VHD's allocated blocks come from its physical size (a deflated LV or a VHD file);
  a running VM's inflated LV hides them, so such a leaf is taken as fully allocated
  (the sizing's worst case) and marked `allocated_unknown: true`;
- bytes the SR uses outside its VDIs become `other_used`, so free space matches exactly;
- coalesce and copy speeds use the simulator's defaults (no measured speed).
"""

from __future__ import annotations

from pathlib import Path

import yaml

from runbook_lib.errors import InputError
from runbook_lib.input_files import check_output_file
from runbook_lib.sim.sm_rules import LVM_SR_TYPES, VHD_BLOCK, calc_overhead_empty, calc_size_lv, calc_size_vhd_lv
from runbook_lib.sim.storage import Vhd

NULL_REF = "OpaqueRef:NULL"
BLOCK_BYTES = VHD_BLOCK + 4096


def _sim_bytes(sr_type: str, v: Vhd) -> int:
    if sr_type in LVM_SR_TYPES:
        if v.raw:
            return calc_size_lv(v.virtual)
        return calc_size_vhd_lv(v.virtual) if v.inflated else calc_size_lv(v.vhd_size)
    return v.vhd_size


def _blocks_for(sr_type: str, virtual: int, phys: int, inflated: bool) -> tuple[int, bool]:
    """(blocks, unknown): the most blocks whose VHD is not bigger than what the pool shows."""
    limit = -(-virtual // VHD_BLOCK)
    if inflated:
        return limit, True
    blocks = max(min((phys - calc_overhead_empty(virtual)) // BLOCK_BYTES, limit), 0)
    while blocks > 0 and _sim_bytes(sr_type, Vhd(sr="", virtual=virtual, blocks=blocks)) > phys:
        blocks -= 1
    return blocks, False


def inventory_to_scenario(inv, name: str = "snapshot") -> dict:
    """Scenario dict from a runbook_lib.xapi.inventory.Inventory."""
    rec = inv.records
    host_name = {ref: h.get("name_label") or h.get("uuid") for ref, h in rec["host"].items()}
    pool = next(iter(rec["pool"].values()), {})
    scenario: dict = {
        "name": name,
        "description": f"snapshot of pool {pool.get('name_label', '')!r} taken {inv.captured}",
        "clock": {"start": inv.captured or "2026-01-01T00:00:00Z"},
        "smlog": {"host": host_name.get(pool.get("master"), "xs01"), "style": "modern"},
        "gc": {"interval_s": 1800},
        "pool": {"uuid": pool.get("uuid"), "name_label": pool.get("name_label", "")},
        "hosts": [],
    }
    networks = {ref: n for ref, n in (rec.get("network") or {}).items() if n.get("uuid")}
    if networks:  # an inventory saved before networks were kept has none: the default network
        # in the pool's own order is no order (refs are random): by name, then uuid, so a snapshot is stable
        scenario["networks"] = [_network(n) for n in sorted(networks.values(),
                                                            key=lambda n: (n.get("name_label") or "", n["uuid"]))]
    for ref, h in rec["host"].items():
        host = {"uuid": h["uuid"], "name_label": host_name[ref], "address": h.get("address", ""),
                "master": ref == pool.get("master")}
        dom0 = [vm["uuid"] for vm in rec["VM"].values()
                if vm.get("is_control_domain") and vm.get("resident_on") == ref]
        if dom0:
            host["dom0_uuid"] = dom0[0]
        scenario["hosts"].append(host)
    sr_pbd_host = {}
    for pbd in rec["PBD"].values():
        sr_pbd_host.setdefault(pbd.get("SR"), pbd.get("host"))
    attached = {vbd.get("VDI") for vbd in rec["VBD"].values() if vbd.get("currently_attached")}
    srs, vdis = [], []
    for sr_ref, sr in rec["SR"].items():
        typ = sr.get("type", "")
        entry = {"uuid": sr["uuid"], "name_label": sr.get("name_label", ""), "type": typ,
                 "content_type": sr.get("content_type", "user"), "shared": bool(sr.get("shared")),
                 "physical_size": int(sr.get("physical_size") or 0)}
        if not sr.get("shared") and sr_pbd_host.get(sr_ref) in host_name:
            entry["host"] = host_name[sr_pbd_host[sr_ref]]
        sim_used = 4 * 2**20 if typ in LVM_SR_TYPES else 0
        for vdi_ref, vdi in rec["VDI"].items():
            if vdi.get("SR") != sr_ref:
                continue
            virtual = int(vdi.get("virtual_size") or 0)
            phys = int(vdi.get("physical_utilisation") or 0)
            raw = (vdi.get("sm_config") or {}).get("vdi_type") == "aio"
            inflated = typ in LVM_SR_TYPES and vdi_ref in attached and not raw \
                and phys >= calc_size_vhd_lv(virtual)
            blocks, unknown = _blocks_for(typ, virtual, phys, inflated)
            v = Vhd(sr="", virtual=virtual, blocks=blocks, raw=raw, inflated=inflated)
            sim_used += _sim_bytes(typ, v)
            item = {"uuid": vdi["uuid"], "sr": sr["uuid"], "virtual_size": virtual,
                    "blocks": blocks, "name_label": vdi.get("name_label", ""),
                    "type": vdi.get("type", "user")}
            if not vdi.get("managed", True):
                item["hidden"] = True
            parent = (vdi.get("sm_config") or {}).get("vhd-parent")
            if parent:
                item["parent"] = parent
            if raw:
                item["raw"] = True
            if unknown:
                item["allocated_unknown"] = True
            if vdi.get("is_a_snapshot"):
                _snapshot_fields(item, vdi, rec["VDI"])
            leaf = (vdi.get("other_config") or {}).get("leaf-coalesce")
            if leaf:
                item["other_config"] = {"leaf-coalesce": leaf}
            vdis.append(item)
        entry["other_used"] = max(int(sr.get("physical_utilisation") or 0) - sim_used, 0)
        srs.append(entry)
    known = {v["uuid"] for v in vdis}
    for v in vdis:      # a parent outside the inventory (another SR, missing) is dropped
        if v.get("parent") not in known:
            v.pop("parent", None)
    scenario["srs"] = srs
    scenario["vdis"] = vdis
    vms = []
    for vm_ref, vm in rec["VM"].items():
        if vm.get("is_control_domain"):
            continue
        entry = {"uuid": vm["uuid"], "name_label": vm.get("name_label", ""),
                 "power_state": vm.get("power_state", "Halted")}
        if vm.get("resident_on") in host_name:
            entry["host"] = host_name[vm["resident_on"]]
        if vm.get("is_a_snapshot"):
            _snapshot_fields(entry, vm, rec["VM"])
        elif vm.get("is_a_template"):
            entry["is_a_template"] = True
        vbds = []
        for vbd in sorted((b for b in rec["VBD"].values() if b.get("VM") == vm_ref),
                          key=lambda b: str(b.get("userdevice"))):
            vdi_uuid = rec["VDI"].get(vbd.get("VDI"), {}).get("uuid")
            item = {"userdevice": str(vbd.get("userdevice", "0")), "type": vbd.get("type", "Disk"),
                    "mode": vbd.get("mode", "RW"), "bootable": bool(vbd.get("bootable"))}
            if vdi_uuid:
                item["vdi"] = vdi_uuid
            vbds.append(item)
        entry["vbds"] = vbds
        entry["vifs"] = [_vif(f, networks) for f in rec["VIF"].values() if f.get("VM") == vm_ref]
        vms.append(entry)
    scenario["vms"] = vms
    return scenario


def _network(n: dict) -> dict:
    out = {"uuid": n["uuid"], "name_label": n.get("name_label", ""), "bridge": n.get("bridge", "")}
    if n.get("MTU"):
        out["MTU"] = int(n["MTU"])
    return out


def _vif(f: dict, networks: dict) -> dict:
    """A VIF with its network named by uuid (one outside the inventory: the default network)."""
    out = {"device": str(f.get("device", "0")), "mac": f.get("MAC", "")}
    network = networks.get(f.get("network"))
    if network:
        out["network"] = network["uuid"]
    return out


def write_scenario(scenario: dict, out) -> Path:
    out = check_output_file(out, "the scenario")
    header = ("# Written by `runbook sim snapshot`: serve it with\n"
              f"#   runbook sim serve --scenario {out.name}\n")
    tmp = out.with_name(out.name + ".tmp")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(header + yaml.safe_dump(scenario, sort_keys=False, width=100),
                       encoding="utf-8")
        tmp.replace(out)
    except OSError as err:
        raise InputError(f"cannot write the scenario to {out}: {err.strerror or err}") from None
    return out


def _summary(scenario: dict) -> str:
    return (f"{len(scenario['hosts'])} hosts, {len(scenario['srs'])} SRs, "
            f"{len(scenario['vdis'])} VDIs, {len(scenario['vms'])} VMs")


def snapshot_pool(url: str, user: str, password_env: str | None, out, verify_tls: bool = True,
                  ca_bundle=None, password_file=None) -> str:
    """Read the pool at url and write its scenario to out; returns a one-line summary."""
    from runbook_lib.xapi.connect import connect
    from runbook_lib.xapi.inventory import fetch_inventory

    with connect(url, user=user, password_env=password_env, password_file=password_file,
                 verify_tls=verify_tls, ca_bundle=ca_bundle) as session:
        inv = fetch_inventory(session, source_url=url)
    scenario = inventory_to_scenario(inv, name=Path(out).stem)
    write_scenario(scenario, out)
    return _summary(scenario)


def snapshot_inventory(path, out) -> str:
    """A saved inventory file (runbook inventory save) as a scenario."""
    from runbook_lib.xapi.inventory import Inventory

    scenario = inventory_to_scenario(Inventory.load(path), name=Path(out).stem)
    write_scenario(scenario, out)
    return _summary(scenario)


def _snapshot_fields(entry: dict, obj: dict, table: dict) -> None:
    """A snapshot (VDI or VM) keeps what it is a snapshot of, by uuid, and when it was taken."""
    entry["is_a_snapshot"] = True
    of = table.get(obj.get("snapshot_of"), {}).get("uuid")
    if of:
        entry["snapshot_of"] = of
    if obj.get("snapshot_time"):
        entry["snapshot_time"] = obj["snapshot_time"]
