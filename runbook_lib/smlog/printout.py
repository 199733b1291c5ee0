r"""VDI printouts inside GC messages -> sizes in bytes and flags.

The GC names a VDI by the first 8 hex digits of its UUID followed by its sizes, in one of
these shapes (the sizes are 1024-based with a G/M/K/T suffix, a plain byte count, or `?`/empty
when unknown):

| shape | fields |
|---|---|
| `67558d6a[VHD](2020.000G//2023.953G\|ao)` | virtual / size / LV size \| flags (older LVM) |
| `*85ff84a8[VHD](65.000G///33.836G\|n)` | virtual / size / allocated / LV size \| flags (LVM) |
| `85ff84a8(65.000G/33.836G/30.000G)` | virtual / size / allocated (file SR, no flags) |

A leading `*` marks a hidden (internal chain) node; flags: `a` active, `o` open, `n` inactive.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PRINTOUT_RE = re.compile(
    r"(?P<hidden>\*)?(?P<uuid8>[0-9a-f]{8})(?:\[(?P<type>[A-Za-z0-9]+)\])?\((?P<body>[^()\s]*)\)"
)
_SIZE_RE = re.compile(r"^(?P<num>\d+(?:\.\d+)?)(?P<unit>[KMGTP]?)(?:i?B)?$", re.IGNORECASE)
_UNITS = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40, "P": 1 << 50}


@dataclass(frozen=True)
class Printout:
    """One VDI as the GC printed it; sizes in bytes, None when the log does not say."""

    uuid8: str
    hidden: bool
    vdi_type: str | None
    virtual_size: int | None
    size: int | None
    allocated: int | None
    lv_size: int | None
    flags: str | None
    text: str


def parse_size(text: str) -> int | None:
    """`2023.953G` -> bytes (1024-based); `?`, empty or malformed -> None."""
    text = text.strip()
    if not text:
        return None
    unit = _UNITS.get(text[-1].upper())
    number = text[:-1] if unit else text
    if number[:1].isdigit() and number.isascii() and number.replace(".", "", 1).isdigit():
        return round(float(number) * (unit or 1))  # the common case, without a regex
    m = _SIZE_RE.match(text)  # rarer spellings: `12GiB`, `3.5kB`
    return round(float(m.group("num")) * _UNITS.get(m.group("unit").upper(), 1)) if m else None


def _fields(body: str) -> tuple[list[str], str | None]:
    sizes, sep, flags = body.partition("|")
    return sizes.split("/"), (flags if sep else None)


def parse_printout(text: str) -> Printout | None:
    """The first printout in `text`, or None when there is none."""
    m = PRINTOUT_RE.search(text)
    return _from_match(m) if m else None


def find_printouts(text: str) -> list[Printout]:
    """Every printout in `text`, in order (`Leaf-coalescing A -> B` holds two)."""
    return [p for p in (_from_match(m) for m in PRINTOUT_RE.finditer(text)) if p is not None]


def _from_match(m: re.Match) -> Printout | None:
    body = m.group("body")
    if "/" not in body and "|" not in body:
        return None  # `deadbeef(x)` in ordinary prose is not a printout
    fields, flags = _fields(body)
    virtual = size = allocated = lv = None
    values = [parse_size(f) for f in fields]
    if flags is not None:  # LVM SR: the last field is the LV size
        if len(values) >= 4:
            virtual, size, allocated, lv = values[:4]
        elif len(values) == 3:
            virtual, size, lv = values
        elif len(values) == 2:
            virtual, lv = values
        else:
            virtual = values[0]
    else:  # file SR
        values += [None] * (3 - len(values))
        virtual, size, allocated = values[:3]
    return Printout(
        uuid8=m.group("uuid8"),
        hidden=bool(m.group("hidden")),
        vdi_type=m.group("type"),
        virtual_size=virtual,
        size=size,
        allocated=allocated,
        lv_size=lv,
        flags=flags or None,
        text=m.group(0),
    )
