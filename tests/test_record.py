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

    monkeypatch.setattr(IPython.display, "display", lambda obj, raw=False, display_id=None: shown.append((obj, raw)))
    from runbook_lib import record as rec

    rec.record("free", np.int64(5))
    (obj, raw), = shown
    assert raw and obj[MIME_TYPE] == {"records": [{"name": "free", "value": 5}]}
    assert obj["text/plain"] == "recorded for the audit trail: free"


def test_read_records_reads_grouped_and_single_payloads(tmp_path):
    grouped = {"records": [{"name": "verdict", "value": "healthy"}, {"name": "n", "value": 3}]}
    nb = _nb_with({"name": "verdict", "value": "stuck-timeout"}, grouped, {"records": "not a list"})
    assert read_records(nb) == {"verdict": "healthy", "n": 3}


def test_the_records_of_one_cell_show_as_one_line_in_the_executed_notebook():
    """A real kernel: two records in one cell are one output with one summary line; the next
    cell starts its own; every value comes back out."""
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("from runbook_lib.record import record\n"
                                          "record('verdict', 'stuck')\nrecord('srs', [1, 2])\nprint('done')"),
                nbformat.v4.new_code_cell("record('plan', {'kind': 'move-vms'})")]
    NotebookClient(nb, kernel_name="python3", timeout=60).execute()
    first, second = ([o for o in cell.outputs if o.output_type == "display_data"] for cell in nb.cells)
    assert [o.data["text/plain"] for o in first] == ["recorded for the audit trail: verdict, srs"]
    assert [o.data["text/plain"] for o in second] == ["recorded for the audit trail: plan"]
    assert read_records(nb) == {"verdict": "stuck", "srs": [1, 2], "plan": {"kind": "move-vms"}}


def test_importing_the_recorder_does_not_import_nbformat():
    """Every notebook kernel imports record.py; nbformat (with jsonschema) costs most of a second."""
    import subprocess
    import sys

    code = "import sys, runbook_lib.record; print('nbformat' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
