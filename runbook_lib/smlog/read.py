"""Open what admins have (files, rotations, directories, status-report archives) and stream it.

Memory does not grow with the log: the input is read in chunks of complete lines; a cheap
scan over each chunk's raw bytes picks the lines that can matter (ident `SMGC`, the few `SM:`
messages with an event kind, and every line without a syslog/ISO prefix) and only those are
decoded and parsed. The bulk `SM:` traffic (lock, lvchange, vdi calls) is counted, never kept.
A plain file of 64 MB or more is scanned by two worker processes (`RUNBOOK_SMLOG_WORKERS`
sets how many; 0 or 1 = none), each on whole-line byte ranges; the picked lines come back in
file order and are turned into events here, so the answer is the same either way.

Kept in `records`: events only (GC runs, coalesces, failures, exceptions with their
traceback, tree printouts with their tree). Routine events that repeat with every GC run
(`ROUTINE_KINDS`, and tree headers saying `no changes`) are kept as the first and the last of
each kind per SR. Everything is counted (`lines`, `parsed`, `unparsed`, `events`), so memory
follows the events that matter (about 1 KB each), not the size of the log.

`SMlogRead.records` columns (one row per event; see `events.py` for the `kind` vocabulary):

| column | meaning |
|---|---|
| `time` | UTC timestamp (syslog times have no zone and are taken as UTC); NaT for lines without one |
| `host`, `process`, `pid` | syslog host, ident (`SM`, `SMGC`, ...), process id |
| `message` | the message, stripped (cut at 2000 characters) |
| `kind` | event kind |
| `sr`, `vdi` | SR and VDI the event is about: the full UUID where the log shows it, else the short id as printed |
| `target_vdi` | for `X -> Y` messages: Y |
| `file`, `line` | where it is: the path (`archive!member` inside archives) and the 1-based line number |
| `exc_type`, `exc_message`, `exc_context`, `traceback` | for `exception`/`timeout`: the folded block |
| `hidden`, `vdi_type`, `virtual_size`, `size`, `allocated`, `lv_size`, `flags` | the first VDI printout of the message; sizes in bytes |
| `format` | that printout's image format: `vhd`, `qcow2`, `raw` (see `printout.py`) |
| `coalesced_size` | bytes, from `Coalesced size = ...` (the parent's size after the merge) |
| `free_space` | bytes, from `No space to ... (free space: N)` |
| `sr_name`, `n_vdis`, `n_trees`, `tree` | for `sr_tree`: the name, counts, and the folded tree lines |
"""

from __future__ import annotations

import bz2
import contextlib
import datetime as dt
import itertools
import lzma
import multiprocessing
import os
import re
import tarfile
import warnings
import zipfile
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pandas as pd

from runbook_lib.errors import InputError, UsageError
from runbook_lib.input_files import special_kind
from runbook_lib.smlog.events import EventBuilder
from runbook_lib.smlog.families import FAMILY_ORDER, MARKERS
from runbook_lib.smlog.parse import (
    MAX_YEAR,
    MIN_YEAR,
    SyslogTime,
    YearTracker,
    anchor_year,
    to_datetime,
)
from runbook_lib.smlog.scan import ChunkScan, plan_ranges, scan_chunk, scan_range
from runbook_lib.smlog.tree import link_ids

CHUNK = 8 << 20  # bytes of complete lines handed to the scanner at once
PARALLEL_MIN = 64 << 20  # plain files this big are scanned by worker processes


def _workers() -> int:
    raw = os.environ.get("RUNBOOK_SMLOG_WORKERS", "").strip()
    return int(raw) if raw.isdigit() else min(2, os.cpu_count() or 1)


WORKERS = _workers()
RAW_BLOCK = 1 << 20  # compressed bytes read at once
MAX_LINE = 32 << 20  # a line longer than this is counted unparsed and skipped, not buffered
# A file whose stat size is 0 but that has content is a /proc-style stream that may never end:
# read at most this much of it (a real SMlog that size would show its size).
ZERO_SIZE_CAP = 256 << 20

_ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tbz", ".tar.xz", ".txz", ".zip")
_SMLOG_NAME_RE = re.compile(r"(?:^|/)SMlog(?:[.-][^/]*)?$")

