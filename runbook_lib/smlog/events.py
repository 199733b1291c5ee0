"""SMlog messages -> events of a fixed vocabulary, with multi-line blocks folded per pid.

`kind` vocabulary (the `kind` column of `SMlogRead.records`, the keys of `events` in JSON):

| kind | message (ident SMGC unless noted) |
|---|---|
| `gc_start` | `=== SR <uuid>: gc ===` (also `gc_force`) |
| `gc_abort` | `=== SR <uuid>: abort ===` |
| `gc_kick` | SM: `Kicking SMGC@<sr>...` (sm 3.2.2 and later), `Kicking GC` |
| `gc_stop` | SM: `Stopping SMGC@<sr>...`, `Failed to stop gc service ...`, `GC: recieved SIGTERM`; `Term requested`, `Aborted` (the GC was told to stop) |
| `gc_error` | `* * * * * SR <uuid>: ERROR` (the GC process itself failed; follows `gc: EXCEPTION ...`) |
| `gc_already_running` | `Another GC instance already active, exiting`, `Unable to acquire GC running lock.` (benign) |
| `gc_quiet_period` | `GC active, about to go quiet`, `GC active, quiet period ended` |
| `gc_exit` | `GC process exiting, no work left`, `No work, exiting`, `In cleanup` |
| `sr_tree` | `SR <sr8> ('<name>') (<n> VDIs in <m> VHD trees): ...` (`COW trees` with QCOW2); the indented tree lines that follow are folded into its `tree` field |
| `garbage_found` | `Found <n> VDIs for deletion:`; the printouts that follow are folded into its `tree` field |
| `vdi_delete` | `Deleting unlinked VDI ...`; SM: `vdi_delete {...}` |
| `coalesce_candidate` | `... is coalescable`, `Coalesce candidate: ...`, `Leaf-coalesce candidate: ...` |
| `coalesce_start` | `Coalescing X -> Y`, `Coalescing parent T` (a snapshot-coalesce round) |
| `coalesce_running` | `  Running VHD coalesce on X`, `  Running COW coalesce on X`; SM: `Remote coalesce for <path>`, `Offline coalesce for <path>` (QCOW2) |
| `coalesce_progress` | tap-ctl `Commit status '<s>' (<n>/<m>)`, SM: `Got status <s> for tapdisk ...`, `Tapdisk <pid> (m: <minor>) coalesce status undefined ...` (QCOW2 coalesce through tapdisk) |
| `coalesce_done` | `Coalesced size = ...` (its `coalesced_size`), `==> Coalesce apparently already done: skipping` |
| `coalesce_failed` | `Coalesce failed, skipping` / `Coalesce failed on X`; SM: `Coalesce failed on <vdi>, attempting repair on parent ...`, `Coalesce failed on SR <sr>: <error> (...)`, `EXCEPTION while coalescing: ...` (QCOW2) |
| `chain_multi_host` | SM: `Not coalesceable, chain activated more than once` (QCOW2: the chain is attached on two hosts) |
| `coalesce_tracker` | the snapshot-coalesce tracker: `Iteration: N -- Initial size A --> Final size B`, `No progress, attempt: N`, `Coalesce summary`, `Performed N iterations`, `Starting size was N`, `Final size was N`, `Minimum size achieved was N` (`acheived` before sm 3.2.6), SM: `Calculated moving average as X` (sm 4.1.8 and later), and its reasons `Max iterations (N) exceeded`, `No progress made for N iterations`, `Unexpected bump in size, compared to minimum achieved` |
| `coalesce_aborted` | `Aborted coalesce`: the tracker gave up (the leaf is written faster than snapshot-coalesce merges it) |
| `leaf_coalesce_start` | `Leaf-coalescing X -> Y` |
| `leaf_coalesce_done` | `*** FINISH LEAF-COALESCE`, `*** finished leaf-coalesce successfully` |
| `leaf_coalesce_failed` | `Leaf-coalesce failed[ on X], skipping` |
| `leaf_coalesce_config` | `Set leaf-coalesce = ...`, `Removed leaf-coalesce from X`, `Leaf-coalesce disabled for X` |
| `no_progress` | `VDI <uuid> could not be coalesced`, alone or as the message of an exception block (then folded like `exception`) |
| `interrupted_leaf_missing` | `_finishInterruptedCoalesceLeaf, vdi <uuid> not found, aborting` (sm 4.1.5 and later) |
| `timeout` | an exception block whose message is `Timed out` (folded like `exception`) |
| `insufficient_space` | `No space to [leaf-]coalesce X (free space: N)`; SM: `Could not coalesce due to a lack of space in SR <uuid>` (sm 3.2.11 and later), `Raising exception [44, There is insufficient space]` |
| `relink` | `Relinking X from Y to Z` |
| `exception` | an exception block: banner + `<context>: EXCEPTION <type>, <message>` + traceback, one record; SM: `Raising exception [<code>, <text>]`. `<type>` is `util.X`, `sm.core.util.X` (sm 4.1) or `<class '...'>` around either |
| `ignored_exception` | SM: `Ignoring exception for LV check: ...` (cbtlog noise), `gc_running already exist for ... Ignoring...` (QCOW2); benign |
| `lock_contention` | SM: `lock: tried lock ..., acquired: False`, `Failed to lock <path> on first attempt, blocked by PID N` (benign unless it never resolves) |
| `sr_scan` | SM: `sr_scan {...}`; `Starting asynch srUpdate for SR <uuid>` |
| `other` | a GC line (or a picked `SM:` line) that is no event; counted, not kept. The bulk `SM:` traffic is never parsed, so it is not in this count |

Every record carries the SR and VDI it is about: taken from the message when it names them,
otherwise from what the same pid is working on (a GC process works on one SR at a time, and the
exception block and `Leaf-coalesce failed, skipping` do not repeat the VDI): the VDI of its
last `Coalescing`/`Leaf-coalescing`/`Running ... coalesce` line until it moves on (the tracker
lines go to the leaf being leaf-coalesced), else the VDI it last named.

`EventBuilder.markers` counts the lines that tell the storage manager's release (`families.py`)
per host, with the first place each was seen.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from runbook_lib.smlog.families import MARKER_KINDS, release_markers
from runbook_lib.smlog.parse import ParsedLine
from runbook_lib.smlog.printout import PRINTOUT_RE, find_printouts, parse_printout, parse_size

KINDS = (
    "gc_start", "gc_abort", "gc_kick", "gc_stop", "gc_error", "gc_already_running", "gc_quiet_period", "gc_exit",
    "sr_tree", "garbage_found", "vdi_delete", "coalesce_candidate", "coalesce_start", "coalesce_running",
    "coalesce_progress", "coalesce_done", "coalesce_failed", "chain_multi_host", "coalesce_tracker",
    "coalesce_aborted", "leaf_coalesce_start", "leaf_coalesce_done", "leaf_coalesce_failed", "leaf_coalesce_config",
    "no_progress", "interrupted_leaf_missing", "timeout", "insufficient_space", "relink", "exception",
    "ignored_exception", "lock_contention", "sr_scan", "other",
)
MAX_MESSAGE = 2000
MAX_TRACEBACK_LINES = 200

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
UUID_RE = re.compile(UUID)
_GC_RUN_RE = re.compile(r"^=== SR (?P<sr>\S+): (?P<what>\w+) ===")
SR_TREE_RE = re.compile(
    r"^SR (?P<sr>[0-9a-f-]+) \('(?P<name>.*)'\) \((?P<vdis>\d+) VDIs in (?P<trees>\d+) (?:VHD|COW) trees\):? ?"
    r"(?P<rest>.*)$"
)
_SR_IN_MSG_RE = re.compile(
    rf"(?:SMGC@|'sr_uuid': '|/var/lock/sm/|/VG_XenStorage-|/sr-mount/|(?:for|in|on) SR |\* SR )(?P<sr>{UUID})"
)
_VDI_IN_MSG_RE = re.compile(
    rf"(?:'vdi_uuid': '|VDI |VHD |vdi |failed on |/VHD-|/LV-|/QCOW2-|/sr-mount/{UUID}/)(?P<vdi>{UUID})"
)
_COALESCED_RE = re.compile(r"Coalesced size = (?P<size>\S+)")
_EXC_RE = re.compile(r"^(?P<ctx>.*?):?\s*EXCEPTION (?P<type>.+?), (?P<msg>.*)$")
_EXC_CLASS_RE = re.compile(r"^<(?:class|type) '(?P<name>[^']+)'>$")
_RAISING_RE = re.compile(r"Raising exception \[(?P<code>\d+), (?P<text>.*?)\]?$")
_FREE_RE = re.compile(r"free space: (?P<free>\d+)")
_TREE_LINE_RE = re.compile(r"^\s*\*?[0-9a-f]{8}(?:\[[A-Za-z0-9]+\])?\(")
_BANNER_OPEN_RE = re.compile(r"^\*~(?:\*~)+\*?$")
_STARS_RE = re.compile(r"^\*{5,}$")


def classify(message: str, process: str | None = None) -> str:
    """The event kind of one message (the multi-line folding is `EventBuilder`'s job).

    `process` (the ident) is accepted for callers that have it; the messages are distinct
    enough that the kind does not depend on it.
    """
    m = message.strip()
    if not m:
        return "other"
    c = m[0]
    if c == "=":
        return _classify_run_line(m)
    if c == "*":
        if "FINISH LEAF-COALESCE" in m or "finished leaf-coalesce successfully" in m:
            return "leaf_coalesce_done"
        if m.startswith("* * * * * SR ") and m.endswith("ERROR"):
            return "gc_error"
        if "EXCEPTION " in m:
            return "exception"
        return "other"
    if c == "S" and m.startswith("SR ") and " trees)" in m and SR_TREE_RE.match(m):
        return "sr_tree"
    kind = _classify_by_prefix(m, c)
    if kind is not None:
        return kind
    if "lack of space" in m:
        return "insufficient_space"
    if m.endswith("is coalescable"):
        return "coalesce_candidate"
    if "EXCEPTION " in m and _EXC_RE.match(m):
        return "exception"  # `VDI <uuid> could not be coalesced` inside one is sorted out when folded
    if "could not be coalesced" in m and UUID_RE.search(m):  # not the `raise` line of a traceback
        return "no_progress"
    if "Commit status '" in m:
        return "coalesce_progress"
    return "other"


def _classify_run_line(m: str) -> str:
    """`=== SR <uuid>: gc|abort ===` and `==> Coalesce apparently already done`."""
    if m.startswith("=== SR "):
        run = _GC_RUN_RE.match(m)
        if run:
            return "gc_abort" if run.group("what") == "abort" else "gc_start"
    if "Coalesce apparently already done" in m:
        return "coalesce_done"
    return "other"


def _classify_by_prefix(m: str, c: str) -> str | None:
    """The kind `_PREFIXES` gives the message (`c`: its first character); None when no prefix fits."""
    for prefixes, kind in _BY_FIRST.get(c, ()):
        if m.startswith(prefixes):
            if kind == "?found":
                return "garbage_found" if "for deletion" in m else "other"
            if kind == "?lock":
                return "lock_contention" if "acquired: False" in m else "other"
            if kind == "?raise":
                return "insufficient_space" if "insufficient space" in m else "exception"
            if kind == "?stop":
                return "gc_stop" if m == "Aborted" or not m.startswith("Aborted") else "other"
            if kind == "?tapdisk":
                return "coalesce_progress" if "coalesce status" in m else "other"
            return kind
    return None


# Message starts -> kind, looked up by first character (classify runs on every GC line).
_PREFIXES = [
    (("Leaf-coalescing ",), "leaf_coalesce_start"),
    (("Coalescing ",), "coalesce_start"),
    (("Leaf-coalesce failed",), "leaf_coalesce_failed"),
    (("Coalesce failed", "EXCEPTION while coalescing"), "coalesce_failed"),
    (("Running VHD coalesce", "Running COW coalesce", "Remote coalesce for", "Offline coalesce for"),
     "coalesce_running"),
    (("Not coalesceable, chain activated",), "chain_multi_host"),
    (("Aborted coalesce",), "coalesce_aborted"),
    (("Iteration: ", "No progress, attempt", "No progress made for", "Max iterations (", "Unexpected bump in size",
      "Coalesce summary", "Performed ", "Starting size was", "Final size was", "Minimum size a",
      "Calculated moving average"), "coalesce_tracker"),
    (("_finishInterruptedCoalesceLeaf, vdi",), "interrupted_leaf_missing"),
    (("Stopping SMGC@", "Failed to stop gc service", "GC: recieved SIGTERM", "GC: received SIGTERM",
      "Term requested", "Aborted"), "?stop"),
    (("Got status ",), "coalesce_progress"),
    (("Tapdisk ",), "?tapdisk"),
    (("No space to coalesce", "No space to leaf-coalesce"), "insufficient_space"),
    (("Coalesced size", "Coalesce apparently already done"), "coalesce_done"),
    (("Leaf-coalesce candidate", "Coalesce candidate"), "coalesce_candidate"),
    (("Set leaf-coalesce", "Removed leaf-coalesce", "Leaf-coalesce disabled"), "leaf_coalesce_config"),
    (("Relinking ",), "relink"),
    (("Deleting unlinked VDI", "vdi_delete"), "vdi_delete"),
    (("Found ",), "?found"),
    (("Kicking SMGC", "Kicking GC"), "gc_kick"),
    (("Another GC instance already active", "Unable to acquire GC running lock"), "gc_already_running"),
    (("GC active, ",), "gc_quiet_period"),
    (("GC process exiting", "No work, exiting", "In cleanup"), "gc_exit"),
    (("Ignoring exception for LV check", "gc_running already exist"), "ignored_exception"),
    (("lock: ",), "?lock"),
    (("Failed to lock ",), "lock_contention"),
    (("sr_scan", "Starting asynch srUpdate"), "sr_scan"),
    (("Raising exception",), "?raise"),
]
_BY_FIRST: dict[str, list[tuple[tuple[str, ...], str]]] = {}
for _prefixes, _kind in _PREFIXES:
    for _first in {p[0] for p in _prefixes}:
        _BY_FIRST.setdefault(_first, []).append((tuple(p for p in _prefixes if p[0] == _first), _kind))


def parse_exception_header(message: str) -> tuple[str, str, str] | None:
    """`leaf-coalesce: EXCEPTION util.SMException, Timed out` -> (type, message, context)."""
    m = _EXC_RE.match(message.strip())
    if not m:
        return None
    exc_type = m.group("type").strip()
    cls = _EXC_CLASS_RE.match(exc_type)
    if cls:
        exc_type = cls.group("name")
    context = m.group("ctx").strip().strip("*").strip()
    context = context.rsplit(":", 1)[-1].strip() if context else ""
    return exc_type, m.group("msg").strip(), context


def _sr_of(message: str, kind: str) -> str | None:
    m = _GC_RUN_RE.match(message.strip()) if kind in ("gc_start", "gc_abort") else None
    if m:
        return m.group("sr")
    m = _SR_IN_MSG_RE.search(message)
    return m.group("sr") if m else None


@dataclass
class _PidState:
    sr: str | None = None
    vdi: str | None = None  # the VDI the process last named
    op: str | None = None  # the VDI it is coalescing (its last start or running line)
    op_done: bool = False  # that coalesce logged its done line (a relink may follow)
    leaf: str | None = None  # the leaf it is leaf-coalescing (the tracker's lines are about it)
    block: dict[str, Any] | None = None  # the record being folded
    mode: str = ""  # banner | tb | tb_loose | tree
    last_was_file: bool = False


# Kinds that take the VDI the process works on when the message names none.
_CONTEXT_KINDS = frozenset({
    "leaf_coalesce_failed", "coalesce_failed", "insufficient_space", "no_progress", "leaf_coalesce_done",
    "coalesce_done", "exception", "timeout", "coalesce_running", "coalesce_progress", "chain_multi_host",
})
_TRACKER_KINDS = frozenset({"coalesce_tracker", "coalesce_aborted"})
_RUN_KINDS = frozenset({"gc_start", "sr_tree", "garbage_found", "gc_exit"})
_START_KINDS = frozenset({"coalesce_start", "leaf_coalesce_start", "coalesce_running"})


@dataclass
class EventBuilder:
    """Feeds parsed lines in file order; calls `sink(record)` for every kept event.

    Kept: every line whose kind is not `other`. Exception blocks and tree printouts become one
    record each, per pid, so interleaved processes stay apart.
    """

    sink: Callable[[dict[str, Any]], None]
    counts: dict[str, int] = field(default_factory=dict)
    uuids: set[str] = field(default_factory=set)
    # (host, marker) -> [count, file, line of the first]: the lines that tell the release (families.py)
    markers: dict[tuple, list] = field(default_factory=dict)
    _pids: dict[Any, _PidState] = field(default_factory=dict)
    _harvested: set[str] = field(default_factory=set)  # messages whose uuids are in `uuids`
    _lineno: int = 0

    def feed(self, line: ParsedLine, time: Any, file: str, lineno: int) -> None:
        self._lineno = lineno
        state = self._pids.get(line.pid)
        if state is None:
            state = self._pids[line.pid] = _PidState()
        msg = line.message
        if state.block is not None and self._continue_block(state, msg):
            return
        kind = classify(msg, line.process)
        stripped = msg.strip()
        if kind == "other":
            if _BANNER_OPEN_RE.match(stripped):  # an exception block opens
                state.block = self._new(line, time, file, lineno, "exception", state)
                state.block["message"] = ""
                state.mode = "banner"
                return
            self.counts["other"] = self.counts.get("other", 0) + 1
            return
        if msg.count("-") >= 4 and msg not in self._harvested:  # a uuid has four hyphens
            if len(self._harvested) > 8192:
                self._harvested.clear()
            self._harvested.add(msg)  # GC runs repeat the same lines: read each one once
            self.uuids.update(UUID_RE.findall(msg))
        rec = self._new(line, time, file, lineno, kind, state)
        if kind in ("exception",) and "EXCEPTION " in stripped:
            self._set_exception(rec, stripped)
            state.block, state.mode, state.last_was_file = rec, "tb_loose", False
            return
        if kind in ("exception", "insufficient_space") and stripped.startswith("Raising exception"):
            m = _RAISING_RE.search(stripped)
            if m:
                rec.update(exc_type=f"SR error {m.group('code')}", exc_message=m.group("text"), exc_context="SM")
        self._annotate(rec, stripped, kind, state)
        if kind in ("sr_tree", "garbage_found") and not stripped.endswith("no changes"):
            state.block, state.mode = rec, "tree"
            return
        self._emit(rec)

    def close(self) -> None:
        """Emit blocks still open at the end of the input (a truncated log)."""
        for state in self._pids.values():
            if state.block is not None:
                self._close_block(state)

    # -- internals -------------------------------------------------------------------------
    def _new(self, line: ParsedLine, time: Any, file: str, lineno: int, kind: str, state: _PidState) -> dict:
        return {
            "time": time, "host": line.host, "process": line.process, "pid": line.pid,
            "message": line.message.strip()[:MAX_MESSAGE], "kind": kind, "sr": state.sr, "vdi": None,
            "file": file, "line": lineno,
        }

    def _emit(self, rec: dict) -> None:
        kind = rec["kind"]
        self.counts[kind] = self.counts.get(kind, 0) + 1
        names = release_markers(rec) if kind in MARKER_KINDS or "printout_style" in rec else None
        if names:
            markers = self.markers
            for name in names:
                key = (rec["host"], name)
                seen = markers.get(key)
                if seen is None:
                    markers[key] = [1, rec["file"], rec["line"]]
                else:
                    seen[0] += 1
        self.sink(rec)

    def _set_exception(self, rec: dict, stripped: str) -> None:
        parsed = parse_exception_header(stripped)
        if parsed:
            rec["exc_type"], rec["exc_message"], rec["exc_context"] = parsed
            if parsed[1].startswith("Timed out"):
                rec["kind"] = "timeout"
            elif "could not be coalesced" in parsed[1]:
                rec["kind"] = "no_progress"  # the tracker gave up: folded, and still an exception
        if stripped.count("-") >= 4:
            self.uuids.update(UUID_RE.findall(stripped))  # a full uuid here names a VDI printed short elsewhere
        rec["message"] = stripped[:MAX_MESSAGE]
        rec["line"] = self._lineno  # evidence points at the EXCEPTION line, not the banner
        rec["traceback"] = []

    def _annotate(self, rec: dict, stripped: str, kind: str, state: _PidState) -> None:
        """Fill sr, vdi, sizes and the kind-specific fields; update the pid's context."""
        sr = None
        if kind == "sr_tree":
            m = SR_TREE_RE.match(stripped)
            sr = m.group("sr")
            rec.update(sr_name=m.group("name"), n_vdis=int(m.group("vdis")), n_trees=int(m.group("trees")), tree=[])
            state.vdi = None
        elif kind == "garbage_found":
            rec["tree"] = []
        else:
            sr = _sr_of(stripped, kind)
        if sr:
            rec["sr"] = state.sr = sr
        if kind in _RUN_KINDS:
            if kind == "gc_start":
                state.vdi = state.op = state.leaf = None
            return
        self._vdi_fields(rec, stripped, kind)
        if rec.get("vdi"):
            if kind not in ("vdi_delete", "relink"):
                state.vdi = rec["vdi"]
        elif kind in _TRACKER_KINDS:
            rec["vdi"] = state.leaf or state.op or state.vdi
        elif kind in _CONTEXT_KINDS and not stripped.startswith(("Raising", "Could not")):
            gc_wide = rec.get("exc_context") == "gc" and state.op_done  # the GC failed after its coalesce
            rec["vdi"] = None if gc_wide else (state.op or state.vdi)
        self._track_work(rec, kind, state)

    @staticmethod
    def _vdi_fields(rec: dict, stripped: str, kind: str) -> None:
        """The VDI the message names (a printout with its sizes, or a uuid) and the kind's numbers."""
        printouts = find_printouts(stripped) if "(" in stripped else []
        if printouts:
            p = printouts[0]
            rec.update(vdi=p.uuid8, hidden=p.hidden, vdi_type=p.vdi_type, virtual_size=p.virtual_size, size=p.size,
                       allocated=p.allocated, lv_size=p.lv_size, flags=p.flags, format=p.format,
                       printout_style=p.style)
            if len(printouts) > 1:
                rec["target_vdi"] = printouts[1].uuid8
        else:
            m = _VDI_IN_MSG_RE.search(stripped)
            if m:
                rec["vdi"] = m.group("vdi")
        if kind == "insufficient_space":
            m = _FREE_RE.search(stripped)
            if m:
                rec["free_space"] = int(m.group("free"))
        elif kind == "coalesce_done":
            m = _COALESCED_RE.search(stripped)
            if m:
                rec["coalesced_size"] = parse_size(m.group("size"))

    @staticmethod
    def _track_work(rec: dict, kind: str, state: _PidState) -> None:
        """Keep what the process is coalescing: its later lines that name no VDI are about it."""
        vdi = rec.get("vdi")
        if kind in _START_KINDS and vdi:
            state.op, state.op_done = vdi, False
            if kind == "leaf_coalesce_start":
                state.leaf = vdi
        elif kind in ("coalesce_done", "leaf_coalesce_done"):
            state.op_done = True
        elif kind in ("coalesce_failed", "leaf_coalesce_failed") and rec["message"].endswith("skipping"):
            state.op = None  # the GC gives this one up and moves on
            if kind == "leaf_coalesce_failed":
                state.leaf = None

    def _continue_block(self, state: _PidState, msg: str) -> bool:
        """True when `msg` belongs to the pid's open block (and was folded into it)."""
        block, stripped = state.block, msg.strip()
        if state.mode == "tree":
            if _TREE_LINE_RE.match(msg) and PRINTOUT_RE.search(msg):
                block["tree"].append(msg.rstrip())
                return True
            self._close_block(state)
            return False
        if state.mode == "banner":
            if _STARS_RE.match(stripped) or "E X C E P T I O N" in stripped or not stripped:
                return True
            if "EXCEPTION " in stripped and parse_exception_header(stripped):
                self._set_exception(block, stripped)
                state.mode = "tb"
                return True
            if _BANNER_OPEN_RE.match(stripped):
                return True
            state.block = None  # a banner without an exception: drop it, read the line normally
            return False
        if state.mode == "tb":
            if _BANNER_OPEN_RE.match(stripped):
                self._close_block(state)
                return True
            if len(block["traceback"]) >= MAX_TRACEBACK_LINES or (
                    not stripped.startswith('File "') and classify(msg) not in ("other", "exception", "timeout")):
                self._close_block(state)
                return False
            block["traceback"].append(stripped)
            return True
        # tb_loose: an EXCEPTION line without a banner; take File lines and the code line after each
        if stripped.startswith('File "') or (msg[:1].isspace() and stripped) or state.last_was_file:
            if len(block["traceback"]) < MAX_TRACEBACK_LINES and classify(msg) == "other":
                block["traceback"].append(stripped)
                state.last_was_file = stripped.startswith('File "')
                return True
        self._close_block(state)
        return False

    def _close_block(self, state: _PidState) -> None:
        block, state.block, state.mode = state.block, None, ""
        if block is None:
            return
        if "traceback" in block:
            while block["traceback"] and not block["traceback"][-1]:
                block["traceback"].pop()
            block["traceback"] = "\n".join(block["traceback"])
            if block["kind"] in ("exception", "timeout", "no_progress"):
                self._annotate(block, block["message"], block["kind"], state)
        if isinstance(block.get("tree"), list):
            if block["tree"]:
                first = parse_printout(block["tree"][0])
                block["printout_style"] = first.style if first else None
            block["tree"] = "\n".join(block["tree"])
        if block["kind"] == "exception" and "exc_type" not in block:
            return  # a banner that never named its exception
        self._emit(block)
