"""How the notebooks show a table: every value in full, wrapped instead of cut with `...`.

`readable_tables()`, called once at the top of each notebook, makes IPython render every
DataFrame a cell shows (ours and the transfer's alike) with `table_html`: text left-aligned and
wrapped (long UUIDs and paths break instead of widening the page), numbers and numbers with a
unit right-aligned, missing values blank, no row numbers unless the index means something, and
at most `MAX_ROWS` rows with a line saying how many were left out. The HTML lands in the executed
notebook, so the audit trail's HTML export shows the same table.

Numbers stay numbers in the DataFrames (bytes, see units.py); `with_sizes` turns byte columns into
`1,234.5 GiB` (or `36 MiB`) for showing only.
"""

from __future__ import annotations

import html
import re
from typing import Any

import pandas as pd

from runbook_lib.units import gib_or_mib, is_missing

MAX_ROWS = 200
_ISO_TIME = re.compile(r"^(\d{4}-\d\d-\d\d)T(\d\d:\d\d)")
# a number, optionally with a unit: `2,020.0 GiB`, `-2,074.0 GiB`, `706.6 min`, `25 VHDs`, `7 days`
_NUMBER_WITH_UNIT = re.compile(r"^[-+]?[\d,]*\.?\d+( ?[A-Za-z/%]{1,8})?$")
LONG_WORD = 16  # characters: a longer word gets line-break opportunities at its punctuation
_BREAK_AFTER = re.compile(r"([-_/:.,=])")
_STYLE = "text-align: left; vertical-align: top; white-space: normal; overflow-wrap: break-word"
_NUMBER_STYLE = "text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums"


def readable_tables() -> None:
    """Show every DataFrame of this notebook with `table_html` (and never cut a value in text)."""
    from IPython import get_ipython

    pd.set_option("display.max_colwidth", None)
    pd.set_option("display.max_columns", None)
    shell = get_ipython()
    if shell is not None:
        shell.display_formatter.formatters["text/html"].for_type(pd.DataFrame, table_html)


def with_sizes(frame: pd.DataFrame, *columns: str) -> pd.DataFrame:
    """A copy of `frame` whose byte columns read `1,234.5 GiB`, or `36 MiB` below 1 GiB (blank
    when unknown)."""
    shown = frame.copy()
    for column in columns:
        if column in shown.columns:
            shown[column] = shown[column].map(lambda n: gib_or_mib(n, missing="")).astype(object)
    return shown


def cell_text(value: Any) -> str:
    """One value as a table shows it: lists joined, floats without trailing zeros, times to the
    second with a space after the date (also in ISO text), missing values blank."""
    if isinstance(value, (list, tuple, set, frozenset)):
        return ", ".join(cell_text(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {cell_text(v)}" for k, v in value.items())
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, pd.Timestamp) or (hasattr(value, "isoformat") and hasattr(value, "hour")):
        return "" if value is pd.NaT else value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, pd.Timedelta):
        return str(value)
    if isinstance(value, float) or type(value).__module__ == "numpy":
        return _number_text(value)
    if value is None:
        return ""
    return _ISO_TIME.sub(r"\1 \2", value) if isinstance(value, str) else str(value)


def _number_text(value: Any) -> str:
    if is_missing(value):
        return ""
    value = value.item() if hasattr(value, "item") else value
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    text = f"{value:,.3f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _right_aligned(column: pd.Series) -> bool:
    """Numbers, and text that is a number with a unit, read best right-aligned."""
    if pd.api.types.is_bool_dtype(column):
        return False
    if pd.api.types.is_numeric_dtype(column):
        return True
    texts = [cell_text(v) for v in column]
    filled = [t for t in texts if t]
    return bool(filled) and all(_NUMBER_WITH_UNIT.match(t) for t in filled)


def _shows_index(frame: pd.DataFrame) -> bool:
    index = frame.index
    plain = isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1
    return not plain


def cell_html(value: Any) -> str:
    """`cell_text` escaped for HTML, with a line-break opportunity (`<wbr>`, which copies as
    nothing) after each `-`, `_`, `/`, `:`, `.`, `,`, `=` of a long word: a UUID, a path or a
    timestamp wraps at its own punctuation instead of widening the table or breaking anywhere."""
    return " ".join(_breakable(word) for word in html.escape(cell_text(value)).split(" "))


def _breakable(word: str) -> str:
    if len(word) < LONG_WORD or _NUMBER_WITH_UNIT.match(word):
        return word
    return _BREAK_AFTER.sub(r"\1<wbr>", word)


def header_html(name: Any) -> str:
    """A column name escaped, with a line-break opportunity after each `_` (`at_least_<wbr>gib`)
    and the other punctuation `cell_html` breaks at, whatever the name's length."""
    return _BREAK_AFTER.sub(r"\1<wbr>", html.escape(cell_text(name)))


def table_html(frame: pd.DataFrame) -> str:
    """The HTML of one table as the notebooks show it (see the module docstring)."""
    shown = frame.head(MAX_ROWS)
    cells = shown.apply(lambda column: column.map(cell_html)).astype(str) if len(shown.columns) else shown
    styler = cells.style.format(escape=None).format_index(header_html, axis=1)
    if _shows_index(frame):
        styler = styler.format_index(cell_html, axis=0)
    else:
        styler = styler.hide(axis="index")
    styles = [{"selector": "td, th", "props": _STYLE},
              {"selector": "caption", "props": "caption-side: bottom; text-align: left; font-style: italic"}]
    for i in range(len(frame.columns)):
        if _right_aligned(shown.iloc[:, i]):
            styles += [{"selector": f"td.col{i}", "props": _NUMBER_STYLE},
                       {"selector": f"th.col_heading.col{i}", "props": "text-align: right"}]
    styler = styler.set_table_styles(styles)
    note = _note(frame, len(shown))
    if note:
        styler = styler.set_caption(html.escape(note))
    return styler.to_html()


def _note(frame: pd.DataFrame, shown: int) -> str:
    if frame.empty:
        return "none"
    if shown < len(frame):
        return f"the first {shown:,} of {len(frame):,} rows"
    return ""
