"""The byte-level pass over a chunk of complete lines: count them, pick the few worth parsing.

This is the hot loop of SMlog reading, so it works on raw bytes with C-speed primitives only
(`bytes.count`, `bytes.find`, compiled regexes over the whole chunk) and never touches the
bulk `SM:` traffic line by line. A line is picked when it

- carries ident `SMGC` (the garbage collector: every line may matter),
- is an `SM:` line whose message starts like an event (`_SM_EVENT_STARTS`: `Kicking`, `sr_scan`,
  `vdi_delete`, `Raising`, `Ignoring`, `*`, `lock: tried`, `Could not`, `Starting asynch`, and
  the GC's own lines written with ident SM: `Stopping SMGC@`, `Failed to stop gc service`,
  `GC: recieved SIGTERM`, `Calculated moving average`, `Coalesce failed on`, `Failed to lock`,
  and XCP-ng's QCOW2 lines `Remote coalesce for`, `Offline coalesce for`, `Not coalesceable`,
  `EXCEPTION while coalescing`, `gc_running already exist`, `Got status`, `Tapdisk`,
  `Commit status`; one regex pass tries them at every `] `, with a branch of its own only for
  the starts whose first character bulk lines share, so a bulk line fails after three tests), or
- has no syslog/ISO prefix (pasted excerpts, garbage: parsed to tell bare `[pid] msg` lines
  from unparseable ones). That search is skipped when the ` SM: [` and `SMGC: [` idents
  account for every line of the chunk, as they do in a real /var/log/SMlog (a line would have
  to lack its prefix *and* another carry two idents to be missed).

Picked lines are parsed here (in the worker, when there are workers).
The first and last line of each chunk are picked too, unflagged, for the time range and the
year rollover. Full UUIDs named in `'vdi_uuid': '...'`/`'sr_uuid': '...'` (any `_uuid`) fields of the
driver's calls are collected so short ids can be linked without parsing those lines.

`scan_range` does the same for a byte range of a plain file, aligned to whole lines, so worker
processes can scan parts of one big file in parallel.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from runbook_lib.smlog.parse import CONFORMING_START_BYTES_RE, NONCONFORMING_BYTES_RE, ParsedLine, parse_line

_GC_IDENT = b"SMGC: ["
_SM_EVENT_STARTS = (
    "Kicking", "sr_scan", "vdi_delete", "Raising", "Ignoring", "*", "lock: tried", "Could not", "Starting asynch",
    "Stopping SMGC@", "Failed to stop gc", "GC: rec", "Calculated moving", "Coalesce failed on", "Failed to lock",
    "Remote coalesce", "Offline coalesce", "Not coalesceable", "EXCEPTION while", "gc_running", "Got status",
    "Tapdisk", "Commit status",
)


_FREQUENT_FIRST = "lv"  # `lock: ...`, `vdi_...`: with `[` and ` ` the first characters of most SM messages


def _starts_pattern(starts: tuple[str, ...]) -> bytes:
    """`] ` then one of `starts`, tried cheaply on every SM line: the starts of frequent first
    characters have their own branches; all others share one branch that consumes the first
    character unchecked, so a bulk line fails after three tests. `_SM_EVENT_PREFIXES` checks the
    first character of each match."""
    def grouped(items: list[str]) -> str:
        by_first: dict[str, list[str]] = {}
        for item in items:
            by_first.setdefault(item[0], []).append(re.escape(item[1:]))
        return "|".join(re.escape(first) + ("(?:" + "|".join(rest) + ")" if any(rest) else "")
                        for first, rest in by_first.items())

    own = [s for s in starts if s[0] in _FREQUENT_FIRST or s == "*"]
    shared = [s[1:] for s in starts if s not in own]
    skip = re.escape("[ *" + _FREQUENT_FIRST)
    return f"\\] (?:{grouped(own)}|[^{skip}](?:{grouped(shared)}))".encode()


_SM_EVENT_RE = re.compile(_starts_pattern(_SM_EVENT_STARTS))
_SM_EVENT_PREFIXES = tuple(s.encode() for s in _SM_EVENT_STARTS)
_SM_IDENT = b" SM: ["
_UUID_FIELD_RE = re.compile(rb"_uuid': '([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})'")
READ_STEP = 1 << 20


@dataclass
class ChunkScan:
    """What one chunk holds: its line count, the picked lines, UUIDs seen in driver calls."""

    lines: int
    # (0-based line index in the chunk, the parsed line or None, flagged as worth an event);
    # syslog times carry year offset 0: the reader numbers years in file order
    picks: list[tuple[int, ParsedLine | None, bool]]
    nonconforming: int  # picked lines without a syslog/ISO prefix (parsed to decide)
    uuids: set[bytes]
    long_lines: int = 0  # lines over the length limit, counted and skipped


def scan_chunk(buf: bytes, end: int | None = None) -> ChunkScan:
    """Scan buf[:end] (complete lines; the last may lack its newline)."""
    end = len(buf) if end is None else end
    if end <= 0:
        return ChunkScan(0, [], 0, set())
    flagged: set[int] = set()
    rfind, find = buf.rfind, buf.find
    n_gc = 0
    i = find(_GC_IDENT, 0, end)
    while i >= 0:
        n_gc += 1
        flagged.add(rfind(b"\n", 0, i) + 1)
        e = find(b"\n", i, end)
        if e < 0:
            break
        i = find(_GC_IDENT, e, end)
    starts_with = buf.startswith
    for m in _SM_EVENT_RE.finditer(buf, 0, end):
        if starts_with(_SM_EVENT_PREFIXES, m.start() + 2):
            flagged.add(rfind(b"\n", 0, m.start()) + 1)
    uuids = set(_UUID_FIELD_RE.findall(buf, 0, end))
    lines, picks = _pick(buf, end, flagged)
    # Lines without a syslog/ISO prefix must be parsed to be counted right. A pure SMlog has
    # ident SM or SMGC on every line: when the idents account for every line, skip the search.
    extra = set() if CONFORMING_START_BYTES_RE.match(buf, 0, end) else {0}
    if n_gc + buf.count(_SM_IDENT, 0, end) < lines - len(extra):
        extra.update(m.start() + 1 for m in NONCONFORMING_BYTES_RE.finditer(buf, 0, end - 1))
    if extra - flagged:
        lines, picks = _pick(buf, end, flagged | extra)
    nonconforming = len(extra)
    return ChunkScan(lines, picks, nonconforming, uuids)


def _pick(buf: bytes, end: int, flagged: set[int]) -> tuple[int, list]:
    """(line count, picks): the flagged lines parsed, plus the first and last line unflagged."""
    count, find = buf.count, buf.find
    last_start = buf.rfind(b"\n", 0, end - 1) + 1
    picks = []
    index = 0
    prev = 0
    for s in sorted(flagged | {0, last_start}):
        index += count(b"\n", prev, s)
        prev = s
        e = find(b"\n", s, end)
        raw = buf[s:e if e >= 0 else end]
        picks.append((index, parse_line(raw.decode("utf-8", "replace").replace("\x00", "\ufffd")), s in flagged))
    lines = index + count(b"\n", prev, end) + (0 if buf[end - 1] == 10 else 1)
    return lines, picks


def plan_ranges(size: int, step: int) -> list[tuple[int, int]]:
    return [(start, min(start + step, size)) for start in range(0, size, step)]


def scan_range(path: str, start: int, stop: int, max_line: int) -> ChunkScan:
    """Scan the lines of a plain file that *start* in [start, stop).

    A line running past `stop` is read to its end (up to `max_line` bytes; beyond that it is
    counted and skipped, as the serial reader does); a range that starts mid-line skips to
    the next line, which the previous range owns.
    """
    with open(path, "rb") as fh:
        head_skip = False
        if start > 0:
            fh.seek(start - 1)
            head_skip = fh.read(1) != b"\n"
        body = fh.read(stop - start)
        if head_skip:
            cut = body.find(b"\n")
            if cut < 0:
                return ChunkScan(0, [], 0, set())
            body = body[cut + 1:]
        long_lines = 0
        if body and body[-1:] != b"\n":
            keep = body.rfind(b"\n") + 1
            length = len(body) - keep  # of the last line so far
            tail = []
            while length <= max_line:
                piece = fh.read(READ_STEP)
                if not piece:
                    break
                cut = piece.find(b"\n")
                if cut >= 0:
                    tail.append(piece[:cut + 1])
                    length += cut
                    break
                tail.append(piece)
                length += len(piece)
            if length > max_line:  # the last line is absurdly long: count it, do not hold it
                body, tail, long_lines = body[:keep], [], 1
            body = body + b"".join(tail) if tail else body
    scan = scan_chunk(body)
    scan.lines += long_lines
    scan.long_lines = long_lines
    return scan
