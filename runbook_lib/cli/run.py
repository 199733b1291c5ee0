"""`runbook run`: a notebook through papermill, with an audit record and scheduler exit codes."""

from __future__ import annotations

import sys

import click


@click.command("run")
@click.argument("notebook")
@click.option("--incident", required=True, help="incident id: the folder under outputs/ this run goes to")
@click.option("-f", "--parameters-file", metavar="FILE", help="YAML or JSON file of parameters")
@click.option("-p", "--parameter", "pairs", nargs=2, multiple=True, metavar="NAME VALUE",
              help="one parameter, converted to the type the notebook declares (repeatable; wins over -f)")
@click.option("--timeout", type=float, help="seconds any one cell may run; a cell over it fails the run")
def run(notebook, incident, parameters_file, pairs, timeout):
    """Run NOTEBOOK (a path, or a name in notebooks/ such as 05) and index the run.

    \b
    Exit codes: 0 the notebook ran clean; 1 it failed (the failing cell is named);
    3 it ran and recorded a breach; 2 bad usage, nothing ran.
    Credentials are never parameters: pass the NAME of an environment variable
    (password_env) or a file (password_file).
    """
    from runbook_lib.audit.runner import run_notebook

    result = run_notebook(notebook, incident, list(pairs), parameters_file=parameters_file, timeout=timeout)
    click.echo(f"{result.status}: {result.output}")
    if result.html:
        click.echo(f"html: {result.html}")
    for extra in written_beside(result):
        click.echo(f"file: {extra}")
    if result.error:
        click.echo(f"error: {result.error}", err=True)
    elif result.status == "breach":
        click.echo(f"breach: {_summarise(result.records.get('breach'))}", err=True)
    sys.exit(result.exit_code)


def written_beside(result) -> list:
    """The files the notebook wrote beside its executed copy (02's plan, 01's findings, 04's
    postmortem), as hashed into the index: shown so the admin need not look for them."""
    from pathlib import Path

    shown = {Path(result.output).name, Path(result.html).name if result.html else None}
    names = [Path(str(o.get("path"))).name for o in result.index_record.get("outputs") or []]
    return [Path(result.output).parent / n for n in names if n not in shown]


def _summarise(value, limit: int = 200) -> str:
    if isinstance(value, list):
        text = f"{len(value)} finding(s): " + "; ".join(str(v) for v in value[:3])
    else:
        text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