RECORD_COLUMNS = [
    "time", "host", "process", "pid", "message", "kind", "sr", "vdi", "target_vdi", "file", "line",
    "exc_type", "exc_message", "exc_context", "traceback", "hidden", "vdi_type", "virtual_size", "size",
    "allocated", "lv_size", "flags", "format", "coalesced_size", "free_space", "sr_name", "n_vdis", "n_trees", "tree",
]
_INT_COLUMNS = ["pid", "line", "virtual_size", "size", "allocated", "lv_size", "coalesced_size", "free_space",
                "n_vdis", "n_trees"]


@dataclass
class SMlogRead:
    """What reading gave: event records plus counts over every line."""

    records: pd.DataFrame
    files: list[dict]
    lines: int
    parsed: int
    unparsed: int
    first: pd.Timestamp | None
    last: pd.Timestamp | None
    events: dict[str, int]
    base_year: int
    links: dict[str, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)  # "path: why" for SMlog* entries of a directory not read
    # lines that tell the sm release (families.py): host, marker, family, since, count, first (file:line)
    markers: list[dict] = field(default_factory=list)


@dataclass
class _Source:
    display: str
    opener: Callable[[], IO[bytes]]
    mtime: float | None
    size: int | None
    plain_path: str | None = None  # a file on disk (not an archive member): may be scanned in parallel


@dataclass
class _FileStatus:
    truncated: bool = False
    note: str | None = None


def rotation_key(name: str) -> tuple[int, int]:
    """Sort key putting rotations oldest first: SMlog.3.gz, SMlog.2.gz, SMlog.1, SMlog."""
    base = re.sub(r"\.(?:gz|bz2|xz)$", "", name.rsplit("/", 1)[-1])
    m = re.search(r"\.(\d+)$", base)
    if m:
        return (0, -int(m.group(1)))
    m = re.search(r"-(\d{8})$", base)  # logrotate dateext
    if m:
        return (0, int(m.group(1)) - 10**9)
    return (0, 0)


def _member_key(name: str) -> tuple:
    """Archive members grouped by folder (one per host in a pool report), oldest rotation first."""
    folder, _, base = name.rpartition("/")
    return (folder, rotation_key(base))


def _is_archive(path: Path) -> bool:
    return path.name.lower().endswith(_ARCHIVE_SUFFIXES)


def _file_source(path: Path) -> _Source:
    kind = special_kind(path)  # before any open: a FIFO blocks the open, /dev/zero never ends
    if kind:
        raise InputError(f"{path} is {kind}, not a log file")
    try:
        st = path.stat()
        with open(path, "rb"):
            pass
    except FileNotFoundError:
        raise InputError(f"{path}: no such file or directory") from None
    except OSError as err:
        raise InputError(f"{path}: cannot read ({err.strerror or err})") from None
    if st.st_size == 0:
        return _Source(str(path), lambda: _Capped(open(path, "rb"), ZERO_SIZE_CAP), st.st_mtime, 0, str(path))
    return _Source(str(path), lambda: open(path, "rb"), st.st_mtime, st.st_size, str(path))


class _Capped:
    """A file read no further than `limit` bytes; `capped` says there was more."""

    def __init__(self, fh: IO[bytes], limit: int):
        self.fh, self.left, self.capped = fh, limit, False

    def read(self, size: int = -1) -> bytes:
        if self.left <= 0:
            self.capped = self.capped or bool(self.fh.read(1))
            return b""
        data = self.fh.read(self.left if size < 0 else min(size, self.left))
        self.left -= len(data)
        return data

    def close(self) -> None:
        self.fh.close()

    def __enter__(self) -> "_Capped":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _archive_sources(path: Path, stack: contextlib.ExitStack) -> list[_Source]:
    """The var/log/SMlog* members of a status-report tarball or zip, oldest first."""
    try:
        if path.name.lower().endswith(".zip"):
            zf = stack.enter_context(zipfile.ZipFile(path))
            members = [i for i in zf.infolist() if not i.is_dir() and _SMLOG_NAME_RE.search(i.filename)]
            members.sort(key=lambda i: _member_key(i.filename))
            return [_Source(f"{path}!{i.filename}", (lambda i=i: zf.open(i)),
                            dt.datetime(*i.date_time, tzinfo=dt.timezone.utc).timestamp(), i.file_size)
                    for i in members]
        tf = stack.enter_context(tarfile.open(path, "r:*"))
        members = [m for m in tf.getmembers() if m.isfile() and _SMLOG_NAME_RE.search(m.name)]
    except FileNotFoundError:
        raise InputError(f"{path}: no such file or directory") from None
    except (OSError, tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error) as err:
        raise InputError(f"{path}: cannot read the archive ({err})") from None
    members.sort(key=lambda m: _member_key(m.name))
    return [_Source(f"{path}!{m.name}", (lambda m=m: tf.extractfile(m)), float(m.mtime), m.size) for m in members]


