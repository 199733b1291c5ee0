"""`runbook demo`: the rehearsal on the bundled simulator (what `make demo` runs)."""

import click


@click.command()
@click.option("--incident", help="incident id for the demo's audit trail (default: demo-<UTC time>)")
def demo(incident):
    """Rehearse the whole remedy on the bundled pool simulator.

    Diagnoses the simulated SMlog (01), sizes the space and writes a plan (02), dry-runs and
    then carries out the transfer and rescan (03), and writes the postmortem (04), each as an
    executed notebook in outputs/<incident>/.
    """
    from runbook_lib.demo import run_demo, summary

    result = run_demo(incident, echo=click.echo)
    click.echo(summary(result))
