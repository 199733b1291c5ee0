"""What the pool itself says about its garbage collector (GC), without the log: pure over DataFrames.

Inputs are the frames of `runbook_lib.xapi.inventory.Inventory` (`srs`, `vdis`, with the GC's
keys) and of `runbook_lib.xapi.health.PoolHealth` (`messages`, `tasks`); nothing here talks to
a pool. Each observation is a *finding* (a dict: kind, sr, vdi, verdict, detail, at); findings
make the verdict of their VDI and SR, as the SMlog diagnosis's verdicts do, and every row
carries its evidence and one next step.

Finding kinds (`FINDINGS`: kind -> the verdict it implies; "note" when it implies none):
- `gc-no-space` (stuck-no-space): SR sm-config `gc_no_space` names a live `SM_GC_NO_SPACE`
  message (sm 3.2.11 on), or VDIs of the SR still carry the key;
- `gc-no-space-stale` (note): SR `gc_no_space` names a message that is gone, no VDI has the key;
- `vdi-gc-no-space` (stuck-no-space): VDI sm-config `gc_no_space`: no room for its coalesce;
- `coalesce-error-message` (stuck-no-space or stuck-error; a note after 7 days): the messages
  "Run out of space while coalescing." / "I/O error while coalescing.";
- `tapdisk-unpause-failed` (note): a "failed to unpause tapdisk" message (priority 4) for a VDI
  no longer marked paused (while it is, `vdi-paused` tells it);
- `gc-running` (coalescing): a pending task "Garbage Collection" whose other-config
  `applies_to` is the SR;
- `vdi-paused`, `vdi-relinking`, `vdi-activating` (stuck-error; coalescing while the SR's GC
  runs, as the keys come and go during its work): the key left in the VDI's sm-config;
- `gc-disabled`, `coalesce-disabled`, `leaf-coalesce-disabled` (stuck-disabled where they stop
  waiting work, else a note): SR other-config `gc`, `coalesce`, `leaf-coalesce` = false;
- `vdi-leaf-coalesce-disabled`, `vdi-reset-on-boot`, `vdi-allow-caching` (stuck-disabled when
  the VDI's leaf-coalesce waits, else a note): VDI other-config `leaf-coalesce=false`,
  `on_boot=reset`, `allow_caching=true`: the GC skips its leaf-coalesce;
- `auto-scan` (note): SR other-config `auto-scan=true`: xapi scans it every host other-config
  `auto-scan-interval` seconds (30 by default), and each scan starts the GC;
- `chains-waiting` (coalescing): Xen Orchestra's count of VDIs to coalesce is above 0
  (runbook_lib.xo_count), with nothing worse to explain it;
- `unknown-parent` (note): a VDI's `vhd-parent` names no VDI of the pool (XO: "VDIs with
  invalid VHD parent").

Verdicts are the SMlog diagnosis's plus `stuck-disabled` (a switch stops the GC from doing
work that waits). Worst first: stuck-error, stuck-no-space, stuck-timeout, stuck-write-rate and
stuck-disabled, coalescing, healthy, unknown.

Row columns: SRs `sr, name, type, verdict, to_coalesce (XO's count), xo_warning, gc_running,
gc_progress, switches, findings, evidence, next_step`; VDIs `vdi, sr, name, verdict, pending
(leaf | coalesce | None), xo_length, findings, evidence, next_step`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from runbook_lib.chains import build_chains
from runbook_lib.schemas import POOL_DIAGNOSIS_SCHEMA
from runbook_lib.sizing import FILE_TYPES, LVM_TYPES
from runbook_lib.smlog.diagnose import SEVERITY as LOG_SEVERITY
from runbook_lib.smlog.diagnose import next_step as log_next_step
from runbook_lib.xo_count import xo_chains

SCHEMA = POOL_DIAGNOSIS_SCHEMA
# the SMlog verdicts' ranks, and the pool's own: a switch that stops the GC ranks with a write rate
# the GC cannot keep up with (work waits, nothing is damaged)
SEVERITY = dict(sorted({**LOG_SEVERITY, "stuck-disabled": LOG_SEVERITY["stuck-write-rate"]}.items(),
                       key=lambda kv: -kv[1]))
VERDICTS = tuple(SEVERITY)
# SR types the storage manager's GC works on (cleanup.py normalizeType, xcp-ng/sm included)
GC_SR_TYPES = frozenset(LVM_TYPES | FILE_TYPES | {"moosefs", "largeblock", "ocfsoiscsi", "ocfsohba", "linstor"})
RECENT_DAYS = 7
GC_TASK = "Garbage Collection"
NO_SPACE_MESSAGE = "SM_GC_NO_SPACE"
UNPAUSE_MESSAGE = "failed to unpause tapdisk"
COALESCE_ERROR_BODIES = {"Run out of space while coalescing.": "stuck-no-space",
                         "I/O error while coalescing.": "stuck-error"}
SR_SWITCHES = {"gc": "gc-disabled", "coalesce": "coalesce-disabled", "leaf_coalesce": "leaf-coalesce-disabled"}
SWITCH_KEY = {"gc-disabled": "gc", "coalesce-disabled": "coalesce", "leaf-coalesce-disabled": "leaf-coalesce"}
VDI_KEYS = {"paused": "vdi-paused", "relinking": "vdi-relinking", "activating": "vdi-activating"}
FINDINGS = {
    "gc-no-space": "stuck-no-space", "gc-no-space-stale": None, "vdi-gc-no-space": "stuck-no-space",
    "coalesce-error-message": "stuck-no-space", "tapdisk-unpause-failed": None, "gc-running": "coalescing",
    "vdi-paused": "stuck-error", "vdi-relinking": "stuck-error", "vdi-activating": "stuck-error",
    "gc-disabled": "stuck-disabled", "coalesce-disabled": "stuck-disabled",
    "leaf-coalesce-disabled": "stuck-disabled", "vdi-leaf-coalesce-disabled": "stuck-disabled",
    "vdi-reset-on-boot": "stuck-disabled", "vdi-allow-caching": "stuck-disabled", "auto-scan": None,
    "chains-waiting": "coalescing", "unknown-parent": None,
}
FINDING_KINDS = tuple(FINDINGS)
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_DIAGNOSE = "notebooks/01_diagnose_smlog.ipynb"
_SIZE = "notebooks/02_size_space.ipynb"


def severity(verdict: str | None) -> int:
    """A verdict's rank; a verdict this module does not know (a newer SMlog one) ranks as a
    stuck-* or as unknown by its name."""
    if verdict in SEVERITY:
        return SEVERITY[verdict]
    return SEVERITY["stuck-timeout"] if str(verdict).startswith("stuck-") else 0


def worst(verdicts) -> str:
    return max(verdicts, key=severity, default="unknown")


def _finding(kind: str, sr: str | None, vdi: str | None = None, *, detail: str = "",
             verdict: str | None = ..., at: Any = None) -> dict[str, Any]:
    stamp = None if at is None or pd.isna(at) else pd.Timestamp(at).isoformat()
    return {"kind": kind, "sr": sr, "vdi": vdi, "verdict": FINDINGS[kind] if verdict is ... else verdict,
            "detail": detail, "at": stamp}


# ---- findings from each source ------------------------------------------------------------------

def message_findings(messages: pd.DataFrame, vdis: pd.DataFrame, captured: pd.Timestamp) -> list[dict]:
    """Coalesce errors and failed unpauses the GC reported (SM_GC_NO_SPACE goes with its key)."""
    out: list[dict] = []
    if messages is None or messages.empty:
        return out
    paused = set(vdis.loc[vdis["paused"].notna(), "uuid"])
    sr_of = dict(zip(vdis["uuid"], vdis["sr"]))
    recent = captured - pd.Timedelta(days=RECENT_DAYS)
    for m in messages.itertuples(index=False):
        if m.name == UNPAUSE_MESSAGE:
            found = _UUID.search(str(m.body))
            vdi = found.group(0) if found else None
            if vdi not in paused:  # still paused: the vdi-paused finding tells it
                out.append(_finding("tapdisk-unpause-failed", sr_of.get(vdi, m.obj_uuid), vdi,
                                    detail=f"message '{m.name}' of {_when(m.timestamp)}", at=m.timestamp))
        elif m.body in COALESCE_ERROR_BODIES and m.cls == "SR":
            fresh = pd.notna(m.timestamp) and m.timestamp >= recent
            out.append(_finding("coalesce-error-message", m.obj_uuid,
                                detail=f"message '{m.name}': {m.body} ({_when(m.timestamp)})",
                                verdict=COALESCE_ERROR_BODIES[m.body] if fresh else None, at=m.timestamp))
    return out


def _when(stamp: Any) -> str:
    return "unknown time" if stamp is None or pd.isna(stamp) else pd.Timestamp(stamp).strftime("%Y-%m-%d %H:%M UTC")


def task_findings(tasks: pd.DataFrame) -> list[dict]:
    """Running GC tasks, one per SR (the GC of an SR runs once at a time)."""
    out = []
    if tasks is None or tasks.empty:
        return out
    running = tasks[(tasks["name"] == GC_TASK) & (tasks["status"] == "pending") & tasks["sr"].notna()]
    for t in running.itertuples(index=False):
        out.append(_finding("gc-running", t.sr, detail=f"task '{GC_TASK}' at {t.progress:.0%} "
                            f"(since {_when(t.created)})", at=t.created))
    return out


def no_space_findings(srs: pd.DataFrame, vdis: pd.DataFrame, messages: pd.DataFrame | None) -> list[dict]:
    """The GC's gc_no_space keys: on the SR (naming the message) and on each starved VDI."""
    out = []
    live = set() if messages is None or messages.empty else set(
        messages.loc[messages["name"] == NO_SPACE_MESSAGE, "ref"])
    starved = vdis[vdis["gc_no_space"].notna()]
    for v in starved.itertuples(index=False):
        out.append(_finding("vdi-gc-no-space", v.sr, v.uuid, detail="VDI sm-config gc_no_space"))
    for s in srs[srs["gc_no_space"].notna()].itertuples(index=False):
        has_vdis = bool((starved["sr"] == s.uuid).any())
        if messages is None:
            out.append(_finding("gc-no-space", s.uuid, detail="SR sm-config gc_no_space (messages not read)"))
        elif s.gc_no_space in live or has_vdis:
            state = "live" if s.gc_no_space in live else "gone, VDIs still marked"
            out.append(_finding("gc-no-space", s.uuid, detail=f"SR sm-config gc_no_space; message {NO_SPACE_MESSAGE} "
                                f"{state}"))
        else:
            out.append(_finding("gc-no-space-stale", s.uuid,
                                detail="SR sm-config gc_no_space names a message that no longer exists"))
    return out


