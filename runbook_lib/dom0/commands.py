"""The only commands the suite ever sends to dom0: a fixed allowlist of argument templates.

Every command is built here from validated parts (SR and VDI uuids by pattern; paths made by
the code from them, never taken from input) and checked again by `check` just before it is
sent: anything that does not match a template exactly is refused and never leaves the machine.
All of them only read: vhd-util scan/query/read and lvs (offline-coalesce-and-host-sizes.md).

An SSH server runs a command through the login shell of the user, so each argument is quoted
(`shlex.join`): the far side's shell only splits the line back into these arguments, and the
`VHD-*` pattern reaches vhd-util unexpanded.
"""

from __future__ import annotations

import re
import shlex

from runbook_lib.errors import RunbookError

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
VHD_UTIL = "vhd-util"
LVS = "lvs"
VG_PREFIX = "VG_XenStorage-"
LV_PREFIX = "VHD-"
SR_MOUNT = "/var/run/sr-mount/"


class CommandRefused(RunbookError):
    """A command outside the allowlist: refused before it is sent."""

    exit_code = 2


def _uuid(value: str, what: str) -> str:
    if not isinstance(value, str) or not UUID.match(value):
        raise CommandRefused(f"{what} {value!r} is not a uuid: no command is sent")
    return value


def vg_name(sr: str) -> str:
    return VG_PREFIX + _uuid(sr, "SR")


def lv_path(sr: str, vdi: str) -> str:
    """The device of a VHD LV on an LVM SR (as sm names it)."""
    return f"/dev/{vg_name(sr)}/{LV_PREFIX}{_uuid(vdi, 'VDI')}"


def file_path(sr: str, vdi: str) -> str:
    """A VHD file on a file SR's mount (ext, nfs)."""
    return f"{SR_MOUNT}{_uuid(sr, 'SR')}/{_uuid(vdi, 'VDI')}.vhd"


def scan(sr: str) -> list[str]:
    """Every VHD LV of an LVM SR: size, capacity, hidden flag, parent (works on inactive LVs)."""
    return [VHD_UTIL, "scan", "-f", "-m", "VHD-*", "-l", vg_name(sr)]


def lvs(sr: str) -> list[str]:
    """LV sizes and attributes (5th character 'a': active on this host)."""
    return [LVS, "--noheadings", "--units", "b", "-o", "lv_name,lv_size,lv_attr", vg_name(sr)]


def query(path: str) -> list[str]:
    """Virtual size (MiB), VHD size (bytes), hidden flag, allocated 2 MiB blocks."""
    return [VHD_UTIL, "query", "--debug", "-vsaf", "-n", _path(path)]


def read_bitmap(path: str) -> list[str]:
    """The block allocation bitmap, raw bytes (the GC's `vhd-blocks`, uncompressed)."""
    return [VHD_UTIL, "read", "--debug", "-B", "-n", _path(path)]


_LV_PATH = re.compile(r"^/dev/VG_XenStorage-([0-9a-f-]{36})/VHD-([0-9a-f-]{36})$")
_FILE_PATH = re.compile(r"^/var/run/sr-mount/([0-9a-f-]{36})/([0-9a-f-]{36})\.vhd$")


def _path(path: str) -> str:
    """A path the code built: an LV device or a file on an SR mount, both uuids valid."""
    for pattern in (_LV_PATH, _FILE_PATH):
        match = pattern.match(path) if isinstance(path, str) else None
        if match and UUID.match(match.group(1)) and UUID.match(match.group(2)):
            return path
    raise CommandRefused(f"path {path!r} is not an SR's VHD path: no command is sent")


TEMPLATES = (
    ("vhd-util", "scan", "-f", "-m", "VHD-*", "-l", "<vg>"),
    ("lvs", "--noheadings", "--units", "b", "-o", "lv_name,lv_size,lv_attr", "<vg>"),
    ("vhd-util", "query", "--debug", "-vsaf", "-n", "<path>"),
    ("vhd-util", "read", "--debug", "-B", "-n", "<path>"),
)


def _matches(argv: list[str], template: tuple[str, ...]) -> bool:
    if len(argv) != len(template):
        return False
    for arg, want in zip(argv, template):
        if want == "<vg>":
            if not (isinstance(arg, str) and arg.startswith(VG_PREFIX) and UUID.match(arg[len(VG_PREFIX):])):
                return False
        elif want == "<path>":
            try:
                _path(arg)
            except CommandRefused:
                return False
        elif arg != want:
            return False
    return True


def check(argv: list[str]) -> list[str]:
    """The argv itself if it matches a template of the allowlist exactly, else CommandRefused."""
    if isinstance(argv, (list, tuple)) and any(_matches(list(argv), t) for t in TEMPLATES):
        return list(argv)
    shown = " ".join(map(str, argv)) if isinstance(argv, (list, tuple)) else repr(argv)
    raise CommandRefused(f"not on the dom0 allowlist, refused before sending: {shown[:120]}")


def command_line(argv: list[str]) -> str:
    """The checked argv, quoted for the far side's shell to split back exactly."""
    return shlex.join(check(argv))