def as_path_list(paths: Any) -> list[str]:
    """A notebook or CLI value as a list of paths: a list, one path, `a,b`, or `['a', 'b']`
    (what `papermill -p paths ...` hands over as a plain string)."""
    if paths is None:
        return []
    if isinstance(paths, (str, os.PathLike)):
        text = str(paths).strip()
        if text.startswith("[") and text.endswith("]"):
            text = text[1:-1]
        return [p.strip().strip("'\"") for p in text.split(",") if p.strip().strip("'\"")] if text else []
    return [str(p) for p in paths]


def resolve_sources(paths: list[str | os.PathLike], stack: contextlib.ExitStack,
                    skipped: list[str] | None = None) -> list[_Source]:
    """Every SMlog file behind `paths`, in reading order; InputError when one is missing or is
    a device, FIFO or socket. Such entries found in a directory are left out and named in
    `skipped` ("path: a FIFO (named pipe), not a log file")."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    if not paths:
        raise InputError("no SMlog path given")
    sources: list[_Source] = []
    all_plain = True
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            entries = list(path.rglob("SMlog*"))
            found = sorted((p for p in entries if p.is_file()),
                           key=lambda p: (str(p.parent), rotation_key(p.name)))
            if skipped is not None:
                skipped.extend(f"{p}: {kind}, not a log file" for p in sorted(entries)
                               if (kind := special_kind(p)))
            if not found:
                raise InputError(f"{path}: no SMlog* files in this directory")
            sources.extend(_file_source(p) for p in found)
            all_plain = False
        elif path.is_file() and _is_archive(path):
            found = _archive_sources(path, stack)
            if not found:
                raise InputError(f"{path}: no var/log/SMlog* in this archive")
            sources.extend(found)
            all_plain = False
        else:
            sources.append(_file_source(path))
    if all_plain:  # `SMlog SMlog.1 SMlog.2.gz` in any order: read the oldest first
        sources.sort(key=lambda s: rotation_key(s.display))
    return sources


def _decompressed(raw: IO[bytes], status: _FileStatus) -> Iterator[bytes]:
    """The file's bytes, gunzipped or bunzipped when the magic says so; damage ends the file."""
    try:
        first = raw.read(RAW_BLOCK)
    except OSError as err:
        status.truncated, status.note = True, str(err)
        return
    if first[:2] == b"\x1f\x8b":
        yield from _gunzip(first, raw, status)
    elif first[:3] == b"BZh":
        yield from _unpack(bz2.BZ2Decompressor, b"BZh", "bzip2", first, raw, status)
    elif first[:6] == b"\xfd7zXZ\x00":
        yield from _unpack(lzma.LZMADecompressor, b"\xfd7zXZ\x00", "xz", first, raw, status)
    else:
        yield first
        while True:
            try:
                block = raw.read(CHUNK)
            except OSError as err:
                status.truncated, status.note = True, str(err)
                return
            if not block:
                return
            yield block


def _gunzip(data: bytes, raw: IO[bytes], status: _FileStatus) -> Iterator[bytes]:
    d = zlib.decompressobj(31)
    while data:
        try:
            out = d.decompress(data)
            if out:
                yield out
            while d.eof and d.unused_data:  # concatenated gzip members
                rest = d.unused_data
                if rest[:2] != b"\x1f\x8b":
                    return  # trailing padding
                d = zlib.decompressobj(31)
                out = d.decompress(rest)
                if out:
                    yield out
            data = raw.read(RAW_BLOCK)
        except (zlib.error, OSError, EOFError) as err:
            status.truncated, status.note = True, f"damaged gzip data ({err})"
            return
    if not d.eof:
        status.truncated, status.note = True, "gzip stream ends early"


