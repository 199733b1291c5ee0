"""Which storage manager (sm) release wrote an SMlog, told from the shape of its lines.

The GC's messages changed over the releases (sources: `xapi-project/sm` tags and `xcp-ng/sm`
branches, summed up in `shared/reference/sm-xo-landscape-2026.md` section 1). A line that only
one family of releases writes is a *marker*; the verdict names the newest family whose markers
the log shows (a log that spans an update shows both, and the host now runs the newer one),
and `unknown` when no marker line is in it.

| family | label |
|---|---|
| `legacy` | sm up to 3.0.10 (XenServer 7.x, Citrix Hypervisor 8.2, XCP-ng 8.2) |
| `sm3-4` | sm 3.0.11 to 4.1 (XenServer 8, XCP-ng 8.3) |
| `qcow2` | XCP-ng 8.3 with QCOW2 (its sm writes `COW` where others write `VHD`) |

`MARKERS` lists every marker with its family, the first release that writes it and the line
shape; markers whose family is None tell a range inside the families and are reported only.
`release_markers(record)` names the markers one event record shows (called once per event).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

UNKNOWN = "unknown"
FAMILY_ORDER = ("legacy", "sm3-4", "qcow2")  # oldest first
FAMILIES = {
    "legacy": "sm ≤ 3.0.10 (XenServer 7.x, Citrix Hypervisor 8.2, XCP-ng 8.2)",
    "sm3-4": "sm 3.0.11–4.1 (XenServer 8, XCP-ng 8.3)",
    "qcow2": "XCP-ng 8.3 with QCOW2",
}


class Marker(NamedTuple):
    family: str | None
    since: str  # the release that brought it (or the range it belongs to)
    shape: str  # the line, as the docs show it


MARKERS: dict[str, Marker] = {
    "printout-lvm-3": Marker("legacy", "sm before 3.0.11", "LVM printout without allocated size `[VHD](v/s/lv|f)`"),
    "printout-file-2": Marker("legacy", "sm before 3.0.11", "file printout without allocated size `(v/s)`"),
    "tracker-acheived": Marker(None, "sm before 3.2.6", "`Minimum size acheived was` (misspelt)"),
    "printout-lvm-4": Marker("sm3-4", "sm 3.0.11", "LVM printout with allocated size `[VHD](v/s/a/lv|f)`"),
    "printout-file-3": Marker("sm3-4", "sm 3.0.11", "file printout with allocated size `(v/s/a)`"),
    "kick-smgc": Marker("sm3-4", "sm 3.2.2", "`Kicking SMGC@<sr>...`"),
    "tracker-achieved": Marker("sm3-4", "sm 3.2.6", "`Minimum size achieved was`"),
    "sigterm-handler": Marker("sm3-4", "sm 3.2.9", "`GC: recieved SIGTERM`, `Term requested`"),
    "tracker-summary": Marker("sm3-4", "sm 3.2.10", "`Coalesce summary`, `Performed N iterations`"),
    "no-space-sr": Marker("sm3-4", "sm 3.2.11", "`Could not coalesce due to a lack of space in SR <sr>`"),
    "sm-core-exception": Marker("sm3-4", "sm 4.1.0", "exception class `sm.core.util.*`"),
    "interrupted-leaf-missing": Marker("sm3-4", "sm 4.1.5",
                                       "`_finishInterruptedCoalesceLeaf, vdi <uuid> not found, aborting`"),
    "stop-smgc": Marker("sm3-4", "sm 4.1.6", "`Stopping SMGC@<sr>...`"),
    "moving-average": Marker("sm3-4", "sm 4.1.8 (not in XCP-ng 3.2.12)", "`Calculated moving average as X`"),
    "cow-trees": Marker("qcow2", "XCP-ng QCOW2", "`(N VDIs in M COW trees)`"),
    "cow-coalesce": Marker("qcow2", "XCP-ng QCOW2", "`Running COW coalesce on`"),
    "cow-corrupted": Marker("qcow2", "XCP-ng QCOW2", "`COW image ... corrupted`"),
    "printout-lvm-cow": Marker("qcow2", "XCP-ng QCOW2", "LVM printout with a lower-case type `[vhd]`/`[qcow2]`"),
    "printout-file-cow": Marker("qcow2", "XCP-ng QCOW2", "file printout followed by `[vhd]`/`[qcow2]`"),
    "remote-coalesce": Marker("qcow2", "XCP-ng QCOW2", "`Remote coalesce for <path>`"),
    "offline-coalesce": Marker("qcow2", "XCP-ng QCOW2", "`Offline coalesce for <path>`"),
    "multi-host": Marker("qcow2", "XCP-ng QCOW2", "`Not coalesceable, chain activated more than once`"),
    "cow-exception": Marker("qcow2", "XCP-ng QCOW2", "`EXCEPTION while coalescing: ...`"),
    "tapdisk-commit": Marker("qcow2", "XCP-ng QCOW2", "tap-ctl `Commit status '<s>' (<n>/<m>)`, `Got status`"),
    "gc-running-marker": Marker("qcow2", "XCP-ng QCOW2", "`gc_running already exist for ...`"),
}

_STYLE_MARKERS = {"lvm-3": "printout-lvm-3", "file-2": "printout-file-2", "lvm-4": "printout-lvm-4",
                  "file-3": "printout-file-3", "lvm-cow": "printout-lvm-cow", "file-cow": "printout-file-cow"}
_EXCEPTION_KINDS = ("exception", "timeout", "no_progress")
# kind -> (text in the message, marker); "" = every line of the kind
_BY_KIND: dict[str, tuple[tuple[str, str], ...]] = {
    "gc_kick": (("SMGC@", "kick-smgc"),),
    "coalesce_tracker": (("achieved", "tracker-achieved"), ("acheived", "tracker-acheived"),
                         ("Coalesce summary", "tracker-summary"), ("Performed ", "tracker-summary"),
                         ("Calculated moving average", "moving-average")),
    "insufficient_space": (("lack of space in SR", "no-space-sr"),),
    "interrupted_leaf_missing": (("", "interrupted-leaf-missing"),),
    "gc_stop": (("SMGC@", "stop-smgc"), ("stop gc service", "stop-smgc"), ("SIGTERM", "sigterm-handler"),
                ("Term requested", "sigterm-handler")),
    "sr_tree": (("COW trees", "cow-trees"),),
    "coalesce_running": (("COW coalesce", "cow-coalesce"), ("Remote coalesce", "remote-coalesce"),
                         ("Offline coalesce", "offline-coalesce")),
    "chain_multi_host": (("", "multi-host"),),
    "coalesce_failed": (("EXCEPTION while coalescing", "cow-exception"),),
    "coalesce_progress": (("", "tapdisk-commit"),),
    "ignored_exception": (("gc_running already exist", "gc-running-marker"),),
    "exception": (("COW image", "cow-corrupted"),),
    "no_progress": (("COW image", "cow-corrupted"),),
}


MARKER_KINDS = frozenset(_BY_KIND) | frozenset(_EXCEPTION_KINDS)  # records of other kinds: their printout only


def release_markers(rec: dict[str, Any]) -> list[str]:
    """The markers one event record shows: its message, exception class and first printout."""
    found = []
    style = rec.get("printout_style")
    if style is not None and style in _STYLE_MARKERS:
        found.append(_STYLE_MARKERS[style])
    kind = rec["kind"]
    checks = _BY_KIND.get(kind)
    if checks:
        message = rec["message"]
        found.extend(name for text, name in checks if text in message)
    if kind in _EXCEPTION_KINDS and str(rec.get("exc_type") or "").startswith("sm."):
        found.append("sm-core-exception")
    return found


def family_of(markers: Iterable[str]) -> str:
    """The newest family among the markers; `unknown` when none has one."""
    families = {MARKERS[m].family for m in markers if m in MARKERS}
    for family in reversed(FAMILY_ORDER):
        if family in families:
            return family
    return UNKNOWN


def label(family: str) -> str:
    """The family as the verdict shows it."""
    return FAMILIES.get(family, UNKNOWN)