def vdi_key_findings(vdis: pd.DataFrame, gc_running: set[str]) -> list[dict]:
    """paused / relinking / activating left in a VDI's sm-config (transient while the GC runs)."""
    out = []
    for key, kind in VDI_KEYS.items():
        for v in vdis[vdis[key].notna()].itertuples(index=False):
            busy = v.sr in gc_running
            out.append(_finding(kind, v.sr, v.uuid, detail=f"VDI sm-config {key}={getattr(v, key)}"
                                + (" while the SR's GC runs" if busy else " and no GC running"),
                                verdict="coalescing" if busy else FINDINGS[kind]))
    return out


def pending_work(vdis: pd.DataFrame) -> dict[str, str]:
    """VDI uuid -> "leaf" | "coalesce": the coalesce that waits for it (its parent is a hidden VHD
    with no other child), as the GC picks candidates."""
    if vdis.empty:
        return {}
    nodes = build_chains(vdis).nodes
    info = {u: (p, c, h) for u, p, c, h in zip(nodes["uuid"], nodes["parent"], nodes["children"], nodes["hidden"])}
    out = {}
    for uuid, (parent, children, hidden) in info.items():
        if parent is None or parent not in info:
            continue
        _, siblings, parent_hidden = info[parent]
        if siblings != 1 or not parent_hidden:
            continue
        if children == 0 and not hidden:
            out[uuid] = "leaf"
        elif children > 0 and hidden:
            out[uuid] = "coalesce"
    return out


