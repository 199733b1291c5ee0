"""VM export and import over HTTP (GET /export, PUT /import), as xapi's handlers do.

The stream is a tar like an XVA: `ova.xml` (the VM, its VBDs, VIFs and VDIs as an XML-RPC
struct) then, per disk, `Ref:<vdi ref>/manifest.json` stating the virtual size and the bytes
of data the disk holds. Disk contents are not simulated, so the data itself is described,
not carried; sizes, names, MACs and userdevice order survive the round trip.
Export needs a halted VM or a snapshot; it takes simulated time at the SR's copy speed.
"""

from __future__ import annotations

import io
import json
import tarfile
import time
import xmlrpc.client

from runbook_lib.sim.model import NULL_REF, ApiFailure, vif_filter
from runbook_lib.sim.sm_rules import VHD_BLOCK
from runbook_lib.sim.wire import plain, xmlrpc_response

FORMAT = "runbook-sim-xva/1"


def _session(sim, session_id: str) -> None:
    sim.dispatcher._session(session_id)


def _wait_sim(sim, seconds: float) -> None:
    """Block the HTTP request until the simulated clock has moved on by `seconds`."""
    target = sim.pool.clock.now + seconds
    while sim.pool.clock.now < target:
        time.sleep(0.005)


def _member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 0
    tar.addfile(info, io.BytesIO(data))


def export_vm(sim, session_id: str, uuid: str, ref: str = "") -> bytes:
    pool = sim.pool
    with pool.lock:
        _session(sim, session_id)
        st = pool.store
        vm = ref if ref else st.ref_by_uuid("VM", uuid)
        rec = st.record("VM", vm)
        if rec["power_state"] != "Halted" and not rec["is_a_snapshot"]:
            raise ApiFailure("VM_BAD_POWER_STATE", vm, "halted", rec["power_state"].lower())
        disks = []
        total = 0
        for vbd in rec["VBDs"]:
            b = st.get("VBD", vbd)
            entry = {"vbd": dict(b)}
            if b["VDI"] != NULL_REF:
                v = pool.storage.vhds[b["VDI"]]
                data = pool.storage.union_blocks(b["VDI"]) * VHD_BLOCK
                entry["vdi"] = dict(st.get("VDI", b["VDI"]))
                entry["manifest"] = {"format": FORMAT, "virtual_size": v.virtual,
                                     "data_bytes": data, "content": v.content}
                total += data
                speed = pool.storage.srs[v.sr].copy_speed
            disks.append(entry)
        vifs = [dict(st.get("VIF", r)) for r in rec["VIFs"]]
        seconds = total / speed if total else 1.0
    _wait_sim(sim, seconds)
    objects = {"format": FORMAT, "VM": {k: v for k, v in rec.items()
                                         if k not in ("VBDs", "VIFs", "snapshots")},
               "VBDs": [d["vbd"] for d in disks],
               "VDIs": {d["vbd"]["VDI"]: d["vdi"] for d in disks if "vdi" in d},
               "VIFs": vifs}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        _member(tar, "ova.xml", xmlrpc_response(objects))
        for d in disks:
            if "manifest" in d:
                _member(tar, f"Ref:{d['vbd']['VDI']}/manifest.json",
                        json.dumps(d["manifest"]).encode())
    return buf.getvalue()


def import_vm(sim, session_id: str, sr_ref: str, body: bytes) -> str:
    pool = sim.pool
    try:
        with tarfile.open(fileobj=io.BytesIO(body), mode="r") as tar:
            meta = plain(xmlrpc.client.loads(tar.extractfile("ova.xml").read())[0][0])
            manifests = {}
            for m in tar.getmembers():
                if m.name.endswith("/manifest.json"):
                    manifests[m.name.split("/")[0][4:]] = json.loads(tar.extractfile(m).read())
    except (tarfile.TarError, KeyError, ValueError, AttributeError, xmlrpc.client.Error):
        raise ApiFailure("IMPORT_ERROR", "not an export stream this server understands") from None
    if meta.get("format") != FORMAT:
        raise ApiFailure("IMPORT_ERROR", f"unknown format {meta.get('format')!r}")
    with pool.lock:
        _session(sim, session_id)
        st, storage = pool.store, pool.storage
        st.get("SR", sr_ref)
        need = sum(storage.copy_need(sr_ref, int(m["virtual_size"]),
                                     -(-int(m["data_bytes"]) // VHD_BLOCK))
                   for m in manifests.values())
        storage.require(sr_ref, need)
        made = {}
        for old_ref, m in manifests.items():
            like = meta["VDIs"].get(old_ref, {})
            made[old_ref] = pool.new_vdi(sr_ref, int(m["virtual_size"]),
                                         -(-int(m["data_bytes"]) // VHD_BLOCK), like=like)
            storage.vhds[made[old_ref]].content = int(m.get("content") or 0)
        storage.refresh(sr_ref)
        vm_meta = meta["VM"]
        keep = ("name_label", "name_description", "memory_static_max", "memory_dynamic_max",
                "VCPUs_max", "VCPUs_at_startup", "other_config", "HVM_boot_policy",
                "PV_bootloader", "tags")
        values = {k: vm_meta[k] for k in keep if k in vm_meta}
        for k in ("memory_static_max", "memory_dynamic_max", "VCPUs_max", "VCPUs_at_startup"):
            if k in values:
                values[k] = int(values[k])
        vm = st.add("VM", values | {"power_state": "Halted"})
        for b in meta["VBDs"]:
            st.add("VBD", dict(VM=vm, VDI=made.get(b.get("VDI"), NULL_REF),
                               userdevice=b.get("userdevice", "0"), bootable=b.get("bootable", False),
                               mode=b.get("mode", "RW"), type=b.get("type", "Disk"),
                               empty=b.get("VDI") not in made, other_config=b.get("other_config", {})))
        for f in meta["VIFs"]:
            network = f.get("network") if st.exists("network", f.get("network", "")) \
                else pool.default_network
            st.add("VIF", dict(VM=vm, device=f.get("device", "0"), MAC=f.get("MAC", ""),
                               MAC_autogenerated=False, network=network, MTU=int(f.get("MTU", 1500)),
                               other_config=f.get("other_config", {}),
                               **vif_filter(f)))
        data = sum(int(m["data_bytes"]) for m in manifests.values())
        seconds = data / storage.srs[sr_ref].copy_speed if data else 1.0
    _wait_sim(sim, seconds)
    return vm
