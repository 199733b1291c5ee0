"""`runbook diagnose`: is the GC coalescing, and if not why, from the pool, the SMlog, or both."""

from __future__ import annotations

import json
import logging

import click

from runbook_lib.cli.pool_options import pool_options
from runbook_lib.cli.text_table import echo_table

log = logging.getLogger(__name__)
MAX_VDI_ROWS = 30  # the text shows the worst ones; --json has every row


@click.command("diagnose")
@click.argument("paths", nargs=-1, type=click.Path())
@pool_options
@click.option("--sm-version", metavar="VERSION",
              help="the storage manager's version, as `rpm -q sm` shows it on the SR master (e.g. 3.2.11-1.xs8); "
                   "else read from a status report among PATHS, else what XenAPI tells")
@click.option("--sr", "sr", default=None, metavar="UUID", help="Only this SR (full UUID or a prefix).")
@click.option("--year", type=int, default=None,
              help="Year of the log's first line; 0 or unset: date the last line by the newest file's mtime.")
@click.option("--json", "as_json", is_flag=True, help="Print exactly one JSON object (schema runbook.diagnosis/1).")
def diagnose(paths, url, user, inventory, password_env, password_file, verify_tls, ca_bundle, sm_version, sr, year,
             as_json):
    """Say per SR and per VDI whether the GC coalesces, with evidence and the next step.

    With --url the pool is read over XenAPI and nothing is changed: the GC's messages
    (SM_GC_NO_SPACE, failed to unpause tapdisk), its sm-config keys, a running Garbage
    Collection task, the switches that stop it, and the chains waiting to coalesce (Xen
    Orchestra's count). PATHS (SMlog files, rotations, directories or status-report tarballs)
    add the log's verdicts; with both, the findings are merged per SR and VDI.
    """
    from runbook_lib.diagnosis import describe_sources, run_diagnosis

    result = run_diagnosis(paths=list(paths), url=url, inventory=inventory, sm_version=sm_version, sr=sr,
                           year=year or None, user=user, password_env=password_env, password_file=password_file,
                           verify_tls=verify_tls, ca_bundle=ca_bundle)
    for note in result.notes:  # stderr: --json stays one object on stdout
        click.echo(f"warning:   {note}", err=True)
    data = result.to_json()
    log.info("verdict %s over %d SR(s) and %d VDI(s)", data["verdict"], len(data["srs"]), len(data["vdis"]))
    if as_json:
        click.echo(json.dumps(data, default=str))
        return
    _echo_text(data, describe_sources(data))


def _echo_text(data: dict, sources: str) -> None:
    click.echo(f"verdict:   {data['verdict']}")
    click.echo(f"next step: {data['next_step']}")
    click.echo(f"read:      {sources}")
    sm = data.get("sm_version")
    click.echo(f"sm:        {sm['summary'] if sm else 'version unknown'}")
    for d in data["known_defects"]:
        where = ", ".join(d["srs"] + d["vdis"]) or "not seen here"
        click.echo(f"defect:    {d['id']} ({d['applies']}; fixed in {d['fixed_in']}): {where}")
    sr_rows = [(s["sr"], s["verdict"], _count(s), _gc(s), "+".join(s["sources"]), s.get("name") or "")
               for s in data["srs"]]
    echo_table(("SR", "verdict", "to coalesce", "GC", "from", "name"), (38, 15, -11, -5, 11, 0), sr_rows)
    vdi_rows = [(v["vdi"], v["verdict"], v.get("pending") or "-", "+".join(v["sources"]),
                 ", ".join(v.get("findings") or []) or "-") for v in data["vdis"][:MAX_VDI_ROWS]]
    echo_table(("VDI", "verdict", "pending", "from", "findings"), (38, 15, 9, 11, 0), vdi_rows)
    if len(data["vdis"]) > MAX_VDI_ROWS:
        click.echo(f"... and {len(data['vdis']) - MAX_VDI_ROWS} more VDI(s), less bad (--json lists them all)")


def _count(row: dict) -> str:
    return "-" if row.get("to_coalesce") is None else str(row["to_coalesce"])


def _gc(row: dict) -> str:
    if row.get("gc_progress") is not None:
        return f"{row['gc_progress']:.0%}"
    return "run" if row.get("gc_running") else "-"