def switch_findings(srs: pd.DataFrame, vdis: pd.DataFrame, pending: dict[str, str]) -> list[dict]:
    """Switches that stop the GC: stuck-disabled where they block waiting work, else a note."""
    out = []
    waits: dict[str, set[str]] = {}
    sr_of = dict(zip(vdis["uuid"], vdis["sr"]))
    for uuid, kind in pending.items():
        waits.setdefault(sr_of.get(uuid), set()).add(kind)
    for s in srs.itertuples(index=False):
        for column, kind in SR_SWITCHES.items():
            value = getattr(s, column)
            if value not in ("false", "no"):
                continue
            stops = {"leaf"} if kind == "leaf-coalesce-disabled" else {"leaf", "coalesce"}
            blocked = waits.get(s.uuid, set()) & stops
            out.append(_finding(kind, s.uuid, detail=f"SR other-config {SWITCH_KEY[kind]}={value}",
                                verdict=FINDINGS[kind] if blocked else None))
        if s.auto_scan == "true":
            out.append(_finding("auto-scan", s.uuid, detail="SR other-config auto-scan=true"))
    for v in vdis.itertuples(index=False):
        for kind, hit, what in (
                ("vdi-leaf-coalesce-disabled", v.leaf_coalesce == "false", "other-config leaf-coalesce=false"),
                ("vdi-reset-on-boot", v.on_boot == "reset", "on-boot=reset"),
                ("vdi-allow-caching", bool(v.allow_caching), "allow-caching=true")):
            if hit:
                out.append(_finding(kind, v.sr, v.uuid, detail=f"VDI {what}",
                                    verdict=FINDINGS[kind] if pending.get(v.uuid) == "leaf" else None))
    return out


