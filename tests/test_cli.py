"""The `runbook` entry point: help, version, and errors without tracebacks."""

import logging
import subprocess
import sys

import pytest
from click.testing import CliRunner

from runbook_lib import __version__
from runbook_lib.cli import COMMANDS, main, setup_logging


def test_version():
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.output


def test_help_lists_every_sub_command():
    """Each sub-command is a row of the Commands section, with its short help (the names alone
    would also be found in the group's description)."""
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    section = result.output.split("Commands:", 1)[1]
    rows = {line.split()[0]: " ".join(line.split()[1:]) for line in section.splitlines()
            if line.startswith("  ") and not line.startswith("   ")}
    assert set(rows) == set(COMMANDS)
    for name, (_, _, short) in COMMANDS.items():
        assert " ".join(short.split()).startswith(rows[name]), name


@pytest.fixture
def cli_logging():
    """The CLI's handler writes to CliRunner's stream: take it off again after the test."""
    logger = logging.getLogger("runbook_lib")
    level = logger.level
    yield logger
    for handler in [h for h in logger.handlers if getattr(h, "runbook_cli", False)]:
        logger.removeHandler(handler)
    logger.setLevel(level)


def test_verbose_logs_to_stderr(data_dir, cli_logging):
    smlog = str(data_dir / "smlog" / "nospace.log")
    quiet = CliRunner().invoke(main, ["smlog", "diagnose", smlog, "--year", "2024"])
    assert quiet.exit_code == 0 and "INFO" not in quiet.stderr
    result = CliRunner().invoke(main, ["-v", "smlog", "diagnose", smlog, "--year", "2024"])
    assert result.exit_code == 0, result.output
    assert "INFO runbook_lib.cli.smlog: read 1 file(s)" in result.stderr
    assert "verdict:" in result.stdout and "INFO" not in result.stdout
    assert setup_logging(2).level == logging.DEBUG and setup_logging(0).level == logging.WARNING
    assert sum(getattr(h, "runbook_cli", False) for h in cli_logging.handlers) == 1


def test_every_sub_command_loads_and_has_help():
    for name in COMMANDS:
        result = CliRunner().invoke(main, [name, "--help"])
        assert result.exit_code == 0, (name, result.output)


def test_unknown_command_is_a_usage_error():
    result = CliRunner().invoke(main, ["no-such-command"])
    assert result.exit_code == 2


def test_console_script_runs_as_module():
    proc = subprocess.run([sys.executable, "-m", "runbook_lib", "--version"], capture_output=True, text=True)
    assert proc.returncode == 0 and __version__ in proc.stdout
