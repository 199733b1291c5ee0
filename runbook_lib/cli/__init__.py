"""The `runbook` command: one entry point, sub-commands loaded on demand.

Sub-commands live in their own modules under runbook_lib/cli/ and are imported only when
called, so `runbook --help` stays fast and one broken module cannot take the others down.

`-v` / `-vv` show the package's log (`logging`, loggers under `runbook_lib`) on stderr at INFO /
DEBUG; by default only warnings and errors are shown. Results stay on stdout.
"""

from __future__ import annotations

import importlib
import logging
import sys

import click

from runbook_lib import __version__
from runbook_lib.errors import RunbookError

# name -> (module under runbook_lib.cli, attribute holding the click command, short help)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "run": ("run", "run", "run a notebook through papermill into outputs/ and index the run"),
    "history": ("history", "history", "list the recorded runs (outputs/index.jsonl)"),
    "verify": ("verify", "verify", "check the run index hash chain, every output's hash, and scan for secrets"),
    "smlog": ("smlog", "smlog", "Read and diagnose SMlog files."),
    "diagnose": ("diagnose", "diagnose", "is the GC coalescing, and why not: from the pool, SMlog files, or both"),
    "size": ("size", "size", "space each pending coalesce needs, and the ranked remedies"),
    "inventory": ("inventory", "inventory", "save a pool's inventory to a file (offline sizing)"),
    "check-pool": ("check_pool", "check_pool",
                   "read-only preflight: does this suite fit the pool? (exit 3 on a problem)"),
    "transfer": ("transfer", "transfer", "carry out a plan.json: dry run, or --execute --confirm VM_UUID"),
    "sim": ("sim", "sim", "serve the XenServer pool simulator; snapshot a pool into a scenario"),
    "demo": ("demo", "demo", "rehearse the whole remedy on the bundled simulator (make demo)"),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        module, attr, _ = COMMANDS[name]
        return getattr(importlib.import_module(f"runbook_lib.cli.{module}"), attr)

    def format_commands(self, ctx, formatter):
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except RunbookError as err:
            click.echo(f"error: {err}", err=True)
            sys.exit(err.exit_code)


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is when a record comes (click's test runner swaps it)."""

    def emit(self, record):
        self.stream = sys.stderr
        super().emit(record)


def setup_logging(verbosity: int) -> logging.Logger:
    """Log records of `runbook_lib.*` to stderr: WARNING, INFO with -v, DEBUG with -vv.

    The handler is the CLI's own (replaced on every call), so a host application's or pytest's
    logging setup is left alone.
    """
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    logger = logging.getLogger("runbook_lib")
    for handler in [h for h in logger.handlers if getattr(h, "runbook_cli", False)]:
        logger.removeHandler(handler)
    handler = _StderrHandler(sys.stderr)
    handler.runbook_cli = True
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    logger.addHandler(handler)
    logger.setLevel(level)
    return logger


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="runbook")
@click.option("-v", "--verbose", count=True, help="log to stderr: -v what was done (INFO), -vv details (DEBUG)")
def main(verbose):
    """Runbooks for stuck VHD coalesces on XenServer / XCP-ng.

    Diagnose SMlog, size the space a coalesce needs, move VMs off a full SR and back,
    and keep an audit trail of every run.
    """
    setup_logging(verbose)
