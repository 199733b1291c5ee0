"""`runbook size`: how much space each pending coalesce needs, and the ranked ways to get it."""

from __future__ import annotations

import json

import click

from runbook_lib.cli.pool_options import pool_options
from runbook_lib.cli.ssh_options import ssh_options, ssh_settings


@click.command("size")
@pool_options
@ssh_options
@click.option("--sr", "sr", metavar="UUID", help="only this SR: uuid, unique uuid prefix or name (default: every SR)")
@click.option("--staging-sr", metavar="UUID",
              help="stage VMs on this SR: uuid, prefix or name (default: the best other SR)")
@click.option("--findings", metavar="FILE",
              help="notebook 01's findings (runbook smlog diagnose --json) to join on VDIs")
@click.option("--smlog", "smlog_paths", multiple=True, type=click.Path(), metavar="PATH",
              help="SMlog file(s) to diagnose and measure the coalesce rate in; repeatable")
@click.option("--year", type=int, help="year of the SMlog's first line (default: from the file date)")
@click.option("--vhd-size", "vhd_sizes", multiple=True, metavar="VDI=BYTES",
              help="a running disk's real VHD size, measured on the host (vhd-util query -s); "
                   "repeatable; makes its need exact")
@click.option("--throughput", type=float, metavar="MIB_S",
              help="copy/coalesce rate in MiB/s (default: measured in the findings, else 100)")
@click.option("--snapshot", "snapshots", multiple=True, metavar="UUID",
              help="a snapshot (VM or VDI uuid) you are willing to delete; repeatable")
@click.option("--export-path", metavar="PATH", help="stage by XVA export to this mounted path")
@click.option("--no-migrate", is_flag=True, help="never plan live storage migration")
@click.option("--json", "as_json", is_flag=True, help="print one runbook.sizing/1 JSON object")
@click.option("--plan-out", metavar="FILE",
              help="write the best remedy as plan.json (docs/plan.md)")
def size(url, user, inventory, password_env, password_file, verify_tls, ca_bundle, sr, staging_sr,
         findings, smlog_paths, year, vhd_sizes, throughput, snapshots, export_path, no_migrate, as_json,
         plan_out, **ssh_kwargs):
    """Size the pending coalesces of a pool (--url) or a saved inventory (--inventory).

    With --ssh each host's dom0 is asked the exact sizes (docs/sizing.md); without it, sizes
    XenAPI cannot show are ranges: at least X, at most Y."""
    from runbook_lib.errors import UsageError
    from runbook_lib.input_files import check_output_file
    from runbook_lib.plan import assess, write_plan
    from runbook_lib.sizing import gather_findings, parse_vhd_sizes
    from runbook_lib.sizing_display import coalesce_table, remedies_table, sr_table, upper_bound_note
    from runbook_lib.xapi.inventory import open_inventory

    if plan_out:  # before the pool is read: a path that cannot take the plan is known now
        check_output_file(plan_out, "the plan")
    ssh = ssh_settings(ssh_kwargs)
    if ssh is not None and inventory:
        raise UsageError("--ssh asks a live pool's hosts; a saved inventory keeps the sizes it was saved with "
                         "(runbook inventory save --ssh)")
    inv = open_inventory(url=url, inventory=inventory, user=user, password_env=password_env,
                         password_file=password_file, verify_tls=verify_tls, ca_bundle=ca_bundle, ssh=ssh)
    result = assess(inv, sr=sr, staging_sr=staging_sr, findings=gather_findings(findings, smlog_paths, year=year),
                    throughput_bps=throughput * 1024 * 1024 if throughput else None,
                    snapshots=list(snapshots), export_path=export_path,
                    allow_migrate=not no_migrate, vhd_sizes=parse_vhd_sizes(",".join(vhd_sizes)))
    plan_path = None
    if plan_out:
        plan = result.plan(url=url if url else None, inventory_path=inventory,
                           export_path=export_path)
        if plan is not None:
            plan_path = write_plan(plan, plan_out)
    if as_json:
        out = result.to_json()
        out["plan"] = str(plan_path) if plan_path else None
        click.echo(json.dumps(out, indent=2))
        return
    for line in result.sizing.warnings:
        click.echo(f"warning: {line}", err=True)
    table = sr_table(result.sizing)
    click.echo(table.drop(columns=["shortfall_gib", "short_by"]).to_string(index=False))
    for name, short_by, gap in zip(table["name"], table["short_by"], table["shortfall_gib"]):
        if gap and gap > 0:
            click.echo(f"{name}: short by {short_by}")
    stuck = coalesce_table(result.sizing)[~result.sizing.coalesces["fits"].to_numpy(dtype=bool)]
    if len(stuck):
        click.echo("\ncoalesces that do not fit now:")
        cols = ["vdi", "sr", "kind", "vm", "virtual_gib", "needed_gib", "at_least_gib", "fits_offline",
                "size_source"]
        click.echo(stuck[cols].to_string(index=False))
    width = _width()
    note = upper_bound_note(result.sizing)
    if note:
        click.echo("\n" + _wrap_prose(note, width))
    if result.remedies:
        click.echo("")
        click.echo(_remedies_text(remedies_table(result.remedies), width))
        source = result.throughput_source
        if source.startswith("assumed"):
            source = "assumed: give --throughput, or --smlog / --findings to measure it"
        click.echo(f"\n(durations at {result.throughput_bps / 2**20:.0f} MiB/s, {source})")
    else:
        click.echo("\nno SR is short of space for its coalesces: nothing to plan")
    if plan_out:
        click.echo(f"plan: {plan_path}" if plan_path else "plan: none written (nothing to do)")


# A reason is a sentence or three; the human output shows it below the table, wrapped, and cut
# after this many lines (--json carries it whole).
REASON_LINES = 4


def _width() -> int:
    """The terminal's width, at most 120 (the tables themselves are about that wide)."""
    import shutil

    return max(60, min(shutil.get_terminal_size((120, 24)).columns, 120))


def _wrap_prose(text: str, width: int) -> str:
    """Wrap the prose lines of a note; indented lines are commands to copy and stay whole."""
    import textwrap

    return "\n".join(line if line.startswith(" ") or len(line) <= width else textwrap.fill(line, width)
                     for line in text.splitlines())


def _remedies_text(table, width: int) -> str:
    """The ranked remedies as a table without its reason column, then each reason, numbered,
    wrapped to the terminal and cut after REASON_LINES lines."""
    import textwrap

    shown = table.drop(columns=["reason"]).copy()
    shown["vms"] = [v if len(v) <= 32 else v[:29] + "..." for v in shown["vms"]]
    lines = [shown.to_string(index=False), ""]
    for rank, kind, reason in zip(table["rank"], table["kind"], table["reason"]):
        first = f"{rank}. {kind}: "
        wrapped = textwrap.wrap(str(reason), width, initial_indent=first, subsequent_indent=" " * len(first))
        if len(wrapped) > REASON_LINES:
            cut = wrapped[REASON_LINES - 1]
            wrapped = wrapped[:REASON_LINES - 1] + [cut[: width - 26].rstrip() + " ... (full text: --json)"]
        lines += wrapped
    return "\n".join(lines)