def _unpack(factory: Callable, magic: bytes, name: str, data: bytes, raw: IO[bytes],
            status: _FileStatus) -> Iterator[bytes]:
    """bzip2 / xz streams (concatenated ones too), stopping cleanly at damage."""
    d = factory()
    while data:
        try:
            out = d.decompress(data)
            if out:
                yield out
            if d.eof:
                rest = d.unused_data
                if not rest.startswith(magic):
                    return
                d = factory()
                data = rest
                continue
            data = raw.read(RAW_BLOCK)
        except (OSError, EOFError, ValueError, lzma.LZMAError) as err:
            status.truncated, status.note = True, f"damaged {name} data ({err})"
            return
    if not d.eof:
        status.truncated, status.note = True, f"{name} stream ends early"


def _chunks(blocks: Iterator[bytes]) -> Iterator[tuple[bytes, int, int]]:
    """(buffer, end, skipped_long_lines): buffer[:end] holds complete lines only."""
    pending: list[bytes] = []
    size = 0
    skipping = False
    for block in blocks:
        if skipping:
            cut = block.find(b"\n")
            if cut < 0:
                continue
            block, skipping = block[cut + 1:], False
        pending.append(block)
        size += len(block)
        if size < CHUNK:
            continue
        buf = pending[0] if len(pending) == 1 else b"".join(pending)
        cut = buf.rfind(b"\n")
        if cut < 0:
            if size >= MAX_LINE:  # one absurd line: count it, do not hold it
                pending, size, skipping = [], 0, True
                yield b"", 0, 1
            continue
        yield buf, cut + 1, 0
        rest = buf[cut + 1:]
        pending, size = ([rest] if rest else []), len(rest)
    if size:
        buf = b"".join(pending)
        yield buf, len(buf), 0


def read_smlog(paths: Any, year: int | None = None,
               progress: Callable[[str, int, int | None], None] | None = None) -> SMlogRead:
    """Read SMlog files, rotations, directories or status-report archives into event records.

    Parameters
    ----------
    paths : a path or list of paths (str or Path)
    year : the year of the first line; None or 0 = date the last line by the newest file's mtime
    progress : called as progress(path, bytes_read, total_bytes_or_None) after each chunk

    Raises InputError when a path is missing or unreadable, or is a device, FIFO or socket (refused
    before it is opened: /dev/zero never ends, a FIFO blocks); such entries of a directory are
    left out and listed in `skipped`. A file of size 0 that still streams (/proc) is read up to
    ZERO_SIZE_CAP and marked truncated. Damaged content never raises.
    """
    if year and not MIN_YEAR <= int(year) <= MAX_YEAR:
        raise UsageError(f"year {year} is not a plausible year for a log ({MIN_YEAR}..{MAX_YEAR})")
    store = _RecordStore()
    builder = EventBuilder(store.append)
    tracker = YearTracker()
    files: list[dict] = []
    total_lines = unparsed = 0
    times: list = [None, None]  # first and last time seen
    uuids: set[bytes] = set()
    not_read: list[str] = []
    with contextlib.ExitStack() as stack:
        sources = resolve_sources(paths, stack, not_read)
        for order, src in enumerate(sources):
            status = _FileStatus()
            n_lines = n_bytes = 0
            try:
                raw = stack.enter_context(src.opener())
            except (OSError, tarfile.TarError, zipfile.BadZipFile) as err:
                raise InputError(f"{src.display}: cannot read ({err})") from None
            store.order = order
            if _parallel_ok(src):
                raw.close()
                for scan, done in _parallel_scans(src.plain_path, src.size):
                    unparsed += _consume(scan, n_lines, builder, tracker, src.display, times)
                    n_lines += scan.lines
                    uuids.update(scan.uuids)
                    n_bytes = done
                    if progress is not None:
                        progress(src.display, n_bytes, src.size)
            else:
                for buf, end, skipped in _chunks(_decompressed(raw, status)):
                    n_bytes += end
                    n_lines += skipped
                    unparsed += skipped
                    if end:
                        scan = scan_chunk(buf, end)
                        unparsed += _consume(scan, n_lines, builder, tracker, src.display, times)
                        n_lines += scan.lines
                        uuids.update(scan.uuids)
                    if progress is not None:
                        progress(src.display, n_bytes, src.size)
            if getattr(raw, "capped", False):
                status.truncated = True
                status.note = f"size 0 on disk but still going after {ZERO_SIZE_CAP >> 20} MiB: read no further"
            builder.close()
            files.append({"path": src.display, "lines": n_lines, "bytes": n_bytes,
                          "truncated": status.truncated, "note": status.note, "mtime": src.mtime})
            total_lines += n_lines
    first_time, last_time = times
    builder.uuids.update(u.decode() for u in uuids)
    newest_mtime = max((f["mtime"] for f in files if f["mtime"]), default=None)
    base = anchor_year(last_time if isinstance(last_time, SyslogTime) else None, newest_mtime, year)
    store.finish()
    records = _to_frame(store, base, builder.uuids)
    conv = lambda t: pd.Timestamp(to_datetime(t, base)) if t is not None else None  # noqa: E731
    for f in files:
        f.pop("mtime", None)
    return SMlogRead(
        records=records, files=files, lines=total_lines, parsed=total_lines - unparsed, unparsed=unparsed,
        first=conv(first_time), last=conv(last_time), events=dict(sorted(builder.counts.items())),
        base_year=base, links=records.attrs.get("links", {}), skipped=not_read,
        markers=_marker_rows(builder.markers),
    )


