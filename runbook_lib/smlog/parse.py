"""One SMlog line -> time, host, process, pid, message.

Shapes met in the wild (all accepted, after stripping forum quote marks `> ` and CR):

- syslog: `Dec  6 02:27:17 xen SMGC: [10357] msg` (day padded or not; no year; any pid width)
- ISO: `2026-11-10T03:14:15.123456+00:00 xs01 SM: [12345] msg`
- no timestamp: `SMGC: [10357] msg`, or bare `[10357] msg` as pasted into forums

The message keeps its leading spaces: the GC's tree printout encodes depth in them.
Syslog lines carry no year; `YearTracker` numbers the years relative to the first line
(Dec -> Jan counts one up) and `anchor_year` turns that into real years at the end.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import NamedTuple

MIN_YEAR, MAX_YEAR = 1971, 2200  # plausible log years, inside pandas' timestamp range
MONTHS = {m: i for i, m in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), start=1)}

_IDENT = r"(?P<process>[^\s:\[\]]+)(?:\[(?P<pid0>\d+)\])?:"
_PID_MSG = r"(?: ?\[(?P<pid>\d+)\])?(?: (?P<msg>.*)|(?P<empty>))$"
SYSLOG_RE = re.compile(
    r"^(?P<ts>(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +\d{1,2} \d\d:\d\d:\d\d(?:\.\d{1,6})?) "
    r"(?P<host>\S+) " + _IDENT + _PID_MSG
)
ISO_RE = re.compile(
    r"^(?P<iso>\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:?\d\d)?) (?P<host>\S+) "
    + _IDENT + _PID_MSG
)
IDENT_ONLY_RE = re.compile(r"^(?P<process>SMGC|SM): \[(?P<pid>\d+)\](?: (?P<msg>.*)|(?P<empty>))$")
BARE_RE = re.compile(r"^\[(?P<pid>\d+)\](?: (?P<msg>.*)|(?P<empty>))$")
_QUOTE_RE = re.compile(r"^(?:\s*>)+ ?")

# Bytes pattern for the chunk scanner: a newline NOT followed by a syslog or ISO prefix.
NONCONFORMING_BYTES_RE = re.compile(
    rb"\n(?!(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +\d{1,2} \d\d:\d\d:\d\d"
    rb"|\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d)"
)
CONFORMING_START_BYTES_RE = re.compile(
    rb"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +\d{1,2} \d\d:\d\d:\d\d"
    rb"|\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d"
)


class SyslogTime(NamedTuple):
    """A yearless syslog time; `year_offset` counts New Years since the first line."""

    year_offset: int
    month: int
    day: int
    hour: int
    minute: int
    second: int
    microsecond: int


class ParsedLine(NamedTuple):
    time: SyslogTime | dt.datetime | None
    host: str | None
    process: str | None
    pid: int | None
    message: str
    shape: str  # syslog | iso | ident | bare


def _pid(raw: str | None) -> int | None:
    try:
        return int(raw) if raw else None
    except ValueError:  # absurdly long digit strings
        return None


_TS_CACHE: dict[str, tuple | None] = {}


def _syslog_fields(ts: str) -> tuple | None:
    """`Dec  6 02:27:17[.123]` -> (month, day, hour, minute, second, microsecond); cached, lines share seconds."""
    hit = _TS_CACHE.get(ts)
    if hit is not None or ts in _TS_CACHE:
        return hit
    mon, day, clock = ts.split()
    hms, _, frac = clock.partition(".")
    hour, minute, second = (int(x) for x in hms.split(":"))
    fields = (MONTHS[mon], int(day), hour, minute, second, int(frac.ljust(6, "0")) if frac else 0)
    if not (1 <= fields[1] <= 31 and hour < 24 and minute < 60 and second < 61):
        fields = None
    if len(_TS_CACHE) > 4096:
        _TS_CACHE.clear()
    _TS_CACHE[ts] = fields
    return fields


def _msg(m: re.Match) -> str:
    return m.group("msg") or ""


def parse_iso(text: str) -> dt.datetime | None:
    try:
        stamp = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.timezone.utc)
    if not MIN_YEAR <= stamp.year <= MAX_YEAR:
        return None  # not a log time (and beyond what pandas timestamps hold)
    return stamp.astimezone(dt.timezone.utc)


def parse_line(text: str, tracker: YearTracker | None = None) -> ParsedLine | None:
    """Split one line (CR and forum quote marks allowed); None when no known shape fits.

    With a `tracker`, syslog times get their year offset from it (lines must come in order).
    """
    text = text.rstrip("\r\n")
    if text.startswith((">", " >", "  >")):
        text = _QUOTE_RE.sub("", text, count=1)
    m = SYSLOG_RE.match(text)
    if m:
        f = _syslog_fields(m.group("ts"))
        if f is None:
            return None
        stamp = SyslogTime(tracker.see(f[0]) if tracker is not None else 0, *f)
        host, process, pid, pid0, msg = m.group("host", "process", "pid", "pid0", "msg")
        return ParsedLine(stamp, host, process, _pid(pid or pid0), msg or "", "syslog")
    m = ISO_RE.match(text)
    if m:
        stamp = parse_iso(m.group("iso"))
        if stamp is None:
            return None
        return ParsedLine(stamp, m.group("host"), m.group("process"), _pid(m.group("pid") or m.group("pid0")),
                          _msg(m), "iso")
    stripped = text.lstrip()
    m = IDENT_ONLY_RE.match(stripped)
    if m:
        return ParsedLine(None, None, m.group("process"), _pid(m.group("pid")), _msg(m), "ident")
    m = BARE_RE.match(stripped)
    if m:
        return ParsedLine(None, None, None, _pid(m.group("pid")), _msg(m), "bare")
    return None


class YearTracker:
    """Counts New Years in a yearless log: a month drop of more than half a year is Dec -> Jan.

    A small step back (lines slightly out of order, a month boundary) is not a new year; a
    line that jumps far *back* (Dec right after Jan) is taken to belong to the previous year.
    """

    def __init__(self) -> None:
        self.offset = 0
        self._month: int | None = None

    def see(self, month: int) -> int:
        """The year offset for a line of `month`, updating the running state."""
        if self._month is None:
            self._month = month
            return self.offset
        if month < self._month - 6:
            self.offset += 1
            self._month = month
            return self.offset
        if month > self._month + 6:
            return self.offset - 1  # a straggler from before New Year
        self._month = month
        return self.offset


def anchor_year(last: SyslogTime | None, mtime: float | None, year: int | None) -> int:
    """The real year of offset 0.

    `year` given: it is the year of the first line. Otherwise the newest file's modification
    time dates the last line (a last line later in the year than the mtime is from the year
    before, as logrotate leaves it).
    """
    if year:
        return int(year)
    now = dt.datetime.now(dt.timezone.utc)
    stamp = dt.datetime.fromtimestamp(mtime, dt.timezone.utc) if mtime and mtime > 946_684_800 else now  # 2000-01-01
    last_year = stamp.year
    if last is not None and (last.month, last.day) > (stamp.month, stamp.day + 1):
        last_year -= 1
    return last_year - (last.year_offset if last is not None else 0)


def to_datetime(stamp: SyslogTime | dt.datetime | None, base_year: int) -> dt.datetime | None:
    """A timezone-aware UTC datetime (syslog times are taken as UTC: the log does not say)."""
    if stamp is None or isinstance(stamp, dt.datetime):
        return stamp
    year = base_year + stamp.year_offset
    if not MIN_YEAR <= year <= MAX_YEAR:
        return None  # a garbled run of months counted too many New Years: the time is unknown
    day = stamp.day
    while day > 28:
        try:
            return dt.datetime(year, stamp.month, day, stamp.hour, stamp.minute, min(stamp.second, 59),
                               stamp.microsecond, tzinfo=dt.timezone.utc)
        except ValueError:
            day -= 1  # Feb 29 in a non-leap year, Apr 31: keep the line, clamp the day
    return dt.datetime(year, stamp.month, day, stamp.hour, stamp.minute, min(stamp.second, 59),
                       stamp.microsecond, tzinfo=dt.timezone.utc)
