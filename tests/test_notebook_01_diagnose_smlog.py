"""Notebook 01 runs under papermill with non-default parameters and records its findings."""

import json
from pathlib import Path

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
        parameters={"smlog_paths": [str(data_dir / "smlog" / name) for name in ("nospace.log", "interleaved.log")],
                    "year": 2024, "sr_uuid": "5e5e5e5e"},
    )
    records = read_records(out)
    assert records["verdict"]["verdict"] == "stuck-no-space"
    assert records["verdict"]["sr_filter"] == "5e5e5e5e"
    assert [v["vdi"] for v in records["vdis"]] == ["12ab34cd"]  # the other SR's VDIs are filtered out
    assert records["vdis"][0]["first_failure"].startswith("2024-04-10T08:00:02")
    findings_path = Path(records["findings_path"])
    # run by hand (not by runbook run): a fresh name in the ad-hoc incident's folder
    assert findings_path.parent == outputs / "adhoc" and findings_path.name.endswith(".smlog_findings.json")
    findings = json.loads(findings_path.read_text())
    assert findings["schema"] == "runbook.smlog.diagnosis/1" and findings["verdict"] == "stuck-no-space"


def test_notebook_01_under_runbook_run_keeps_its_findings_with_the_run(tmp_path):
    from runbook_lib.audit.index import read_index
    from runbook_lib.audit.runner import run_notebook

    outputs = tmp_path / "outputs"
    result = run_notebook(NOTEBOOK, "inc-7", {"year": 2018}, outputs=outputs)
    assert result.exit_code == 0, result.error
    findings_path = Path(result.records["findings_path"])
    assert findings_path == result.output.with_name(result.output.stem + ".smlog_findings.json")
    assert json.loads(findings_path.read_text())["verdict"] == "stuck-timeout"
    (line,) = read_index(outputs)
    assert any(o["path"].endswith(".smlog_findings.json") for o in line["outputs"]), line["outputs"]


def test_notebook_01_reads_the_pool_alone_and_with_the_log(tmp_path, monkeypatch):
    """url alone: the pool's findings; url and a log: merged, with sm's version turning the
    file SR's timeouts into 'update sm'."""
    from runbook_lib.sim import Simulator

    monkeypatch.setenv("RUNBOOK_OUTPUTS", str(tmp_path / "outputs"))
    log = tmp_path / "SMlog"
    with Simulator("nfs-old-sm", smlog=log, speed=1) as sim:
        sim.run_gc("NFS VM store")
        sim.run_gc("NFS VM store")
    out = tmp_path / "01-pool.ipynb"
    papermill.execute_notebook(str(NOTEBOOK), str(out), kernel_name="python3", progress_bar=False,
                               cwd=str(NOTEBOOK.parent), parameters={"url": "sim:nfs-old-sm"})
    records = read_records(out)
    assert records["verdict"]["verdict"] == "coalescing" and records["srs"][0]["sources"] == ["pool"]
    assert records["findings_path"].endswith(".diagnosis.json")
    assert json.loads(Path(records["diagnosis_path"]).read_text())["schema"] == "runbook.diagnosis/1"
    out = tmp_path / "01-both.ipynb"
    papermill.execute_notebook(str(NOTEBOOK), str(out), kernel_name="python3", progress_bar=False,
                               cwd=str(NOTEBOOK.parent),
                               parameters={"url": "sim:nfs-old-sm", "smlog_paths": [str(log)],
                                           "sm_version": "3.2.3-1.7.xcpng8.3"})
    records = read_records(out)
    assert records["verdict"]["verdict"] == "stuck-timeout"
    assert records["verdict"]["next_step"].startswith("update sm on the SR master")
    assert records["known_defects"][0]["id"] == "filesr-live-coalesce-units"
    smlog_findings = json.loads(Path(records["findings_path"]).read_text())
    assert smlog_findings["schema"] == "runbook.smlog.diagnosis/1"
    assert smlog_findings["sm_version"]["version"] == "3.2.3"
