"""Event records -> a verdict per VDI, per SR and overall, each with evidence and a next step.

Verdicts (fixed vocabulary, worst first):

| verdict | meaning |
|---|---|
| `stuck-error` | the last coalesce, relink or leaf-coalesce of a VDI failed with an error, or the GC itself failed |
| `stuck-no-space` | the last coalesce failed, or was not tried, for lack of free space in the SR |
| `stuck-timeout` | the last live leaf-coalesce timed out (`Timed out`) |
| `stuck-write-rate` | the snapshot-coalesce tracker gave up: the leaf is written faster than the GC merges it |
| `coalescing` | the GC has work in hand: a coalesce started and has not ended, or candidates are queued |
| `healthy` | the GC runs and its coalesces finish |
| `unknown` | no GC evidence in the log for this SR |

`stuck-error` covers a `CommandException` from vhd-util, a corrupt image, a QCOW2 chain attached
on two hosts, a journal naming a VDI that is gone, and the GC process failing (`gc: EXCEPTION
...` then `* * * * * SR <uuid>: ERROR`). `stuck-write-rate` is `Aborted coalesce` with its
reason (`Max iterations (N) exceeded`, `No progress made for N iterations`, `Unexpected bump in
size`) and `VDI <uuid> could not be coalesced`: the chain is not damaged, the next step is an
offline coalesce or a quieter moment. A coalesce cut short by a stop of the GC (`Signalled 15`
after SIGTERM) is `coalescing`: the GC takes it up again at its next run.

Per SR, `coalesce_rate_bps` is the merge rate the log shows (`runbook_lib.smlog.rate`: the
child's bytes over the time from start to end of each finished coalesce, the mean of the last
few; None when none finished); notebook 02 uses it for durations.

A failure is one *episode*: the exception block, `Leaf-coalesce failed, skipping` and any
`No space ...` line of the same VDI and GC process within a minute count once. A later
success, or the VDI's deletion, clears a VDI. A failure while the GC relinks a child to its
new parent counts for the child too. A GC failure that names no VDI (an excerpt that starts at
the exception, a failure of the GC process itself) makes its SR stuck until a later GC
process coalesces on that SR or finds no work. Success lines do not hide a failure that
follows them. Benign noise never counts: `Ignoring exception for LV check` (cbtlog), lock
contention (`lock: tried lock`, `Failed to lock ... blocked by PID`), `Another GC instance
already active`, exceptions of storage operations other than the GC's.

A coalesce seen only from its `Running ... coalesce on X` line (a `grep -i coales` excerpt)
is `coalescing`: a `Coalesced size` after it is kept as the VDI's `coalesced_size`, but without
its `Coalescing X -> Y` start the log does not show the coalesce end.

Every verdict names the release family (`release`, `families.py`) the log's lines show, per
SR from the hosts that logged its lines; `release_markers` lists the lines that tell it.
A QCOW2 VDI's sizes are read and shown with its `format`, and its `sizing_note` says it is not
sized: the sizing formulas are VHD-only.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from runbook_lib.schemas import DIAGNOSIS_SCHEMA
from runbook_lib.smlog import families
from runbook_lib.smlog.rate import coalesce_rates
from runbook_lib.smlog.read import SMlogRead
from runbook_lib.smlog.tree import CHAIN_COLUMNS, chain_rows, link_ids

SCHEMA = DIAGNOSIS_SCHEMA
SEVERITY = {"stuck-error": 6, "stuck-no-space": 5, "stuck-timeout": 4, "stuck-write-rate": 3, "coalescing": 2,
            "healthy": 1, "unknown": 0}
VERDICTS = tuple(SEVERITY)
SIZE_NOTEBOOK = "notebooks/02_size_space.ipynb"
DIAGNOSE_NOTEBOOK = "notebooks/01_diagnose_smlog.ipynb"
NOT_SIZED = "not sized (QCOW2: the sizing formulas are VHD-only for now)"

_START = {"coalesce_start", "leaf_coalesce_start"}
_RUNNING = {"coalesce_running"}
_DONE = {"coalesce_done", "leaf_coalesce_done"}
_FAIL = {"coalesce_failed", "leaf_coalesce_failed", "timeout", "exception", "insufficient_space", "no_progress",
         "coalesce_aborted", "chain_multi_host", "interrupted_leaf_missing", "gc_error"}
_QUEUED = {"coalesce_candidate", "leaf_coalesce_config"}
_TRACK = {"coalesce_tracker", "relink"}
_GC_EVIDENCE = {"gc_start", "gc_exit", "sr_tree", "garbage_found", "gc_kick", "gc_already_running",
                "gc_quiet_period", "vdi_delete", "relink", "sr_scan", "gc_stop", "coalesce_progress",
                "coalesce_tracker"} | _START | _RUNNING | _DONE | _FAIL | _QUEUED
_WALK_KINDS = _START | _RUNNING | _DONE | _FAIL | _QUEUED | _TRACK | {"vdi_delete", "gc_exit"}
# exception contexts of the GC's own work; other SM exceptions (vdi_clone, ...) are not GC failures
_GC_CONTEXTS = ("coalesce", "leaf-coalesce", "gc", "_doCoalesceLeaf", "_finishInterruptedCoalesceLeaf",
                "This exception has occured", "pauseVDIs")
_CAUSE_VERDICT = {"error": "stuck-error", "no-space": "stuck-no-space", "timeout": "stuck-timeout",
                  "write-rate": "stuck-write-rate", "interrupted": "coalescing"}
_TRACKER_REASONS = ("Max iterations", "No progress made", "Unexpected bump")
EPISODE_SECONDS = 60
_LOOP_COLUMNS = ["kind", "vdi", "sr", "time", "pid", "process", "message", "virtual_size", "size", "lv_size",
                 "flags", "format", "coalesced_size", "exc_type", "exc_message", "exc_context", "file", "line"]
EVIDENCE_KEEP = 6


def _iso(value: Any) -> str | None:
    return None if value is None or pd.isna(value) else pd.Timestamp(value).isoformat()


def _where(rec: Any) -> str:
    return f"{rec.file}:{rec.line}"


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _cause(rec: Any) -> str | None:
    """timeout | no-space | write-rate | interrupted | error for a failure event; None when the line does not say."""
    kind = rec.kind
    if kind in ("timeout", "no_progress", "coalesce_aborted", "insufficient_space"):
        return {"timeout": "timeout", "insufficient_space": "no-space"}.get(kind, "write-rate")
    if kind in ("chain_multi_host", "interrupted_leaf_missing", "gc_error"):
        return "error"
    if kind not in ("exception", "coalesce_failed"):
        return None
    text = f"{_text(rec.exc_type)} {_text(rec.exc_message)} {_text(rec.message)}".lower()
    for words, cause in (("timed out", "timeout"), ("could not be coalesced", "write-rate"),
                         ("signalled", "interrupted"), ("due to signal", "interrupted"), ("space", "no-space")):
        if words in text:
            return cause
    return "error" if kind == "exception" else None


def _gc_failure(rec: Any) -> bool:
    """A failure of the GC's own work (not of another storage operation logged nearby)."""
    if rec.kind != "exception":
        return True
    return rec.process in ("SMGC", None) or _text(rec.exc_context) in _GC_CONTEXTS


