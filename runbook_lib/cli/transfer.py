"""`runbook transfer`: carry out a plan.json. Dry run unless --execute --confirm VM_UUID."""

from __future__ import annotations

import json

import click


@click.command("transfer")
@click.option("--plan", "plan_path", required=True, type=click.Path(dir_okay=False), metavar="FILE",
              help="plan.json written by `runbook size --plan-out` or notebook 02")
@click.option("--incident", required=True, metavar="ID",
              help="incident id: the journal is outputs/<ID>/transfer-journal.jsonl; re-run with it to resume")
@click.option("--execute", is_flag=True, help="change the pool (default: dry run, nothing is changed)")
@click.option("--confirm", "confirm_vm_uuid", default="", metavar="VM_UUID",
              help="with --execute: the uuid of the VM the plan moves (comma-separated for several)")
@click.option("--url", metavar="URL",
              help="pool master (default: the plan's pool.url); sim:<scenario> runs the bundled simulator")
@click.option("--user", default="root", show_default=True, help="XenAPI user")
@click.option("--password-env", default="XEN_PASSWORD", show_default=True, metavar="VAR",
              help="environment variable that holds the password")
@click.option("--password-file", type=click.Path(dir_okay=False), metavar="FILE",
              help="file that holds the password (instead of the variable)")
@click.option("--no-verify-tls", "verify_tls", flag_value=False, default=True,
              help="do not verify the pool's TLS certificate (explicit opt-out)")
@click.option("--ca-bundle", type=click.Path(dir_okay=False), metavar="FILE",
              help="CA certificate(s) to verify the pool's TLS certificate with")
@click.option("--staging-sr", default="", metavar="UUID", help="use this staging SR instead of the plan's")
@click.option("--wait-timeout", type=float, metavar="S", help="how long to wait for the GC (default: the plan's)")
@click.option("--smlog", type=click.Path(dir_okay=False), metavar="PATH",
              help="the host's SMlog, if reachable from here, to show GC progress")
@click.option("--json", "as_json", is_flag=True, help="print the outcome as one JSON object at the end")
def transfer(plan_path, incident, execute, confirm_vm_uuid, url, user, password_env, password_file, verify_tls,
             ca_bundle, staging_sr, wait_timeout, smlog, as_json):
    """Move a VM off a full SR, let the GC coalesce, and bring it back, as plan.json says.

    Without --execute this is a dry run: every step is shown with its XenAPI call, the object
    and the expected effect on each SR's free space, and only read calls reach the pool.
    """
    from runbook_lib.errors import UsageError
    from runbook_lib.transfer import (
        ConfirmationError,
        Journal,
        TransferInterrupted,
        check_confirmation,
        interrupted_message,
        load_plan,
        run_transfer,
    )
    from runbook_lib.transfer.journal import journal_path
    from runbook_lib.transfer.plan_steps import plan_steps, steps_table
    from runbook_lib.transfer.progress import ConsoleReporter, Reporter
    from runbook_lib.xapi import connect

    journal_file = journal_path(incident)  # a bad incident id is refused before anything else happens
    plan = load_plan(plan_path)
    if confirm_vm_uuid and not execute:
        raise UsageError("--confirm only means something with --execute")
    try:
        check_confirmation(plan, dry_run=not execute, confirm_vm_uuid=confirm_vm_uuid, front="cli")
    except ConfirmationError:
        # run_transfer refuses before it touches the pool (session None) and journals the refusal
        outcome = run_transfer(plan, None, incident=incident, dry_run=False, confirm_vm_uuid=confirm_vm_uuid,
                               reporter=Reporter(), front="cli")  # silent: the error line below says it once
        raise ConfirmationError(outcome.message) from None
    target = url if url is not None else (plan.get("pool") or {}).get("url")
    if target is None:
        raise UsageError("the plan does not say which pool it was made on: pass --url")
    table = steps_table(plan_steps(plan, staging_sr_uuid=staging_sr), plan, staging_sr_uuid=staging_sr,
                        journal=Journal(journal_file))
    echo = (lambda text: click.echo(text, err=True)) if as_json else click.echo
    echo(("EXECUTING" if execute else "DRY RUN (nothing is changed)") + f": {plan_path}, incident {incident}")
    echo(table.drop(columns=["note"]).to_string(index=False))
    echo("")
    try:
        with connect(target, user, password_env=password_env, password_file=password_file, verify_tls=verify_tls,
                     ca_bundle=ca_bundle, retry_refused_s=60.0) as session:
            outcome = run_transfer(plan, session, incident=incident, dry_run=not execute,
                                   confirm_vm_uuid=confirm_vm_uuid, staging_sr_uuid=staging_sr,
                                   wait_timeout_s=wait_timeout, smlog=smlog, reporter=ConsoleReporter(echo=echo),
                                   front="cli")
    except KeyboardInterrupt:
        # the executor journaled where it stopped; say it in one line instead of click's "Aborted!"
        raise TransferInterrupted(interrupted_message(Journal(journal_file), plan, front="cli")) from None
    echo(f"journal: {outcome.journal}")
    if as_json:
        click.echo(json.dumps(outcome.summary(), indent=2, default=str))
    raise SystemExit(outcome.exit_code)
