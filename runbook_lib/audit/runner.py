"""`runbook run`: execute one notebook through papermill and leave an audit record of it.

Every run gets its own never-reused output notebook plus an HTML rendering, in a folder per
incident that only its owner can read, and one line in the run index. Exit codes are what a
scheduler acts on: 0 ran clean, 1 the notebook failed (including a cell timeout), 3 the
notebook ran and recorded a breach, 2 the call was wrong and nothing ran.
"""

from __future__ import annotations

import datetime as dt
import getpass
import os
import re
import socket
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runbook_lib.audit import index, params
from runbook_lib.errors import InputError, UsageError
from runbook_lib.locations import notebooks_dir, outputs_dir, project_root
from runbook_lib.record import read_records

KERNEL = "python3"
# The kernel's own log (not the cells' output) goes to our stderr; keep it to real errors so a
# cron mail or a terminal shows the one-line result, not ipykernel's start-up warnings.
KERNEL_LOG_LEVEL = "ERROR"
# A notebook reports a breach by recording a truthy value under this name:
# record("breach", [...what is wrong...]). `runbook run` then exits 3.
BREACH_RECORD = "breach"
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_BREACH = 0, 1, 2, 3
# Set in the kernel's environment during `runbook run`: where this run's notebook is saved,
# so a notebook can write its own exports beside it (see artifact_path()).
RUN_OUTPUT_ENV = "RUNBOOK_RUN_OUTPUT"
INCIDENT_ENV = "RUNBOOK_INCIDENT"
RUN_ID_ENV = "RUNBOOK_RUN_ID"

_INCIDENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@dataclass
class RunResult:
    """What one run did; `index_record` is the line written to outputs/index.jsonl."""

    run_id: str
    incident: str
    notebook: Path
    output: Path
    html: Path | None
    status: str  # "succeeded" | "failed" | "breach"
    exit_code: int
    error: str | None
    parameters: dict[str, Any]
    records: dict[str, Any]
    start: dt.datetime
    end: dt.datetime
    failed_cell: int | None = None
    index_record: dict[str, Any] = field(default_factory=dict)


def check_incident(incident: str) -> str:
    """An incident id becomes a folder name, so it must be a plain, short name."""
    if not isinstance(incident, str) or not _INCIDENT.match(incident):
        raise UsageError(f"incident id {incident!r} must be letters, digits, '.', '_' or '-' "
                         "(up to 100, not starting with '.' or '-')")
    return incident


def resolve_notebook(name: str | Path) -> Path:
    """A notebook path, or a name in notebooks/: `05_snapshot_hygiene.ipynb`, its stem, or `05`."""
    path = Path(name).expanduser()
    if path.is_file():
        return path.resolve()
    if path.exists():  # a directory, a device, a FIFO: say which, not "not found"
        from runbook_lib.input_files import check_file

        check_file(path, "notebook")
    folder = notebooks_dir()
    for candidate in (folder / str(name), folder / f"{name}.ipynb"):
        if candidate.is_file():
            return candidate.resolve()
    if "/" not in str(name):
        matches = sorted(folder.glob(f"{name}*.ipynb"))
        if len(matches) == 1:
            return matches[0].resolve()
    raise InputError(f"notebook not found: {name}", hint=f"give a path or a name from {folder}")


def artifact_base(incident: str | None = None) -> Path:
    """Where a notebook should write its exports, as a path without suffix: add your own
    (`base.with_name(base.name + ".postmortem.md")`) and `runbook run` hashes them into the index.

    Under `runbook run` it is the run's own output name; run by hand (JupyterLab, nbval) it is a
    fresh timestamped name in the incident's folder.
    """
    current = os.environ.get(RUN_OUTPUT_ENV)
    if current:
        out = Path(current)
        return out.with_name(out.stem)
    folder = _private_dir(outputs_dir() / check_incident(incident or os.environ.get(INCIDENT_ENV) or "adhoc"))
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return folder / f"{stamp}_interactive_{uuid.uuid4().hex[:8]}"


