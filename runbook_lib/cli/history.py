"""`runbook history`: the run index as a table, or as JSON for scripts."""

from __future__ import annotations

import json

import click


@click.command("history")
@click.option("--incident", help="only the runs of this incident")
@click.option("--json", "as_json", is_flag=True, help="print the full index records as a JSON list")
def history(incident, as_json):
    """The runs recorded in outputs/index.jsonl, oldest first."""
    from runbook_lib.audit import index

    if as_json:
        records = [r for r in index.read_index() if incident is None or r.get("incident") == incident]
        click.echo(json.dumps(records, indent=2, sort_keys=True))
        return
    frame = index.history(incident)
    if frame.empty:
        where = f" for incident {incident}" if incident else ""
        click.echo(f"no runs recorded{where} in {index.index_path()}")
        return
    shown = frame.drop(columns=["run_id", "end"]).copy()
    shown["start"] = shown["start"].dt.strftime("%Y-%m-%d %H:%M:%SZ")
    shown["duration_s"] = shown["duration_s"].round(1)
    shown["error"] = shown["error"].fillna("").str.slice(0, 60)
    click.echo(shown.to_string(index=False))
