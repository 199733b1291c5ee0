"""The run index: `outputs/index.jsonl`, one JSON line per run, chained by hashes.

Each line carries the sha256 of the line before it and of itself, so removing, editing or
reordering a line breaks the chain where it happened, and each output file's sha256, so a
changed notebook is found too (`runbook verify`). Appends take an exclusive lock on the file
and are fsync'ed, so two runs finishing at once both land, in some order, with a valid chain.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pandas as pd

from runbook_lib.locations import outputs_dir
from runbook_lib.schemas import RUN_SCHEMA

SCHEMA = RUN_SCHEMA
INDEX_NAME = "index.jsonl"
# The last record's seq and hash, rewritten with every append: a removed last line shows.
HEAD_NAME = "index.head"
GENESIS = "0" * 64

# Columns of history(): what `runbook history` shows, one row per run.
HISTORY_COLUMNS = ["seq", "run_id", "incident", "notebook", "start", "end", "duration_s", "status",
                   "exit_code", "error", "output"]


def index_path(outputs: Path | None = None) -> Path:
    return Path(outputs or outputs_dir()) / INDEX_NAME


def head_path(outputs: Path | None = None) -> Path:
    return Path(outputs or outputs_dir()) / HEAD_NAME


def _write_head(record: dict[str, Any], outputs: Path | None) -> None:
    head = head_path(outputs)
    tmp = head.with_name(f".{HEAD_NAME}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"seq": record["seq"], "hash": record["hash"]}, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, head)


def canonical(record: dict[str, Any]) -> bytes:
    """The bytes a record's hash is taken over: sorted keys, no spaces, the `hash` key left out."""
    body = {k: v for k, v in record.items() if k != "hash"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def record_hash(record: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(record)).hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _last_line(fd: int) -> bytes:
    """The last non-empty line of an open file, read backwards from the end."""
    size = os.lseek(fd, 0, os.SEEK_END)
    tail, pos, chunk = b"", size, 4096
    while pos > 0:
        step = min(chunk, pos)
        pos -= step
        tail = os.pread(fd, step, pos) + tail
        stripped = tail.rstrip(b"\n")
        if b"\n" in stripped:
            return stripped.rsplit(b"\n", 1)[1]
    return tail.rstrip(b"\n")


def append(record: dict[str, Any], outputs: Path | None = None) -> dict[str, Any]:
    """Chain `record` onto the index and write it as one line; returns it with seq, prev and hash."""
    path = index_path(outputs)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        last = _last_line(fd)
        prev_hash, prev_seq = GENESIS, 0
        if last:
            try:
                previous = json.loads(last)
                prev_hash, prev_seq = previous.get("hash", GENESIS), int(previous.get("seq", 0))
            except (ValueError, TypeError):
                # A damaged last line: chain onto its bytes so verify still sees the damage.
                prev_hash = hashlib.sha256(last).hexdigest()
        chained = {"schema": SCHEMA, **record, "seq": prev_seq + 1, "prev": prev_hash}
        chained["hash"] = record_hash(chained)
        line = json.dumps(chained, sort_keys=True, ensure_ascii=False) + "\n"
        os.write(fd, line.encode())
        os.fsync(fd)
        _write_head(chained, path.parent)
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
    return chained


def read_index(outputs: Path | None = None) -> list[dict[str, Any]]:
    """Every readable record, in file order; unreadable lines are skipped (verify reports them)."""
    path = index_path(outputs)
    if not path.exists():
        return []
    records = []
    for line in path.read_text(errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            records.append(value)
    return records


def history(incident: str | None = None, outputs: Path | None = None) -> pd.DataFrame:
    """The runs as a table (HISTORY_COLUMNS), oldest first; times are UTC Timestamps."""
    rows = []
    for rec in read_index(outputs):
        if incident is not None and rec.get("incident") != incident:
            continue
        outs = rec.get("outputs") or []
        rows.append({
            "seq": rec.get("seq"),
            "run_id": rec.get("run_id"),
            "incident": rec.get("incident"),
            "notebook": rec.get("notebook"),
            "start": rec.get("start"),
            "end": rec.get("end"),
            "duration_s": None,
            "status": rec.get("status"),
            "exit_code": rec.get("exit_code"),
            "error": rec.get("error"),
            "output": outs[0]["path"] if outs else None,
        })
    frame = pd.DataFrame(rows, columns=HISTORY_COLUMNS)
    if not frame.empty:
        frame["start"] = pd.to_datetime(frame["start"], utc=True, errors="coerce")
        frame["end"] = pd.to_datetime(frame["end"], utc=True, errors="coerce")
        frame["duration_s"] = (frame["end"] - frame["start"]).dt.total_seconds()
    return frame