def artifact_path(suffix: str, incident: str | None = None) -> Path:
    """artifact_base() plus one suffix such as `.note.md`."""
    base = artifact_base(incident)
    return base.with_name(base.name + suffix)


def _private_dir(path: Path, root: Path | None = None) -> Path:
    """Create `path` (and outputs/ above it) readable by the owner only."""
    root = root or outputs_dir()
    for folder in ([root, path] if path != root else [root]):
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            os.chmod(folder, 0o700)
        except PermissionError:
            pass
    return path


def _reserve(folder: Path, stem: str, start: dt.datetime) -> tuple[str, Path]:
    """Create an empty, owner-only output file under a name that has never been used."""
    stamp = start.strftime("%Y%m%dT%H%M%SZ")
    for _ in range(20):
        run_id = uuid.uuid4().hex
        path = folder / f"{stamp}_{stem}_{run_id[:8]}.ipynb"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            continue
        os.close(fd)
        if path.with_suffix(".html").exists():
            path.unlink()
            continue
        return run_id, path
    raise UsageError(f"could not find an unused output name in {folder}")


def _write_new(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


def _one_line(text: str, limit: int = 300) -> str:
    text = _ANSI.sub("", str(text or "")).strip()
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _describe_failure(err: BaseException, timeout: float | None) -> tuple[str, int | None]:
    """(what went wrong, papermill's cell index) for whatever stopped the run."""
    from papermill.exceptions import PapermillExecutionError

    if isinstance(err, PapermillExecutionError):
        if timeout and err.ename == "KeyboardInterrupt":
            return f"timed out after {timeout:g} s and was interrupted", err.cell_index
        return f"failed: {err.ename}: {_one_line(err.evalue)}", err.cell_index
    name = type(err).__name__
    if name == "NoSuchKernel":
        return f"no '{KERNEL}' Jupyter kernel here: install ipykernel in this environment", None
    if name == "DeadKernelError":
        return f"the kernel died during the run (out of memory?): {_one_line(err)}", None
    return f"{name}: {_one_line(err)}", None


def _failed_cell(nb) -> tuple[int, Any] | None:
    """The cell papermill marked as failed in the saved notebook (its index there, and the cell)."""
    for i, cell in enumerate(nb.cells):
        if cell.get("metadata", {}).get("papermill", {}).get("status") == "failed":
            return i, cell
    return None


def _where(found: tuple[int, Any] | None, fallback: int | None) -> str:
    if found is None:
        return f"cell {fallback}" if fallback is not None else "the run"
    i, cell = found
    first = next((line.strip() for line in cell.source.splitlines() if line.strip()), "")
    first = first if len(first) <= 40 else first[:37] + "..."
    count = f"In [{cell.execution_count}] " if cell.get("execution_count") else ""
    return f"cell {i} ({count}`{first}`)"


def _metadata_failure(nb) -> str | None:
    """A failure papermill left only in the metadata (a cell that called sys.exit(0))."""
    if not nb.metadata.get("papermill", {}).get("exception"):
        return None
    found = _failed_cell(nb)
    if found:
        for out in found[1].get("outputs", []):
            if out.get("output_type") == "error":
                return f"failed: {out.get('ename')}: {_one_line(out.get('evalue'))}"
    return "stopped the notebook (papermill marked the run as failed)"


OFFLINE_TEMPLATE = Path(__file__).with_name("offline_html.j2")


def render_html(nb) -> str:
    """The executed notebook as one self-contained HTML page: nothing in it loads from the network."""
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter(template_file=str(OFFLINE_TEMPLATE)).from_notebook_node(nb)
    return body


def _render_html(nb, path: Path) -> Path | None:
    body = render_html(nb)
    _write_new(path, body)
    return path


def _display_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(project_root()))
    except ValueError:
        return str(path.resolve())


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


