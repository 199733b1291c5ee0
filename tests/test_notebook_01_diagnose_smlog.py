"""Notebook 01 runs under papermill with non-default parameters and records its findings."""

import json

import papermill

from runbook_lib.record import read_records
from tests.conftest import ROOT

NOTEBOOK = ROOT / "notebooks" / "01_diagnose_smlog.ipynb"


def test_notebook_01_with_parameters(tmp_path, data_dir, monkeypatch):
    outputs = tmp_path / "outputs"
    monkeypatch.setenv("RUNBOOK_OUTPUTS", str(outputs))  # the kernel inherits it
    out = tmp_path / "01.ipynb"
    papermill.execute_notebook(
        str(NOTEBOOK), str(out), kernel_name="python3", progress_bar=False, cwd=str(NOTEBOOK.parent),
        parameters={"paths": [str(data_dir / "smlog" / "nospace.log"), str(data_dir / "smlog" / "interleaved.log")],
                    "year": 2024, "sr_uuid": "5e5e5e5e"},
    )
    records = read_records(out)
    assert records["verdict"]["verdict"] == "stuck-no-space"
    assert records["verdict"]["sr_filter"] == "5e5e5e5e"
    assert [v["vdi"] for v in records["vdis"]] == ["12ab34cd"]  # the other SR's VDIs are filtered out
    assert records["vdis"][0]["first_failure"].startswith("2024-04-10T08:00:02")
    findings = json.loads((outputs / "smlog_findings.json").read_text())
    assert findings["schema"] == "runbook.smlog.diagnosis/1" and findings["verdict"] == "stuck-no-space"
    assert records["findings_path"] == str(outputs / "smlog_findings.json")