_BUSY_WORDS = ("lock", "pause", "busy", "in use")


def next_step(verdict: str, sr: str | None, vdi: str | None = None, detail: str | None = None,
              fmt: str | None = None) -> str:
    """One concrete thing to do, naming the notebook and its parameters (and the CLI's, for sizing).

    `detail` is the last failure's text: a lock or pause failure is another operation in the
    way, not a damaged chain; a failed relink, a chain attached on two hosts, an interrupted
    GC or a missing VDI of an old journal each get their own advice. `fmt` is the VDI's image
    format: a QCOW2 VDI is not sized (the sizing formulas are VHD-only).
    """
    sr_text = sr or "<sr-uuid>"
    vdi_text = vdi or "the VDI"
    special = _special_step(verdict, sr_text, vdi_text, (detail or "").lower(), detail)
    if special:
        return special
    return _STEPS.get(verdict, _step_unknown)(sr_text, vdi_text, detail, fmt)


def _sizing(sr_text: str, vdi_text: str, fmt: str | None, what: str) -> str:
    """Where the numbers come from: notebook 02 for a VHD; a QCOW2 image is not sized yet."""
    if fmt == "qcow2":
        return (f"{vdi_text} is a QCOW2 image and is {NOT_SIZED}; make room by moving VMs off SR {sr_text}, "
                f"then `xe sr-scan uuid={sr_text}`")
    return f"run {SIZE_NOTEBOOK} with sr_uuid=\"{sr_text}\" (or `runbook size --sr {sr_text}`) to {what}"


