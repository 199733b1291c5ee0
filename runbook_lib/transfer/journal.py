"""The transfer journal: what was done to the pool, on disk before the next step starts.

One JSON object per line in outputs/<incident>/transfer-journal.jsonl. Each line is flushed
and fsynced before the executor moves on, so after a crash, a kill or a power cut the journal
says exactly which steps finished and which one was under way. Re-running with the same
incident reads it back: a step with a `done` line is never repeated; a step with a `start`
line and no end is checked against the pool and completed or rolled back.

Line fields: `seq`, `time` (ISO UTC), `event`, and for step events `step`, `vm`, `kind`,
`call`, `objects` (refs/uuids), `before`/`after` (SR uuid -> free bytes), `result`, `error`,
`next_step`. Events: `run` (a run begins: mode, plan digest), `start`, `done`, `failed`,
`rolled-back`, `resumed` (what the pool showed for a half-finished step), `refused` (stopped
before any change), `interrupted` (Ctrl-C: the step under way, which stays unfinished so the
next run checks it against the pool), `stopped` (a run ends early: status and next step),
`finished`.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

from runbook_lib.errors import InputError
from runbook_lib.locations import outputs_dir

JOURNAL_NAME = "transfer-journal.jsonl"
STEP_END_EVENTS = ("done", "failed", "rolled-back")


def journal_path(incident: str) -> Path:
    """outputs/<incident>/transfer-journal.jsonl; the incident id is checked to be a plain name."""
    if not incident or not all(c.isalnum() or c in "-_." for c in incident) or incident.startswith("."):
        raise InputError(f"incident id {incident!r} must be a plain name (letters, digits, - _ .)")
    return outputs_dir() / incident / JOURNAL_NAME


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Journal:
    """Append-only JSON lines with fsync; the reader tolerates a torn last line."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._records: list[dict] | None = None
        self.torn_lines = 0

    @classmethod
    def for_incident(cls, incident: str) -> "Journal":
        return cls(journal_path(incident))

    def records(self) -> list[dict]:
        if self._records is None:
            self._records = []
            for line in self._lines():
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    self.torn_lines += 1  # a write cut short by a crash: the step did not end
                    continue
                if _well_formed(record):
                    self._records.append(record)
                else:
                    self.torn_lines += 1  # not a journal line: ignored, counted
        return self._records

    def _lines(self) -> list[str]:
        if not self.path.exists():
            return []
        try:
            with self.path.open("r", encoding="utf-8", errors="replace") as fh:
                return fh.readlines()
        except IsADirectoryError:
            raise InputError(f"the journal path {self.path} is a directory, not a journal file: move it away "
                             "(nothing was changed)") from None
        except OSError as err:
            raise InputError(f"cannot read the journal {self.path}: {err.strerror} (nothing was changed)") from None

    def damage(self) -> str | None:
        """Why the state this journal gives cannot be trusted (None: it can). Lines that are not
        journal lines are already left out; this checks what the steps recorded of each VM."""
        for vm in {r["vm"] for r in self.records() if r.get("vm")}:
            original = self.vm_state(vm).get("original")
            if original is None:
                continue
            if not isinstance(original, dict) or not isinstance(original.get("name"), str) \
                    or not isinstance(original.get("disks"), list) \
                    or not all(isinstance(d, dict) and isinstance(d.get("vdi"), str) and "userdevice" in d
                               and isinstance(d.get("sr"), str) for d in original["disks"]):
                return f"its record of VM {vm} is not what the runbook writes"
        return None

    def set_aside(self) -> Path:
        """Move a damaged journal out of the way (kept for the record) and start a new one."""
        stamp = _now().replace(":", "").replace("-", "")
        aside = self.path.with_name(f"{self.path.name}.damaged-{stamp}")
        self.path.replace(aside)
        self._records = None
        self.torn_lines = 0
        return aside

    def append(self, event: str, **fields: Any) -> dict:
        """Write one line and make it durable before returning."""
        records = self.records()
        try:
            seq = int(records[-1]["seq"]) + 1 if records else 1
        except (KeyError, TypeError, ValueError):
            seq = len(records) + 1
        record = {"seq": seq, "time": _now(),
                  "event": event, **{k: v for k, v in fields.items() if v is not None}}
        line = json.dumps(record, default=str, sort_keys=False)
        new_file = not self.path.exists()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        except IsADirectoryError:
            raise InputError(f"the journal path {self.path} is a directory, not a journal file: move it away") from None
        except OSError as err:
            raise InputError(f"cannot write the journal {self.path}: {err.strerror}") from None
        with os.fdopen(fd, "a", encoding="utf-8") as fh:
            fh.write(("\n" if self._ends_torn() else "") + line + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        if new_file:
            _fsync_dir(self.path.parent)
        records.append(record)
        return record

    def _ends_torn(self) -> bool:
        """True when the file's last write was cut short (no final newline)."""
        try:
            with self.path.open("rb") as fh:
                fh.seek(-1, os.SEEK_END)
                return fh.read(1) != b"\n"
        except OSError:
            return False

    # --- reading the state back ---------------------------------------------------------
    def step_status(self, step_id: str) -> str | None:
        """None (never started), 'started' (no end line), 'done', 'failed' or 'rolled-back'."""
        status = None
        for record in self.records():
            if record.get("step") != step_id:
                continue
            if record["event"] == "start":
                status = "started"
            elif record["event"] in STEP_END_EVENTS:
                status = record["event"]
        return status

    def step_record(self, step_id: str, event: str = "done") -> dict | None:
        found = None
        for record in self.records():
            if record.get("step") == step_id and record["event"] == event:
                found = record
        return found

    def vm_state(self, vm_uuid: str) -> dict[str, Any]:
        """What earlier runs learnt about one VM: the `result` of each finished step, merged."""
        latest: dict[str, dict] = {}
        for record in self.records():
            if record.get("vm") == vm_uuid and record.get("step") and record["event"] in ("start", *STEP_END_EVENTS):
                latest.pop(record["step"], None)  # keep insertion order = order of the last event
                latest[record["step"]] = record
        state: dict[str, Any] = {}
        for record in latest.values():
            if record["event"] == "done" and isinstance(record.get("result"), dict):
                state.update(record["result"])
        return state

    def plan_digests(self) -> set[str]:
        return {r["plan_digest"] for r in self.records() if r["event"] == "run" and r.get("plan_digest")}

    def executed_before(self) -> bool:
        return any(r["event"] == "start" for r in self.records())

    def step_under_way(self, vm_uuid: str) -> str | None:
        """The id of the VM's step that started and has no end line (at most one at a time)."""
        under_way = None
        for record in self.records():
            if record.get("vm") == vm_uuid and record.get("step"):
                if record["event"] == "start":
                    under_way = record["step"]
                elif record["event"] in STEP_END_EVENTS and record["step"] == under_way:
                    under_way = None
        return under_way

    def where_vm_is(self, vm: dict, source: str = "") -> str:
        """Where the VM is, as this journal knows it (no pool call): for a line after an interrupt.

        vm is the plan's entry (uuid, name); source names the SR the VM came from.
        """
        uuid, name = vm["uuid"], vm.get("name") or vm["uuid"][:8]
        st = self.vm_state(uuid)
        done = [r["step"].split(":")[1] for r in self.records()
                if r.get("vm") == uuid and r.get("step") and r["event"] == "done"]
        under_way = self.step_under_way(uuid)
        label = f"VM '{name}'"
        if not done and under_way is None:
            return f"{label}: no step started, nothing was changed"
        if st.get("final_uuid"):
            where = f"finished, as {st['final_uuid']}"
        elif st.get("back_uuid") or st.get("imported_uuid"):
            where = (f"its copy back on the source SR is {st.get('back_uuid') or st.get('imported_uuid')}"
                     + (f"; the staging copy {st['copy_uuid']} is kept" if st.get("copy_uuid")
                        and not st.get("staging_destroyed") else ""))
        elif st.get("original_destroyed"):
            where = ("the original is destroyed; the VM is the verified "
                     + (f"copy {st['copy_uuid']} on the staging SR" if st.get("copy_uuid")
                        else f"export {st.get('export_file')}"))
        else:
            where = (f"the original {uuid} is intact" + (f" on SR '{source}'" if source else "")
                     + (", shut down by this run" if st.get("shut_down_by_us") else "")
                     + (f"; a copy {st['copy_uuid']} exists" if st.get("copy_uuid") else ""))
        last = f"last finished step: {done[-1]}" if done else "no step finished"
        doing = f"; stopped during {under_way.split(':')[1]}, which the next run checks against the pool" \
            if under_way else ""
        return f"{label}: {where} ({last}{doing})"

    def last_stop(self) -> dict | None:
        for record in reversed(self.records()):
            if record["event"] in ("stopped", "finished", "refused"):
                return record
        return None


_FIELD_TYPES = {"seq": int, "step": str, "vm": str, "kind": str, "result": dict, "task": str}


def _well_formed(record) -> bool:
    """A line the runbook could have written: an object with an event and fields of the right types."""
    if not isinstance(record, dict) or not isinstance(record.get("event"), str):
        return False
    return all(isinstance(record[k], t) for k, t in _FIELD_TYPES.items() if record.get(k) is not None)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def journal_frame(journal: Journal):
    """The journal as a table for the notebook and the postmortem."""
    import pandas as pd

    rows = []
    for r in journal.records():
        rows.append({"seq": r.get("seq"), "time": pd.Timestamp(r["time"]) if r.get("time") else pd.NaT,
                     "event": r["event"], "step": (r.get("step") or "").split(":", 1)[-1],
                     "vm": (r.get("vm") or "")[:8], "call": r.get("call", ""),
                     "error": (" ".join(map(str, r["error"])) if isinstance(r.get("error"), list)
                               else r.get("error", "")),
                     "next_step": r.get("next_step", "")})
    return pd.DataFrame(rows, columns=["seq", "time", "event", "step", "vm", "call", "error", "next_step"])
