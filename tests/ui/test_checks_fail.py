"""The browser checks can fail: a cell that raises is reported as an error, and a cell that
should plot but shows no image fails the plot check (the notebook tests rely on both)."""

from __future__ import annotations

import nbformat
import pytest

from tests.ui.notebook_page import ROOT, NotebookPage
from tests.ui.page_checks import check_plots_and_tables

KERNEL = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


def _write(lab, name: str, *sources: str) -> str:
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": KERNEL})
    nb.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    nbformat.write(nb, str(lab.notebooks / name))
    return name


def test_an_error_and_a_missing_plot_are_caught(lab, browsing):
    name = _write(lab, "broken.ipynb", "print('first')",
                  "from runbook_lib.errors import PoolError\nraise PoolError('the pool went away', hint='retry')",
                  "print('never')")
    nb = NotebookPage(browsing.page, lab, name)
    nb.open()
    state = nb.run_all()
    assert [(e["cell"], e["ename"]) for e in state.errors] == [(1, "PoolError")]
    assert "PoolError: the pool went away (retry)" in nb.output_text()

    name = _write(lab, "no_plot.ipynb", "import matplotlib\nfig = None  # the plot was never drawn")
    nb = NotebookPage(browsing.page, lab, name)
    nb.open()
    assert not nb.run_all().errors
    with pytest.raises(AssertionError, match="0 plot"):
        check_plots_and_tables(name, nb.page, ROOT, plots=1)
    lab.shutdown_kernels()
