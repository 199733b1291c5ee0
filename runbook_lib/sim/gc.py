"""A garbage collector per SR, in simulated time, deciding as the storage manager's does.

Rules from gc-space-rules.md: delete garbage, coalesce non-leaf nodes that fit, then try
leaf-coalesce (snapshot-coalesce if it fits, else live if the leaf is small or fast enough),
with the 10 s live limit. Every step is written to the SMlog in the real wording, so the
log reader diagnoses a simulated pool as it would a real one.
"""

from __future__ import annotations

import itertools
import logging

from runbook_lib.sim.model import ApiFailure
from runbook_lib.sim.sm_rules import (
    FILE_SR_TYPES,
    LEAF_MAX_WITHOUT_SPEED,
    LEAF_TIMEOUT_S,
    LVM_SR_TYPES,
    TIB,
    VHD_BLOCK,
    calc_overhead_bitmap,
    calc_overhead_empty,
    calc_size_lv,
    calc_size_vhd_lv,
    can_live_coalesce,
)
from runbook_lib.sim.storage import fmt_bytes

logger = logging.getLogger(__name__)  # the simulator's own log; `log` in this module is the SMlog

# The GC's limits (cleanup.py), from the simulator's own copy of the rules.
LIVE_TIMEOUT = LEAF_TIMEOUT_S
LIVE_MAX_SIZE = LEAF_MAX_WITHOUT_SPEED
SPEED_LOG_LEN = 10
STAR_LINE = "*~" * 20 + "*"
GC_TASK_NAME = "Garbage Collection"
TASK_EXPIRY_S = 65 * 60  # xapi destroys a finished task about this long after (db_gc_util.ml)

# (file, line, function, code) of the live leaf-coalesce path, as the two log styles print it
_TRACE = {
    "legacy": [
        (1435, "coalesceLeaf", "self._coalesceLeaf(vdi)"),
        (1637, "_coalesceLeaf", "return self._liveLeafCoalesce(vdi)"),
        (2174, "_liveLeafCoalesce", "return SR._liveLeafCoalesce(self, vdi)"),
        (1685, "_liveLeafCoalesce", "self._doCoalesceLeaf(vdi)"),
        (1719, "_doCoalesceLeaf", "vdi._coalesceVHD(timeout)"),
        (690, "_coalesceVHD", "self.sr.uuid, abortTest, VDI.POLL_INTERVAL, timeOut)"),
        (149, "runAbortable", 'raise util.SMException("Timed out")'),
    ],
    "modern": [
        (2398, "coalesceLeaf", "self._coalesceLeaf(vdi)"),
        (2691, "_coalesceLeaf", "return self._liveLeafCoalesce(vdi)"),
        (3284, "_liveLeafCoalesce", "return SR._liveLeafCoalesce(self, vdi)"),
        (2741, "_liveLeafCoalesce", "self._doCoalesceLeaf(vdi)"),
        (2780, "_doCoalesceLeaf", "vdi._coalesceVHD(timeout)"),
        (934, "_coalesceVHD", "self.sr.uuid, abortTest, VDI.POLL_INTERVAL, timeOut)"),
        (189, "runAbortable", 'raise util.SMException("Timed out")'),
    ],
}


# the modern storage manager gives up on a leaf that snapshot-coalescing does not shrink
_TRACE_NO_PROGRESS = [
    (2398, "coalesceLeaf", "self._coalesceLeaf(vdi)"),
    (2677, "_coalesceLeaf", 'raise util.SMException("VDI {uuid} could not be coalesced"'),
]


class GcFailure(Exception):
    """An SMException inside a GC step: logged with the banner, the candidate is skipped."""

    def __init__(self, message: str, trace: list | None = None):
        super().__init__(message)
        self.trace = trace


class SrGc:
    def __init__(self, ref):
        self.ref = ref
        self.running = False
        self.again = False
        self.stuck = False
        self.runs = 0
        self.last_trees: dict | None = None
        self.active: set[str] = set()   # VDIs whose LV is active because the GC works on them
        self.task: str | None = None    # this run's "Garbage Collection" task
        self.coalescable = 0            # candidates the last search found (the task's progress)
        self.done = 0                   # coalesces done in this run


