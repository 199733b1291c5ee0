"""Fault injection: the ways a real pool lets a runbook down (table in docs/simulator.md).

Faults come from the scenario (`faults:` list) and from `--fault NAME[=VALUE]`; each is
parsed once here and asked about by the operation it affects.
"""

from __future__ import annotations

from runbook_lib.errors import UsageError
from runbook_lib.sim.model import ApiFailure

# name -> (value kind, one line for --help and the docs)
FAULTS: dict[str, tuple[str, str]] = {
    "copy-fails-at": ("fraction", "the first disk copy fails with VDI_COPY_FAILED when it "
                                  "reaches this fraction (e.g. 0.6); the half copy is removed"),
    "staging-full": ("SR name or uuid (optional)", "the staging SR (named, else any SR whose "
                     "name contains 'staging', else any file SR) fills up halfway through the "
                     "first copy onto it: SR_BACKEND_FAILURE_44, and it stays full"),
    "session-expiry": ("calls", "every session becomes invalid after this many calls "
                                "(SESSION_INVALID; the XenAPI client logs in again by itself)"),
    "restart": ("seconds", "after the first call that changes something, the server stops "
                           "answering (connection refused) for this many wall-clock seconds, "
                           "as during a xapi restart; sessions and storage work survive"),
    "gc-stuck": ("", "a GC run starts a coalesce that never finishes (nothing else is done "
                     "on that SR's GC until the simulator stops)"),
    "vm-wont-stop": ("VM name or uuid (optional)", "VM.clean_shutdown waits 1200 simulated "
                     "seconds and fails with VM_SHUTDOWN_TIMEOUT; hard_shutdown still works"),
    "lose-reply": ("METHOD[@N]", "the Nth call of METHOD (default the first, e.g. VIF.create@2 "
                   "or Async.VM.copy) is carried out, then the connection is closed without an "
                   "answer, as when a reply is lost on the network"),
    "unpause-fails": ("VDI name or uuid (optional)", "the first live leaf-coalesce (of that VDI) cannot "
                      "unpause the tapdisk afterwards: the VDI keeps sm-config paused=true and the GC "
                      "posts the message 'failed to unpause tapdisk' (priority 4)"),
    "host-is-slave": ("master address (optional)", "the server answers as a pool member "
                      "that is not the master: login gives HOST_IS_SLAVE [master address] "
                      "(the value, e.g. 127.0.0.1:PORT of another simulator, else the "
                      "scenario master's address)"),
}


def parse_fault(spec) -> tuple[str, str | None]:
    if isinstance(spec, dict):
        if len(spec) != 1:
            raise UsageError(f"fault entry must have one key: {spec!r}")
        (name, value), = spec.items()
    else:
        name, _, value = str(spec).partition("=")
        value = value or None
    name = str(name).strip()
    if name not in FAULTS:
        raise UsageError(f"unknown fault {name!r}", hint="known: " + ", ".join(FAULTS))
    kind = FAULTS[name][0]
    if value is not None:
        value = str(value)
    try:
        if name == "copy-fails-at":
            v = float(value)
            if not 0 < v <= 1:
                raise ValueError
        elif name in ("session-expiry", "restart"):
            if int(float(value)) < 1:
                raise ValueError
        elif name == "lose-reply":
            method, _, nth = str(value or "").partition("@")
            if "." not in method or (nth and int(nth) < 1):
                raise ValueError
    except (TypeError, ValueError):
        raise UsageError(f"fault {name} needs a value: {kind}") from None
    return name, value


class Faults:
    """The active faults and what is left of the one-shot ones."""

    def __init__(self, specs=()):
        self.active: dict[str, str | None] = dict(parse_fault(s) for s in specs)
        self.copy_failed = False
        self.staging_filled = False
        self.restart_done = False
        self.reply_counts: dict[str, int] = {}
        self.replies_lost: list[str] = []
        self.unpause_failed = False

    def __contains__(self, name: str) -> bool:
        return name in self.active

    def add(self, specs) -> None:
        self.active.update(parse_fault(s) for s in specs)

    @property
    def session_expiry(self) -> int | None:
        v = self.active.get("session-expiry")
        return int(float(v)) if v else None

    @property
    def restart_seconds(self) -> float | None:
        if "restart" not in self.active or self.restart_done:
            return None
        return float(self.active["restart"])

    def lose_reply(self, method: str) -> bool:
        """True when this call's answer is to be lost (the call itself has been carried out)."""
        spec = self.active.get("lose-reply")
        if not spec:
            return False
        target, _, nth = spec.partition("@")
        if method != target:
            return False
        self.reply_counts[method] = self.reply_counts.get(method, 0) + 1
        if self.reply_counts[method] != int(nth or 1):
            return False
        self.replies_lost.append(method)
        return True

    def is_staging(self, pool, sr_ref: str) -> bool:
        rec = pool.store.get("SR", sr_ref)
        target = self.active.get("staging-full")
        if target:
            return target in (rec["name_label"], rec["uuid"])
        names = [r["name_label"].lower() for r in pool.store.tables["SR"].values()]
        if any("staging" in n for n in names):
            return "staging" in rec["name_label"].lower()
        return not pool.storage.srs[sr_ref].is_lvm

    def check_copy(self, pool, dest_sr: str, fraction: float, new_vdi: str) -> None:
        """Called as a copy progresses; raises the injected failure when it is due."""
        at = self.active.get("copy-fails-at")
        if at is not None and not self.copy_failed and fraction >= float(at) - 1e-9:
            self.copy_failed = True
            raise ApiFailure("VDI_COPY_FAILED", f"Simulated failure at {float(at):.0%} of the copy")
        if "staging-full" in self.active and not self.staging_filled and fraction >= 0.5 \
                and self.is_staging(pool, dest_sr):
            self.staging_filled = True
            state = pool.storage.srs[dest_sr]
            state.other_used += max(pool.storage.free(dest_sr), 0)
            if not state.is_lvm:  # a sparse file copy fails when the SR is full, in sparse_dd
                from runbook_lib.sim.storage import NO_SPACE_LOG
                raise ApiFailure("VDI_COPY_FAILED", NO_SPACE_LOG)
            pool.sm_log("Raising exception [44, There is insufficient space]")
            from runbook_lib.sim.storage import insufficient_space
            raise insufficient_space()

    def unpause_fails(self, vdi_rec: dict) -> bool:
        """True once: for the first unpause (of the named VDI) while the fault is active."""
        if "unpause-fails" not in self.active or self.unpause_failed:
            return False
        target = self.active["unpause-fails"]
        if target is not None and target not in (vdi_rec["name_label"], vdi_rec["uuid"]):
            return False
        self.unpause_failed = True
        return True

    def vm_wont_stop(self, vm_rec: dict) -> bool:
        if "vm-wont-stop" not in self.active:
            return False
        target = self.active["vm-wont-stop"]
        return target is None or target in (vm_rec["name_label"], vm_rec["uuid"])
