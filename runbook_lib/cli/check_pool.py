"""`runbook check-pool`: a read-only preflight of a real pool (docs/check-pool.md)."""

from __future__ import annotations

import json

import click

from runbook_lib.cli.pool_options import pool_options
from runbook_lib.cli.ssh_options import ssh_options, ssh_settings
from runbook_lib.cli.text_table import echo_table


@click.command("check-pool")
@pool_options(inventory=False)
@click.option("--json", "as_json", is_flag=True, help="Print exactly one JSON object (schema runbook.pool.check/1).")
@ssh_options
def check_pool(url, user, password_env, password_file, verify_tls, ca_bundle, as_json, **ssh_kwargs):
    """Check, before an incident, that this suite fits a pool; change nothing.

    One line per item, ok / warning / problem: each host's product and API version (and whether
    the suite was checked against it), each SR's type, provisioning, sharing and hosts, HA and the
    VMs it keeps on shared SRs, the default and suspend SRs with their free space, the
    coalesce-leaf plugin on each SR's master (probed with a function no plugin has), and every
    record field the suite reads; with --ssh, each host's dom0 reached with a known host key and
    answering one read-only question. Exit 0 when nothing is a problem, 3 otherwise.
    """
    from runbook_lib.errors import UsageError
    from runbook_lib.pool_check import check_pool as run

    if url is None:
        raise UsageError("say which pool to check: --url URL (sim:<scenario> for the bundled simulator)")
    result = run(url, user=user, password_env=password_env, password_file=password_file, verify_tls=verify_tls,
                 ca_bundle=ca_bundle, ssh=ssh_settings(ssh_kwargs))
    if as_json:
        click.echo(json.dumps(result.to_json()))
    else:
        click.echo(result.summary())
        rows = [(i.status, i.check, i.subject, i.detail) for i in result.items]
        subject_width = max(len("subject"), *(len(r[2]) for r in rows))
        echo_table(("status", "check", "subject", "detail"), (7, 10, subject_width, 0), rows)
    raise SystemExit(result.exit_code)