def _marker_rows(found: dict[tuple, list]) -> list[dict]:
    """EventBuilder.markers as rows, the oldest family first."""
    rows = []
    for (host, name), (count, file, line) in found.items():
        marker = MARKERS[name]
        rows.append({"host": host, "marker": name, "family": marker.family, "since": marker.since,
                     "count": count, "first": f"{file}:{line}"})
    order = {f: i for i, f in enumerate(FAMILY_ORDER)}
    rows.sort(key=lambda r: (order.get(r["family"], -1), str(r["host"]), r["marker"]))
    return rows


def _consume(scan: ChunkScan, line_base: int, builder: EventBuilder, tracker: YearTracker,
             display: str, times: list) -> int:
    """Parse the picked lines of one scanned chunk in order; returns how many did not parse."""
    unparsed = scan.long_lines
    feed, see = builder.feed, tracker.see
    for index, parsed, flagged in scan.picks:
        if parsed is None:
            if flagged:
                unparsed += 1
            continue
        stamp = parsed.time
        if stamp is not None:
            if stamp.__class__ is SyslogTime:  # the year offset is known only here, in file order
                offset = see(stamp.month)
                if offset != stamp.year_offset:  # the scan left 0: most lines keep their tuple
                    stamp = SyslogTime(offset, *stamp[1:])
            if times[0] is None:
                times[0] = stamp
            times[1] = stamp
        if flagged:
            feed(parsed, stamp, display, line_base + index + 1)
    return unparsed


def _parallel_ok(src: _Source) -> bool:
    if not src.plain_path or (src.size or 0) < PARALLEL_MIN or WORKERS < 2:
        return False
    if "fork" not in multiprocessing.get_all_start_methods():
        return False  # workers are forked: nothing to re-import, nothing to pickle but results
    try:
        with open(src.plain_path, "rb") as fh:
            magic = fh.read(3)
    except OSError:
        return False
    return magic[:2] != b"\x1f\x8b" and magic != b"BZh"


def _parallel_scans(path: str, size: int) -> Iterator[tuple[ChunkScan, int]]:
    """Scan a big plain file in worker processes, yielding (scan, bytes done) in file order.

    If the workers die (out of memory, killed), the remaining ranges are scanned here: the
    results are consumed in order, so nothing is lost or counted twice.
    """
    ctx = multiprocessing.get_context("fork")
    warnings.filterwarnings("ignore", message=".*use of fork\\(\\) may lead to deadlocks.*",
                            category=DeprecationWarning)  # 3.12+ in Jupyter: workers only scan bytes
    ranges = plan_ranges(size, CHUNK)
    queued = iter(ranges)
    pending: deque = deque()
    try:
        with ProcessPoolExecutor(max_workers=WORKERS, mp_context=ctx) as pool:
            for start, stop in itertools.islice(queued, 2 * WORKERS):
                pending.append((pool.submit(scan_range, path, start, stop, MAX_LINE), start, stop))
            while pending:
                future, start, stop = pending[0]
                scan = future.result()
                pending.popleft()
                yield scan, stop
                nxt = next(queued, None)
                if nxt is not None:  # listed before submitting: a failed submit leaves it to the fallback
                    pending.append((None, nxt[0], nxt[1]))
                    pending[-1] = (pool.submit(scan_range, path, nxt[0], nxt[1], MAX_LINE), nxt[0], nxt[1])
    except (BrokenProcessPool, OSError):
        pass
    for _, start, stop in pending:
        yield scan_range(path, start, stop, MAX_LINE), stop
    for start, stop in queued:
        yield scan_range(path, start, stop, MAX_LINE), stop


