"""Sizes an admin measured and passes by hand (`--vhd-size`, notebook 02's `vhd_sizes`)."""

from __future__ import annotations

from runbook_lib.errors import UsageError


def exact_size_hint(vdi: str, sr: str, option: str = "--vhd-size") -> str:
    """How an admin measures a running LVM disk's real VHD size on the host, for `vhd_sizes`."""
    return (f"vhd-util query -s -n /dev/VG_XenStorage-{sr}/VHD-{vdi}  "
            f"(bytes; pass it as {option} {vdi[:8]}=BYTES, or let --ssh ask the host)")


def _items(text: str) -> list[tuple[str, str]]:
    items = []
    for part in (p.strip() for p in str(text).split(",")):
        if not part:
            continue
        key, sep, value = part.partition("=") if "=" in part else part.partition(":")
        if not sep:
            raise UsageError(f"VHD size {part!r}: write it as VDI_UUID=BYTES")
        items.append((key, value))
    return items


def parse_vhd_sizes(text: str | dict | None) -> dict[str, int]:
    """'uuid=bytes,uuid:bytes' (uuid or a unique prefix) -> {key: bytes}; bad text is a UsageError.

    ':' is accepted because papermill cannot read a parameters line whose help holds '='.
    """
    if not text:
        return {}
    items = list(text.items()) if isinstance(text, dict) else _items(text)
    out: dict[str, int] = {}
    for key, value in items:
        try:
            number = int(str(value).strip())
        except ValueError:
            number = -1
        if number <= 0 or not str(key).strip():
            raise UsageError(f"VHD size {key}={value}: give a VDI uuid and a whole number of bytes")
        out[str(key).strip().lower()] = number
    return out


def given_sizes(sizes: dict[str, int], uuids: list[str]) -> dict[str, dict]:
    """The measured sizes by full VDI uuid; a prefix that matches no VDI or several is refused."""
    out = {}
    for key, number in sizes.items():
        hits = [u for u in uuids if u.startswith(key)]
        if len(hits) != 1:
            raise UsageError(f"VHD size for {key}: {'no' if not hits else len(hits)} VDIs match"
                             + ("" if not hits else "; give more of the uuid"))
        out[hits[0]] = {"size": number, "source": "given"}
    return out