def chain_findings(srs: pd.DataFrame, vdis: pd.DataFrame) -> tuple[list[dict], dict[str, Any]]:
    """Xen Orchestra's count per SR, and VDIs whose vhd-parent is unknown; returns the per-SR XoChains too."""
    out, per_sr = [], {}
    for s in srs.itertuples(index=False):
        xo = xo_chains(vdis, s.uuid, list(s.vdi_order) if isinstance(s.vdi_order, tuple) else None)
        per_sr[s.uuid] = xo
        if xo.to_coalesce:
            out.append(_finding("chains-waiting", s.uuid,
                                detail=f"{xo.to_coalesce} VDI(s) to coalesce (Xen Orchestra's count)"))
        for vdi, parent in xo.unknown_parent.items():
            out.append(_finding("unknown-parent", s.uuid, vdi, detail=f"vhd-parent {parent} is not a VDI of the pool"))
    return out, per_sr


# ---- next steps -----------------------------------------------------------------------------------

def finding_step(f: dict[str, Any], waiting: int = 0) -> str:
    """The next step for one finding (the SR's or the VDI's worst one decides the row's)."""
    sr, vdi, kind = f["sr"] or "<sr-uuid>", f["vdi"], f["kind"]
    vdi_text = vdi or "the VDI"
    if kind in ("gc-no-space", "vdi-gc-no-space") or (kind == "coalesce-error-message"
                                                      and f["verdict"] == "stuck-no-space"):
        return log_next_step("stuck-no-space", sr, vdi)
    simple = _SIMPLE_STEPS.get(kind)
    if simple is not None:
        return simple.format(sr=sr, vdi=vdi_text, detail=f["detail"], n=waiting)
    return _KEY_STEPS[kind].format(sr=sr, vdi=vdi_text)


