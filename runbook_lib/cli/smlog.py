"""`runbook smlog ...`: read SMlog files and say whether the GC is coalescing, and if not why."""

from __future__ import annotations

import json
import logging

import click

log = logging.getLogger(__name__)


@click.group("smlog")
def smlog():
    """Read and diagnose SMlog files (plain, rotated .gz, directories, status-report tarballs)."""


@smlog.command("diagnose")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--year", type=int, default=None,
              help="Year of the first line; 0 or unset: date the last line by the newest file's mtime.")
@click.option("--sr", "sr", default=None, metavar="UUID", help="Only this SR (full UUID or a prefix).")
@click.option("--json", "as_json", is_flag=True,
              help="Print exactly one JSON object (schema runbook.smlog.diagnosis/1).")
@click.option("--sm-version", metavar="VERSION",
              help="the storage manager's version (`rpm -q sm` on the host), for its known defects; "
                   "else read from a status report among PATHS")
def diagnose_cmd(paths, year, sr, as_json, sm_version):
    """Say per SR and per VDI whether the GC coalesces, with evidence and the next step.

    PATH may be SMlog, SMlog.1, SMlog.2.gz, ..., a directory, or a .tar/.tar.gz/.tar.bz2/.zip
    status report holding var/log/SMlog*. Exit 0 when the input was read, 2 when a path is
    missing or unreadable.
    """
    from runbook_lib.smlog import diagnose, read_smlog

    year = year or None  # 0, as in notebook 01, means "from the files' dates"; read_smlog checks the rest
    if sm_version:  # a bad value is refused before a long read
        from runbook_lib.sm_version import parse_sm_version

        parse_sm_version(sm_version)
    read = read_smlog(list(paths), year=year)
    for entry in read.skipped:  # stderr: --json stays one object on stdout
        click.echo(f"warning:   skipped {entry}", err=True)
    log.info("read %d file(s), %d lines (%d unparsed), %s .. %s", len(read.files), read.lines, read.unparsed,
             read.first, read.last)
    found = diagnose(read, sr=sr)
    log.info("verdict %s over %d SR(s) and %d VDI(s)", found.verdict, len(found.sr_rows), len(found.vdi_rows))
    data = _with_known_defects(found.to_json(), sm_version, list(paths))
    if as_json:
        click.echo(json.dumps(data, sort_keys=False))
        return
    _echo_text(data)


def _with_known_defects(data: dict, sm_version: str | None, paths: list[str]) -> dict:
    """The known-defects hook (runbook_lib.findings_merge): sm's version, the defects it explains."""
    from runbook_lib.diagnosis import read_sm_version
    from runbook_lib.findings_merge import apply_known_defects

    return apply_known_defects(data, read_sm_version(sm_version, paths))


def _echo_text(data: dict) -> None:
    """The diagnosis as text: verdict and next step, what was read, then SR, VDI and exception tables."""
    from runbook_lib.units import gib_short

    click.echo(f"verdict:   {data['verdict']}")
    click.echo(f"next step: {data['next_step']}")
    click.echo(f"read:      {len(data['files'])} file(s), {data['lines']} lines ({data['unparsed']} unparsed), "
               f"{data['first'] or '?'} .. {data['last'] or '?'}")
    for f in data["files"]:
        if f["truncated"]:
            click.echo(f"warning:   {f['path']} is truncated; read what was readable")
    if data["srs"]:
        click.echo("")
        click.echo(f"{'SR':<38} {'verdict':<15} {'VDIs':>5} {'trees':>5}  name")
        for s in data["srs"]:
            click.echo(f"{s['sr']:<38} {s['verdict']:<15} {s['vdis'] if s['vdis'] is not None else '-':>5} "
                       f"{s['trees'] if s['trees'] is not None else '-':>5}  {s['name'] or ''}")
    if data["vdis"]:
        click.echo("")
        click.echo(f"{'VDI':<38} {'verdict':<15} {'tries':>5} {'fails':>5} {'virtual':>9} {'LV':>9}  last failure")
        for v in data["vdis"]:
            click.echo(f"{v['vdi']:<38} {v['verdict']:<15} {v['attempts']:>5} {v['failures']:>5} "
                       f"{gib_short(v['virtual_size']):>9} {gib_short(v['lv_size']):>9}  {v['last_failure'] or '-'}")
        worst = data["vdis"][0]
        if worst["evidence"]:
            click.echo(f"evidence for {worst['vdi']}: {', '.join(worst['evidence'][:4])}"
                       + (" ..." if len(worst["evidence"]) > 4 else ""))
    if data["exceptions"]:
        click.echo("")
        click.echo("exceptions:")
        for e in data["exceptions"][:10]:
            click.echo(f"  {e['count']:>5} x {e['type']}: {e['message'][:80]} ({e['context']})")