def _special_step(verdict: str, sr_text: str, vdi_text: str, low: str, detail: str | None) -> str | None:
    """Advice that depends on what the failure was rather than on the verdict alone."""
    if verdict == "coalescing" and ("signalled" in low or "due to signal" in low):
        return (f"the GC was stopped in the middle of the coalesce of {vdi_text} ({detail}; the stop comes from a "
                f"host shutdown, an SR detach or `Stopping SMGC@`); it takes the coalesce up again at its next run: "
                f"`xe sr-scan uuid={sr_text}`, then run {DIAGNOSE_NOTEBOOK} again on a newer SMlog in an hour")
    if verdict != "stuck-error" or not low:
        return None
    if "relink" in low:
        return (f"the GC merged the data but could not point the child at its new parent ({detail}); it retries "
                f"from its journal at every run. On the host check the child's parent link with `vhd-util query "
                f"-p -n <child path>` and that the new parent is there and active (LVM SR: `lvs "
                f"VG_XenStorage-{sr_text}`; a parent LV left inactive by a host reboot makes the relink fail), "
                f"then `xe sr-scan uuid={sr_text}` and run {DIAGNOSE_NOTEBOOK} again; nothing here calls for "
                f"`vhd-util repair`")
    if "activated more than once" in low:
        return (f"the QCOW2 chain of {vdi_text} is attached on more than one host, and the GC cannot coalesce "
                f"it while that lasts: find the other attachment (`xe vbd-list vdi-uuid=<uuid>` for the chain's "
                f"leaves: a VM or a backup job on another host), detach it, then `xe sr-scan uuid={sr_text}`")
    if "not found, aborting" in low:
        return (f"an interrupted leaf-coalesce left a journal for {vdi_text}, which no longer exists, and every "
                f"GC scan of SR {sr_text} stops on it: check the VDI is gone (`xe vdi-list uuid=<uuid>`, `ls "
                f"/var/run/sr-mount/{sr_text}/ | grep <uuid>`), move its journal "
                f"/var/run/sr-mount/{sr_text}/leaf_<uuid> out of the SR directory (keep a copy), then "
                f"`xe sr-scan uuid={sr_text}`")
    if any(w in low for w in _BUSY_WORDS):
        return (f"the coalesce of {vdi_text} fails because another operation holds the SR or VDI ({detail}): "
                f"let running backups, snapshots or migrations finish, then `xe sr-scan uuid={sr_text}` and run "
                f"{DIAGNOSE_NOTEBOOK} again on the new SMlog; if it keeps failing, look for a stuck task with "
                f"`xe task-list`")
    if vdi_text != "the VDI":
        return None
    if low.startswith("the gc"):
        return (f"the GC of SR {sr_text} stops with an error before it finishes ({detail}): read the exception "
                f"and its traceback at the evidence lines; `xe sr-scan uuid={sr_text}` and run "
                f"{DIAGNOSE_NOTEBOOK} again on a newer SMlog; if it repeats and names a VHD, check that VHD with "
                f"`vhd-util check -n <path>`")
    return (f"a coalesce on SR {sr_text} failed ({detail}) and this excerpt does not say on which VDI: the "
            f"`Coalescing`/`Leaf-coalescing` line before the evidence lines in the full SMlog names it; run "
            f"{DIAGNOSE_NOTEBOOK} on the whole /var/log/SMlog (with its rotations) for the VDI and its next step")


def _step_timeout(sr_text: str, vdi_text: str, detail: str | None, fmt: str | None) -> str:
    return (f"the live leaf-coalesce of {vdi_text} keeps timing out (the VM writes faster than the GC "
            f"merges): " + _sizing(sr_text, vdi_text, fmt, "size an offline coalesce or a move of the VM off the "
                                                            "SR and back"))


def _step_write_rate(sr_text: str, vdi_text: str, detail: str | None, fmt: str | None) -> str:
    why = f" ({detail})" if detail else ""
    return (f"the leaf {vdi_text} is written faster than snapshot-coalesce can merge it{why}: the chain is not "
            f"damaged, do not run `vhd-util repair`. Coalesce it offline: with the VM suspended, through the "
            f"coalesce-leaf plugin on the SR master (`xe host-call-plugin host-uuid=<SR master> "
            f"plugin=coalesce-leaf fn=leaf-coalesce args:vm_uuid=<vm-uuid>`, LVM SRs), or with the VM halted, "
            f"`xe vdi-param-set uuid=<vdi-uuid> other-config:leaf-coalesce=force` and `xe sr-scan "
            f"uuid={sr_text}`; or let the GC retry at a quieter moment (fewer writes), then `xe sr-scan "
            f"uuid={sr_text}`. Space for the offline coalesce: "
            + _sizing(sr_text, vdi_text, fmt, "check the space the offline coalesce needs"))


def _step_no_space(sr_text: str, vdi_text: str, detail: str | None, fmt: str | None) -> str:
    return (f"SR {sr_text} lacks the free space to coalesce {vdi_text}: "
            + _sizing(sr_text, vdi_text, fmt, "see how much is needed and which VMs to move"))


def _step_error(sr_text: str, vdi_text: str, detail: str | None, fmt: str | None) -> str:
    if fmt == "qcow2":
        return (f"the chain of {vdi_text} looks damaged: on the host run `qemu-img check <path>` on it (LVM SR: "
                f"/dev/VG_XenStorage-{sr_text}/QCOW2-<vdi-uuid>; file SR: /var/run/sr-mount/{sr_text}/"
                f"<vdi-uuid>.qcow2); repair only after a backup, then `xe sr-scan uuid={sr_text}`")
    return (f"the chain of {vdi_text} looks damaged: on the host run `vhd-util check -n <path>` on it "
            f"(LVM SR: /dev/VG_XenStorage-{sr_text}/VHD-<vdi-uuid>; file SR: "
            f"/var/run/sr-mount/{sr_text}/<vdi-uuid>.vhd); repair with `vhd-util repair` only after a "
            f"backup, then `xe sr-scan uuid={sr_text}`")


def _step_coalescing(sr_text: str, vdi_text: str, detail: str | None, fmt: str | None) -> str:
    return (f"nothing to do yet: the GC is working on SR {sr_text}; run {DIAGNOSE_NOTEBOOK} again on a "
            f"newer SMlog in an hour to confirm progress")


def _step_healthy(sr_text: str, vdi_text: str, detail: str | None, fmt: str | None) -> str:
    return "nothing to do: the GC runs and its coalesces finish"


def _step_unknown(sr_text: str, vdi_text: str, detail: str | None, fmt: str | None) -> str:
    return (f"no GC activity in this log: run `xe sr-scan uuid={sr_text}`, wait a few minutes, then run "
            f"{DIAGNOSE_NOTEBOOK} again on the host's current /var/log/SMlog")


