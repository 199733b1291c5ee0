"""Aligned text columns for the commands' plain output (--json gives the full data)."""

from __future__ import annotations

import click


def echo_table(header: tuple, widths: tuple, rows: list[tuple]) -> None:
    """Aligned columns after a blank line (a negative width aligns right; 0: as long as it is)."""
    if not rows:
        return

    def line(cells) -> str:
        return " ".join(f"{c:>{-w}}" if w < 0 else f"{c:<{w}}" if w else str(c) for c, w in zip(cells, widths))

    click.echo("")
    for cells in (header, *rows):
        click.echo(line(cells).rstrip())
