"""`runbook size`: how much space each pending coalesce needs, and the ranked ways to get it."""

from __future__ import annotations

import json

import click

from runbook_lib.cli.pool_options import pool_options


@click.command("size")
@pool_options
@click.option("--sr", "sr", metavar="UUID", help="only this SR: uuid, unique uuid prefix or name (default: every SR)")
@click.option("--staging-sr", metavar="UUID", help="stage VMs on this SR: uuid, prefix or name (default: the best other SR)")
@click.option("--findings", type=click.Path(dir_okay=False), metavar="FILE",
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
@click.option("--plan-out", type=click.Path(dir_okay=False), metavar="FILE",
              help="write the best remedy as plan.json (docs/plan.md)")
def size(url, user, inventory, password_env, password_file, verify_tls, ca_bundle, sr, staging_sr,
         findings, smlog_paths, year, vhd_sizes, throughput, snapshots, export_path, no_migrate, as_json,
         plan_out):
    """Size the pending coalesces of a pool (--url) or a saved inventory (--inventory)."""
    from runbook_lib.plan import assess, write_plan
    from runbook_lib.sizing import gather_findings, parse_vhd_sizes
    from runbook_lib.sizing_display import coalesce_table, remedies_table, sr_table, upper_bound_note
    from runbook_lib.xapi.inventory import open_inventory

    inv = open_inventory(url=url, inventory=inventory, user=user, password_env=password_env,
                         password_file=password_file, verify_tls=verify_tls, ca_bundle=ca_bundle)
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
    click.echo(sr_table(result.sizing).to_string(index=False))
    stuck = coalesce_table(result.sizing)[~result.sizing.coalesces["fits"].to_numpy(dtype=bool)]
    if len(stuck):
        click.echo("\ncoalesces that do not fit now:")
        cols = ["vdi", "sr", "kind", "vm", "virtual_gib", "needed_gib", "at_least_gib", "fits_offline",
                "size_source"]
        click.echo(stuck[cols].to_string(index=False))
    note = upper_bound_note(result.sizing)
    if note:
        click.echo("\n" + note)
    if result.remedies:
        click.echo("")
        click.echo(remedies_table(result.remedies).to_string(index=False))
        click.echo(f"\n(throughput {result.throughput_bps / 2**20:.0f} MiB/s, {result.throughput_source})")
    else:
        click.echo("\nno SR is short of space for its coalesces: nothing to plan")
    if plan_out:
        click.echo(f"plan: {plan_path}" if plan_path else "plan: none written (nothing to do)")
