"""`runbook verify`: is the audit trail intact, and free of secrets?"""

from __future__ import annotations

import sys

import click


@click.command("verify")
@click.option("--secret-env", "secret_env", multiple=True, metavar="NAME",
              help="also scan for the value of this environment variable (repeatable)")
@click.option("--no-scan", is_flag=True, help="check hashes only; skip the secret scan")
def verify(secret_env, no_scan):
    """Recompute the run index's hash chain and every output's sha256, and scan outputs/ for
    credential values. Exit 1 and list each changed, missing, reordered or leaking file."""
    from runbook_lib.audit.verify import verify as run_verify
    from runbook_lib.locations import outputs_dir

    report = run_verify(outputs_dir(), secret_env=secret_env, scan=not no_scan)
    for note in report.notes:
        click.echo(f"note: {note}")
    for problem in report.problems:
        click.echo(str(problem))
    scanned = (f"; scanned {report.files_scanned} files for {len(report.secrets_scanned)} secret(s)"
               f" ({', '.join(report.secrets_scanned)})" if report.secrets_scanned else
               "; no secret values to scan for" if not no_scan else "")
    verdict = "intact" if report.ok else f"{len(report.problems)} problem(s)"
    click.echo(f"{verdict}: {report.runs} run(s), {report.files_hashed} output file(s) hashed{scanned}")
    sys.exit(0 if report.ok else 1)