_SIMPLE_STEPS = {
    "gc-no-space-stale": ("SR {sr}'s sm-config names an SM_GC_NO_SPACE message that no longer exists and no VDI "
                          "is marked short of space: the shortage has ended or the message was dismissed; "
                          "`xe sr-scan uuid={sr}` runs the GC again, which posts a new message if space still lacks"),
    "coalesce-error-message": ("the GC reported trouble while coalescing on SR {sr} ({detail}): check the storage "
                               "(`dmesg` on the SR master) and run " + _DIAGNOSE + " on the SR master's SMlog"),
    "tapdisk-unpause-failed": ("{detail}: the GC could not unpause the tapdisk of {vdi} and VMs using it lost "
                               "access to the disk for a while; the VDI is no longer marked paused: check that "
                               "the VM using it still writes to its disk"),
    "gc-running": ("nothing to do yet: the GC of SR {sr} is running ({detail}; the figure counts coalesce steps, "
                   "not bytes, and can go back); run this diagnosis again once it has finished"),
    "gc-disabled": "the GC is switched off on SR {sr} ({detail}) while {n} VDI(s) wait: "
                   "`xe sr-param-remove uuid={sr} param-name=other-config param-key=gc`, then `xe sr-scan uuid={sr}`",
    "coalesce-disabled": "coalescing is switched off on SR {sr} ({detail}) while {n} VDI(s) wait: "
                         "`xe sr-param-remove uuid={sr} param-name=other-config param-key=coalesce`, then "
                         "`xe sr-scan uuid={sr}`",
    "leaf-coalesce-disabled": "leaf-coalesce is switched off on SR {sr} ({detail}) while leaves wait: "
                              "`xe sr-param-remove uuid={sr} param-name=other-config param-key=leaf-coalesce`, "
                              "then `xe sr-scan uuid={sr}`",
    "vdi-leaf-coalesce-disabled": "the GC skips the leaf-coalesce of {vdi} ({detail}): "
                                  "`xe vdi-param-remove uuid={vdi} param-name=other-config param-key=leaf-coalesce`, "
                                  "then `xe sr-scan uuid={sr}`",
    "vdi-reset-on-boot": "the GC never leaf-coalesces {vdi} ({detail}: its changes are dropped at each boot); if "
                         "the disk should keep its data, `xe vdi-param-set uuid={vdi} on-boot=persist`, then "
                         "`xe sr-scan uuid={sr}`",
    "vdi-allow-caching": "the GC skips the leaf-coalesce of {vdi} ({detail}, IntelliCache): "
                         "`xe vdi-param-set uuid={vdi} allow-caching=false` lets it, then `xe sr-scan uuid={sr}`",
    "auto-scan": ("SR {sr} has other-config auto-scan=true: xapi scans it every auto-scan-interval seconds of the "
                  "host's other-config (30 by default) and each scan starts the GC; nothing to change for the GC"),
    "chains-waiting": ("{n} VDI(s) wait to coalesce on SR {sr} (the count Xen Orchestra shows) and the pool shows "
                       "no GC error: the SR master's SMlog says whether the GC gets through them: run " + _DIAGNOSE
                       + " with url and smlog_paths (or `runbook diagnose --url URL SMLOG`), and " + _SIZE
                       + " with sr_uuid=\"{sr}\" to see whether they fit in the free space"),
    "unknown-parent": ("the vhd-parent of {vdi} names a VDI the pool does not know (Xen Orchestra lists it under "
                       "'VDIs with invalid VHD parent'): `xe sr-scan uuid={sr}` refreshes it; if it stays, the "
                       "chain's parent VHD is missing: run " + _DIAGNOSE + " on the SR master's SMlog"),
}
_KEY_STEPS = {
    "vdi-paused": ("{vdi} is still marked paused (sm-config paused=true) with no GC running: a pause (snapshot or "
                   "leaf-coalesce) was never undone, so the VDI cannot be attached and a VM using it may be frozen. "
                   "On the host running that VM, `tap-ctl list | grep {vdi}` finds its tapdisk and "
                   "`tap-ctl unpause -p PID -m MINOR` resumes it; the key is cleared when the SR is attached again "
                   "on its master (sm-config is read-only in xe)"),
    "vdi-relinking": ("{vdi} is still marked relinking with no GC running: a GC was stopped while it relinked "
                      "this VDI after a coalesce, and the VDI cannot be attached meanwhile. The GC finishes the "
                      "relink on its next run: `xe sr-scan uuid={sr}`; if the key stays, run " + _DIAGNOSE
                      + " on the SR master's SMlog"),
    "vdi-activating": ("{vdi} is still marked activating with no GC running: an attach was interrupted, and the GC "
                       "gives up relinking a VDI that is activating (its coalesce fails every run). Run "
                       + _DIAGNOSE + " on the SMlog of the host that last attached it to see why"),
}


