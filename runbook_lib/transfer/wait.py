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


def _gib(n: int) -> str:
    return f"{n / 2**30:,.1f} GiB"


def wait_for_gc(session, sr_uuid: str, condition: Condition, *, timeout_s: float, reporter=None,
                smlog: str | Path | None = None, slice_s: float = 5.0, label: str = "") -> WaitResult:
    """Block until condition(vdis, free) holds or timeout_s passes (wall clock)."""
    sr_ref = ops.ref_by_uuid(session, "SR", sr_uuid)
    if sr_ref is None:
        raise LookupError(f"SR {sr_uuid} is gone")
    tail = SmlogTail(smlog)
    started = time.monotonic()
    vdis: dict[str, dict] = {}
    free = 0
    token = ""
    events = 0
    last_sample = 0.0
    reason = ""

    def resync():
        nonlocal free
        vdis.clear()
        for ref, rec in ops.vdi_records(session).items():
            if rec.get("SR") == sr_ref:
                vdis[ref] = rec
        free = ops.sr_record(session, sr_ref)["free"]

    resync()
    try:
        token = ops.event_from(session, ["sr", "vdi"], "", 0.0).get("token", "")
        use_events = True
    except Exception as exc:
        details = ops.failure_details(exc)
        if not details or details[0] not in ("MESSAGE_METHOD_UNKNOWN", "EVENTS_LOST"):
            raise
        use_events = False
    while True:
        by_uuid = {rec["uuid"]: rec for rec in vdis.values()}
        done, reason = condition(by_uuid, free)
        now = time.monotonic()
        if reporter is not None and (now - last_sample >= 0.5 or done):
            reporter.sample({sr_uuid: free})
            last_sample = now
        tail.read()  # new SMlog lines land in tail.lines
        elapsed = now - started
        if reporter is not None:
            gc = f"; SMlog: {tail.lines[-1].split('SMGC:', 1)[-1].strip()[:100]}" if tail.lines else \
                ("" if tail.reachable else "; SMlog not reachable, watching events only")
            reporter.progress(f"waiting for the GC on {label or sr_uuid[:8]}: free {_gib(free)}; {reason}; "
                              f"{elapsed:,.0f} s of {timeout_s:,.0f} s{gc}")
        if done:
            return WaitResult("done", reason, elapsed, free, list(tail.lines), events)
        if elapsed >= timeout_s:
            return WaitResult("timeout", reason, elapsed, free, list(tail.lines), events)
        wait = max(0.05, min(slice_s, timeout_s - elapsed))
        if not use_events:
            time.sleep(min(wait, 1.0))
            resync()
            continue
        try:
            result = ops.event_from(session, ["sr", "vdi"], token, wait)
        except Exception as exc:
            details = ops.failure_details(exc)
            if details and details[0] == "EVENTS_LOST":
                token = ""
                resync()
                continue
            raise
        token = result.get("token", token)
        for event in result.get("events") or []:
            events += 1
            cls = str(event.get("class", "")).lower()
            ref = event.get("ref")
            snap = event.get("snapshot") or {}
            if cls == "vdi":
                if event.get("operation") == "del" or snap.get("SR") != sr_ref:
                    vdis.pop(ref, None)
                else:
                    for key in ("virtual_size", "physical_utilisation"):
                        snap[key] = int(snap.get(key) or 0)
                    vdis[ref] = snap
            elif cls == "sr" and ref == sr_ref and snap:
                free = int(snap.get("physical_size") or 0) - int(snap.get("physical_utilisation") or 0)


# --- conditions the steps use -------------------------------------------------------------
def chain_gone(old_vdis: set[str], need_free: int) -> Condition:
    """Copy/export/migrate: the old chain's VDIs are deleted and the VM fits back on the SR."""

    def check(vdis: dict[str, dict], free: int) -> tuple[bool, str]:
        left = sorted(set(old_vdis) & set(vdis))
        room = free >= need_free
        why = (f"{len(left)} of {len(old_vdis)} old chain VDI(s) left" if left else "old chain gone") + \
              (f", free {_gib(free)} >= need {_gib(need_free)}" if room else f", need {_gib(need_free)} free")
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