_STEPS = {"stuck-timeout": _step_timeout, "stuck-write-rate": _step_write_rate, "stuck-no-space": _step_no_space,
          "stuck-error": _step_error, "coalescing": _step_coalescing, "healthy": _step_healthy}


@dataclass
class _VdiState:
    vdi: str
    sr: str | None = None
    attempts: int = 0
    failures: int = 0
    open: bool = False
    open_by: str = ""  # start (a Coalescing/Leaf-coalescing line) | running (only its Running line)
    open_pid: Any = None
    outcome: str | None = None  # ok | fail
    cause: str | None = None
    queued: bool = False
    first_failure: Any = None
    last_failure: Any = None
    episode: tuple | None = None  # (pid, time) of the current failure episode
    detail: str | None = None  # the last failure, for the advice
    evidence: list[str] = field(default_factory=list)
    sizes: dict = field(default_factory=dict)
    format: str | None = None
    coalesced_size: int | None = None


def _match_sr(value: Any, wanted: str) -> bool:
    if not isinstance(value, str) or not value:
        return False
    return value.startswith(wanted) or wanted.startswith(value)


@dataclass
class Diagnosis:
    """Findings over one `SMlogRead`; `to_json()` is the `runbook.smlog.diagnosis/1` object."""

    read: SMlogRead
    sr_filter: str | None
    vdi_rows: list[dict]
    sr_rows: list[dict]
    failure_times: list[Any]
    verdict: str
    next_step: str
    records: pd.DataFrame
    release: str = families.UNKNOWN
    release_markers: list[dict] = field(default_factory=list)

    # -- DataFrames for notebooks ----------------------------------------------------------
    @property
    def vdis(self) -> pd.DataFrame:
        cols = ["vdi", "sr", "verdict", "format", "attempts", "failures", "virtual_size", "size", "lv_size", "flags",
                "coalesced_size", "first_failure", "last_failure", "detail", "release", "sizing_note", "evidence",
                "next_step"]
        return pd.DataFrame(self.vdi_rows, columns=cols)

    @property
    def srs(self) -> pd.DataFrame:
        return pd.DataFrame(self.sr_rows, columns=["sr", "name", "verdict", "vdis", "trees", "attempts", "failures",
                                                   "first_failure", "last_failure", "coalesce_rate_bps", "detail",
                                                   "release", "evidence", "next_step"])

    @property
    def exceptions(self) -> pd.DataFrame:
        cols = ["type", "message", "context", "count", "first", "last"]
        r = self.records
        exc = r[r["exc_type"].notna()]
        if exc.empty:
            return pd.DataFrame(columns=cols)
        key = [exc["exc_type"], exc["exc_message"].fillna(""), exc["exc_context"].fillna("")]
        g = exc.groupby(key, sort=False, dropna=False)["time"]
        out = g.agg(["size", "min", "max"]).reset_index()
        out.columns = cols
        return out.sort_values("count", ascending=False, kind="stable").reset_index(drop=True)

    @property
    def timeline(self) -> pd.DataFrame:
        """Per hour: GC runs, coalesce attempts, finished coalesces, failures (episodes)."""
        r = self.records[self.records["time"].notna()]
        series = {
            "gc_runs": r.loc[r["kind"] == "gc_start", "time"],
            "attempts": r.loc[r["kind"].isin(_START), "time"],
            "coalesces": r.loc[r["kind"].isin(_DONE), "time"],
            "failures": pd.Series(pd.to_datetime([t for t in self.failure_times if t is not None and not pd.isna(t)],
                                                 utc=True), dtype="datetime64[ns, UTC]"),
        }
        counts = {name: s.dt.floor("h").value_counts() for name, s in series.items()}
        table = pd.DataFrame(counts).fillna(0).astype(int).sort_index()
        if not table.empty:
            full = pd.date_range(table.index.min(), table.index.max(), freq="h")
            table = table.reindex(full, fill_value=0)
        table.index.name = "hour"
        return table

    @property
    def chains(self) -> pd.DataFrame:
        """The last printed VHD (or COW) tree of each SR as a chain table (plus `sr`, `sr_name`, `uuid`)."""
        r = self.records
        trees = r[(r["kind"] == "sr_tree") & r["tree"].fillna("").astype(bool)]
        rows = []
        links = self.read.links
        for sr, group in trees.groupby("sr", sort=False, dropna=False):
            last = group.iloc[-1]
            for row in chain_rows(last["tree"]):
                row.update(sr=sr, sr_name=last["sr_name"], uuid=links.get(row["vdi"]))
                rows.append(row)
        return pd.DataFrame(rows, columns=["sr", "sr_name", *CHAIN_COLUMNS, "uuid"])

    def to_json(self) -> dict:
        r = self.read
        exc = self.exceptions
        return {
            "schema": SCHEMA,
            "files": [{k: f[k] for k in ("path", "lines", "bytes", "truncated")} for f in r.files],
            "lines": int(r.lines), "parsed": int(r.parsed), "unparsed": int(r.unparsed),
            "first": _iso(r.first), "last": _iso(r.last),
            "events": {k: int(v) for k, v in r.events.items()},
            "exceptions": [{"type": str(e.type), "message": str(e.message), "context": str(e.context),
                            "count": int(e.count), "first": _iso(e.first), "last": _iso(e.last)}
                           for e in exc.itertuples(index=False)],
            "srs": [dict(s) for s in self.sr_rows],
            "vdis": [dict(v) for v in self.vdi_rows],
            "verdict": self.verdict,
            "next_step": self.next_step,
            "release": self.release,
            "release_markers": [dict(m) for m in self.release_markers],
            "sr_filter": self.sr_filter,
            "base_year": r.base_year,
        }


