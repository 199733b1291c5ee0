"""Waiting for the garbage collector after SR.scan, without polling the pool to death.

The wait is driven by `event.from` on the SR and its VDIs: it wakes when the pool changes, keeps
a local copy of the SR's VDIs, samples the SR's free space for the plot, and asks a condition
(supplied by the step: "the old chain is gone and the VM fits back", "the leaf is coalesced")
whether it is over. When the host's SMlog is reachable (a local path, e.g. the simulator's or a
mounted /var/log), its newest GC lines are shown alongside. A timeout ends the wait with a
status and the next step; it never touches the VM, so nothing is at risk when it gives up.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Callable

from runbook_lib.units import gib
from runbook_lib.xapi import operations as ops

Condition = Callable[[dict[str, dict], int], tuple[bool, str]]  # (VDIs on the SR by uuid, free) -> (done, why)


@dataclasses.dataclass
class WaitResult:
    status: str  # "done" | "timeout"
    reason: str  # the condition's last words
    elapsed_s: float
    free: int
    smlog_tail: list[str]
    events: int


class SmlogTail:
    """New SMGC lines of a local SMlog since the wait began; silent when the file is not there."""

    def __init__(self, path: str | Path | None):
        self.path = Path(path) if path else None
        self.offset = self.path.stat().st_size if self.path and self.path.is_file() else 0
        self.lines: list[str] = []

    @property
    def reachable(self) -> bool:
        return bool(self.path and self.path.is_file())

    def read(self) -> list[str]:
        if not self.reachable:
            return []
        size = self.path.stat().st_size
        if size < self.offset:  # rotated
            self.offset = 0
        if size == self.offset:
            return []
        with self.path.open("rb") as fh:
            fh.seek(self.offset)
            data = fh.read(min(size - self.offset, 4 << 20))
        cut = data.rfind(b"\n") + 1
        self.offset += cut
        new = [line for line in data[:cut].decode("utf-8", "replace").splitlines() if "SMGC" in line]
        self.lines = (self.lines + new)[-20:]
        return new


def wait_for_gc(session, sr_uuid: str, condition: Condition, *, timeout_s: float, reporter=None,
                smlog: str | Path | None = None, slice_s: float = 5.0, label: str = "") -> WaitResult:
    """Block until condition(vdis, free) holds or timeout_s passes (wall clock)."""
    sr_ref = ops.ref_by_uuid(session, "SR", sr_uuid)
    if sr_ref is None:
        raise LookupError(f"SR {sr_uuid} is gone")
    watch = _SrWatch(session, sr_ref)
    tail = SmlogTail(smlog)
    started = time.monotonic()
    last_sample = 0.0
    while True:
        done, reason = condition({rec["uuid"]: rec for rec in watch.vdis.values()}, watch.free)
        now = time.monotonic()
        if reporter is not None and (now - last_sample >= 0.5 or done):
            reporter.sample({sr_uuid: watch.free})
            last_sample = now
        tail.read()  # new SMlog lines land in tail.lines
        elapsed = now - started
        if reporter is not None:
            reporter.progress(_progress_line(label or sr_uuid[:8], watch.free, reason, elapsed, timeout_s, tail))
        if done or elapsed >= timeout_s:
            return WaitResult("done" if done else "timeout", reason, elapsed, watch.free, list(tail.lines),
                              watch.events)
        watch.next(max(0.05, min(slice_s, timeout_s - elapsed)))


def _progress_line(label: str, free: int, reason: str, elapsed: float, timeout_s: float, tail: SmlogTail) -> str:
    gc = f"; SMlog: {tail.lines[-1].split('SMGC:', 1)[-1].strip()[:100]}" if tail.lines else \
        ("" if tail.reachable else "; SMlog not reachable, watching events only")
    return (f"waiting for the GC on {label}: free {gib(free)}; {reason}; "
            f"{elapsed:,.0f} s of {timeout_s:,.0f} s{gc}")


class _SrWatch:
    """The SR's VDIs and free space, kept current from event.from (or by polling where the pool
    has no events)."""

    def __init__(self, session, sr_ref: str):
        self.session, self.sr_ref = session, sr_ref
        self.vdis: dict[str, dict] = {}
        self.free = 0
        self.events = 0
        self.token = ""
        self.resync()
        try:
            self.token = ops.event_from(session, ["sr", "vdi"], "", 0.0).get("token", "")
            self.use_events = True
        except Exception as exc:
            if ops.code_of(exc) not in ("MESSAGE_METHOD_UNKNOWN", "EVENTS_LOST"):
                raise
            self.use_events = False

    def resync(self) -> None:
        self.vdis = {ref: rec for ref, rec in ops.vdi_records(self.session).items() if rec.get("SR") == self.sr_ref}
        self.free = ops.sr_record(self.session, self.sr_ref)["free"]

    def next(self, wait: float) -> None:
        """Wait up to `wait` seconds for changes and take them in."""
        if not self.use_events:
            time.sleep(min(wait, 1.0))
            self.resync()
            return
        try:
            result = ops.event_from(self.session, ["sr", "vdi"], self.token, wait)
        except Exception as exc:
            if ops.code_of(exc) != "EVENTS_LOST":
                raise
            self.token = ""
            self.resync()
            return
        self.token = result.get("token", self.token)
        for event in result.get("events") or []:
            self.events += 1
            self._apply(event)

    def _apply(self, event: dict) -> None:
        cls = str(event.get("class", "")).lower()
        ref = event.get("ref")
        snap = event.get("snapshot") or {}
        if cls == "vdi":
            if event.get("operation") == "del" or snap.get("SR") != self.sr_ref:
                self.vdis.pop(ref, None)
            else:
                for key in ("virtual_size", "physical_utilisation"):
                    snap[key] = int(snap.get(key) or 0)
                self.vdis[ref] = snap
        elif cls == "sr" and ref == self.sr_ref and snap:
            self.free = int(snap.get("physical_size") or 0) - int(snap.get("physical_utilisation") or 0)


# --- conditions the steps use -------------------------------------------------------------
def chain_gone(old_vdis: set[str], need_free: int) -> Condition:
    """Copy/export/migrate: the old chain's VDIs are deleted and the VM fits back on the SR."""

    def check(vdis: dict[str, dict], free: int) -> tuple[bool, str]:
        left = sorted(set(old_vdis) & set(vdis))
        room = free >= need_free
        why = (f"{len(left)} of {len(old_vdis)} old chain VDI(s) left" if left else "old chain gone") + \
              (f", free {gib(free)} >= need {gib(need_free)}" if room else f", need {gib(need_free)} free")
        return (not left and room), why

    return check


def chains_shorter(depth_before: dict[str, int]) -> Condition:
    """Offline coalesce: every leaf's VHD chain is shorter than before (or flat)."""

    def check(vdis: dict[str, dict], free: int) -> tuple[bool, str]:
        pending = []
        for leaf, before in depth_before.items():
            depth = len(ops.chain_of(leaf, vdis)) if leaf in vdis else 0
            if depth >= before and depth > 1:
                pending.append(f"{leaf[:8]} depth {depth}")
        return (not pending), ("chains coalesced" if not pending else "waiting on " + ", ".join(pending))

    return check
