"""Committed notebooks carry no outputs or execution counts, a tagged parameters cell and python3."""

import nbformat
import pytest

from tests.conftest import ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    assert NOTEBOOKS, "notebooks/ holds no .ipynb"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_clean(path):
    nb = nbformat.read(str(path), as_version=4)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.get("outputs") == [], f"{path.name} cell {i} has outputs"
            assert cell.get("execution_count") is None, f"{path.name} cell {i} has an execution count"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_has_a_parameters_cell_of_annotated_literals(path):
    nb = nbformat.read(str(path), as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: exactly one cell must be tagged 'parameters'"
    assert nb.metadata["kernelspec"]["name"] == "python3"
    import papermill

    params = papermill.inspect_notebook(str(path))
    assert params, f"{path.name}: the parameters cell defines nothing"
    for name, info in params.items():
        assert info["inferred_type_name"] != "None", f"{path.name}: parameter {name} has no type annotation"
        assert info["help"], f"{path.name}: parameter {name} has no help comment"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_has_no_xenapi_calls_of_its_own(path):
    """Notebooks call runbook_lib; only the library talks to a pool."""
    nb = nbformat.read(str(path), as_version=4)
    source = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "import XenAPI" not in source and ".xenapi." not in source