class GcManager:
    def __init__(self, pool):
        self.pool = pool
        cfg = pool.scenario.get("gc") or {}
        self.interval = float(cfg.get("interval_s", 0) or 0)
        log_cfg = pool.scenario.get("smlog") or {}
        self.style = str(log_cfg.get("style", "modern"))
        self.release = pool.sm_release
        self._pids = itertools.count(int(log_cfg.get("pid", 10357)), 7)
        self.srs = {ref: SrGc(ref) for ref, state in pool.storage.srs.items()
                    if state.type in LVM_SR_TYPES | FILE_SR_TYPES}
        first = cfg.get("first_s")
        if self.interval > 0:
            for ref in self.srs:
                pool.clock.after(float(first) if first is not None else self.interval,
                                 self._periodic(ref))

    # -- triggering -------------------------------------------------------------------------------
    def _periodic(self, ref):
        def fire():
            if ref in self.srs and self.pool.store.exists("SR", ref):
                self.kick(ref, quiet=False)
                self.pool.clock.after(self.interval, fire)
        return fire

    def kick(self, sr_ref: str, quiet: bool = False) -> None:
        g = self.srs.get(sr_ref)
        if g is None:
            return
        uuid = self.pool.store.get("SR", sr_ref)["uuid"]
        self.pool.sm_log(f"Kicking SMGC@{uuid}..." if self.style == "modern" else "Kicking GC")
        if g.running:
            # the kicked process finds the running one and leaves; the running one picks up
            # the new work on its next pass
            g.again = True
            if self.pool.smlog is not None:
                self.pool.smlog.gc("Another GC instance already active, exiting",
                                   self.pool.clock.now, next(self._pids))
            return
        g.running = True
        self.pool.clock.spawn(self._run(g), on_done=lambda _: self._finished(g),
                              on_error=lambda exc: self._crashed(g, exc))

    def _finished(self, g):
        g.running = False
        if g.again and not g.stuck:
            g.again = False
            self.kick(g.ref)

    def _crashed(self, g, exc):
        """A bug in a GC step: log it as the GC would and keep the simulator running."""
        g.running = False
        self._task_end(g, "failure")
        sr = self.pool.store.get("SR", g.ref)["uuid"] if self.pool.store.exists("SR", g.ref) else g.ref
        logger.error("simulator: the GC of SR %s failed: %s: %s", sr, type(exc).__name__, exc,
                  exc_info=(type(exc), exc, exc.__traceback__))
        if self.pool.smlog is not None:
            self.pool.smlog.gc(f"gc: EXCEPTION {type(exc).__name__}, {exc}", self.pool.clock.now,
                               next(self._pids))

    def busy(self, sr_ref: str) -> bool:
        return self.srs[sr_ref].running

    # -- printouts ----------------------------------------------------------------------------------
    def vdi_str(self, ref: str, g: SrGc | None = None) -> str:
        storage = self.pool.storage
        v = storage.vhds[ref]
        rec = self.pool.store.get("VDI", ref)
        hidden = "*" if not rec["managed"] else ""
        kind = "RAW" if v.raw else "VHD"
        virt = fmt_bytes(v.virtual)
        if storage.srs[v.sr].is_lvm:
            active = v.attached > 0 or (g is not None and ref in g.active)
            flags = ("a" + ("o" if v.attached else "")) if active else "n"
            lv = fmt_bytes(storage.vdi_bytes(ref))
            if self.style == "legacy":
                return f"{hidden}{rec['uuid'][:8]}[{kind}]({virt}//{lv}|{flags})"
            vhd = "" if v.raw else fmt_bytes(v.vhd_size)
            return f"{hidden}{rec['uuid'][:8]}[{kind}]({virt}/{vhd}/{fmt_bytes(v.allocated)}/{lv}|{flags})"
        if self.style == "legacy":
            return f"{hidden}{rec['uuid'][:8]}({virt}/{fmt_bytes(v.vhd_size)})"
        return f"{hidden}{rec['uuid'][:8]}({virt}/{fmt_bytes(v.vhd_size)}/{fmt_bytes(v.allocated)})"

    def trees(self, g: SrGc) -> dict[str, list[str]]:
        """Root uuid -> printout lines of that VHD tree (depth-first, 8 + 4*depth spaces)."""
        storage = self.pool.storage
        refs = [r for r in self.pool.store.children("VDI", "SR", g.ref) if r in storage.vhds]
        kids: dict = {}
        for r in refs:
            kids.setdefault(storage.vhds[r].parent, []).append(r)
        uuid_of = lambda r: self.pool.store.get("VDI", r)["uuid"]  # noqa: E731
        out = {}

        def walk(r, depth, lines):
            lines.append(" " * (8 + 4 * depth) + self.vdi_str(r, g))
            for c in sorted(kids.get(r, []), key=uuid_of):
                walk(c, depth + 1, lines)

        for root in sorted(kids.get(None, []), key=uuid_of):
            lines: list[str] = []
            walk(root, 0, lines)
            out[uuid_of(root)] = lines
        return out

    def log_state(self, g: SrGc, log) -> None:
        rec = self.pool.store.get("SR", g.ref)
        trees = self.trees(g)
        n = sum(len(t) for t in trees.values())
        head = f"SR {rec['uuid'][:4]} ('{rec['name_label']}') ({n} VDIs in {len(trees)} VHD trees): "
        if g.last_trees == trees:
            log(head + "no changes")
        elif g.last_trees is None:
            log("\n".join([head] + [line for t in trees.values() for line in t]))
        else:
            changed = [u for u in trees if g.last_trees.get(u) != trees[u]]
            lines = [head + "showing only VHD trees that changed:"]
            for u in changed:
                lines.extend(trees[u])
            for u in g.last_trees:
                if u not in trees:
                    lines.append(f"Tree {u} gone")
            log("\n".join(lines))
        g.last_trees = trees

    def log_exception(self, log, tag: str, message: str, trace: list | None = None,
                      kind: str = "util.SMException") -> None:
        kind = kind if self.style == "legacy" else f"<class '{kind}'>"
        lines = [STAR_LINE, "         ***********************",
                 "         *  E X C E P T I O N  *", "         ***********************",
                 f"{tag}: EXCEPTION {kind}, {message}"]
        for line, func, code in _TRACE[self.style] if trace is None else trace:
            lines.append(f'  File "/opt/xensource/sm/cleanup.py", line {line}, in {func}')
            lines.append(f"    {code}")
        lines += ["", STAR_LINE]
        log("\n".join(lines))

    # -- sizes --------------------------------------------------------------------------------------
    def union_blocks(self, child: str) -> int:
        s = self.pool.storage
        c = s.vhds[child]
        p = s.vhds[c.parent]
        return p.blocks + c.blocks - min(c.overlap, c.blocks, p.blocks)

    def coalesce_need(self, child: str) -> int:
        s = self.pool.storage
        c = s.vhds[child]
        p = s.vhds[c.parent]
        data = self.union_blocks(child) * VHD_BLOCK
        if s.srs[c.sr].is_lvm:
            if p.raw:
                return 0
            return calc_size_vhd_lv(data) - s.vdi_bytes(c.parent)
        return data + calc_overhead_bitmap(data) + calc_overhead_empty(c.virtual) - p.vhd_size

    def leaf_needs(self, leaf: str) -> tuple[int, int]:
        """(snapshot-coalesce need, live leaf-coalesce need) in bytes."""
        s = self.pool.storage
        v = s.vhds[leaf]
        base = self.coalesce_need(leaf)
        if s.srs[v.sr].is_lvm:
            live = base - (s.vdi_bytes(leaf) - calc_size_lv(v.vhd_size))
            return base + calc_size_lv(v.vhd_size), live
        return base + calc_overhead_empty(v.virtual), base

    def speed(self, sr_ref: str) -> float | None:
        log = self.pool.storage.srs[sr_ref].speed_log[-SPEED_LOG_LEN:]
        return sum(log) / len(log) if log else None

    def can_live(self, leaf: str) -> bool:
        v = self.pool.storage.vhds[leaf]
        allocated = v.allocated
        if self.release.file_sizes_in_blocks and not self.pool.storage.srs[v.sr].is_lvm:
            allocated = v.blocks  # the allocated size read in 2 MIB blocks, compared as bytes
        return can_live_coalesce(allocated, self.speed(v.sr), forced=self._leaf_config(leaf) == "force")

    def duration(self, sr_ref: str, data_bytes: int, virtual: int) -> float:
        st = self.pool.storage.srs[sr_ref]
        return data_bytes / st.coalesce_speed + st.overhead_s_per_tib * virtual / TIB

    def _leaf_config(self, ref: str) -> str:
        return self.pool.store.get("VDI", ref)["other_config"].get("leaf-coalesce", "")

    def _set_leaf_config(self, ref: str, value: str | None, log) -> None:
        st = self.pool.store
        other = dict(st.get("VDI", ref)["other_config"])
        if value is None:
            other.pop("leaf-coalesce", None)
            st.set("VDI", ref, other_config=other)
            log(f"Removed leaf-coalesce from {self.vdi_str(ref)}")
        else:
            other["leaf-coalesce"] = value
            st.set("VDI", ref, other_config=other)
            log(f"Set leaf-coalesce = {value} for {self.vdi_str(ref)}")

    # -- candidates ---------------------------------------------------------------------------------
    def _children(self, ref):
        return [r for r, v in self.pool.storage.vhds.items() if v.parent == ref]

    def _height(self, ref, kids) -> int:
        return 1 + max((self._height(c, kids) for c in kids.get(ref, [])), default=0)

    def _sr_vhds(self, g):
        s = self.pool.storage
        refs = [r for r in self.pool.store.children("VDI", "SR", g.ref) if r in s.vhds]
        kids: dict = {}
        for r in refs:
            kids.setdefault(s.vhds[r].parent, []).append(r)
        return refs, kids

    def garbage(self, g) -> list[str]:
        refs, kids = self._sr_vhds(g)
        st, s = self.pool.store, self.pool.storage
        return sorted((r for r in refs if not st.get("VDI", r)["managed"] and not kids.get(r)
                       and not s.vhds[r].attached),
                      key=lambda r: st.get("VDI", r)["uuid"])

    def find_coalesce(self, g, failed, log, nospace) -> str | None:
        if self._switch(g.ref, "coalesce") == "false":
            log("Coalesce disabled for this SR")
            return None
        refs, kids = self._sr_vhds(g)
        st, s = self.pool.store, self.pool.storage
        root_of = {}
        for r in refs:
            top = r
            while s.vhds[top].parent:
                top = s.vhds[top].parent
            root_of[r] = top
        cands = [r for r in refs if not st.get("VDI", r)["managed"] and kids.get(r)
                 and s.vhds[r].parent and len(kids.get(s.vhds[r].parent, [])) == 1
                 and r not in failed]
        cands.sort(key=lambda r: (-self._height(root_of[r], kids), st.get("VDI", r)["uuid"]))
        self._task_coalescable(g, len(cands))
        free = s.free(g.ref)
        for r in cands:
            need = self.coalesce_need(r)
            if need <= free:
                log(f"Coalesce candidate: {self.vdi_str(r, g)} (tree height "
                    f"{self._height(root_of[r], kids)})")
                self._clear_vdi_no_space(r, log)
                return r
            log(f"No space to coalesce {self.vdi_str(r, g)} (free space: {free})")
            nospace.append(r)
            failed.add(r)
        return None

    def _leaf_candidates(self, g, failed, log) -> list[str]:
        refs, kids = self._sr_vhds(g)
        st, s = self.pool.store, self.pool.storage
        out = []
        for r in sorted(refs, key=lambda r: st.get("VDI", r)["uuid"]):
            v = s.vhds[r]
            if r in failed or not st.get("VDI", r)["managed"] or kids.get(r) or not v.parent:
                continue
            if st.get("VDI", v.parent)["managed"] or len(kids.get(v.parent, [])) != 1:
                continue
            rec = st.get("VDI", r)
            if rec["on_boot"] == "reset":
                log(f"Skipping reset-on-boot {self.vdi_str(r, g)}")
                continue
            if rec["allow_caching"]:
                log(f"Skipping allow_caching=true {self.vdi_str(r, g)}")
                continue
            if self._leaf_config(r) == "false":  # `offline` is informational only (cleanup.py)
                log(f"Leaf-coalesce disabled for {self.vdi_str(r, g)}")
                failed.add(r)
                continue
            out.append(r)
        return out

    def find_leaf(self, g, failed, log, nospace) -> str | None:
        for key, value, line in (("coalesce", "false", "Coalesce disabled for this SR"),
                                 ("leaf-coalesce", "false", "Leaf-coalesce disabled for this SR")):
            if self._switch(g.ref, key) == value:
                log(line)
                return None
        s = self.pool.storage
        free = s.free(g.ref)
        candidates = self._leaf_candidates(g, failed, log)
        self._task_coalescable(g, len(candidates))
        for r in candidates:
            snap_need, live_need = self.leaf_needs(r)
            need = snap_need
            if need > free and self.can_live(r):
                need = live_need
            if need <= free:
                log(f"Leaf-coalesce candidate: {self.vdi_str(r, g)}")
                self._clear_vdi_no_space(r, log)
                return r
            log(f"No space to leaf-coalesce {self.vdi_str(r, g)} (free space: {free})")
            nospace.append(r)
            failed.add(r)
            if live_need <= free:
                log("...but enough space if skip snap-coalesce")
                self._set_leaf_config(r, "offline", log)
        return None

    # -- the run ------------------------------------------------------------------------------------
    def _run(self, g: SrGc):
        pool = self.pool
        pid = next(self._pids)
        sr_uuid = pool.store.get("SR", g.ref)["uuid"]

        def log(message):
            if pool.smlog is not None:
                pool.smlog.gc(message, pool.clock.now, pid)

        g.runs += 1
        g.done = g.coalescable = 0
        log(f"=== SR {sr_uuid}: gc ===")
        if self._switch(g.ref, "gc") == "false":
            log("GC is disabled for this SR, abort")
            return None
        yield 1.0
        failed: set[str] = set()
        nospace: list[str] = []
        while True:
            did = yield from self._pass(g, log, failed, nospace)
            if did is None:
                break
            if did == "coalesce":
                g.done += 1
                self._task_update(g)
        with pool.lock:
            self._check_no_space(g, sr_uuid, nospace, log)
            self._task_end(g, "success")
        log("GC process exiting, no work left")
        with pool.lock:
            pool.storage.refresh(g.ref)
        return None

    def _pass(self, g: SrGc, log, failed: set[str], nospace: list[str]):
        """One round of the GC's loop: garbage, else one coalesce, else one leaf-coalesce.
        Returns "garbage" | "coalesce", or None when there was nothing it could do."""
        pool = self.pool
        with pool.lock:
            self.log_state(g, log)
            trash = self.garbage(g)
        if trash:
            with pool.lock:
                self._task_start(g)
                log(f"Found {len(trash)} VDIs for deletion:\n" +
                    "\n".join(f"  {self.vdi_str(r, g)}" for r in trash))
                for r in trash:
                    log(f"Deleting unlinked VDI {self.vdi_str(r, g)}")
                    pool.remove_vdi(r)
            yield 2.0
            return "garbage"
        with pool.lock:
            cand = self.find_coalesce(g, failed, log, nospace)
        if cand:
            ok = yield from self._take(g, cand, log, self._coalesce(g, cand, log))
            if not ok:
                failed.add(cand)
            return "coalesce"
        with pool.lock:
            leaf = self.find_leaf(g, failed, log, nospace)
        if leaf:
            yield from self._take(g, leaf, log, self._leaf_step(g, leaf, log, failed))
            log(f"Starting asynch srUpdate for SR {pool.store.get('SR', g.ref)['uuid']}")
            yield 1.0
            return "coalesce"
        if "gc-stuck" in pool.faults:
            yield from self._stuck(g, None, log)
        return None

    def _take(self, g: SrGc, ref: str, log, step):
        """Start the task, then run one coalesce step (the gc-stuck fault holds it forever)."""
        with self.pool.lock:
            self._task_start(g)
        if "gc-stuck" in self.pool.faults:
            yield from self._stuck(g, ref, log)
        return (yield from step)

    # -- the GC's XenAPI objects: its task, its no-space message and keys -------------------------
    def _switch(self, sr_ref: str, key: str) -> str | None:
        return self.pool.store.get("SR", sr_ref)["other_config"].get(key)

    def _task_start(self, g: SrGc) -> None:
        """The GC creates its task once it has work (sm 2.36 on, cleanup.py `create_task`)."""
        st = self.pool.store
        if g.task is not None or not self.release.gc_task:
            return
        uuid = st.get("SR", g.ref)["uuid"]
        g.task = st.add("task", dict(name_label=GC_TASK_NAME, name_description=f"Garbage collection for SR {uuid}",
                                     status="pending", progress=0.0, created=self.pool.clock.date(),
                                     resident_on=self.pool.master, other_config={"applies_to": g.ref}))
        self._task_update(g)

    def _task_update(self, g: SrGc) -> None:
        """progress = coalesces done / (done + candidates still found), as cleanup.py `update_task`."""
        st = self.pool.store
        total = g.done + g.coalescable
        if g.task is not None and st.exists("task", g.task) and total > 0:
            st.set("task", g.task, progress=round(g.done / total, 4))

    def _task_coalescable(self, g: SrGc, count: int) -> None:
        g.coalescable = count
        self._task_update(g)

    def _task_end(self, g: SrGc, status: str) -> None:
        """The GC sets its task's status when it exits; xapi destroys a finished task later."""
        st, ref = self.pool.store, g.task
        g.task = None
        if ref is None or not st.exists("task", ref):
            return
        st.set("task", ref, status=status, finished=self.pool.clock.date(), allowed_operations=[])

        def expire():
            if st.exists("task", ref):
                st.delete("task", ref)
        self.pool.clock.after(TASK_EXPIRY_S, expire)

    def _check_no_space(self, g: SrGc, sr_uuid: str, nospace: list[str], log) -> None:
        """At the end of a run (cleanup.py `check_no_space_candidates`, sm 3.2.11 on): a message
        and the SR and VDI keys while candidates lack space; the message goes once all fits."""
        if not self.release.no_space_message:
            return
        st = self.pool.store
        sm = st.get("SR", g.ref)["sm_config"]
        msg = sm.get("gc_no_space")
        if nospace:
            if msg is None or not st.exists("message", msg):
                self.pool.sm_log(f"Could not coalesce due to a lack of space in SR {sr_uuid}")
                msg = st.add("message", dict(
                    name="SM_GC_NO_SPACE", priority=3, cls="SR", obj_uuid=sr_uuid, timestamp=self.pool.clock.date(),
                    body=f"Unable to perform data coalesce due to a lack of space in SR {sr_uuid}"))
                st.set("SR", g.ref, sm_config={**sm, "gc_no_space": msg})
            for ref in nospace:
                if st.exists("VDI", ref):
                    self._set_sm_config(ref, "gc_no_space", msg)
                    log(f"Set gc_no_space = {msg} for {self.vdi_str(ref)}")
            return
        if msg is None:
            return
        if not self.release.leaves_no_space_key:
            st.set("SR", g.ref, sm_config={k: v for k, v in sm.items() if k != "gc_no_space"})
        if st.exists("message", msg):
            st.delete("message", msg)
        else:  # message.destroy of a message that is gone fails at the end of the run
            self.log_exception(log, "gc", f"['HANDLE_INVALID', 'message', '{msg}']", [], kind="XenAPI.Failure")

    def _clear_vdi_no_space(self, ref: str, log) -> None:
        """A candidate that fits loses its gc_no_space key (cleanup.py `clear_no_space_msg`)."""
        if self.pool.store.get("VDI", ref)["sm_config"].get("gc_no_space") is not None:
            self._set_sm_config(ref, "gc_no_space", None)
            log(f"Removed gc_no_space from {self.vdi_str(ref)}")

    def _set_sm_config(self, ref: str, key: str, value: str | None) -> None:
        st = self.pool.store
        sm = {k: v for k, v in st.get("VDI", ref)["sm_config"].items() if k != key}
        if value is not None:
            sm[key] = value
        st.set("VDI", ref, sm_config=sm)

    def _leaf_step(self, g: SrGc, leaf: str, log, failed: set[str]):
        """One leaf-coalesce; a failure is logged as the GC logs it and the leaf is skipped after."""
        try:
            yield from self._leaf_coalesce(g, leaf, log)
        except GcFailure as exc:
            self.log_exception(log, "leaf-coalesce", str(exc), exc.trace)
            if self.style == "legacy":
                log("Leaf-coalesce failed, skipping")
            else:
                log(f"Leaf-coalesce failed on {self.vdi_str(leaf, g)}, skipping")
            failed.add(leaf)

    def _stuck(self, g, ref, log):
        g.stuck = True
        if ref is not None:
            log(f"  Running VHD coalesce on {self.vdi_str(ref, g)}")
        while True:
            yield 3600.0

    def _coalesce(self, g, child: str, log):
        """Non-leaf coalesce of child into its parent; the child becomes garbage."""
        pool, s = self.pool, self.pool.storage
        with pool.lock:
            c = s.vhds[child]
            parent = c.parent
            p = s.vhds[parent]
            need = max(self.coalesce_need(child), 0)
            union = self.union_blocks(child)
            log(f"Coalescing {self.vdi_str(child, g)} -> {self.vdi_str(parent, g)}")
            g.active |= {child, parent}
            s.srs[g.ref].reserved += need
            log(f"  Running VHD coalesce on {self.vdi_str(child, g)}")
            seconds = self.duration(g.ref, c.allocated, c.virtual)
        yield max(seconds, 1.0)
        with pool.lock:
            s.srs[g.ref].reserved -= need
            if child not in s.vhds or parent not in s.vhds:
                g.active -= {child, parent}
                return False
            log(f"Num combined blocks = {union}")
            p.blocks = union
            log(f"  Coalesce verification on {self.vdi_str(child, g)}")
            for kid in self._children(child):
                log(f"  Relinking {self.vdi_str(kid, g)} from {self.vdi_str(child, g)} to "
                    f"{self.vdi_str(parent, g)}")
                s.vhds[kid].parent = parent
            log(f"Coalesced size = {fmt_bytes(p.vhd_size)}")
            if seconds > 0 and c.allocated:
                s.srs[g.ref].speed_log.append(c.allocated / max(seconds, 1e-6))
            g.active -= {child, parent}
            s.refresh(g.ref)
        yield 1.0
        return True

    def _leaf_coalesce(self, g, leaf: str, log):
        pool, s = self.pool, self.pool.storage
        rounds = 0
        try:
            while True:
                with pool.lock:
                    v = s.vhds[leaf]
                    if self.can_live(leaf):  # the 10 s rule holds for a detached leaf too (_coalesceLeaf)
                        break
                    snap_need, _ = self.leaf_needs(leaf)
                    if snap_need > s.free(g.ref):
                        log(f"No space to leaf-coalesce {self.vdi_str(leaf, g)} "
                            f"(free space: {s.free(g.ref)})")
                        return
                    log(f"Single-snapshotting {self.vdi_str(leaf, g)}")
                    # the leaf's data goes into a temporary snapshot that is coalesced into the
                    # parent while the VM writes to a fresh leaf
                    log(f"Coalescing {self.vdi_str(leaf, g)} -> {self.vdi_str(v.parent, g)}")
                    log(f"  Running VHD coalesce on {self.vdi_str(leaf, g)}")
                    prev = v.vhd_size
                    seconds = self.duration(g.ref, v.allocated, v.virtual)
                    s.srs[g.ref].reserved += snap_need
                yield max(seconds, 1.0)
                with pool.lock:
                    s.srs[g.ref].reserved -= snap_need
                    parent = s.vhds[leaf].parent
                    s.vhds[parent].blocks = self.union_blocks(leaf)
                    grown = int(v.growth * seconds // VHD_BLOCK)
                    v.blocks, v.overlap = grown, grown
                    s.refresh(g.ref)
                    rounds += 1
                    if v.vhd_size >= prev or rounds >= 10:
                        if self.style == "legacy":
                            log("Snapshot-coalesce did not help, abandoning attempts")
                            self._set_leaf_config(leaf, "offline", log)
                            return
                        uuid = pool.store.get("VDI", leaf)["uuid"]
                        raise GcFailure(f"VDI {uuid} could not be coalesced",
                                        _TRACE_NO_PROGRESS)
            yield from self._live(g, leaf, log)
        finally:
            with pool.lock:
                if pool.store.exists("VDI", leaf):
                    self._set_leaf_config(leaf, None, log)

    def _live(self, g, leaf: str, log, forced: bool = False):
        pool, s = self.pool, self.pool.storage
        with pool.lock:
            v = s.vhds[leaf]
            parent = v.parent
            log(f"Leaf-coalescing {self.vdi_str(leaf, g)} -> {self.vdi_str(parent, g)}")
            forced = forced or self._leaf_config(leaf) == "force"
            seconds = self.duration(g.ref, v.allocated, v.virtual)
            _, live_need = self.leaf_needs(leaf)
            reserve = max(live_need, 0)
            s.srs[g.ref].reserved += reserve
            g.active.add(parent)
            if forced:
                log("Leaf-coalesce forced, will not use timeout")
            self._set_sm_config(leaf, "paused", "true")  # the tapdisk is paused for the merge
            log(f"  Running VHD coalesce on {self.vdi_str(leaf, g)}")
        timeout = not forced and seconds > LIVE_TIMEOUT  # _doCoalesceLeaf: 10 s attached or not, unless forced
        yield LIVE_TIMEOUT if timeout else max(seconds, 1.0)
        with pool.lock:
            s.srs[g.ref].reserved -= reserve
            g.active.discard(parent)
            if timeout:
                self.log_state(g, log)
                self._unpause(g, leaf)
                raise GcFailure("Timed out")
            union = self.union_blocks(leaf)
            p = s.vhds[parent]
            log(f"Num combined blocks = {union}")
            log("*** FINISH LEAF-COALESCE")
            # the merged VHD takes the leaf's identity; the old parent goes away
            v.blocks, v.overlap, v.parent = union, p.overlap, p.parent
            for other in s.vhds.values():
                if other.parent == parent:
                    other.parent = leaf
            pool.remove_vdi(parent)
            if seconds > 0:
                s.srs[g.ref].speed_log.append(v.allocated / max(seconds, 1e-6))
            s.refresh(g.ref)
            self.log_state(g, log)
            log("*** finished leaf-coalesce successfully")
            self._unpause(g, leaf)

    def _unpause(self, g: SrGc, leaf: str) -> None:
        """After a live leaf-coalesce the tapdisk is unpaused and the key goes; with the
        unpause-fails fault (once) it stays, the GC posts "failed to unpause tapdisk" (priority 4)
        and raises, as cleanup.py `VDI.unpause` does."""
        st = self.pool.store
        if not st.exists("VDI", leaf):
            return
        if not self.pool.faults.unpause_fails(st.get("VDI", leaf)):
            self._set_sm_config(leaf, "paused", None)
            return
        uuid = st.get("VDI", leaf)["uuid"]
        st.add("message", dict(name="failed to unpause tapdisk", priority=4, cls="SR",
                               obj_uuid=st.get("SR", g.ref)["uuid"], timestamp=self.pool.clock.date(),
                               body=f"Failed to unpause tapdisk for VDI {uuid}, VMs using this tapdisk have "
                                    "lost access to the corresponding disk(s)"))
        raise GcFailure(f"Failed to unpause VDI {self.vdi_str(leaf, g)}")

    # -- the coalesce-leaf plugin (sm scripts/plugins/coalesce-leaf) --------------------------------
    def _sr_master(self, sr_ref: str) -> tuple[str | None, bool]:
        """(host, attached): the pool master for a shared SR, the PBD's host for a local one."""
        st = self.pool.store
        shared = st.get("SR", sr_ref)["shared"]
        for pbd in st.children("PBD", "SR", sr_ref):
            rec = st.get("PBD", pbd)
            if not shared or rec["host"] == self.pool.master:
                return rec["host"], bool(rec["currently_attached"])
        return None, False

    def _plugin_leaves(self, host: str, vm: str) -> tuple[dict[str, list[str]], list[str]]:
        """SR ref -> the VM's leaf-coalesceable VDIs there, and the plugin's notes."""
        st, s = self.pool.store, self.pool.storage
        by_sr: dict[str, list[str]] = {}
        for _, b in self.pool.disks(vm):
            sr = st.get("VDI", b["VDI"])["SR"]
            if st.get("SR", sr)["type"].startswith("lv"):
                by_sr.setdefault(sr, []).append(b["VDI"])
        found: dict[str, list[str]] = {}
        notes = []
        for sr, vdis in by_sr.items():
            master, attached = self._sr_master(sr)
            uuid = st.get("SR", sr)["uuid"]
            if not attached:
                notes.append(f"Unable to check VDIs on SR {uuid} because it is not attached")
                continue
            if master != host:
                notes.append(f"Unable to check VDIs on SR {uuid} because this host is not its master. "
                             f"Run on host {st.get('host', master)['uuid']} to check that SR")
                continue
            leaves = [r for r in vdis if r in s.vhds and s.vhds[r].parent and st.get("VDI", r)["managed"]
                      and len(self._children(s.vhds[r].parent)) == 1 and not self._children(r)]
            if leaves:
                found[sr] = leaves
        return found, notes

    def _wait_gc(self, sr: str):
        """Kick the SR's GC now and wait for it (cleanup.run_gc immediate, wait_for_completion)."""
        with self.pool.lock:
            self.kick(sr)
        while sr in self.srs and (self.srs[sr].running or self.srs[sr].again):
            yield 5.0

    def offline_leaf_coalesce(self, host: str, vm: str):
        """host.call_plugin coalesce-leaf leaf-coalesce: as the plugin does it (reference page)."""
        pool, st = self.pool, self.pool.store
        with pool.lock:
            found, notes = self._plugin_leaves(host, vm)
        if not found:
            if notes:
                raise ApiFailure("XENAPI_PLUGIN_FAILURE", "leaf-coalesce", "Exception",
                                 "VM has no leaf-coalesceable VDIs\nNote:\n" + "\n".join(notes))
            return "VM has no leaf-coalesceable VDIs"
        for sr in found:       # a regular GC first, to keep the downtime short, and wait for it
            yield from self._wait_gc(sr)
        suspended = False
        with pool.lock:
            if st.get("VM", vm)["power_state"] == "Running":
                if not pool.suspend_vm(vm):
                    raise ApiFailure("XENAPI_PLUGIN_FAILURE", "leaf-coalesce", "Exception", "Failed to suspend the VM")
                suspended = True
        yield 5.0
        try:
            for sr, leaves in found.items():
                with pool.lock:
                    for leaf in leaves:
                        if st.exists("VDI", leaf) and not self._leaf_config(leaf):  # an existing key is kept
                            other = dict(st.get("VDI", leaf)["other_config"], **{"leaf-coalesce": "force"})
                            st.set("VDI", leaf, other_config=other)
                yield from self._wait_gc(sr)
        finally:
            if suspended:
                with pool.lock:
                    pool.resume_vm(vm)
            for sr in found:   # cleans up after failures, as the plugin does
                with pool.lock:
                    self.kick(sr)
        return "Success" + ("\nNote:\n" + "\n".join(notes) if notes else "")