def diagnose(read: SMlogRead, sr: str | None = None) -> Diagnosis:
    """Verdicts for every SR and VDI in `read` (only SR `sr`, full or short id, when given)."""
    records = read.records
    if sr:
        records = records[records["sr"].map(lambda v: _match_sr(v, sr))]
    walk = _Walk(_canonical_ids(records))
    relevant = records.loc[records["kind"].isin(_WALK_KINDS), _LOOP_COLUMNS]
    for rec in relevant.astype(object).itertuples(index=False):  # object columns iterate fast
        walk.step(rec)

    release, sr_release = _releases(read, records)
    vdi_rows = [_vdi_row(st, sr_release.get(st.sr, release)) for st in walk.states.values()]
    vdi_rows.sort(key=lambda v: (-SEVERITY[v["verdict"]], -v["failures"], v["vdi"]))
    sr_rows = _sr_rows(records, vdi_rows, walk, sr_release)
    rates = coalesce_rates(records)
    for row in sr_rows:
        rate = rates.get(row["sr"])
        row["coalesce_rate_bps"] = round(rate) if rate else None
    if sr and not sr_rows:
        sr_rows = [{"sr": sr, "name": None, "verdict": "unknown", "vdis": None, "trees": None, "attempts": 0,
                    "failures": 0, "first_failure": None, "last_failure": None, "evidence": [],
                    "coalesce_rate_bps": None, "detail": None, "release": release,
                    "next_step": next_step("unknown", sr)}]
    verdict, step = _overall(vdi_rows, sr_rows, walk.sr_fail.get(None))
    markers = [{**m, "release": families.label(m["family"]) if m["family"] else None}
               for m in read.markers]
    return Diagnosis(read=read, sr_filter=sr or None, vdi_rows=vdi_rows, sr_rows=sr_rows,
                     failure_times=walk.failure_times, verdict=verdict, next_step=step, records=records,
                     release=release, release_markers=markers)


def _canonical_ids(records: pd.DataFrame) -> dict[str, str]:
    """Short VDI ids (printouts) -> the one full uuid in these records that starts with each: a VDI
    printed as `67558d6a` and named in full by an exception is one VDI."""
    ids = set(records["vdi"].dropna()) | set(records["target_vdi"].dropna())
    fulls = [v for v in ids if isinstance(v, str) and len(v) == 36]
    if not fulls:
        return {}
    return link_ids((v for v in ids if isinstance(v, str) and len(v) < 36), fulls)


def _releases(read: SMlogRead, records: pd.DataFrame) -> tuple[str, dict[str, str]]:
    """The release family the whole log shows, and each SR's (from the hosts that logged its lines)."""
    by_host: dict[Any, set[str]] = defaultdict(set)
    for m in read.markers:
        by_host[m["host"]].add(m["marker"])
    overall = families.label(families.family_of(m["marker"] for m in read.markers))
    seen: dict[str, set[str]] = defaultdict(set)
    pairs = records.loc[records["sr"].notna(), ["sr", "host"]].drop_duplicates()
    for sr, host in pairs.itertuples(index=False, name=None):
        seen[sr] |= by_host.get(host if isinstance(host, str) else None, set())
    return overall, {sr: families.label(families.family_of(names)) for sr, names in seen.items()}


