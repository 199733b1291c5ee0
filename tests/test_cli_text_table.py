"""runbook_lib.cli.text_table: aligned columns for the commands' plain output."""

import click
from click.testing import CliRunner

from runbook_lib.cli.text_table import echo_table


def _run(*args) -> str:
    @click.command()
    def show():
        echo_table(*args)

    return CliRunner().invoke(show).output


def test_columns_align_left_right_and_free():
    out = _run(("name", "size", "note"), (6, -5, 0), [("a", "10", "first"), ("longer", "2", "x y")])
    assert out.splitlines() == ["", "name    size note", "a         10 first", "longer     2 x y"]


def test_no_rows_print_nothing():
    assert _run(("name",), (4,), []) == ""
