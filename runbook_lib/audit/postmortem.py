"""The postmortem record of one incident, built from what its runs left behind.

Inputs, all read tolerantly (whatever exists): the incident's lines in the run index (runs,
their parameters, status and recorded results), the SMlog diagnosis a run recorded (schema
`runbook.smlog.diagnosis/1`, notebook 01), the plan (`runbook.plan/1`, notebook 02) and the
transfer journal(s) under outputs/<incident>/ (notebook 03). Output: a `Postmortem` with the
sections a review needs, and `export()` to Markdown and HTML beside the executed notebook.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from runbook_lib.audit import index
from runbook_lib.locations import outputs_dir
from runbook_lib.schemas import DIAGNOSIS_SCHEMA, PLAN_SCHEMA
from runbook_lib.units import gib_or_mib

STEP_END_EVENTS = ("done", "failed", "rolled-back")

SECTION_TITLES = ["Summary", "Impact", "Detection", "Timeline", "Root cause", "What was done",
                  "Space before and after", "Follow-ups", "Executed notebooks"]
# Columns of Postmortem.timeline: one row per thing that happened, oldest first.
TIMELINE_COLUMNS = ["time", "source", "event", "detail"]
# Columns of Postmortem.links: every output of every run, with the hash the index holds.
LINK_COLUMNS = ["run", "notebook", "status", "path", "sha256", "check"]
# Columns of Postmortem.space: free space of each SR the incident touched.
SPACE_COLUMNS = ["sr", "name", "before", "after", "change", "source"]


@dataclass
class Postmortem:
    incident: str
    generated: dt.datetime
    has_runs: bool
    summary: str
    impact: dict[str, Any]
    detection: dict[str, Any]
    timeline: pd.DataFrame
    root_cause: dict[str, Any]
    actions: pd.DataFrame
    space: pd.DataFrame
    follow_ups: list[str]
    links: pd.DataFrame
    notes: list[str] = field(default_factory=list)


# ---- reading --------------------------------------------------------------------------------

def _ts(value: Any) -> pd.Timestamp | None:
    if value in (None, "", "NaT"):
        return None
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError):
        return None
    if stamp is pd.NaT:
        return None
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def read_journals(folder: Path) -> tuple[list[dict], int]:
    """Every `*journal.jsonl` in the incident folder, merged by time; (records, torn lines).

    Other JSON-lines files there (a simulator's call log, say) are not journals of what was done.
    """
    records, torn = [], 0
    for path in sorted(folder.glob("*journal.jsonl")) if folder.is_dir() else []:
        try:
            lines = path.read_text(errors="replace").splitlines()
        except OSError:
            continue
        for line in lines:
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except ValueError:
                torn += 1
                continue
            if isinstance(value, dict):
                records.append({**value, "_journal": path.name})
    records.sort(key=lambda r: (_ts(r.get("time")) or pd.Timestamp.min.tz_localize("UTC"), r.get("seq", 0)))
    return records, torn


def _walk_values(value: Any):
    yield value
    if isinstance(value, dict):
        for item in value.values():
            yield from _walk_values(item)
    elif isinstance(value, list):
        for item in value[:50]:
            yield from _walk_values(item)


def _split_diagnosis(records: dict) -> dict | None:
    """Notebook 01 records its diagnosis in parts (`verdict`, `vdis`, `srs`): put them together."""
    verdict = records.get("verdict")
    if not isinstance(records.get("vdis"), list) or verdict is None:
        return None
    if isinstance(verdict, dict):
        return {"verdict": verdict.get("verdict"), "next_step": verdict.get("next_step", ""),
                "vdis": records["vdis"], "srs": records.get("srs") or [], "exceptions": records.get("exceptions") or []}
    return {"verdict": verdict, "vdis": records["vdis"], "srs": records.get("srs") or []}


def _find(runs: list[dict], is_wanted) -> list[tuple[dict, dict]]:
    """(run, value) for every recorded value (at any depth) that is_wanted accepts."""
    found = []
    for run in runs:
        records = run.get("records") or {}
        combined = _split_diagnosis(records)
        if combined is not None and is_wanted(combined):
            found.append((run, combined))
            continue
        for value in records.values():
            for item in _walk_values(value):
                if isinstance(item, dict) and is_wanted(item):
                    found.append((run, item))
                    break
    return found


def _is_diagnosis(item: dict) -> bool:
    return item.get("schema") == DIAGNOSIS_SCHEMA or ("verdict" in item and "vdis" in item)


def _is_plan(item: dict) -> bool:
    return item.get("schema") == PLAN_SCHEMA or ("remedy" in item and "sr" in item)


def _plan_files(folder: Path) -> list[dict]:
    plans = []
    for path in sorted(folder.glob("*plan*.json")) if folder.is_dir() else []:
        try:
            value = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(value, dict) and _is_plan(value):
            plans.append(value)
    return plans


def _diagnosis_files(folder: Path) -> list[dict]:
    """SMlog findings saved in the incident folder (`runbook smlog diagnose --json`, 01's export)."""
    found = []
    for path in sorted(folder.glob("*findings*.json")) if folder.is_dir() else []:
        try:
            value = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        wanted = next((v for v in _walk_values(value) if isinstance(v, dict) and _is_diagnosis(v)), None)
        if wanted is not None:  # top level (01's export) or wrapped ({"diagnosis": {...}})
            found.append(wanted)
    return found


# ---- the sections ---------------------------------------------------------------------------

def _stuck_vdis(diagnosis: dict | None) -> list[dict]:
    if not diagnosis:
        return []
    return [v for v in diagnosis.get("vdis") or [] if str(v.get("verdict", "")).startswith("stuck")]


def _timeline(runs: list[dict], diagnosis: dict | None, journal: list[dict]) -> pd.DataFrame:
    rows = []
    if diagnosis:
        for exc in diagnosis.get("exceptions") or []:
            what = f"{exc.get('type')}: {exc.get('message')}"
            count = exc.get("count") or 1
            rows.append((exc.get("first"), "SMlog", "first exception", f"{what} ({count}x in the log)"))
            if count > 1 and exc.get("last") != exc.get("first"):
                rows.append((exc.get("last"), "SMlog", "last exception", what))
        for vdi in diagnosis.get("vdis") or []:
            label = f"VDI {vdi.get('vdi')} on SR {str(vdi.get('sr') or '?')[:8]}"
            if vdi.get("first_failure"):
                rows.append((vdi["first_failure"], "SMlog", f"{vdi.get('verdict')}: first failure",
                             f"{label}, {vdi.get('failures', '?')} of {vdi.get('attempts', '?')} attempts failed"))
            if vdi.get("last_failure") and vdi.get("last_failure") != vdi.get("first_failure"):
                rows.append((vdi["last_failure"], "SMlog", f"{vdi.get('verdict')}: last failure", label))
        if diagnosis.get("last"):
            rows.append((diagnosis["last"], "SMlog", "log ends", f"{diagnosis.get('lines', '?')} lines read"))
    for run in runs:
        name = Path(str(run.get("notebook", "?"))).stem
        rows.append((run.get("start"), "run", f"{name} started", f"run {str(run.get('run_id'))[:8]}"))
        detail = run.get("error") or f"exit {run.get('exit_code')}"
        rows.append((run.get("end"), "run", f"{name} {run.get('status')}", detail))
    ended = {r.get("step") for r in journal if r.get("event") in STEP_END_EVENTS}
    for rec in journal:
        event = rec.get("event", "?")
        if event in ("start", "task") and rec.get("step") in ended:
            continue  # the step's end line says it all; a start without an end stays visible
        rows.append((rec.get("time"), "transfer", f"{event} {_step_name(rec)}".strip(), _outcome(rec, "")))
    frame = pd.DataFrame([(_ts(t), s, e, d) for t, s, e, d in rows], columns=TIMELINE_COLUMNS)
    frame = frame.dropna(subset=["time"]).sort_values("time", kind="stable").reset_index(drop=True)
    return frame


def _space(diagnosis: dict | None, plans: list[dict], journal: list[dict]) -> pd.DataFrame:
    """Free space per SR: before = the first measurement in the journal (else the plan's figure),
    after = the last measurement in the journal."""
    names = {s.get("sr"): s.get("name") or "" for s in (diagnosis or {}).get("srs") or []}
    planned: dict[str, Any] = {}
    for plan in plans:
        for key in ("sr", "staging_sr"):
            sr = plan.get(key) or {}
            if sr.get("uuid"):
                names[sr["uuid"]] = sr.get("name") or names.get(sr["uuid"], "")
                planned.setdefault(sr["uuid"], sr.get("free"))
    measured_before: dict[str, Any] = {}
    measured_after: dict[str, Any] = {}
    for rec in journal:
        for key, target, keep_first in (("before", measured_before, True), ("after", measured_after, False)):
            values = rec.get(key)
            if isinstance(values, dict):
                for sr, free in values.items():
                    if isinstance(free, (int, float)) and not (keep_first and sr in target):
                        target[sr] = free
    rows = []
    for sr in sorted(set(planned) | set(measured_before) | set(measured_after)):
        before = measured_before.get(sr, planned.get(sr))
        after = measured_after.get(sr)
        change = after - before if isinstance(after, (int, float)) and isinstance(before, (int, float)) else None
        source = "transfer journal" if sr in measured_before else "plan" if sr in planned else ""
        rows.append((sr, names.get(sr, ""), before, after, change, source))
    return pd.DataFrame(rows, columns=SPACE_COLUMNS)


def _links(runs: list[dict], root: Path) -> pd.DataFrame:
    rows = []
    for run in runs:
        for out in run.get("outputs") or []:
            path = root / str(out.get("path"))
            if not path.is_file():
                check = "missing"
            else:
                check = "ok" if index.file_sha256(path) == out.get("sha256") else "changed"
            rows.append((str(run.get("run_id"))[:8], Path(str(run.get("notebook"))).name, run.get("status"),
                         str(out.get("path")), out.get("sha256"), check))
    return pd.DataFrame(rows, columns=LINK_COLUMNS)


def _step_name(rec: dict) -> str:
    """`migrate-out:0 VM 9c2d4e6f (VDI.pool_migrate)` rather than the journal's long step id."""
    step = str(rec.get("step") or "")
    vm = str(rec.get("vm") or "")
    if vm and step.startswith(vm + ":"):
        step = f"{step[len(vm) + 1:]} VM {vm[:8]}"
    call = rec.get("call")
    return f"{step} ({call})" if step and call else step or (call or "")


def _outcome(rec: dict, default: str) -> str:
    detail = rec.get("error") or rec.get("next_step") or rec.get("message") or default
    if isinstance(detail, (list, dict)):
        detail = json.dumps(detail)[:200]
    return str(detail)


def _actions(runs: list[dict], journal: list[dict]) -> pd.DataFrame:
    """Every run, every step outcome that was not a plain success, and one line of steps done."""
    rows = [(_ts(r.get("start")), Path(str(r.get("notebook"))).name, r.get("status"),
             r.get("error") or _params_line(r.get("parameters") or {})) for r in runs]
    done = [r for r in journal if r.get("event") == "done"]
    if done:
        kinds = list(dict.fromkeys(str(r.get("kind") or _step_name(r)) for r in done))
        rows.append((_ts(done[-1].get("time")), f"transfer: {len(done)} step(s) done", "done", ", ".join(kinds)))
    for rec in journal:
        if rec.get("event") in ("failed", "rolled-back", "stopped", "finished", "refused", "dry-run", "resumed"):
            what = _step_name(rec) or rec.get("event")
            rows.append((_ts(rec.get("time")), f"transfer: {what}", rec.get("event"),
                         _outcome(rec, str(rec.get("status") or ""))))
    frame = pd.DataFrame(rows, columns=["time", "what", "outcome", "detail"])
    return frame.sort_values("time", kind="stable").reset_index(drop=True) if not frame.empty else frame


def _params_line(parameters: dict) -> str:
    text = ", ".join(f"{k}={v!r}" for k, v in parameters.items())
    return text if len(text) <= 120 else text[:117] + "..."


def _when(stamp: pd.Timestamp | None) -> str:
    return f"{stamp:%Y-%m-%d %H:%M:%S} UTC" if stamp is not None else "unknown"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    seconds = int(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{days} d" if days else "", f"{hours} h" if hours else "", f"{minutes} min" if minutes else ""]
    return " ".join(p for p in parts if p) or f"{secs} s"


def latest_incident(outputs: Path | None = None) -> str | None:
    """The incident of the newest run in the index that is not itself a postmortem."""
    for rec in reversed(index.read_index(Path(outputs or outputs_dir()))):
        if rec.get("incident") and "postmortem" not in (rec.get("records") or {}):
            return rec["incident"]
    return None


def build(incident: str, outputs: Path | None = None) -> Postmortem:
    """Everything the review needs about `incident`; an incident with no runs gives a record
    that says so (and what to run), never an error. An empty id means the latest incident."""
    src = _sources(incident, outputs)
    stuck = _stuck_vdis(src.diagnosis)
    affected_srs = _affected_srs(src, stuck)
    first_failure, impact = _impact(src, stuck, affected_srs)
    root_cause = _root_cause(src, stuck)
    last_stop = next((r for r in reversed(src.journal) if r.get("event") in ("finished", "stopped", "refused")), None)
    links = _links(src.runs, src.root)
    space = _space(src.diagnosis, src.plans, src.journal)
    gained = space[space["sr"].isin(affected_srs)]["change"].dropna()
    summary = _summary(src, impact, root_cause, first_failure, _outcome(last_stop, src.journal))
    impact["space_recovered"] = int(gained.max()) if len(gained) and gained.max() > 0 else None
    return Postmortem(incident=src.incident, generated=dt.datetime.now(dt.timezone.utc), has_runs=bool(src.runs),
                      summary=summary, impact=impact, detection=_detection(src.runs, first_failure),
                      timeline=_timeline(src.runs, src.diagnosis, src.journal), root_cause=root_cause,
                      actions=_actions(src.runs, src.journal), space=space,
                      follow_ups=_follow_ups(src, stuck, last_stop, links), links=links, notes=src.notes)


@dataclass
class _Sources:
    """What an incident left: its runs in the index, its journal, plans and SMlog findings."""

    incident: str
    root: Path
    folder: Path
    runs: list[dict]
    journal: list[dict]
    notes: list[str]
    diagnosis: dict | None
    plans: list[dict]

    @property
    def files_only(self) -> bool:
        """CLI-only work (`runbook transfer`, `runbook size --plan-out`) leaves files but no runs."""
        return not self.runs and bool(self.journal or self.plans or self.diagnosis)


def _sources(incident: str, outputs: Path | None) -> _Sources:
    root = Path(outputs or outputs_dir())
    incident = incident or latest_incident(root) or "demo"
    folder = root / incident
    runs = [r for r in index.read_index(root)
            if r.get("incident") == incident and "postmortem" not in (r.get("records") or {})]
    journal, torn = read_journals(folder)
    notes = [f"{torn} torn journal line(s) skipped (a write cut short)"] if torn else []
    diagnoses = [d for _, d in _find(runs, _is_diagnosis)] or _diagnosis_files(folder)
    plans = [p for _, p in _find(runs, _is_plan)] + _plan_files(folder)
    return _Sources(incident=incident, root=root, folder=folder, runs=runs, journal=journal, notes=notes,
                    diagnosis=diagnoses[-1] if diagnoses else None, plans=plans)


def _affected_srs(src: _Sources, stuck: list[dict]) -> list[str]:
    """The SRs of the stuck VDIs and of the plans; for a journal alone, the SRs it measured less
    the staging SR it names."""
    affected = sorted({str(v.get("sr")) for v in stuck if v.get("sr")} |
                      {str((p.get("sr") or {}).get("uuid")) for p in src.plans if (p.get("sr") or {}).get("uuid")})
    if affected:
        return affected
    journal = src.journal
    staging = {str(r.get("staging")) for r in journal if r.get("event") == "run" and r.get("staging")}
    measured = {str(sr) for r in journal for key in ("before", "after")
                if isinstance(r.get(key), dict) for sr in r[key]}
    return sorted(measured - staging)


def _impact(src: _Sources, stuck: list[dict], affected_srs: list[str]) -> tuple[Any, dict[str, Any]]:
    """(first failure in the log, the impact section); `space_recovered` is filled in later."""
    sr_names = {s.get("sr"): s.get("name") for s in (src.diagnosis or {}).get("srs") or []}
    vms = {}
    for plan in src.plans:
        for vm in plan.get("vms") or []:
            vms[vm.get("uuid")] = vm.get("name") or vm.get("uuid")
    for rec in src.journal:
        if rec.get("vm") and rec["vm"] not in vms:
            vms[rec["vm"]] = rec["vm"]
    failures = [(_ts(v.get("first_failure")), _ts(v.get("last_failure") or v.get("first_failure"))) for v in stuck]
    failures = [(a, b) for a, b in failures if a is not None]
    first_failure = min((a for a, _ in failures), default=None)
    last_failure = max((b for _, b in failures), default=None)
    stuck_for = (last_failure - first_failure).total_seconds() if first_failure is not None else None
    plan = src.plans[-1] if src.plans else {}
    return first_failure, {
        "srs": [f"{sr} ({sr_names.get(sr) or (plan.get('sr') or {}).get('name') or 'name unknown'})"
                for sr in affected_srs],
        "vdis_stuck": [f"{v.get('vdi')} ({v.get('verdict')}, size {gib_or_mib(v.get('size'))})" for v in stuck],
        "vms": sorted(str(v) for v in vms.values()),
        "space_needed": (plan.get("sr") or {}).get("needed"),
        "shortfall": (plan.get("sr") or {}).get("shortfall"),
        "space_held_by_stuck_vdis": sum(int(v.get("size") or 0) for v in stuck) or None,
        "space_recovered": None,  # filled from the space table
        "failures": sum(int(v.get("failures") or 0) for v in stuck),
        "stuck_for_s": stuck_for,
        "stuck_for": (_duration(stuck_for) if stuck_for else
                      "one failure in the log (no span)" if first_failure is not None else "unknown"),
    }


def _detection(runs: list[dict], first_failure: Any) -> dict[str, Any]:
    first_run = min((_ts(r.get("start")) for r in runs if _ts(r.get("start")) is not None), default=None)
    detection = {
        "first_failure_in_log": first_failure,
        "first_run": first_run,
        "delay_s": (first_run - first_failure).total_seconds() if first_run is not None and first_failure is not None
        else None,
    }
    detection["delay"] = _duration(detection["delay_s"])
    return detection


def _root_cause(src: _Sources, stuck: list[dict]) -> dict[str, Any]:
    diagnosis = src.diagnosis or {}
    remedy = (src.plans[-1] if src.plans else {}).get("remedy") or {}
    return {
        "verdict": diagnosis.get("verdict", "unknown (no SMlog diagnosis was recorded)"),
        "next_step": diagnosis.get("next_step", ""),
        "evidence": [ev for v in stuck for ev in (v.get("evidence") or [])[:5]][:15],
        "exceptions": [f"{e.get('type')}: {e.get('message')} x{e.get('count', 1)}"
                       for e in diagnosis.get("exceptions") or []],
        "remedy": remedy.get("reason") or remedy.get("kind"),
    }


def _follow_ups(src: _Sources, stuck: list[dict], last_stop: dict | None, links: pd.DataFrame) -> list[str]:
    incident, runs, journal = src.incident, src.runs, src.journal
    follow_ups = []
    if not runs and not src.diagnosis:
        follow_ups.append(f"Run the diagnosis for this incident: `runbook run 01 --incident {incident}`.")
    if stuck and not any(r.get("event") == "finished" for r in journal):
        follow_ups.append("The remedy was not carried out to the end: plan it with notebook 02 and run notebook 03 "
                          f"with `--incident {incident}` (it resumes from the journal).")
    if last_stop and last_stop.get("event") != "finished" and last_stop.get("next_step"):
        follow_ups.append(f"Transfer stopped: {last_stop['next_step']}")
    for run in runs:
        if run.get("status") == "failed":
            follow_ups.append(f"Run {str(run.get('run_id'))[:8]} of {Path(str(run.get('notebook'))).name} failed: "
                              f"{run.get('error')}")
    if (links["check"] != "ok").any():
        follow_ups.append("Some executed notebooks no longer match the run index: run `runbook verify`.")
    follow_ups.append("Delete snapshots promptly and schedule notebook 05 (snapshot hygiene) nightly so old snapshots,"
                      " deep chains and SRs short of coalesce space are flagged before a coalesce gets stuck "
                      "(docs/scheduling.md).")
    return follow_ups


def _outcome(last_stop: dict | None, journal: list[dict]) -> str:
    return ("the transfer finished" if last_stop and last_stop.get("event") == "finished" else
            f"the transfer ended with '{last_stop.get('event')}'" if last_stop else
            "a transfer was started (no end recorded)" if journal else "no transfer was run")


def _summary(src: _Sources, impact: dict, root_cause: dict, first_failure: Any, outcome: str) -> str:
    """One paragraph: from the runs, from the files the CLI left, or why there is nothing to review."""
    incident, runs, diagnosis = src.incident, src.runs, src.diagnosis
    if src.files_only:
        found = [what for what, there in (("a transfer journal", src.journal), ("a plan", src.plans),
                                          ("SMlog findings", diagnosis)) if there]
        steps = sum(1 for r in src.journal if r.get("event") == "done")
        where = ", ".join(impact["srs"]) or "an SR not named in the files"
        return (f"No notebook runs are recorded for incident '{incident}'; this record is built from the files "
                f"in {src.folder} ({', '.join(found)}), as the CLI commands left them. "
                f"{root_cause['verdict'] if diagnosis else 'Coalesce space problem'} on {where}"
                f"{': ' + str(impact['failures']) + ' failed coalesce attempt(s) in the SMlog' if diagnosis else ''}"
                "; "
                f"{steps} transfer step(s) done; {outcome}.")
    if not runs:
        others = list(dict.fromkeys(r.get("incident") for r in reversed(index.read_index(src.root))
                                    if r.get("incident") and r.get("incident") != incident))
        known = (f" Incidents that do have runs, newest first: {', '.join(others[:5])}"
                 f"{' ...' if len(others) > 5 else ''} (pass one as the incident parameter)." if others else "")
        return (f"No runs are recorded for incident '{incident}' in {index.index_path(src.root)} yet, so there is "
                f"nothing to review. Run the runbooks with `--incident {incident}` (or `make demo`) and run this "
                f"notebook again.{known}")
    where = ", ".join(impact["srs"]) or "an SR not named in the records"
    return (f"{root_cause['verdict']} on {where}: {impact['failures']} failed coalesce attempt(s) in the SMlog"
            f"{' from ' + _when(first_failure) if first_failure is not None else ''}; {len(runs)} runbook "
            f"run(s) from {_when(min(_ts(r.get('start')) for r in runs))} to "
            f"{_when(max(_ts(r.get('end') or r.get('start')) for r in runs))}; {outcome}.")


# ---- showing and exporting -------------------------------------------------------------------

def plot_timeline(pm: Postmortem):
    """A matplotlib Figure: one lane per source; a second panel when the log and the runs are
    more than a week apart (an old log read long after the fact)."""
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    frame = pm.timeline
    lanes = ["SMlog", "run", "transfer"]
    colours = {"SMlog": "tab:red", "run": "tab:blue", "transfer": "tab:green"}
    if frame.empty:
        fig, ax = plt.subplots(figsize=(8, 1.5))
        ax.text(0.5, 0.5, "nothing recorded yet", ha="center", va="center")
        ax.set_axis_off()
        return fig
    log = frame[frame["source"] == "SMlog"]
    rest = frame[frame["source"] != "SMlog"]
    split = (not log.empty and not rest.empty and
             (rest["time"].min() - log["time"].max()) > pd.Timedelta(days=7))
    groups = [log, rest] if split else [frame]
    fig, axes = plt.subplots(1, len(groups), figsize=(11, 3), squeeze=False,
                             gridspec_kw={"width_ratios": [1] * len(groups)})
    for ax, part in zip(axes[0], groups):
        for lane, rows in part.groupby("source"):
            y = lanes.index(lane) if lane in lanes else len(lanes)
            ax.scatter(rows["time"], [y] * len(rows), color=colours.get(lane, "grey"), s=30, zorder=3)
        ax.set_yticks(range(len(lanes)), lanes)
        ax.set_ylim(-0.5, len(lanes) - 0.5)
        low, high = part["time"].min(), part["time"].max()
        pad = max((high - low) * 0.05, pd.Timedelta(minutes=5))
        ax.set_xlim(low - pad, high + pad)
        locator = mdates.AutoDateLocator()
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
        ax.grid(axis="x", alpha=0.3)
        ax.tick_params(axis="x", labelsize=8)
    if split:
        axes[0][0].set_title("in the SMlog", fontsize=9)
        axes[0][1].set_title("runbook runs and transfer", fontsize=9)
    fig.suptitle(f"Incident {pm.incident}: timeline (UTC)", fontsize=10)
    fig.tight_layout()
    return fig


def _md_table(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "_none_\n"
    shown = frame.copy()
    for col in shown.columns:
        if pd.api.types.is_datetime64_any_dtype(shown[col]):
            shown[col] = shown[col].dt.strftime("%Y-%m-%d %H:%M:%S")
    shown = shown.astype(object).where(shown.notna(), "")
    head = "| " + " | ".join(map(str, shown.columns)) + " |"
    rule = "|" + "---|" * len(shown.columns)
    body = ["| " + " | ".join(str(v).replace("|", "\\|").replace("\n", " ") for v in row) + " |"
            for row in shown.itertuples(index=False)]
    return "\n".join([head, rule, *body]) + "\n"


def _space_frame(pm: Postmortem) -> pd.DataFrame:
    shown = pm.space.copy()
    for col in ("before", "after", "change"):
        shown[col] = shown[col].map(gib_or_mib)
    return shown


def sections(pm: Postmortem, timeline_image: str | None = None) -> dict[str, str]:
    """The postmortem's sections as Markdown, by title, in reading order."""
    imp, det, rc = pm.impact, pm.detection, pm.root_cause
    follow = "\n".join(f"- {f}" for f in pm.follow_ups)
    if not pm.has_runs and pm.timeline.empty and pm.actions.empty and pm.space.empty:
        nothing = "_Nothing recorded for this incident yet._"
        return {"Summary": pm.summary, **{t: nothing for t in SECTION_TITLES[1:-2]}, "Follow-ups": follow,
                "Executed notebooks": nothing}
    evidence = "".join(f"\n  - `{e}`" for e in rc["evidence"])
    out = {
        "Summary": pm.summary,
        "Impact": "\n".join([
            f"- SRs affected: {', '.join(imp['srs']) or 'none recorded'}",
            f"- VDIs whose coalesce was stuck: {', '.join(imp['vdis_stuck']) or 'none recorded'}",
            f"- VMs involved: {', '.join(imp['vms']) or 'none recorded'}",
            f"- Space the stuck coalesce kept from the SR (freed on the affected SR by the remedy): "
            f"{gib_or_mib(imp['space_recovered']) if imp['space_recovered'] else 'not measured'}",
            f"- Space held by the stuck VDIs: {gib_or_mib(imp['space_held_by_stuck_vdis'])}; space the coalesce needs: "
            f"{gib_or_mib(imp['space_needed'])}; shortfall: {gib_or_mib(imp['shortfall'])}",
            f"- Coalesce stuck for (SMlog, first to last failure): {imp['stuck_for']}; "
            f"failed attempts: {imp['failures']}"]),
        "Detection": "\n".join([
            f"- First failure in the SMlog: {det['first_failure_in_log'] or 'unknown'}",
            f"- First runbook run: {det['first_run'] or 'none'}",
            f"- Time from first failure to first run: {det['delay']}"]),
        "Timeline": (f"![timeline]({timeline_image})\n\n" if timeline_image else "") + _md_table(pm.timeline),
        "Root cause": "\n".join(
            [f"- Verdict: **{rc['verdict']}**" + (f"; next step given: {rc['next_step']}" if rc["next_step"] else ""),
             f"- Remedy chosen: {rc['remedy'] or 'none recorded'}"]
            + [f"- Exception: `{e}`" for e in rc["exceptions"]]
            + ([f"- Evidence (file:line):{evidence}"] if evidence else [])),
        "What was done": _md_table(pm.actions),
        "Space before and after": _md_table(_space_frame(pm)),
        "Follow-ups": follow,
        "Executed notebooks": _md_table(pm.links),
    }
    if pm.notes:
        out["Notes"] = "\n".join(f"- {n}" for n in pm.notes)
    return out


def to_markdown(pm: Postmortem, timeline_image: str | None = None) -> str:
    """The postmortem as one Markdown document (tables, links with hashes)."""
    parts = [f"# Postmortem: incident {pm.incident}", "",
             f"_Generated {pm.generated:%Y-%m-%d %H:%M:%S} UTC from the run index and the incident's outputs._", ""]
    for title, text in sections(pm, timeline_image).items():
        parts += [f"## {title}", "", text.rstrip("\n"), ""]
    return "\n".join(parts)


_LONG_CELL = re.compile(r"<td([^>]*)>([^<\s]{24,})</td>")


def to_html(markdown_text: str, title: str, images: dict[str, bytes] | None = None) -> str:
    """Render the Markdown (mistune comes with nbconvert); images are embedded, not linked. A cell
    that is one long word (a sha256, a path) may break anywhere, so no table is wider than the page."""
    import mistune

    for name, data in (images or {}).items():
        markdown_text = markdown_text.replace(f"]({name})",
                                              f"](data:image/png;base64,{base64.b64encode(data).decode()})")
    body = mistune.create_markdown(plugins=["table"], escape=True)(markdown_text)
    body = _LONG_CELL.sub(r'<td\1 class="long">\2</td>', body)
    style = ("body{font-family:sans-serif;max-width:70em;margin:2em auto;line-height:1.4}"
             "table{border-collapse:collapse;font-size:90%}td,th{border:1px solid #ccc;padding:2px 6px;"
             "vertical-align:top;overflow-wrap:break-word}td.long{word-break:break-all}img{max-width:100%}"
             "code{background:#f4f4f4}")
    return (f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body>\n{body}</body></html>\n")


def export(pm: Postmortem, base: Path) -> dict[str, Path]:
    """Write `<base>.postmortem.md` (with its timeline PNG beside it) and `<base>.postmortem.html`
    (one file, image embedded); `base` comes from runner.artifact_base()."""
    import matplotlib.pyplot as plt

    paths = {kind: base.with_name(f"{base.name}.postmortem.{kind}") for kind in ("md", "html", "png")}
    fig = plot_timeline(pm)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    png = buffer.getvalue()
    paths["png"].write_bytes(png)
    text = to_markdown(pm, timeline_image=paths["png"].name if not pm.timeline.empty else None)
    paths["md"].write_text(text, encoding="utf-8")
    paths["html"].write_text(to_html(text, f"Postmortem {pm.incident}", {paths["png"].name: png}), encoding="utf-8")
    return paths