class _Walk:
    """The event records in log order -> per-VDI state, SR-level outcomes, failure times."""

    def __init__(self, ids: dict[str, str] | None = None):
        self.ids = ids or {}
        self.states: dict[str, _VdiState] = {}
        self.failure_times: list[Any] = []
        self.sr_space: dict[str, str] = {}  # SR-level no-space / success, latest wins
        self.last_failure_at: dict[str, Any] = {}
        self.sr_evidence: dict[str, list[str]] = {}  # SR-level no-space lines of SRs without VDI findings
        self.sr_fail: dict[str | None, dict] = {}  # GC failures that name no VDI, by SR (None: no SR either)
        self.relinking: dict[Any, str] = {}  # pid -> the child it is relinking
        self.relink_lines: dict[str, Any] = {}  # child -> its last relink record
        self.tracker: dict[Any, dict] = {}  # pid -> what the snapshot-coalesce tracker said
        self.vdi_failed: dict[Any, Any] = {}  # pid -> time of its last failure counted on a VDI

    def _id(self, value: Any) -> str | None:
        return self.ids.get(value, value) if isinstance(value, str) and value else None

    def step(self, rec: Any) -> None:
        kind = rec.kind
        vdi = self._id(rec.vdi)
        if kind in _TRACK:
            self._track(rec, vdi)
        elif kind == "gc_exit":
            if rec.message.startswith("No work"):
                self._clear_sr_fail(rec)
        elif vdi is None:
            self._sr_line(rec)
        elif kind == "vdi_delete":
            self._deleted(rec, vdi)
        else:
            st = self._state(rec, vdi)
            if kind in _QUEUED:
                st.queued = True
            elif kind in _START or kind in _RUNNING:
                self._started(rec, st)
            elif kind in _DONE:
                self._done(rec, st)
            else:
                self._failure(rec, st)
                self._relink_failed(rec, st)

    def _track(self, rec: Any, vdi: str | None) -> None:
        """Relink lines (which child is being relinked) and the snapshot-coalesce tracker's lines."""
        if rec.kind == "relink":
            if vdi:
                self.relinking[rec.pid] = vdi
                self.relink_lines[vdi] = rec  # its printout: the child's sizes, should the relink fail
            return
        note = self.tracker.setdefault(rec.pid, {"iterations": 0, "reason": None})
        message = rec.message
        if message.startswith("Iteration: "):
            note["iterations"] += 1
        elif message.startswith("Performed "):
            digits = "".join(c for c in message if c.isdigit())
            note["iterations"] = int(digits) if digits else note["iterations"]
        elif message.startswith(_TRACKER_REASONS):
            note["reason"] = message

    def _sr_line(self, rec: Any) -> None:
        """A line naming no VDI: an SR's lack of space, a finished coalesce, a failure of the GC."""
        if rec.kind == "insufficient_space":
            if isinstance(rec.sr, str):
                self._sr_no_space(rec)
        elif rec.kind in _DONE:
            if isinstance(rec.sr, str):
                self.sr_space[rec.sr] = "ok"
            self._clear_sr_fail(rec)
        elif rec.kind in _FAIL and _gc_failure(rec):
            if (rec.kind == "gc_error" and rec.pid in self.vdi_failed
                    and _same_episode((rec.pid, self.vdi_failed[rec.pid]), rec.pid, rec.time)):
                return  # the GC's closing line for a failure already counted on its VDI
            self._sr_failure(rec)

    def _sr_no_space(self, rec: Any) -> None:
        self.sr_space[rec.sr] = "fail"
        last = self.last_failure_at.get(rec.sr)
        if (last is None or pd.isna(rec.time) or pd.isna(last)
                or (rec.time - last).total_seconds() > EPISODE_SECONDS):
            self.failure_times.append(rec.time)  # not the SR-level echo of a failure just counted
            if not any(v.sr == rec.sr for v in self.states.values()):
                self.sr_evidence.setdefault(rec.sr, []).append(_where(rec))
        self.last_failure_at[rec.sr] = rec.time

    def _sr_failure(self, rec: Any) -> None:
        """A GC failure that names no VDI: the SR (or the log, when no SR is known) is stuck."""
        key = rec.sr if isinstance(rec.sr, str) else None
        fail = self.sr_fail.get(key)
        if fail is None:
            fail = self.sr_fail[key] = {"cause": None, "detail": None, "evidence": [], "count": 0, "first": None,
                                        "last": None, "pid": rec.pid, "episode": None}
        t = rec.time
        if not _same_episode(fail["episode"], rec.pid, t):
            fail["count"] += 1
            fail["cause"] = fail["detail"] = None  # the latest episode says what is wrong now
            self.failure_times.append(t)
        fail["episode"], fail["pid"] = (rec.pid, t), rec.pid
        if fail["first"] is None and not pd.isna(t):
            fail["first"] = t
        if not pd.isna(t):
            fail["last"] = t
        cause = _cause(rec)
        if cause and fail["cause"] in (None, "error"):
            fail["cause"] = cause
        text = _failure_text(rec)
        if text and rec.kind == "exception":
            fail["detail"] = f"the GC failed: {text}" if _text(rec.exc_context) == "gc" else text
        elif text and fail["detail"] is None:
            fail["detail"] = text
        fail["evidence"].append(_where(rec))
        self._relink_failed(rec, None)

    def _clear_sr_fail(self, rec: Any) -> None:
        """A later GC process that coalesces on the SR, or finds no work there, clears its SR-level failure."""
        key = rec.sr if isinstance(rec.sr, str) else None
        fail = self.sr_fail.get(key)
        if fail is not None and fail["pid"] != rec.pid:
            del self.sr_fail[key]

    def _deleted(self, rec: Any, vdi: str) -> None:
        """A deleted VDI is no longer stuck (a coalesced parent, a removed disk)."""
        gone = self.states.get(vdi)
        if gone is not None and gone.outcome == "fail":
            gone.outcome, gone.open, gone.cause = "ok", False, None
            gone.evidence.append(_where(rec))

    def _state(self, rec: Any, vdi: str) -> _VdiState:
        st = self.states.get(vdi)
        if st is None:
            st = self.states[vdi] = _VdiState(vdi)
        if isinstance(rec.sr, str):
            st.sr = rec.sr
        if not pd.isna(rec.virtual_size) or not pd.isna(rec.lv_size):
            st.sizes = {"virtual_size": rec.virtual_size, "size": rec.size, "lv_size": rec.lv_size, "flags": rec.flags}
        if isinstance(rec.format, str):
            st.format = rec.format
        return st

    def _started(self, rec: Any, st: _VdiState) -> None:
        """A coalesce starts; its `Running ... coalesce` line right after is the same coalesce."""
        running = rec.kind in _RUNNING
        self.relinking.pop(rec.pid, None)
        if rec.kind == "leaf_coalesce_start":
            self.tracker.pop(rec.pid, None)
        if running and st.open and st.open_pid == rec.pid:
            return
        st.attempts += 1
        st.open, st.outcome, st.episode = True, None, None
        st.open_by, st.open_pid = ("running" if running else "start"), rec.pid
        st.evidence.append(_where(rec))

    def _done(self, rec: Any, st: _VdiState) -> None:
        self.relinking.pop(rec.pid, None)
        if not pd.isna(rec.coalesced_size):
            st.coalesced_size = int(rec.coalesced_size)
        st.evidence.append(_where(rec))
        if st.open and st.open_by == "running" and rec.kind == "coalesce_done":
            return  # only its Running line is in the log: the merge ran, the end is not shown
        st.open, st.outcome, st.cause, st.episode = False, "ok", None, None
        if isinstance(rec.sr, str):
            self.sr_space[rec.sr] = "ok"
        self._clear_sr_fail(rec)

    def _failure(self, rec: Any, st: _VdiState, attempt: bool = True) -> None:
        """A failure event: one episode per VDI, GC process and minute."""
        cause = _cause(rec)
        t = rec.time
        if not _same_episode(st.episode, rec.pid, t):
            if not st.open and attempt and st.open_pid != rec.pid:  # after its done line: the relink failed
                st.attempts += 1
            st.failures += 1
            st.cause = st.detail = None  # the latest episode says what is wrong now
            self.failure_times.append(t)
            if st.first_failure is None and not pd.isna(t):
                st.first_failure = t
        if not pd.isna(t):
            st.last_failure = t
        st.episode = (rec.pid, t)
        if isinstance(st.sr, str):
            self.last_failure_at[st.sr] = t
        st.open, st.outcome = False, "fail"
        if cause and (st.cause is None or st.cause == "error" and cause != "error"):
            st.cause = cause
        text = _failure_text(rec)
        if cause == "write-rate":
            note = self.tracker.get(rec.pid) or {}
            its = f" after {note['iterations']} rounds" if note.get("iterations") else ""
            st.detail = f"{note['reason']}{its}" if note.get("reason") else (st.detail or text)
        elif text and st.detail is None:  # the episode's first words: later lines echo them
            st.detail = text
        st.evidence.append(_where(rec))
        self.vdi_failed[rec.pid] = t

    def _relink_failed(self, rec: Any, st: _VdiState | None) -> None:
        """A failure while the process relinks a child: the child's parent link is what failed."""
        child = self.relinking.get(rec.pid)
        if child is None or (st is not None and child == st.vdi) or _text(rec.exc_context) == "gc":
            return
        if rec.kind not in ("exception", "coalesce_failed", "leaf_coalesce_failed"):
            return
        kid = self._state_of(child, st.sr if st is not None else (rec.sr if isinstance(rec.sr, str) else None))
        self._failure(rec, kid, attempt=False)
        kid.cause = "error"
        what = _failure_text(rec)
        if what:
            kid.detail = f"relink to its new parent failed: {what}"
            if st is not None:
                st.detail = f"relinking {child} failed: {what}"
        elif not (kid.detail or "").startswith("relink"):
            kid.detail = "relink to its new parent failed"
        if rec.kind != "exception":
            self.relinking.pop(rec.pid, None)  # the GC skips this coalesce and moves on

    def _state_of(self, vdi: str, sr: str | None) -> _VdiState:
        """A relinked child's state: sizes from its relink line, which names no failure itself."""
        st = self.states.get(vdi)
        if st is None:
            line = self.relink_lines.get(vdi)
            st = self._state(line, vdi) if line is not None else self.states.setdefault(vdi, _VdiState(vdi))
            st.sr = st.sr or sr
        return st


