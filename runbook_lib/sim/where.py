"""The filter language of xapi's `<class>.get_all_records_where(expr)` (Db_filter), as far as
clients use it: `field "name" = "value"` comparisons joined by `and` / `or`, `not`, brackets,
`true` and `false`. A record's field is compared as text (booleans `true`/`false`); a
field name's `__` is the `_` of the record's field (`name__label`)."""

from __future__ import annotations

import re
from typing import Any, Callable

from runbook_lib.sim.model import ApiFailure

_TOKEN = re.compile(r'\s*(?:(\()|(\))|(=)|"((?:[^"\\]|\\.)*)"|([A-Za-z_]+))')

Predicate = Callable[[dict], bool]


def _tokens(expr: str) -> list[tuple[str, str]]:
    out, pos, text = [], 0, str(expr)
    while pos < len(text.rstrip()):
        m = _TOKEN.match(text, pos)
        if not m:
            raise _error(expr)
        pos = m.end()
        if m.group(4) is not None:
            out.append(("str", m.group(4).replace('\\"', '"')))
        else:
            out.append(("sym", next(g for g in m.groups() if g is not None).lower()))
    return out


def _error(expr: str) -> ApiFailure:
    return ApiFailure("INTERNAL_ERROR", f"Db_filter: cannot parse {str(expr)[:80]!r}")


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class _Parser:
    def __init__(self, expr: str):
        self.expr, self.toks, self.i = expr, _tokens(expr), 0

    def take(self, kind: str, value: str | None = None) -> str:
        if self.i >= len(self.toks) or self.toks[self.i][0] != kind or value and self.toks[self.i][1] != value:
            raise _error(self.expr)
        self.i += 1
        return self.toks[self.i - 1][1]

    def peek(self, value: str) -> bool:
        return self.i < len(self.toks) and self.toks[self.i] == ("sym", value)

    def either(self) -> Predicate:
        return self._joined("or", self.both, lambda a, b: lambda r: a(r) or b(r))

    def both(self) -> Predicate:
        return self._joined("and", self.single, lambda a, b: lambda r: a(r) and b(r))

    def _joined(self, word: str, part: Callable[[], Predicate], join) -> Predicate:
        """part (word part)*, left to right."""
        left = part()
        while self.peek(word):
            self.take("sym", word)
            left = join(left, part())
        return left

    def single(self) -> Predicate:
        if self.peek("not"):
            self.take("sym", "not")
            inner = self.single()
            return lambda r: not inner(r)
        if self.peek("("):
            self.take("sym", "(")
            inner = self.either()
            self.take("sym", ")")
            return inner
        for word, result in (("true", True), ("false", False)):
            if self.peek(word):
                self.take("sym", word)
                return lambda r, v=result: v
        self.take("sym", "field")
        name = self.take("str").replace("__", "_")
        self.take("sym", "=")
        value = self.take("str")
        return lambda r: name in r and _text(r[name]) == value


def predicate(expr: str) -> Predicate:
    """A test on a record for `expr`; ApiFailure for text that is not a filter."""
    parser = _Parser(expr)
    test = parser.either()
    if parser.i != len(parser.toks):
        raise _error(expr)
    return test
