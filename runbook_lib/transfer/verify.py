"""Is the copy the same VM as the original? Checked before anything is destroyed.

Works on identity records (plain dicts, built by `runbook_lib.xapi.operations.vm_identity`
and kept in the journal), so the same check runs against a live copy, against what the journal
remembers of an original that is already gone, and in unit tests:

    {"uuid", "name", "description", "power_state", "other_config": {..},
     "disks": [{"userdevice", "virtual_size", "vdi", "sr", "bootable", "mode"}]  (by userdevice),
     "vifs": [{"device", "mac", "network"}]  (by device), "snapshots": [uuid, ...]}
"""

from __future__ import annotations

from typing import Iterable

from runbook_lib.transfer.marks import is_mark
from runbook_lib.units import gib
from runbook_lib.xapi.operations import VIF_FILTER

# Keys the pool itself rewrites when it copies or imports a VM; they do not describe the VM.
VOLATILE_OTHER_CONFIG = frozenset({"import_task", "mac_seed", "last_shutdown_time", "last_shutdown_action",
                                   "last_shutdown_initiator", "last_shutdown_reason"})


def compare_disks(original: dict, copy: dict, *, expect_sr: str | dict | None = None) -> list[str]:
    """Disk count, virtual sizes and device order; with expect_sr, every disk must be on that SR
    (or, given {userdevice: SR uuid}, each listed disk on its SR)."""
    problems = []
    a, b = original.get("disks") or [], copy.get("disks") or []
    if len(a) != len(b):
        problems.append(f"disk count differs: original {len(a)}, copy {len(b)}")
    for da, db in zip(a, b):
        if str(da.get("userdevice")) != str(db.get("userdevice")):
            problems.append(f"device order differs: original disk at {da.get('userdevice')}, "
                            f"copy disk at {db.get('userdevice')}")
        elif int(da.get("virtual_size") or 0) != int(db.get("virtual_size") or 0):
            problems.append(f"disk {da.get('userdevice')}: virtual size {gib(da.get('virtual_size') or 0, 3)} "
                            f"on the original, {gib(db.get('virtual_size') or 0, 3)} on the copy")
        if bool(da.get("bootable")) != bool(db.get("bootable")) and "bootable" in da and "bootable" in db:
            problems.append(f"disk {da.get('userdevice')}: bootable flag differs")
    if isinstance(expect_sr, dict):  # per userdevice (live migration moves only some disks)
        for d in b:
            want = expect_sr.get(str(d.get("userdevice")))
            if want and d.get("sr") != want:
                problems.append(f"disk {d.get('userdevice')} is not on SR {want}")
    elif expect_sr:
        elsewhere = [d.get("userdevice") for d in b if d.get("sr") != expect_sr]
        if elsewhere:
            problems.append(f"disk(s) {', '.join(map(str, elsewhere))} of the copy are not on SR {expect_sr}")
    return problems


def compare_vifs(original: dict, copy: dict) -> list[str]:
    problems = []
    a = {str(v.get("device")): v for v in original.get("vifs") or []}
    b = {str(v.get("device")): v for v in copy.get("vifs") or []}
    if sorted(a) != sorted(b):
        problems.append(f"VIF devices differ: original {sorted(a)}, copy {sorted(b)}")
    for device in sorted(set(a) & set(b)):
        if (a[device].get("mac") or "").lower() != (b[device].get("mac") or "").lower():
            problems.append(f"VIF {device}: MAC {a[device].get('mac')} on the original, "
                            f"{b[device].get('mac')} on the copy")
        if a[device].get("network") != b[device].get("network"):
            problems.append(f"VIF {device}: network differs")
        for key in VIF_FILTER:  # compared where both sides say (an .xva describes less)
            if key in a[device] and key in b[device] and a[device][key] != b[device][key]:
                problems.append(f"VIF {device}: {key} is {b[device][key]!r} on the copy, "
                                f"{a[device][key]!r} on the original")
    return problems


def compare_cds(original: dict, copy: dict) -> list[str]:
    """CD drives and the ISO in each (a copy keeps the ISO: it is shared, not copied)."""
    if "cds" not in original or "cds" not in copy:
        return []
    a = {str(c.get("userdevice")): c.get("vdi") for c in original["cds"]}
    b = {str(c.get("userdevice")): c.get("vdi") for c in copy["cds"]}
    if a == b:
        return []
    return [f"CD drives differ: original {sorted(a.items())}, copy {sorted(b.items())}"]


def _describes(key: str) -> bool:
    """False for keys the pool rewrites on a copy and for the runbook's own marks."""
    return key not in VOLATILE_OTHER_CONFIG and not is_mark(key)


def compare_other_config(original: dict, copy: dict) -> list[str]:
    a = {k: v for k, v in (original.get("other_config") or {}).items() if _describes(k)}
    b = {k: v for k, v in (copy.get("other_config") or {}).items() if _describes(k)}
    if a == b:
        return []
    changed = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    return [f"other_config differs in {', '.join(changed)}"]


def verify_copy(original: dict, copy: dict, *, expect_name: str, expect_sr: str | dict | None = None,
                same_vm: bool = False) -> list[str]:
    """What must hold before the original is destroyed: disks, VIFs/MACs and the copy's name.

    same_vm: the "copy" is the original VM itself (live migration moved its disks).
    """
    problems = compare_disks(original, copy, expect_sr=expect_sr) + compare_vifs(original, copy) + \
        compare_cds(original, copy)
    if copy.get("name") != expect_name:
        problems.append(f"the copy is named {copy.get('name')!r}, expected {expect_name!r}")
    if not same_vm and copy.get("uuid") and copy.get("uuid") == original.get("uuid"):
        problems.append("the copy is the original itself")
    return problems


def verify_round_trip(original: dict, final: dict, *, expect_sr: str | dict | None = None,
                      checks: Iterable[str] = ("name", "description", "disks", "vifs", "other_config",
                                               "power_state")) -> list[str]:
    """What must hold at the end: the VM is the one the admin had, on its own SR."""
    checks = set(checks)
    problems: list[str] = []
    if "name" in checks and final.get("name") != original.get("name"):
        problems.append(f"name is {final.get('name')!r}, was {original.get('name')!r}")
    if "description" in checks and (final.get("description") or "") != (original.get("description") or ""):
        problems.append("description differs from the original's")
    if "disks" in checks:
        problems += compare_disks(original, final, expect_sr=expect_sr)
    if "vifs" in checks:
        problems += compare_vifs(original, final) + compare_cds(original, final)
    if "other_config" in checks:
        problems += compare_other_config(original, final)
    if "power_state" in checks and final.get("power_state") != original.get("power_state"):
        problems.append(f"power state is {final.get('power_state')}, was {original.get('power_state')}")
    return problems
