"""The package list of a host status report (xen-bugtool's `bug-report-<time>/rpm-qa.out`).

xen-bugtool (xenserver/status-report) writes `rpm -qa`'s output, one `name-version-release.arch`
per line, as `rpm-qa.out` in the report's folder. `read_packages(path)` reads it from a
status-report archive (.tar, .tar.gz, .tar.bz2, .tar.xz, .zip; the same files the SMlog
reader takes) and returns {name: "version-release"}; a report holding several hosts' folders
gives the first host's (by folder name) and says so in `PackageList.hosts`.
Anything else (a plain file, an archive without the list) gives an empty list, never an error:
the package list is a bonus beside the SMlog.
"""

from __future__ import annotations

import tarfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from runbook_lib.sm_version import split_package

LIST_NAME = "rpm-qa.out"
MAX_LIST = 16 << 20  # bytes: a package list is ~100 KB; more is not one


@dataclass
class PackageList:
    path: str                                   # archive!member it was read from ("" when none)
    packages: dict[str, str] = field(default_factory=dict)   # name -> "version-release"
    hosts: list[str] = field(default_factory=list)           # folders that held a list


def parse_packages(text: str) -> dict[str, str]:
    """{name: "version-release"} from `rpm -qa` lines (the first of a name wins)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or " " in line:
            continue
        name, ver, rel = split_package(line)
        if name and ver[:1].isdigit():
            out.setdefault(name, f"{ver}-{rel}" if rel else ver)
    return out


def _members(path: Path) -> list[tuple[str, bytes]]:
    """(member name, bytes) of every rpm-qa.out in the archive, by name."""
    found = []
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                if PurePosixPath(info.filename).name == LIST_NAME and info.file_size <= MAX_LIST:
                    found.append((info.filename, zf.read(info)))
    else:
        with tarfile.open(path, "r:*") as tf:
            for member in tf:
                if member.isfile() and PurePosixPath(member.name).name == LIST_NAME and member.size <= MAX_LIST:
                    handle = tf.extractfile(member)
                    if handle is not None:
                        found.append((member.name, handle.read()))
    return sorted(found)


def read_packages(path: str | Path) -> PackageList:
    """The package list inside a status-report archive; empty when there is none."""
    path = Path(path)
    if not path.is_file():
        return PackageList("")
    try:
        members = _members(path)
    except (OSError, tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error):
        return PackageList("")  # not an archive, or a damaged one: the SMlog reader says so
    if not members:
        return PackageList("")
    name, data = members[0]
    return PackageList(f"{path}!{name}", parse_packages(data.decode("utf-8", "replace")),
                       [str(PurePosixPath(n).parent) for n, _ in members])