# ---- rows -----------------------------------------------------------------------------------------

@dataclass
class PoolDiagnosis:
    """Findings over one pool read; `to_json()` is the `runbook.pool.diagnosis/1` object."""

    sr_rows: list[dict]
    vdi_rows: list[dict]
    findings: list[dict]
    verdict: str
    next_step: str
    captured: str | None = None
    read: dict[str, bool] = field(default_factory=dict)
    source: dict[str, Any] = field(default_factory=dict)

    @property
    def srs(self) -> pd.DataFrame:
        return pd.DataFrame(self.sr_rows, columns=SR_COLUMNS)

    @property
    def vdis(self) -> pd.DataFrame:
        return pd.DataFrame(self.vdi_rows, columns=VDI_COLUMNS)

    @property
    def findings_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.findings, columns=["kind", "sr", "vdi", "verdict", "detail", "at"])

    def to_json(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "captured": self.captured, "source": self.source, "read": self.read,
                "verdict": self.verdict, "next_step": self.next_step, "srs": [dict(s) for s in self.sr_rows],
                "vdis": [dict(v) for v in self.vdi_rows], "findings": [dict(f) for f in self.findings]}


SR_COLUMNS = ["sr", "name", "type", "verdict", "to_coalesce", "xo_warning", "gc_running", "gc_progress",
              "switches", "findings", "evidence", "next_step"]
VDI_COLUMNS = ["vdi", "sr", "name", "verdict", "pending", "xo_length", "findings", "evidence", "next_step"]


def _pick(findings: list[dict], default: str) -> tuple[str, dict | None]:
    """The worst verdict among findings (notes do not count) and the finding that gives it."""
    rated = [f for f in findings if f["verdict"]]
    if not rated:
        return default, None
    top = max(rated, key=lambda f: SEVERITY[f["verdict"]])
    return top["verdict"], top


def _vdi_rows(vdis: pd.DataFrame, findings: list[dict], pending: dict[str, str], xo: dict) -> list[dict]:
    by_vdi: dict[str, list[dict]] = {}
    for f in findings:
        if f["vdi"]:
            by_vdi.setdefault(f["vdi"], []).append(f)
    names = dict(zip(vdis["uuid"], vdis["name"]))
    srs = dict(zip(vdis["uuid"], vdis["sr"]))
    rows = []
    for uuid in sorted(set(by_vdi) | set(pending)):
        mine = by_vdi.get(uuid, [])
        sr = srs.get(uuid) or next((f["sr"] for f in mine if f["sr"]), None)
        verdict, top = _pick(mine, "coalescing" if uuid in pending else "healthy")
        chains = xo.get(sr)
        step = finding_step(top) if top else (
            finding_step(_finding("chains-waiting", sr, uuid), 1) if uuid in pending else "nothing to do")
        rows.append({"vdi": uuid, "sr": sr, "name": names.get(uuid), "verdict": verdict,
                     "pending": pending.get(uuid), "xo_length": chains.lengths.get(uuid) if chains else None,
                     "findings": [f["kind"] for f in mine], "evidence": [f["detail"] for f in mine],
                     "next_step": step})
    rows.sort(key=lambda r: (-SEVERITY[r["verdict"]], r["sr"] or "", r["vdi"]))
    return rows