def _same_episode(episode: tuple | None, pid: Any, t: Any) -> bool:
    return (episode is not None and episode[0] == pid
            and (pd.isna(t) or pd.isna(episode[1]) or abs((t - episode[1]).total_seconds()) <= EPISODE_SECONDS))


def _failure_text(rec: Any) -> str | None:
    """What went wrong, in a few words: the exception, or the line itself for failures without one."""
    if isinstance(rec.exc_type, str):
        return f"{rec.exc_type}: {_text(rec.exc_message)}"
    if rec.kind in ("chain_multi_host", "interrupted_leaf_missing", "coalesce_aborted", "no_progress", "gc_error"):
        return rec.message
    if rec.kind == "coalesce_failed" and not rec.message.endswith("skipping"):
        return rec.message
    return None


def _verdict(st: _VdiState) -> str:
    if st.outcome == "fail":
        return _CAUSE_VERDICT.get(st.cause or "error", "stuck-error")
    if st.open or (st.outcome is None and st.queued):
        return "coalescing"
    return "healthy"


def _vdi_row(st: _VdiState, release: str) -> dict:
    verdict = _verdict(st)
    ev = list(dict.fromkeys(st.evidence))
    if len(ev) > 2 * EVIDENCE_KEEP:
        ev = ev[:EVIDENCE_KEEP] + ev[-EVIDENCE_KEEP:]
    sizes = st.sizes
    detail = st.detail if verdict.startswith("stuck") or st.outcome == "fail" else None
    return {
        "vdi": st.vdi, "sr": st.sr, "verdict": verdict, "attempts": st.attempts, "failures": st.failures,
        "virtual_size": _int(sizes.get("virtual_size")), "size": _int(sizes.get("size")),
        "lv_size": _int(sizes.get("lv_size")),
        "flags": sizes.get("flags") if isinstance(sizes.get("flags"), str) else None,
        "first_failure": _iso(st.first_failure), "last_failure": _iso(st.last_failure),
        "evidence": ev, "next_step": next_step(verdict, st.sr, st.vdi, detail, st.format),
        "format": st.format, "coalesced_size": st.coalesced_size, "detail": detail, "release": release,
        "sizing_note": NOT_SIZED if st.format == "qcow2" else None,
    }