@dataclass
class PreparedRun:
    """A checked, not yet executed run: its parameters and its reserved output file.

    Plain values only, so a scheduler can pass it between tasks (`to_dict` / `from_dict`).
    """

    run_id: str
    incident: str
    notebook: Path
    output: Path
    outputs: Path
    parameters: dict[str, Any]
    start: dt.datetime
    timeout: float | None = None
    # The caller's working directory: the kernel runs there, so a relative path in a parameter
    # means what it means in the shell that typed it (notebooks find their own files through
    # runbook_lib.locations, not through the cwd).
    cwd: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "incident": self.incident, "notebook": str(self.notebook),
                "output": str(self.output), "outputs": str(self.outputs), "parameters": self.parameters,
                "start": self.start.isoformat(), "timeout": self.timeout, "cwd": self.cwd}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "PreparedRun":
        return cls(run_id=data["run_id"], incident=data["incident"], notebook=Path(data["notebook"]),
                   output=Path(data["output"]), outputs=Path(data["outputs"]), parameters=dict(data["parameters"]),
                   start=dt.datetime.fromisoformat(data["start"]), timeout=data.get("timeout"),
                   cwd=data.get("cwd"))


def prepare_run(notebook: str | Path, incident: str, parameters: dict[str, Any] | list | None = None,
                parameters_file: str | Path | None = None, timeout: float | None = None,
                outputs: str | Path | None = None) -> PreparedRun:
    """Check everything and reserve the output name; raises UsageError before anything is written
    when the notebook, a parameter, its type or the incident id is wrong, or a value is a credential."""
    incident = check_incident(incident)
    if timeout is not None and timeout <= 0:
        raise UsageError(f"timeout must be a positive number of seconds, got {timeout}")
    nb_path = resolve_notebook(notebook)
    file_values = params.load_parameters_file(parameters_file) if parameters_file else {}
    if isinstance(parameters, dict):
        file_values = {**file_values, **parameters}
        pairs: list = []
    else:
        pairs = list(parameters or [])
    declared = params.declared_parameters(nb_path)
    values = params.resolve_parameters(nb_path, file_values, pairs, declared)
    if "incident" in declared and "incident" not in values:
        values["incident"] = incident  # a notebook that takes an incident works on the one it is filed under

    root = Path(outputs).expanduser().resolve() if outputs is not None else outputs_dir()
    folder = _private_dir(root / incident, root)
    start = dt.datetime.now(dt.timezone.utc)
    run_id, out_path = _reserve(folder, nb_path.stem, start)
    return PreparedRun(run_id=run_id, incident=incident, notebook=nb_path, output=out_path, outputs=root,
                       parameters=values, start=start, timeout=timeout, cwd=os.getcwd())


def _execute(run: PreparedRun) -> tuple[str | None, int | None]:
    """papermill with the python3 kernel; (what went wrong or None, papermill's cell index)."""
    import papermill

    run_env = {RUN_OUTPUT_ENV: str(run.output), INCIDENT_ENV: run.incident, RUN_ID_ENV: run.run_id,
               "RUNBOOK_OUTPUTS": str(run.outputs)}
    saved_env = {k: os.environ.get(k) for k in run_env}
    os.environ.update(run_env)  # the kernel inherits the environment it is started in
    old_umask = os.umask(0o077)  # the kernel inherits it: whatever the notebook writes is private
    try:
        papermill.execute_notebook(
            str(run.notebook), str(run.output), parameters=run.parameters, kernel_name=KERNEL,
            progress_bar=False, log_output=False, cwd=run.cwd or os.getcwd(),
            execution_timeout=run.timeout, interrupt_on_timeout=True,
            extra_arguments=[f"--IPKernelApp.log_level={KERNEL_LOG_LEVEL}"],
        )
    except KeyboardInterrupt:
        raise
    except Exception as err:  # every failure is recorded, then reported in one line
        return _describe_failure(err, run.timeout)
    finally:
        os.umask(old_umask)
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return None, None


def _papermill_time(nb, key: str) -> dt.datetime | None:
    value = (nb.metadata.get("papermill") or {}).get(key) if nb is not None else None
    try:
        return dt.datetime.fromisoformat(value) if value else None
    except ValueError:
        return None


