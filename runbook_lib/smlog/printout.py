r"""VDI printouts inside GC messages -> sizes in bytes, flags and image format.

The GC names a VDI by the first 8 hex digits of its UUID followed by its sizes, in one of
these shapes (the sizes are 1024-based with a G/M/K/T suffix, a plain byte count, or `?`/empty
when unknown):

| shape | fields | style |
|---|---|---|
| `67558d6a[VHD](2020.000G//2023.953G\|ao)` | virtual / size / LV size \| flags (LVM, sm before 3.0.11) | `lvm-3` |
| `*85ff84a8[VHD](65.000G///33.836G\|n)` | virtual / size / allocated / LV size \| flags (LVM) | `lvm-4` |
| `*85ff84a8[qcow2](65.000G/3.1G/3.0G/34.0G\|n)` | the same, lower-case type (XCP-ng 8.3 with QCOW2) | `lvm-cow` |
| `85ff84a8(65.000G/33.836G)` | virtual / size (file SR, sm before 3.0.11) | `file-2` |
| `85ff84a8(65.000G/33.836G/30.000G)` | virtual / size / allocated (file SR, no flags) | `file-3` |
| `85ff84a8(65.000G/33.836G/30.000G)[qcow2]` | the same, image type after it (XCP-ng 8.3 with QCOW2) | `file-cow` |

The GC glues a `?` for an unknown size to its neighbour (`(2.000G/170.336M?)`: allocated
unknown); `[RAW]` after a file printout marks a raw VDI. A leading `*` marks a hidden
(internal chain) node; flags: `a` active, `o` open, `n` inactive.

`format` is the image format shown: `vhd` (`[VHD]`, `[vhd]`, or a file printout without a
type), `qcow2`, `raw` (`[RAW]`, `[aio]`), else the tag in lower case. `style` (last column)
helps tell the storage manager's release (`families.py`); `lvm` and `file` when the shape
does not say (raw VDIs, unknown sizes).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PRINTOUT_RE = re.compile(
    r"(?P<hidden>\*)?(?P<uuid8>[0-9a-f]{8})(?:\[(?P<type>[A-Za-z0-9]+)\])?\((?P<body>[^()\s]*)\)"
    r"(?:\[(?P<suffix>[A-Za-z0-9]+)\])?"
)
_SIZE_RE = re.compile(r"^(?P<num>\d+(?:\.\d+)?)(?P<unit>[KMGTP]?)(?:i?B)?$", re.IGNORECASE)
_UNITS = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40, "P": 1 << 50}
_FORMATS = {"vhd": "vhd", "qcow2": "qcow2", "raw": "raw", "aio": "raw"}
_SUFFIXES = {"RAW", "vhd", "qcow2", "aio"}  # what may follow a file printout
_GLUED_UNKNOWN_RE = re.compile(r"(?<=[^/|])\?")  # `170.336M?`: a size, then an unknown one


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
    format: str | None = None
    style: str | None = None


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
    if "?" in sizes:
        sizes = _GLUED_UNKNOWN_RE.sub("/?", sizes)
    return sizes.split("/"), (flags if sep else None)


def _format_and_style(tag: str | None, suffix: str | None, body: str, lvm: bool) -> tuple[str | None, str]:
    """The image format a printout shows, and the name of its shape (module docstring)."""
    kind = tag or suffix
    fmt = _FORMATS.get(kind.lower(), kind.lower()) if kind else (None if lvm else "vhd")
    if kind and kind.islower():
        return fmt, "lvm-cow" if lvm else "file-cow"
    slashes = body.partition("|")[0].count("/")
    if lvm:
        return fmt, {2: "lvm-3", 3: "lvm-4"}.get(slashes, "lvm")
    if fmt != "raw" and "?" not in body:
        return fmt, {1: "file-2", 2: "file-3"}.get(slashes, "file")
    return fmt, "file"


def parse_printout(text: str) -> Printout | None:
    """The first printout in `text`, or None when there is none."""
    m = PRINTOUT_RE.search(text)
    return _from_match(m) if m else None


def find_printouts(text: str) -> list[Printout]:
    """Every printout in `text`, in order (`Leaf-coalescing A -> B` holds two)."""
    return [p for p in (_from_match(m) for m in PRINTOUT_RE.finditer(text)) if p is not None]


_SEEN: dict[str, Printout | None] = {}  # a log prints the same VDI the same way run after run


def _from_match(m: re.Match) -> Printout | None:
    text = m.group(0)
    hit = _SEEN.get(text)
    if hit is not None or text in _SEEN:
        return hit
    if len(_SEEN) > 4096:
        _SEEN.clear()
    found = _SEEN[text] = _parse_match(m)
    return found


def _parse_match(m: re.Match) -> Printout | None:
    body = m.group("body")
    suffix = m.group("suffix")
    if "/" not in body and "|" not in body and not (suffix in _SUFFIXES and parse_size(body.rstrip("?"))):
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
    tag = m.group("type")
    fmt, style = _format_and_style(tag, suffix, body, flags is not None)
    return Printout(
        uuid8=m.group("uuid8"),
        hidden=bool(m.group("hidden")),
        vdi_type=tag or suffix,
        virtual_size=virtual,
        size=size,
        allocated=allocated,
        lv_size=lv,
        flags=flags or None,
        text=m.group(0),
        format=fmt,
        style=style,
    )