def _fail_verdict(fail: dict | None) -> str | None:
    return None if fail is None else _CAUSE_VERDICT.get(fail["cause"] or "error", "stuck-error")


def _overall(vdi_rows: list[dict], sr_rows: list[dict], anonymous: dict | None = None) -> tuple[str, str]:
    """The verdict and next step of the whole log: the worst VDI or SR (rows sorted worst first);
    a VDI whose SR the log never names still counts, and so does a GC failure naming neither."""
    worst_sr = sr_rows[0] if sr_rows else None
    worst_vdi = vdi_rows[0] if vdi_rows else None
    candidates = [(r["verdict"], r["next_step"]) for r in (worst_vdi, worst_sr) if r]
    loose = _fail_verdict(anonymous)
    if loose:
        candidates.append((loose, next_step(loose, None, None, anonymous["detail"])))
    if not candidates:
        return "unknown", next_step("unknown", None)
    return max(candidates, key=lambda c: SEVERITY[c[0]])  # the first of equals: the VDI's


def _int(value: Any) -> int | None:
    return None if value is None or pd.isna(value) else int(value)


def _sr_rows(records: pd.DataFrame, vdi_rows: list[dict], walk: _Walk, release: dict[str, str]) -> list[dict]:
    """One row per SR: the worst of its VDIs, or what the SR-level lines and GC runs show."""
    rows = []
    with_sr = records[records["sr"].notna()]
    for sr, group in with_sr.groupby("sr", sort=False):
        trees = group[group["kind"] == "sr_tree"]
        last_tree = trees.iloc[-1] if not trees.empty else None
        mine = [v for v in vdi_rows if v["sr"] == sr]
        verdict, evidence, worst, fail = _sr_verdict(sr, group, mine, walk)
        failures = [v for v in mine if v["failures"]]
        detail = fail["detail"] if fail is not None and worst is None else (worst or {}).get("detail")
        rows.append({
            "sr": sr,
            "name": None if last_tree is None else last_tree["sr_name"],
            "verdict": verdict,
            "vdis": None if last_tree is None else _int(last_tree["n_vdis"]),
            "trees": None if last_tree is None else _int(last_tree["n_trees"]),
            "attempts": sum(v["attempts"] for v in mine),
            "failures": (sum(v["failures"] for v in mine) + len(walk.sr_evidence.get(sr, []))
                         + (fail["count"] if fail else 0)),
            "first_failure": min((v["first_failure"] for v in failures if v["first_failure"]),
                                 default=_iso(fail["first"]) if fail else None),
            "last_failure": max((v["last_failure"] for v in failures if v["last_failure"]),
                                default=_iso(fail["last"]) if fail else None),
            "evidence": evidence,
            "detail": detail,
            "release": release.get(sr, families.UNKNOWN),
            "next_step": next_step(verdict, sr, worst["vdi"] if worst else None, detail,
                                   worst["format"] if worst else None),
        })
    rows.sort(key=lambda s: (-SEVERITY[s["verdict"]], s["sr"]))
    return rows


def _sr_verdict(sr: str, group: pd.DataFrame, mine: list[dict], walk: _Walk) -> tuple[str, list, dict | None, Any]:
    """(verdict, evidence, the VDI row behind it or None, the SR-level failure behind it or None)."""
    if mine:
        verdict = max((v["verdict"] for v in mine), key=SEVERITY.get)
    else:
        verdict = "healthy" if group["kind"].isin(_GC_EVIDENCE).any() else "unknown"
    if walk.sr_space.get(sr) == "fail" and SEVERITY[verdict] < SEVERITY["stuck-no-space"]:
        verdict = "stuck-no-space"
    fail = walk.sr_fail.get(sr)
    loose = _fail_verdict(fail)
    if loose and SEVERITY[loose] > SEVERITY[verdict]:
        return loose, fail["evidence"][-EVIDENCE_KEEP:], None, fail
    worst = next((v for v in mine if v["verdict"] == verdict), None)
    if worst is not None:
        return verdict, worst["evidence"], worst, fail
    if walk.sr_evidence.get(sr):
        return verdict, walk.sr_evidence[sr][-EVIDENCE_KEEP:], None, fail
    gc = group[group["kind"].isin(_GC_EVIDENCE)].tail(3)  # a healthy or unknown SR: where its GC last ran
    return verdict, [f"{f}:{n}" for f, n in zip(gc["file"], gc["line"])], None, fail
