"""runbook_lib.data_tables: the checks the data-table loaders share."""

import pytest

from runbook_lib.data_tables import TableCheck
from runbook_lib.errors import InputError

CHECK = TableCheck("some table")


def test_text_folds_whitespace_and_refuses_empty_or_other_types():
    assert CHECK.text({"title": "  two\n  lines "}, "title", "row 1") == "two lines"
    for row in ({}, {"title": "  "}, {"title": 3}):
        with pytest.raises(InputError, match=r"^some table row 1: 'title' must be a non-empty text$"):
            CHECK.text(row, "title", "row 1")


def test_sources_are_a_non_empty_list_of_texts():
    assert CHECK.sources({"sources": ["a\n b", "c"]}, "row 2") == ("a b", "c")
    for row in ({}, {"sources": []}, {"sources": "a"}, {"sources": ["a", ""]}):
        with pytest.raises(InputError, match="row 2: 'sources' must list where each fact comes from"):
            CHECK.sources(row, "row 2")
