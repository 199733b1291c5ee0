"""`runbook verify`: recompute the run index's chain and every output's hash, and scan for secrets.

What it proves: no index line was edited, removed, inserted or reordered; every output a run
recorded is there with the bytes it had; no run left an output behind unrecorded; and no file
under outputs/ contains the value of a credential (an environment variable named like one,
one a run's `*_env` parameter points at, or one given with --secret-env). Secrets are
reported by variable name and file path only, never by value.
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from runbook_lib.audit import index
from runbook_lib.audit.params import credential_env_values
from runbook_lib.locations import outputs_dir

RUN_OUTPUT_NAME = re.compile(r"^\d{8}T\d{6}Z_.+_[0-9a-f]{8}\.(ipynb|html)$")
MIN_SECRET_LENGTH = 4  # shorter values would match everywhere; they are listed as not scanned


@dataclass
class Problem:
    # index-unreadable | index-changed | index-chain | index-head | output-missing | output-changed
    # | output-unindexed | secret-found
    kind: str
    path: str
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.path}: {self.detail}"


@dataclass
class Report:
    runs: int = 0
    files_hashed: int = 0
    files_scanned: int = 0
    secrets_scanned: list[str] = field(default_factory=list)  # variable names only
    notes: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _check_chain(path: Path, report: Report) -> list[dict]:
    if not path.exists():
        return []
    lines = path.read_bytes().split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    parsed: list[tuple[int, dict | None]] = []
    for number, raw in enumerate(lines, start=1):
        try:
            value = json.loads(raw)
            parsed.append((number, value if isinstance(value, dict) else None))
        except ValueError:
            parsed.append((number, None))
    position = {rec.get("hash"): number for number, rec in parsed if rec}
    records, expected_prev, prev_number = [], index.GENESIS, 0
    for number, rec in parsed:
        where = f"{path}:{number}"
        if rec is None:
            report.problems.append(Problem("index-unreadable", where, "not a JSON record (edited or truncated)"))
            expected_prev = hashlib.sha256(lines[number - 1]).hexdigest()
            prev_number = number
            continue
        records.append(rec)
        if index.record_hash(rec) != rec.get("hash"):
            report.problems.append(Problem("index-changed", where,
                                           f"run {str(rec.get('run_id'))[:8]} was edited after it was written"))
        if rec.get("prev") != expected_prev:
            follows = position.get(rec.get("prev"))
            if follows is not None:
                detail = f"it follows line {follows}, not line {prev_number}: lines were reordered"
            elif rec.get("prev") == index.GENESIS:
                detail = "it claims to be the first run but lines come before it: lines were inserted"
            else:
                detail = f"the line it follows is gone: a line before it (after line {prev_number}) was removed"
            report.problems.append(Problem("index-chain", where, detail))
        expected_prev, prev_number = rec.get("hash"), number
    head = index.head_path(path.parent)
    if head.exists():
        try:
            recorded = json.loads(head.read_text())
        except ValueError:
            recorded = {}
        if recorded.get("hash") != expected_prev:
            report.problems.append(Problem("index-head", str(path),
                                           f"the index ends at line {prev_number}, but run {recorded.get('seq')} "
                                           "was the last one written: lines were removed from the end"))
    elif records:
        report.notes.append(f"{head.name} is missing: removal of the last lines cannot be checked")
    return records


def _check_outputs(root: Path, records: list[dict], report: Report) -> None:
    referenced: set[Path] = set()
    for rec in records:
        for out in rec.get("outputs") or []:
            target = root / str(out.get("path", ""))
            referenced.add(target.resolve())
            if not target.is_file():
                report.problems.append(Problem("output-missing", str(target),
                                               f"recorded by run {str(rec.get('run_id'))[:8]} but not there"))
                continue
            report.files_hashed += 1
            if index.file_sha256(target) != out.get("sha256"):
                run8 = str(rec.get("run_id"))[:8]
                report.problems.append(Problem("output-changed", str(target),
                                               f"its sha256 differs from the one run {run8} recorded"))
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        for item in sorted(folder.iterdir()):
            if RUN_OUTPUT_NAME.match(item.name) and item.resolve() not in referenced:
                report.problems.append(Problem("output-unindexed", str(item),
                                               "a run output with no index line (run killed, or its line removed)"))


def secrets_to_scan(records: list[dict], secret_env: tuple[str, ...] | list[str] = ()) -> dict[str, str]:
    """name -> value of every credential we can find: credential-named env vars, the variables
    runs' `*_env` parameters name, files their `*_file` parameters name, and `secret_env`."""
    names = list(secret_env)
    files: list[str] = []
    for rec in records:
        for key, value in (rec.get("parameters") or {}).items():
            if not isinstance(value, str) or not value:
                continue
            if key.endswith("_env"):
                names.append(value)
            elif key.endswith("_file") and re.search(r"pass|secret|token|key|cred", key, re.I):
                files.append(value)
    secrets = credential_env_values(names)
    for name in files:
        try:
            path = Path(name).expanduser()
            if path.is_file() and path.stat().st_size <= 65536:
                text = path.read_text(errors="replace").strip()
                if text:
                    secrets[f"file {path}"] = text
        except OSError:
            continue
    return secrets


def _forms(value: str) -> list[bytes]:
    """The ways a value shows up inside a notebook (JSON) or its HTML rendering."""
    forms = {value, json.dumps(value)[1:-1], html.escape(value), html.escape(value, quote=False),
             json.dumps(html.escape(value))[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}
    return [f.encode() for f in forms if f]


def scan_for_secrets(root: Path, secrets: dict[str, str], report: Report) -> None:
    """Add a `secret-found` problem for each file under `root` that holds one of `secrets`."""
    usable = {}
    for name, value in secrets.items():
        if len(value) < MIN_SECRET_LENGTH:
            report.notes.append(f"{name} is shorter than {MIN_SECRET_LENGTH} characters and was not scanned for")
        else:
            usable[name] = _forms(value)
    report.secrets_scanned = sorted(usable)
    if not usable:
        return
    for dirpath, _, filenames in os.walk(root):
        for filename in sorted(filenames):
            path = Path(dirpath) / filename
            try:
                data = path.read_bytes()
            except OSError:
                continue
            report.files_scanned += 1
            for name, forms in usable.items():
                if any(form in data for form in forms):
                    report.problems.append(Problem("secret-found", str(path), f"holds the value of {name}"))


def verify(outputs: Path | None = None, secret_env: tuple[str, ...] | list[str] = (),
           scan: bool = True) -> Report:
    """Check the whole outputs folder; `report.ok` is False if anything was found."""
    root = Path(outputs or outputs_dir())
    report = Report()
    if not root.is_dir():
        report.notes.append(f"{root} does not exist: nothing has run yet")
        return report
    records = _check_chain(index.index_path(root), report)
    report.runs = len(records)
    _check_outputs(root, records, report)
    if scan:
        scan_for_secrets(root, secrets_to_scan(records, secret_env), report)
    return report
