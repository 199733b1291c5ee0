"""Event records -> a verdict per VDI, per SR and overall, each with evidence and a next step.

Verdicts (fixed vocabulary, worst first):

| verdict | meaning |
|---|---|
| `stuck-error` | the last coalesce of a VDI failed with an error (`CommandException` from vhd-util, a corrupt VHD) |
| `stuck-no-space` | the last coalesce failed, or was not tried, for lack of free space in the SR |
| `stuck-timeout` | the last live leaf-coalesce timed out (`Timed out`, or no progress over several rounds) |
| `coalescing` | the GC has work in hand: a coalesce started and has not ended yet, or candidates are queued |
| `healthy` | the GC runs and its coalesces finish |
| `unknown` | no GC evidence in the log for this SR |

Per SR, `coalesce_rate_bps` is the merge rate the log shows (`runbook_lib.smlog.rate`: the
child's bytes over the time from start to end of each finished coalesce, the mean of the last
few; None when none finished); notebook 02 uses it for durations.

A failure is one *episode*: the exception block, `Leaf-coalesce failed, skipping` and any
`No space ...` line of the same VDI and GC process within a minute count once. A later
success, or the VDI's deletion, clears a VDI. Benign noise never counts: `Ignoring exception for LV check` (cbtlog),
lock contention, `Another GC instance already active`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from runbook_lib.schemas import DIAGNOSIS_SCHEMA
from runbook_lib.smlog.rate import coalesce_rates
from runbook_lib.smlog.read import SMlogRead
from runbook_lib.smlog.tree import CHAIN_COLUMNS, chain_rows

SCHEMA = DIAGNOSIS_SCHEMA
SEVERITY = {"stuck-error": 5, "stuck-no-space": 4, "stuck-timeout": 3, "coalescing": 2, "healthy": 1, "unknown": 0}
VERDICTS = tuple(SEVERITY)
SIZE_NOTEBOOK = "notebooks/02_size_space.ipynb"
DIAGNOSE_NOTEBOOK = "notebooks/01_diagnose_smlog.ipynb"

_START = {"coalesce_start", "leaf_coalesce_start"}
_DONE = {"coalesce_done", "leaf_coalesce_done"}
_FAIL = {"coalesce_failed", "leaf_coalesce_failed", "timeout", "exception", "insufficient_space", "no_progress"}
_QUEUED = {"coalesce_candidate", "leaf_coalesce_config"}
_GC_EVIDENCE = {"gc_start", "gc_exit", "sr_tree", "garbage_found", "gc_kick", "gc_already_running",
                "gc_quiet_period", "vdi_delete", "relink", "sr_scan"} | _START | _DONE | _FAIL | _QUEUED
EPISODE_SECONDS = 60
_LOOP_COLUMNS = ["kind", "vdi", "sr", "time", "pid", "virtual_size", "size", "allocated", "lv_size", "flags",
                 "exc_type", "exc_message", "file", "line"]
EVIDENCE_KEEP = 6


def _iso(value: Any) -> str | None:
    return None if value is None or pd.isna(value) else pd.Timestamp(value).isoformat()


def _where(rec: Any) -> str:
    return f"{rec.file}:{rec.line}"


def _cause(rec: Any) -> str | None:
    """timeout | no-space | error for a failure event; None when the line does not say."""
    kind = rec.kind
    if kind in ("timeout", "no_progress"):
        return "timeout"
    if kind == "insufficient_space":
        return "no-space"
    if kind == "exception":
        text = f"{rec.exc_type} {rec.exc_message}".lower()
        if "timed out" in text:
            return "timeout"
        if "space" in text:
            return "no-space"
        return "error"
    return None


_BUSY_WORDS = ("lock", "pause", "busy", "in use")


def next_step(verdict: str, sr: str | None, vdi: str | None = None, detail: str | None = None) -> str:
    """One concrete thing to do, naming the notebook and its parameters (and the CLI's, for sizing).

    `detail` is the last failure's exception text: a lock or pause failure is another
    operation in the way, not a damaged chain, and gets different advice.
    """
    sr_text = sr or "<sr-uuid>"
    vdi_text = vdi or "the VDI"
    if verdict == "stuck-error" and detail and any(w in detail.lower() for w in _BUSY_WORDS):
        return (f"the coalesce of {vdi_text} fails because another operation holds the SR or VDI ({detail}): "
                f"let running backups, snapshots or migrations finish, then `xe sr-scan uuid={sr_text}` and run "
                f"{DIAGNOSE_NOTEBOOK} again on the new SMlog; if it keeps failing, look for a stuck task with "
                f"`xe task-list`")
    if verdict == "stuck-timeout":
        return (f"the live leaf-coalesce of {vdi_text} keeps timing out (the VM writes faster than the GC "
                f"merges): run {SIZE_NOTEBOOK} with sr_uuid=\"{sr_text}\" (or `runbook size --sr {sr_text}`) to "
                f"size an offline coalesce or a move of the VM off the SR and back")
    if verdict == "stuck-no-space":
        return (f"SR {sr_text} lacks the free space to coalesce {vdi_text}: run {SIZE_NOTEBOOK} with "
                f"sr_uuid=\"{sr_text}\" (or `runbook size --sr {sr_text}`) to see how much is needed and which "
                f"VMs to move")
    if verdict == "stuck-error":
        return (f"the chain of {vdi_text} looks damaged: on the host run `vhd-util check -n <path>` on it "
                f"(LVM SR: /dev/VG_XenStorage-{sr_text}/VHD-<vdi-uuid>; file SR: "
                f"/var/run/sr-mount/{sr_text}/<vdi-uuid>.vhd); repair with `vhd-util repair` only after a "
                f"backup, then `xe sr-scan uuid={sr_text}`")
    if verdict == "coalescing":
        return (f"nothing to do yet: the GC is working on SR {sr_text}; run {DIAGNOSE_NOTEBOOK} again on a "
                f"newer SMlog in an hour to confirm progress")
    if verdict == "healthy":
        return "nothing to do: the GC runs and its coalesces finish"
    return (f"no GC activity in this log: run `xe sr-scan uuid={sr_text}`, wait a few minutes, then run "
            f"{DIAGNOSE_NOTEBOOK} again on the host's current /var/log/SMlog")


@dataclass
class _VdiState:
    vdi: str
    sr: str | None = None
    attempts: int = 0
    failures: int = 0
    open: bool = False
    outcome: str | None = None  # ok | fail
    cause: str | None = None
    queued: bool = False
    first_failure: Any = None
    last_failure: Any = None
    episode: tuple | None = None  # (pid, time) of the current failure episode
    detail: str | None = None  # the last exception, for the advice
    evidence: list[str] = field(default_factory=list)
    sizes: dict = field(default_factory=dict)


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

    # -- DataFrames for notebooks ----------------------------------------------------------
    @property
    def vdis(self) -> pd.DataFrame:
        cols = ["vdi", "sr", "verdict", "attempts", "failures", "virtual_size", "size", "lv_size", "flags",
                "first_failure", "last_failure", "evidence", "next_step"]
        return pd.DataFrame(self.vdi_rows, columns=cols)

    @property
    def srs(self) -> pd.DataFrame:
        return pd.DataFrame(self.sr_rows, columns=["sr", "name", "verdict", "vdis", "trees", "attempts", "failures",
                                                   "first_failure", "last_failure", "coalesce_rate_bps",
                                                   "evidence", "next_step"])

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
        """The last printed VHD tree of each SR as a chain table (plus `sr`, `sr_name`, `uuid`)."""
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
            "sr_filter": self.sr_filter,
            "base_year": r.base_year,
        }


def diagnose(read: SMlogRead, sr: str | None = None) -> Diagnosis:
    """Verdicts for every SR and VDI in `read` (only SR `sr`, full or short id, when given)."""
    records = read.records
    if sr:
        records = records[records["sr"].map(lambda v: _match_sr(v, sr))]
    walk = _Walk()
    relevant = records.loc[records["kind"].isin(_START | _DONE | _FAIL | _QUEUED | {"vdi_delete"}), _LOOP_COLUMNS]
    for rec in relevant.astype(object).itertuples(index=False):  # object columns iterate fast
        walk.step(rec)

    vdi_rows = [_vdi_row(st) for st in walk.states.values()]
    vdi_rows.sort(key=lambda v: (-SEVERITY[v["verdict"]], -v["failures"], v["vdi"]))
    sr_rows = _sr_rows(records, vdi_rows, walk.sr_space, walk.sr_evidence)
    rates = coalesce_rates(records)
    for row in sr_rows:
        rate = rates.get(row["sr"])
        row["coalesce_rate_bps"] = round(rate) if rate else None
    if sr and not sr_rows:
        sr_rows = [{"sr": sr, "name": None, "verdict": "unknown", "vdis": None, "trees": None, "attempts": 0,
                    "failures": 0, "first_failure": None, "last_failure": None, "evidence": [],
                    "coalesce_rate_bps": None,
                    "next_step": next_step("unknown", sr)}]
    verdict, step = _overall(vdi_rows, sr_rows)
    return Diagnosis(read=read, sr_filter=sr or None, vdi_rows=vdi_rows, sr_rows=sr_rows,
                     failure_times=walk.failure_times, verdict=verdict, next_step=step, records=records)


class _Walk:
    """The event records in log order -> per-VDI state, SR-level space outcomes, failure times."""

    def __init__(self):
        self.states: dict[str, _VdiState] = {}
        self.failure_times: list[Any] = []
        self.sr_space: dict[str, str] = {}  # SR-level no-space / success, latest wins
        self.last_failure_at: dict[str, Any] = {}
        self.sr_evidence: dict[str, list[str]] = {}  # SR-level no-space lines of SRs without VDI findings

    def step(self, rec: Any) -> None:
        kind = rec.kind
        vdi = rec.vdi if isinstance(rec.vdi, str) else None
        if vdi is None:
            self._sr_line(rec)
        elif kind == "vdi_delete":
            self._deleted(rec, vdi)
        elif kind in _START | _DONE | _FAIL | _QUEUED:
            st = self._state(rec, vdi)
            if kind in _QUEUED:
                st.queued = True
            elif kind in _START:
                st.attempts += 1
                st.open, st.outcome, st.episode = True, None, None
                st.evidence.append(_where(rec))
            elif kind in _DONE:
                st.open, st.outcome, st.cause, st.episode = False, "ok", None, None
                st.evidence.append(_where(rec))
                if isinstance(rec.sr, str):
                    self.sr_space[rec.sr] = "ok"
            else:
                self._failure(rec, st)

    def _sr_line(self, rec: Any) -> None:
        """A line naming an SR but no VDI: a no-space failure or a finished coalesce."""
        if rec.kind == "insufficient_space" and isinstance(rec.sr, str):
            self.sr_space[rec.sr] = "fail"
            last = self.last_failure_at.get(rec.sr)
            if (last is None or pd.isna(rec.time) or pd.isna(last)
                    or (rec.time - last).total_seconds() > EPISODE_SECONDS):
                self.failure_times.append(rec.time)  # not the SR-level echo of a failure just counted
                if not any(v.sr == rec.sr for v in self.states.values()):
                    self.sr_evidence.setdefault(rec.sr, []).append(_where(rec))
            self.last_failure_at[rec.sr] = rec.time
        elif rec.kind in _DONE and isinstance(rec.sr, str):
            self.sr_space[rec.sr] = "ok"

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
        return st

    def _failure(self, rec: Any, st: _VdiState) -> None:
        """A failure event: one episode per VDI, GC process and minute."""
        cause = _cause(rec)
        t = rec.time
        same = (st.episode is not None and st.episode[0] == rec.pid
                and (pd.isna(t) or pd.isna(st.episode[1])
                     or abs((t - st.episode[1]).total_seconds()) <= EPISODE_SECONDS))
        if not same:
            if not st.open:
                st.attempts += 1
            st.failures += 1
            st.cause = None
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
        if rec.kind == "exception" and isinstance(rec.exc_type, str):
            st.detail = f"{rec.exc_type}: {rec.exc_message}"
        st.evidence.append(_where(rec))


def _vdi_row(st: _VdiState) -> dict:
    if st.outcome == "fail":
        verdict = f"stuck-{st.cause or 'error'}"
    elif st.open or (st.outcome is None and st.queued):
        verdict = "coalescing"
    else:
        verdict = "healthy"
    ev = list(dict.fromkeys(st.evidence))
    if len(ev) > 2 * EVIDENCE_KEEP:
        ev = ev[:EVIDENCE_KEEP] + ev[-EVIDENCE_KEEP:]
    sizes = st.sizes
    return {
        "vdi": st.vdi, "sr": st.sr, "verdict": verdict, "attempts": st.attempts, "failures": st.failures,
        "virtual_size": _int(sizes.get("virtual_size")), "size": _int(sizes.get("size")),
        "lv_size": _int(sizes.get("lv_size")),
        "flags": sizes.get("flags") if isinstance(sizes.get("flags"), str) else None,
        "first_failure": _iso(st.first_failure), "last_failure": _iso(st.last_failure),
        "evidence": ev, "next_step": next_step(verdict, st.sr, st.vdi, st.detail),
    }


def _overall(vdi_rows: list[dict], sr_rows: list[dict]) -> tuple[str, str]:
    """The verdict and next step of the whole log: the worst VDI or SR (rows sorted worst first);
    a VDI whose SR the log never names still counts."""
    worst_sr = sr_rows[0] if sr_rows else None
    worst_vdi = vdi_rows[0] if vdi_rows else None
    if worst_vdi and (worst_sr is None or SEVERITY[worst_vdi["verdict"]] >= SEVERITY[worst_sr["verdict"]]):
        return worst_vdi["verdict"], worst_vdi["next_step"]
    if worst_sr:
        return worst_sr["verdict"], worst_sr["next_step"]
    return "unknown", next_step("unknown", None)


def _int(value: Any) -> int | None:
    return None if value is None or pd.isna(value) else int(value)


def _sr_rows(records: pd.DataFrame, vdi_rows: list[dict], sr_space: dict[str, str],
             sr_evidence: dict[str, list[str]]) -> list[dict]:
    """One row per SR: the worst of its VDIs, or what the SR-level lines and GC runs show."""
    rows = []
    with_sr = records[records["sr"].notna()]
    for sr, group in with_sr.groupby("sr", sort=False):
        trees = group[group["kind"] == "sr_tree"]
        last_tree = trees.iloc[-1] if not trees.empty else None
        mine = [v for v in vdi_rows if v["sr"] == sr]
        if mine:
            verdict = max((v["verdict"] for v in mine), key=SEVERITY.get)
        else:
            verdict = "healthy" if group["kind"].isin(_GC_EVIDENCE).any() else "unknown"
        if sr_space.get(sr) == "fail" and SEVERITY[verdict] < SEVERITY["stuck-no-space"]:
            verdict = "stuck-no-space"
        worst = next((v for v in mine if v["verdict"] == verdict), None)
        if worst is not None:
            evidence = worst["evidence"]
        elif sr_evidence.get(sr):
            evidence = sr_evidence[sr][-EVIDENCE_KEEP:]
        else:  # a healthy or unknown SR: where its GC last ran
            gc = group[group["kind"].isin(_GC_EVIDENCE)].tail(3)
            evidence = [f"{f}:{n}" for f, n in zip(gc["file"], gc["line"])]
        failures = [v for v in mine if v["failures"]]
        rows.append({
            "sr": sr,
            "name": None if last_tree is None else last_tree["sr_name"],
            "verdict": verdict,
            "vdis": None if last_tree is None else _int(last_tree["n_vdis"]),
            "trees": None if last_tree is None else _int(last_tree["n_trees"]),
            "attempts": sum(v["attempts"] for v in mine),
            "failures": sum(v["failures"] for v in mine) + len(sr_evidence.get(sr, [])),
            "first_failure": min((v["first_failure"] for v in failures if v["first_failure"]), default=None),
            "last_failure": max((v["last_failure"] for v in failures if v["last_failure"]), default=None),
            "evidence": evidence,
            "next_step": next_step(verdict, sr, worst["vdi"] if worst else None, None),
        })
    rows.sort(key=lambda s: (-SEVERITY[s["verdict"]], s["sr"]))
    return rows
