"""The recorder: what a notebook records comes back out of the executed notebook."""

import datetime as dt
import json

import nbformat
import numpy as np
import pandas as pd

from runbook_lib.record import MIME_TYPE, read_records, to_jsonable


def _nb_with(*payloads):
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("x")
    cell.outputs = [
        nbformat.v4.new_output("display_data", data={MIME_TYPE: p, "text/plain": "r"}) for p in payloads
    ] + [nbformat.v4.new_output("stream", name="stdout", text="noise")]
    nb.cells.append(cell)
    return nb


def test_read_records_returns_values_by_name_and_later_wins(tmp_path):
    nb = _nb_with({"name": "verdict", "value": "healthy"}, {"name": "verdict", "value": "stuck-timeout"},
                  {"name": "n", "value": 3})
    path = tmp_path / "run.ipynb"
    nbformat.write(nb, str(path))
    assert read_records(path) == {"verdict": "stuck-timeout", "n": 3}


def test_to_jsonable_handles_what_notebooks_hold():
    frame = pd.DataFrame({"vdi": ["a", "b"], "size": np.array([1, 2], dtype="int64"),
                          "when": [pd.Timestamp("2026-12-06T02:27:17"), pd.NaT]})
    value = to_jsonable({"frame": frame, "f": np.float64("nan"), "d": dt.date(2026, 1, 2), "b": np.bool_(True)})
    assert json.loads(json.dumps(value)) == {
        "frame": [{"vdi": "a", "size": 1, "when": "2026-12-06T02:27:17"}, {"vdi": "b", "size": 2, "when": None}],
        "f": None, "d": "2026-01-02", "b": True,
    }


def test_record_emits_the_mime_payload(monkeypatch):
    shown = []
    import IPython.display

    monkeypatch.setattr(IPython.display, "display", lambda obj, raw=False: shown.append((obj, raw)))
    from runbook_lib import record as rec

    rec.record("free", np.int64(5))
    (obj, raw), = shown
    assert raw and obj[MIME_TYPE] == {"name": "free", "value": 5}


def test_importing_the_recorder_does_not_import_nbformat():
    """Every notebook kernel imports record.py; nbformat (with jsonschema) costs most of a second."""
    import subprocess
    import sys

    code = "import sys, runbook_lib.record; print('nbformat' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
