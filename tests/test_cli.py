"""The `runbook` entry point: help, version, and errors without tracebacks."""

import subprocess
import sys

from click.testing import CliRunner

from runbook_lib import __version__
from runbook_lib.cli import COMMANDS, main


def test_version():
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.output


def test_help_lists_every_sub_command():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for name in COMMANDS:
        assert name in result.output


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