def finish_run(run: PreparedRun, error: str | None = None, failed_cell: int | None = None,
               end: dt.datetime | None = None, interrupted: bool = False) -> RunResult:
    """Judge an executed notebook, render it to HTML, hash everything and append the index line.

    Used by run_notebook(), and by schedulers that executed `run.output` with papermill
    themselves (the Airflow DAG): a failure is then read from the notebook's own metadata.
    """
    import nbformat

    records: dict[str, Any] = {}
    html_path: Path | None = None
    html_error: str | None = None
    start = run.start
    try:
        nb = nbformat.read(str(run.output), as_version=4)
    except Exception:
        nb = None  # papermill never got to write it (no kernel): the empty file stays as evidence
    if nb is not None:
        if end is None:  # executed elsewhere: papermill's own times are the best we have
            start = _papermill_time(nb, "start_time") or start
            end = _papermill_time(nb, "end_time")
        records = read_records(nb)
        error = error or _metadata_failure(nb)
        if error is not None and not interrupted:
            found = _failed_cell(nb)
            error = f"{_where(found, failed_cell)} {error}" if (found or failed_cell is not None) else error
            failed_cell = found[0] if found else failed_cell
        try:
            html_path = _render_html(nb, run.output.with_suffix(".html"))
        except Exception as err:  # the notebook is the record; a missing rendering is only noted
            html_error = _one_line(err)
    elif error is None:
        error = "the executed notebook is missing or unreadable"
    end = end or dt.datetime.now(dt.timezone.utc)
    if run.output.exists():
        os.chmod(run.output, 0o600)

    if error is not None:
        status, code = "failed", EXIT_FAILED
    elif records.get(BREACH_RECORD):
        status, code = "breach", EXIT_BREACH
    else:
        status, code = "succeeded", EXIT_OK

    folder = run.output.parent
    files = [p for p in [run.output, html_path] if p is not None and p.exists()]
    files += sorted(p for p in folder.glob(run.output.stem + ".*") if p not in files and p.is_file())
    entry = {
        "run_id": run.run_id,
        "incident": run.incident,
        "notebook": _display_path(run.notebook),
        "notebook_sha256": index.file_sha256(run.notebook),
        "parameters": run.parameters,
        "timeout_s": run.timeout,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "status": status,
        "exit_code": code,
        "error": error,
        "failed_cell": failed_cell,
        "outputs": [{"path": str(p.relative_to(run.outputs)), "sha256": index.file_sha256(p),
                     "bytes": p.stat().st_size} for p in files],
        "records": records,
        "html_error": html_error,
        "host": socket.gethostname(),
        "user": _user(),
    }
    written = index.append(entry, run.outputs)
    return RunResult(run_id=run.run_id, incident=run.incident, notebook=run.notebook, output=run.output,
                     html=html_path, status=status, exit_code=code, error=error, parameters=run.parameters,
                     records=records, start=start, end=end, failed_cell=failed_cell, index_record=written)


def run_notebook(notebook: str | Path, incident: str, parameters: dict[str, Any] | list | None = None,
                 parameters_file: str | Path | None = None, timeout: float | None = None,
                 outputs: str | Path | None = None) -> RunResult:
    """Run `notebook` for `incident` and index the run.

    Parameters
    ----------
    parameters : mapping of name -> value (typed), or a list of (name, raw string) pairs as
        given with `-p`, which are converted with the type the notebook declares. A notebook
        that declares `incident` gets this run's incident unless one is given.
    parameters_file : YAML/JSON file of parameters; `parameters` win over it.
    timeout : seconds any one cell may run; a cell over it is interrupted and the run fails.
    outputs : the outputs folder (default: `$RUNBOOK_OUTPUTS` or `<project>/outputs`).

    Returns
    -------
    RunResult; bad usage (unknown notebook or parameter, a wrong type, a credential) raises a
    UsageError before anything runs or is written.
    """
    run = prepare_run(notebook, incident, parameters, parameters_file, timeout, outputs)
    try:
        error, failed_cell = _execute(run)
    except KeyboardInterrupt:
        finish_run(run, "interrupted by the user", end=dt.datetime.now(dt.timezone.utc), interrupted=True)
        raise
    return finish_run(run, error, failed_cell, end=dt.datetime.now(dt.timezone.utc))
