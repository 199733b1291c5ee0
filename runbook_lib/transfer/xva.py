"""What an exported .xva says about the VM inside, so an export is verified before the original goes.

An XVA is a tar whose `ova.xml` describes the VM, its VBDs, VDIs and VIFs as XML-RPC values.
xapi writes `{"version": .., "objects": [{"class", "id", "snapshot"}, ..]}` as a bare `<value>`;
the bundled simulator writes `{"VM", "VBDs", "VDIs", "VIFs"}` as a method response. Both become
the identity shape of verify.py (name, description, disks by userdevice, VIFs with MACs).
"""

from __future__ import annotations

import tarfile
import xmlrpc.client
from pathlib import Path

from runbook_lib.xapi.operations import by_userdevice


class XvaUnreadable(Exception):
    pass


def _load_value(xml: bytes):
    text = xml.decode("utf-8", "replace")
    if "<methodResponse>" not in text:
        body = text.split("?>", 1)[-1] if text.lstrip().startswith("<?xml") else text
        text = f"<?xml version='1.0'?><methodResponse><params><param>{body}</param></params></methodResponse>"
    return xmlrpc.client.loads(text, use_builtin_types=False)[0][0]


def _int(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def describe_xva(path: str | Path) -> dict:
    """The identity of the VM in an .xva file; raises XvaUnreadable."""
    try:
        with tarfile.open(path, mode="r") as tar:
            member = tar.extractfile("ova.xml")
            if member is None:
                raise XvaUnreadable("no ova.xml in the export")
            meta = _load_value(member.read())
    except (OSError, tarfile.TarError, KeyError, xmlrpc.client.Error, ValueError) as err:
        raise XvaUnreadable(f"cannot read {path}: {err}") from None
    if not isinstance(meta, dict):
        raise XvaUnreadable("ova.xml does not hold a struct")
    if "objects" in meta:  # xapi's layout
        by_class: dict[str, dict] = {}
        for obj in meta.get("objects") or []:
            by_class.setdefault(str(obj.get("class")), {})[obj.get("id")] = obj.get("snapshot") or {}
        vms = [v for v in by_class.get("VM", {}).values() if not v.get("is_a_snapshot")]
        vm = vms[0] if vms else {}
        vbds = list(by_class.get("VBD", {}).values())
        vdis = by_class.get("VDI", {})
        vifs = list(by_class.get("VIF", {}).values())
    else:  # the simulator's layout
        vm = meta.get("VM") or {}
        vbds = meta.get("VBDs") or []
        vdis = meta.get("VDIs") or {}
        vifs = meta.get("VIFs") or []
    disks = []
    for vbd in vbds:
        if vbd.get("type", "Disk") != "Disk" or vbd.get("VDI") not in vdis:
            continue
        vdi = vdis[vbd["VDI"]]
        disks.append({"userdevice": str(vbd.get("userdevice")), "virtual_size": _int(vdi.get("virtual_size")),
                      "bootable": bool(vbd.get("bootable"))})
    return {"uuid": vm.get("uuid"), "name": vm.get("name_label", ""), "description": vm.get("name_description", ""),
            "other_config": dict(vm.get("other_config") or {}), "disks": sorted(disks, key=by_userdevice),
            "vifs": sorted(({"device": str(v.get("device")), "mac": v.get("MAC", "")} for v in vifs),
                           key=lambda v: v["device"])}
