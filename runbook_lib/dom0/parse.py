"""dom0's answers as records. Formats as the storage manager reads them (vhdutil.py
`_parseVHDInfo`, `getVHDInfo`; lvutil): anything else raises ParseError, one line, never a crash.

scan     {vdi uuid: {"virtual", "vhd_size", "hidden", "parent" (uuid or None)}}; a line with
         `scan-error=` is left out (the VHD could not be read)
query    {"virtual", "vhd_size", "hidden", "allocated"} (allocated: bytes of 2 MiB blocks)
lvs      {lv name: {"lv_size", "active"}}
bitmap   the block bitmap as an int (little-endian bytes; its popcount is the allocated blocks)
"""

from __future__ import annotations

import re

from runbook_lib.errors import RunbookError

MIB = 1 << 20
BLOCK = 2 * MIB
_UUID_IN = re.compile(r"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})")


class ParseError(RunbookError):
    """dom0 printed something the suite cannot read: that VDI keeps its XenAPI bounds."""


def _uuid_of(name: str) -> str | None:
    match = _UUID_IN.search(name or "")
    return match.group(1) if match else None


def _int(value: str, what: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ParseError(f"{what} is not a number: {str(value)[:40]!r}") from None
    if number < 0:
        raise ParseError(f"{what} is negative: {number}")
    return number


def _scan_line(line: str) -> tuple[str, dict] | None:
    fields = dict(part.split("=", 1) for part in line.split() if "=" in part)
    if "vhd" not in fields:
        return None
    uuid = _uuid_of(fields["vhd"])
    if uuid is None:
        raise ParseError(f"scan line without a VDI uuid: {line[:80]!r}")
    if "scan-error" in fields:
        return None
    parent = fields.get("parent", "none")
    return uuid, {"virtual": _int(fields.get("capacity"), "scan capacity"),
                  "vhd_size": _int(fields.get("size"), "scan size"),
                  "hidden": fields.get("hidden") == "1",
                  "parent": None if parent == "none" else _uuid_of(parent)}


def scan(text: str) -> dict[str, dict]:
    """`vhd-util scan -f -m VHD-* -l VG`: one `key=value` line per VHD LV."""
    out = {}
    for line in (text or "").splitlines():
        if not line.strip():
            continue
        parsed = _scan_line(line)
        if parsed:
            out[parsed[0]] = parsed[1]
    return out


def query(text: str) -> dict[str, int | bool]:
    """`vhd-util query --debug -vsaf`: virtual MiB, VHD bytes, `hidden: N`, allocated blocks."""
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    if len(lines) != 4 or not lines[2].startswith("hidden: "):
        raise ParseError(f"vhd-util query printed {len(lines)} lines, not the 4 it prints for -vsaf")
    return {"virtual": _int(lines[0], "virtual size") * MIB, "vhd_size": _int(lines[1], "VHD size"),
            "hidden": lines[2] == "hidden: 1", "allocated": _int(lines[3], "allocated blocks") * BLOCK}


def lvs(text: str) -> dict[str, dict]:
    """`lvs --noheadings --units b -o lv_name,lv_size,lv_attr`: name, size (`<n>B`), attributes."""
    out = {}
    for line in (text or "").splitlines():
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 3 or not parts[1].upper().endswith("B") or len(parts[2]) < 5:
            raise ParseError(f"lvs line not 'name size attr': {line.strip()[:80]!r}")
        out[parts[0]] = {"lv_size": _int(parts[1][:-1], "LV size"), "active": parts[2][4] == "a"}
    return out


def bitmap(raw: bytes) -> int:
    """`vhd-util read --debug -B`: the bitmap's raw bytes (as sm reads them, not text)."""
    if not isinstance(raw, (bytes, bytearray)):
        raise ParseError("the block bitmap did not come back as bytes")
    if not raw:
        raise ParseError("vhd-util read -B printed nothing")
    return int.from_bytes(bytes(raw), "little")
