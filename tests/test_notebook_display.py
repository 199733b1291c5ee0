"""How the notebooks show tables: every value in full, wrapped at punctuation, aligned by kind."""

import re

import numpy as np
import pandas as pd
import pytest

from runbook_lib import notebook_display as nd
from runbook_lib.units import GIB, MIB

UUID = "db4c3909-4b61-e5f6-8548-16dc56780f61"
REASON = ("stage fileserver on NFS staging (2074.0 GiB of its 6963.2 GiB free), SR.scan, wait for the GC, "
          "move back; fileserver is copied with a shutdown")


def _cells(html: str) -> list[str]:
    """The text of each td as a browser shows it (tags such as <wbr> add no character)."""
    return [re.sub(r"<[^>]+>", "", cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", html, re.S)]


def test_long_values_stay_whole_and_get_break_opportunities_at_their_punctuation():
    html = nd.table_html(pd.DataFrame({"sr": [UUID], "reason": [REASON]}))
    assert _cells(html) == [UUID, REASON.replace("&", "&amp;")]
    assert "db4c3909-<wbr>4b61-<wbr>" in html and "..." not in html
    assert "<th" in html and "at_<wbr>least" in nd.table_html(pd.DataFrame({"at_least_gib": [1.0]}))


def test_text_is_escaped_and_missing_values_are_blank():
    frame = pd.DataFrame({"note": ["a <b> & c", None], "free": [np.nan, 2.5], "when": [pd.NaT, pd.Timestamp(0)]})
    assert _cells(nd.table_html(frame)) == ["a &lt;b&gt; &amp; c", "", "", "", "2.5", "1970-01-01 00:00:00"]


@pytest.mark.parametrize(("value", "text"), [
    (3834.546875, "3,834.547"), (706.6, "706.6"), (0.0, "0"), (np.int64(2571263541248), "2,571,263,541,248"),
    (True, "True"), (["SMlog:111", "SMlog:117"], "SMlog:111, SMlog:117"),
    ("2025-12-05T22:08:13+00:00", "2025-12-05 22:08:13+00:00"), (pd.Timestamp("2026-01-02T03:04:05.6Z"),
                                                                  "2026-01-02 03:04:05+00:00"),
])
def test_cell_text(value, text):
    assert nd.cell_text(value) == text


def test_numbers_and_numbers_with_units_are_right_aligned_text_left():
    frame = pd.DataFrame({"name": ["a"], "n": [3], "size": ["2,020.0 GiB"], "ok": [True], "step": ["copy-out"]})
    html = nd.table_html(frame)
    right = set(re.findall(r"td\.col(\d) \{\s*text-align: right", html))
    assert right == {"1", "2"}  # n and size; a bool and words stay left


def test_a_plain_row_number_is_hidden_a_meaningful_index_is_shown():
    plain = nd.table_html(pd.DataFrame({"a": ["x"]}))
    named = nd.table_html(pd.DataFrame({"a": ["x"]}, index=["fileserver"]))
    assert "row_heading" not in plain and "fileserver" in named


def test_empty_and_long_tables_say_so():
    assert "<caption>none</caption>" in nd.table_html(pd.DataFrame(columns=["sr", "vdi"]))
    long = pd.DataFrame({"n": range(nd.MAX_ROWS + 5)})
    html = nd.table_html(long)
    assert len(_cells(html)) == nd.MAX_ROWS and f"the first {nd.MAX_ROWS} of {nd.MAX_ROWS + 5} rows" in html


def test_with_sizes_shows_bytes_with_units_and_leaves_the_frame_alone():
    frame = pd.DataFrame({"free": [36 * MIB, 2394.7 * GIB, None], "name": ["a", "b", "c"]})
    shown = nd.with_sizes(frame, "free", "missing")
    assert list(shown["free"]) == ["36 MiB", "2,394.7 GiB", ""]
    assert frame["free"].iloc[0] == 36 * MIB


def test_readable_tables_registers_the_formatter_in_ipython(monkeypatch):
    import IPython
    from IPython.core.formatters import DisplayFormatter

    class Shell:
        display_formatter = DisplayFormatter()

    monkeypatch.setattr(IPython, "get_ipython", lambda: Shell)
    with pd.option_context("display.max_colwidth", 50, "display.max_columns", 20):  # restored after
        nd.readable_tables()
        assert pd.get_option("display.max_colwidth") is None
    data, _ = Shell.display_formatter.format(pd.DataFrame({"sr": [UUID]}))
    assert _cells(data["text/html"]) == [UUID] and "<wbr>" in data["text/html"]
