"""Errors an admin can act on: one line, the right exit code, one line in a notebook too."""

from runbook_lib.errors import CredentialError, InputError, PoolError, RunbookError, UsageError


def test_exit_codes_separate_usage_from_failures():
    assert RunbookError("x").exit_code == 1 and PoolError("x").exit_code == 1
    assert UsageError("x").exit_code == InputError("x").exit_code == CredentialError("x").exit_code == 2


def test_message_carries_the_hint():
    err = InputError("inventory file not found: a.json", hint="save one with runbook inventory save")
    assert str(err) == "inventory file not found: a.json (save one with runbook inventory save)"


def test_ipython_shows_one_line_instead_of_a_traceback(capsys):
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    result = shell.run_cell("from runbook_lib.errors import PoolError\nraise PoolError('SR not found: db4c')")
    assert isinstance(result.error_in_exec, PoolError)
    shown = capsys.readouterr().out
    assert "PoolError: SR not found: db4c" in shown and "Traceback" not in shown
