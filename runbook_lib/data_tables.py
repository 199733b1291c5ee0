"""What the loaders of the tables in runbook_lib/data/ check alike, each failure in one line.

    CHECK = TableCheck("known-defects table")
    CHECK.text(row, "title", "row 3")       # a non-empty text, its whitespace folded
    CHECK.sources(row, "row 3")             # the list of where each fact comes from
"""

from __future__ import annotations

from dataclasses import dataclass

from runbook_lib.errors import InputError


@dataclass(frozen=True)
class TableCheck:
    table: str   # how a message names the table

    def fail(self, where: str, why: str) -> InputError:
        return InputError(f"{self.table} {where}: {why}")

    def text(self, row: dict, key: str, where: str) -> str:
        value = row.get(key)
        if not isinstance(value, str) or not value.strip():
            raise self.fail(where, f"'{key}' must be a non-empty text")
        return " ".join(value.split())

    def sources(self, row: dict, where: str) -> tuple[str, ...]:
        value = row.get("sources")
        if not isinstance(value, list) or not value or not all(isinstance(s, str) and s.strip() for s in value):
            raise self.fail(where, "'sources' must list where each fact comes from")
        return tuple(" ".join(s.split()) for s in value)
