"""Simulated time: a clock that runs `speed` times faster than the wall, plus a scheduler.

Long operations (copies, GC runs) are generators that yield how many simulated seconds
they wait; the scheduler resumes them when the simulated clock gets there. Tests can also
jump ahead with advance(), which runs everything that falls due, in order.
"""

from __future__ import annotations

import heapq
import itertools
import time
from datetime import datetime, timezone


class XDate(str):
    """A XenAPI date string (`20261110T03:14:15Z`); XML-RPC sends it as dateTime.iso8601."""


class Int32(int):
    """An int32 field (event.from's valid_ref_counts): XML-RPC sends it as <int>, not a string."""


def xapi_date(ts: float) -> XDate:
    return XDate(datetime.fromtimestamp(ts, timezone.utc).strftime("%Y%m%dT%H:%M:%SZ"))


def parse_date(value) -> float:
    """Seconds since the epoch from an ISO 8601 or XenAPI date (str or datetime)."""
    if isinstance(value, datetime):
        dt = value
    else:
        text = str(value).strip()
        for fmt in ("%Y%m%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S%z",
                    "%Y-%m-%d %H:%M:%S", "%Y%m%dT%H:%M:%S"):
            try:
                dt = datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
        else:
            dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


class Clock:
    """Simulated seconds since the epoch; `now` only moves forward through tick()."""

    def __init__(self, start: float, speed: float = 1.0):
        self.speed = float(speed)
        self.now = float(start)
        self._wall = time.monotonic()
        self._heap: list = []
        self._seq = itertools.count()
        self.on_elapse = None   # callback(seconds) run before timers, e.g. leaves growing

    def date(self, ts: float | None = None) -> XDate:
        return xapi_date(self.now if ts is None else ts)

    def at(self, when: float, callback) -> None:
        heapq.heappush(self._heap, (when, next(self._seq), callback))

    def after(self, seconds: float, callback) -> None:
        self.at(self.now + max(seconds, 0.0), callback)

    def spawn(self, gen, on_done=None, on_error=None) -> None:
        """Run a generator process: each `yield s` sleeps s simulated seconds."""

        def step():
            try:
                delay = next(gen)
            except StopIteration as stop:
                if on_done:
                    on_done(stop.value)
                return
            except Exception as exc:  # noqa: BLE001 - handed to the owner of the process
                if on_error:
                    on_error(exc)
                else:
                    raise
                return
            self.after(float(delay or 0.0), step)

        self.after(0.0, step)

    def _run_until(self, target: float) -> None:
        while self._heap and self._heap[0][0] <= target:
            when, _, callback = heapq.heappop(self._heap)
            self._elapse(max(when, self.now))
            callback()
        self._elapse(max(target, self.now))

    def _elapse(self, to: float) -> None:
        if to > self.now:
            seconds = to - self.now
            self.now = to
            if self.on_elapse:
                self.on_elapse(seconds)

    def tick(self) -> None:
        """Follow the wall clock (scaled by speed)."""
        wall = time.monotonic()
        delta = (wall - self._wall) * self.speed
        self._wall = wall
        self._run_until(self.now + delta)

    def advance(self, seconds: float) -> None:
        """Jump ahead: everything due in the next `seconds` runs, in order."""
        self.tick()
        self._run_until(self.now + seconds)

    def next_due(self) -> float | None:
        return self._heap[0][0] if self._heap else None
