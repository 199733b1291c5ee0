"""Notebook 02 under papermill: the seed scenario is short and stages the VM on NFS; healthy is not."""

import json
import stat
from pathlib import Path

import papermill

from runbook_lib.record import read_records
from tests.conftest import ROOT

NOTEBOOK = ROOT / "notebooks" / "02_size_space.ipynb"
SEED_LEAF = "67558d6a-2f3e-4c8b-a1d9-7e5f3b2c9d10"


def _run(tmp_path, monkeypatch, **parameters):
    monkeypatch.setenv("RUNBOOK_OUTPUTS", str(tmp_path / "outputs"))  # the kernel inherits it
    out = tmp_path / "02.ipynb"
    papermill.execute_notebook(str(NOTEBOOK), str(out), kernel_name="python3", progress_bar=False,
                               cwd=str(NOTEBOOK.parent), parameters=parameters)
    return read_records(out), out


def test_seed_scenario_with_findings(tmp_path, monkeypatch):
    findings = tmp_path / "findings.json"
    findings.write_text(json.dumps({"schema": "runbook.smlog.diagnosis/1", "vdis": [
        {"vdi": SEED_LEAF[:8], "verdict": "stuck-timeout", "virtual_size": 2020 << 30,
         "size": None, "lv_size": 2173203120128}]}))
    # as `runbook run` runs it: the run's output name is in the kernel's environment (the
    # runner hashes `<that name>.*` into the index: test_audit_runner)
    run_output = tmp_path / "outputs" / "inc-02" / "20261126T101151Z_02_size_space_72cf9f6c.ipynb"
    monkeypatch.setenv("RUNBOOK_RUN_OUTPUT", str(run_output))
    records, out = _run(tmp_path, monkeypatch, smlog_findings=str(findings), throughput_mib_s=110.0)
    sata = next(s for s in records["srs"] if s["name"] == "Local SATA Storage")
    assert sata["verdict"] == "short" and sata["shortfall"] > 0
    (co,) = [c for c in records["sizing"]["coalesces"] if c["vdi"] == SEED_LEAF]
    assert co["diagnosis"] == "stuck-timeout" and co["fits"] is False
    plan = records["plan"]
    assert plan["remedy"]["kind"] == "move-vms" and plan["staging_sr"]["name"] == "NFS staging"
    assert [v["name"] for v in plan["vms"]] == ["fileserver"]
    # live migration is allowed, but its source snapshot (leaf size unknown: the worst case) does
    # not fit in the 36 MiB free, as a real pool would refuse it: halted copy
    assert plan["vms"][0]["mode"] == "copy"
    assert "live migration would first snapshot" in plan["remedy"]["reason"]
    # the default plan path is this run's own name in the incident's folder, owner-only
    written = Path(records["plan_path"])
    assert written == run_output.with_name(run_output.stem + ".plan.json")
    assert json.loads(written.read_text())["remedy"] == plan["remedy"]
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    assert "upper bound" in out.read_text() and "vhd_sizes 67558d6a=BYTES" in out.read_text()
    assert records["remedies"][0]["kind"] == "move-vms"
    assert records["sizing"]["throughput_source"] == "given"
    text = out.read_text()
    assert "image/png" in text  # the space chart was drawn
    assert "└─" in text  # the chain tree was printed


SMLOG = """\
Jul  7 07:07:07 xs06 SMGC: [1300] Coalescing *0badf00d(20.000G/3.000G/3.250G) -> *0badcafe(20.000G/15.000G/15.250G)
Jul  7 07:07:30 xs06 SMGC: [1300] Coalesced size = 16.123G
"""


def test_healthy_scenario_needs_no_plan(tmp_path, monkeypatch):
    plan_path = tmp_path / "elsewhere" / "plan.json"
    smlog = tmp_path / "SMlog"
    smlog.write_text(SMLOG)
    records, _ = _run(tmp_path, monkeypatch, url="sim:healthy", plan_path=str(plan_path),
                      smlog_paths=[str(smlog)])
    assert records["sizing"]["throughput_source"] == "measured in SMlog"
    assert abs(records["sizing"]["throughput_bps"] - 3.25 * 2**30 / 23) < 1
    assert all(s["shortfall"] == 0 for s in records["srs"])
    assert records["plan"] is None and records["plan_path"] is None
    assert records["remedies"] == []
    assert not plan_path.exists()


def test_no_migrate_stages_running_vms_by_copy(tmp_path, monkeypatch):
    """no_migrate (runbook size --no-migrate) reaches the planner: copies, no word of migration."""
    records, _ = _run(tmp_path, monkeypatch, no_migrate=True, plan_path=str(tmp_path / "plan.json"))
    plan = records["plan"]
    assert plan["remedy"]["kind"] == "move-vms" and [v["mode"] for v in plan["vms"]] == ["copy"]
    assert "live migration" not in plan["remedy"]["reason"]
    assert plan["remedy"]["downtime_s"] > 0
