"""Notebook 03 under papermill: defaults dry-run; executed on the simulator it frees the SR;
a refused run is recorded, then fails the notebook so `runbook run` exits 1 with one line."""

import json

import papermill

from runbook_lib.audit.runner import run_notebook
from runbook_lib.record import read_records
from runbook_lib.transfer.notebook import demo_parameters, demo_summary
from tests.conftest import ROOT

NOTEBOOK = ROOT / "notebooks" / "03_transfer_and_rescan.ipynb"
VM = "9c2d4e6f-1a3b-4c5d-8e7f-0a1b2c3d4e5f"
SOURCE = "db4c3909-4b61-e5f6-8548-16dc56780f61"


def _run(tmp_path, monkeypatch, name, **parameters):
    monkeypatch.setenv("RUNBOOK_OUTPUTS", str(tmp_path / "outputs"))  # the kernel inherits it
    out = tmp_path / f"{name}.ipynb"
    papermill.execute_notebook(str(NOTEBOOK), str(out), kernel_name="python3", progress_bar=False,
                               cwd=str(NOTEBOOK.parent), parameters=parameters)
    return read_records(out)["transfer"], out


def test_defaults_dry_run_then_execute_the_kept_plan(tmp_path, monkeypatch):
    dry, _ = _run(tmp_path, monkeypatch, "dry", incident="nb", sim_speed=200000.0)
    assert dry["status"] == "dry-run" and VM in dry["next_step"]
    kept = tmp_path / "outputs" / "nb" / "plan.json"
    assert kept.is_file()  # the same plan is used when the incident runs again
    params = demo_parameters(kept, "nb")
    assert params["confirm_vm_uuid"] == VM and params["dry_run"] is False
    done, out = _run(tmp_path, monkeypatch, "exec", sim_speed=200000.0, **params)
    assert done["status"] == "done", done["message"]
    assert done["free_after"][SOURCE] > done["free_before"][SOURCE] + 1000 * 2**30
    depth = done["chain_depth"][VM]
    assert max(depth["before"].values()) == 2 and max(depth["after"].values()) == 1
    lines = demo_summary(out)
    assert lines[0].startswith("transfer: done") and any("chain 2 before, 1 after" in line for line in lines)


def _run_audited(tmp_path, monkeypatch, incident, **parameters):
    outputs = tmp_path / "outputs"
    monkeypatch.setenv("RUNBOOK_OUTPUTS", str(outputs))
    return run_notebook("03", incident, {"sim_speed": 200000.0, **parameters}, outputs=outputs)


def test_executing_without_confirmation_fails_the_run_with_one_line(tmp_path, monkeypatch):
    result = _run_audited(tmp_path, monkeypatch, "nb2", dry_run=False)
    assert result.exit_code == 1 and result.status == "failed"
    assert "TransferNotFinished: transfer refused: executing changes the pool: set confirm_vm_uuid" in result.error
    assert "next step: re-run with dry_run=False and confirm_vm_uuid=" in result.error
    assert "Traceback" not in result.error and "\n" not in result.error
    rec = result.records["transfer"]  # recorded before the notebook fails: the postmortem sees it
    assert rec["status"] == "refused" and "nothing was changed" in rec["message"]


def test_a_plan_from_another_pool_fails_the_run(tmp_path, monkeypatch):
    from tests.transfer_pool import make_plan, simulated_pool

    with simulated_pool(tmp_path, monkeypatch) as (sim, session, calls):
        plan = make_plan(session)
    plan["pool"]["uuid"] = "00000000-0000-4000-8000-000000000000"
    path = tmp_path / "other-pool.json"
    path.write_text(json.dumps(plan))
    result = _run_audited(tmp_path, monkeypatch, "nb3", plan_path=str(path), dry_run=False, confirm_vm_uuid=VM)
    assert result.exit_code == 1, result.error
    assert "transfer refused: the plan was made on pool 00000000-0000-4000-8000-000000000000" in result.error
    assert "make a new plan" in result.error


def test_pool_parameters_match_02_and_the_wait_defaults_to_the_plans():
    from runbook_lib.audit.params import declared_parameters

    declared = declared_parameters(NOTEBOOK)
    size = declared_parameters(NOTEBOOK.parent / "02_size_space.ipynb")
    for name in ("ca_bundle", "wait_timeout_s"):
        assert name in declared, name
    assert (declared["ca_bundle"]["inferred_type_name"], declared["ca_bundle"]["default"]) == (
        size["ca_bundle"]["inferred_type_name"], size["ca_bundle"]["default"]) == ("str", '""')
    assert float(declared["wait_timeout_s"]["default"]) == 0.0  # 0: the plan's wait, as runbook transfer


def test_ca_bundle_reaches_the_connection(monkeypatch):
    import pytest

    from runbook_lib.errors import UsageError
    from runbook_lib.transfer.notebook import open_pool

    monkeypatch.setenv("XEN_PASSWORD", "x")
    with pytest.raises(UsageError, match="cannot use CA bundle /no/such/ca.pem"):
        open_pool("https://127.0.0.1:9", "root", "XEN_PASSWORD", incident="t", ca_bundle="/no/such/ca.pem")