def _sr_row(s: Any, mine: list[dict], vdi_rows: list[dict], xo: Any) -> dict:
    verdict, top = _pick(mine, "healthy")
    vdi_worst = next((v for v in vdi_rows if v["sr"] == s.uuid), None)  # rows are sorted worst first
    if vdi_worst is not None and SEVERITY[vdi_worst["verdict"]] > SEVERITY[verdict]:
        verdict, step = vdi_worst["verdict"], vdi_worst["next_step"]
    else:
        step = finding_step(top, xo.to_coalesce if xo else 0) if top else "nothing to do: no VDI waits to coalesce"
    running = next((f for f in mine if f["kind"] == "gc-running"), None)
    switches = {key: getattr(s, col) for col, key in (("gc", "gc"), ("coalesce", "coalesce"),
                                                    ("leaf_coalesce", "leaf-coalesce"), ("auto_scan", "auto-scan"))
                if isinstance(getattr(s, col), str)}
    return {"sr": s.uuid, "name": s.name, "type": s.type, "verdict": verdict,
            "to_coalesce": xo.to_coalesce if xo else 0, "xo_warning": bool(xo and xo.warning),
            "gc_running": running is not None, "gc_progress": _progress(running),
            "switches": switches, "findings": [f["kind"] for f in mine], "evidence": [f["detail"] for f in mine],
            "next_step": step}


def _progress(finding: dict | None) -> float | None:
    if finding is None:
        return None
    match = re.search(r"at (\d+)%", finding["detail"])
    return int(match.group(1)) / 100 if match else None


def diagnose_pool(srs: pd.DataFrame, vdis: pd.DataFrame, messages: pd.DataFrame | None = None,
                  tasks: pd.DataFrame | None = None, *, captured: Any = None, sr: str | None = None,
                  source: dict | None = None) -> PoolDiagnosis:
    """Findings and verdicts per SR and VDI. `messages`/`tasks` None: not read (a saved
    inventory); `sr` keeps one SR (full uuid or prefix)."""
    now = pd.Timestamp(captured) if captured is not None else pd.Timestamp.now(tz="UTC")
    now = now.tz_localize("UTC") if now.tzinfo is None else now
    gc_srs = srs[srs["type"].isin(GC_SR_TYPES)]
    if sr:
        gc_srs = gc_srs[gc_srs["uuid"].str.startswith(sr)]
    keep = set(gc_srs["uuid"])
    sr_of = dict(zip(vdis["uuid"], vdis["sr"]))
    pending = {u: k for u, k in pending_work(vdis).items() if sr_of.get(u) in keep}
    tasks_found = task_findings(tasks)
    running = {f["sr"] for f in tasks_found}
    chains, xo = chain_findings(gc_srs, vdis)
    findings = [f for f in (tasks_found + no_space_findings(gc_srs, vdis, messages)
                            + message_findings(messages, vdis, now) + vdi_key_findings(vdis, running)
                            + switch_findings(gc_srs, vdis, pending) + chains) if f["sr"] in keep]
    vdi_rows = _vdi_rows(vdis, findings, pending, xo)
    sr_rows = [_sr_row(s, [f for f in findings if f["sr"] == s.uuid and not f["vdi"]], vdi_rows, xo.get(s.uuid))
               for s in gc_srs.itertuples(index=False)]
    sr_rows.sort(key=lambda r: (-SEVERITY[r["verdict"]], r["sr"]))
    top = sr_rows[0] if sr_rows else None
    verdict = top["verdict"] if top else "unknown"
    step = top["next_step"] if top else "no SR the GC works on in this pool"
    return PoolDiagnosis(sr_rows=sr_rows, vdi_rows=vdi_rows, findings=findings, verdict=verdict, next_step=step,
                         captured=now.isoformat(), source=dict(source or {}),
                         read={"messages": messages is not None, "tasks": tasks is not None})