# Routine events: only the first and the last of each (kind, SR) become records; every one is
# counted in `events`. They repeat with every GC run and say nothing the first and last do not.
ROUTINE_KINDS = frozenset({"gc_exit", "gc_kick", "sr_scan", "lock_contention", "gc_quiet_period",
                           "gc_already_running", "ignored_exception"})


class _RecordStore:
    """Events kept column by column, repeated strings shared: a long log repeats the same
    messages, tracebacks and trees thousands of times, and a dict per event costs ~1 KB.
    Routine events and unchanged tree headers (`... VHD trees): no changes`) are collapsed to
    the first and last of their kind per SR, so memory follows what changes in the log."""

    def __init__(self) -> None:
        self.columns: dict[str, list] = {c: [] for c in RECORD_COLUMNS}
        self._appends = [(name, column.append) for name, column in self.columns.items()]
        self.orders: list[int] = []
        self.order = 0
        self._shared: dict[str, str] = {}
        self._last: dict[tuple, tuple[dict, int]] = {}  # collapsed key -> (latest record, its file order)

    def append(self, rec: dict) -> None:
        kind = rec["kind"]
        if kind in ROUTINE_KINDS or (kind == "sr_tree" and not rec.get("tree")):
            key = (kind, rec.get("sr"), rec.get("sr_name"), rec.get("n_vdis"), rec.get("n_trees"))
            if key in self._last:
                self._last[key] = (rec, self.order)
                return
            self._last[key] = (None, self.order)  # the first is stored now, the last at the end
        self._store(rec, self.order)

    def finish(self) -> None:
        for rec, order in self._last.values():
            if rec is not None:
                self._store(rec, order)
        self._last.clear()

    def _store(self, rec: dict, order: int) -> None:
        shared = self._shared
        if len(shared) > 200_000:
            shared.clear()
        get = rec.get
        for name, append in self._appends:
            append(get(name))
        columns = self.columns
        for name, value in rec.items():  # share the strings: a long log repeats them
            if value.__class__ is str and name in columns:
                columns[name][-1] = shared.setdefault(value, value)
        self.orders.append(order)

    def __len__(self) -> int:
        return len(self.orders)


def _to_frame(store: _RecordStore, base_year: int, uuids: set[str]) -> pd.DataFrame:
    df = pd.DataFrame(store.columns, columns=RECORD_COLUMNS)
    if len(store):  # blocks are emitted when they close: put every event back in file order
        order = sorted(range(len(store)), key=lambda i: (store.orders[i], store.columns["line"][i]))
        df = df.iloc[order].reset_index(drop=True)
    if df.empty:
        df["time"] = pd.to_datetime(df["time"], utc=True)
        for col in _INT_COLUMNS:
            df[col] = df[col].astype("Int64")
        df.attrs["links"] = {}
        return df
    stamps: dict = {}  # many events share a second
    df["time"] = pd.to_datetime([stamps[t] if t in stamps else stamps.setdefault(t, to_datetime(t, base_year))
                                 for t in df["time"]], utc=True)
    for col in _INT_COLUMNS:
        df[col] = pd.to_numeric(df[col], errors="coerce").astype("Int64")
    df["hidden"] = df["hidden"].astype("boolean")
    shorts = set(df["sr"].dropna()) | set(df["vdi"].dropna()) | set(df["target_vdi"].dropna())
    links = link_ids(shorts, uuids)
    for col in ("sr", "vdi", "target_vdi"):
        df[col] = df[col].map(lambda v: links.get(v, v) if isinstance(v, str) else v)
    df.attrs["links"] = links
    return df
