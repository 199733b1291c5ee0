"""`runbook transfer`: dry run by default, --execute needs --confirm with the VM's uuid."""

import json

from click.testing import CliRunner

from runbook_lib.cli import main
from runbook_lib.transfer import Journal
from runbook_lib.transfer.journal import journal_path
from tests.transfer_pool import VM, make_plan, simulated_pool

SIM_URL = "sim:seed-stuck-leaf-coalesce"


def write_plan(tmp_path, monkeypatch):
    with simulated_pool(tmp_path, monkeypatch) as (sim, session, calls):
        plan = make_plan(session)
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan))
    return path


def test_dry_run_prints_every_step_and_exits_0(tmp_path, monkeypatch):
    path = write_plan(tmp_path, monkeypatch)
    result = CliRunner().invoke(main, ["transfer", "--plan", str(path), "--incident", "cli", "--url", SIM_URL])
    assert result.exit_code == 0, result.output
    assert "DRY RUN" in result.output and "Async.VM.copy" in result.output and "destroy-original" in result.output
    assert "dry-run:" in result.output and f"--execute --confirm {VM}" in result.output
    assert "confirm_vm_uuid" not in result.output and "dry_run=False" not in result.output  # notebook words


def test_execute_with_a_wrong_confirmation_exits_2_before_connecting(tmp_path, monkeypatch):
    path = write_plan(tmp_path, monkeypatch)
    result = CliRunner().invoke(main, ["transfer", "--plan", str(path), "--incident", "cli2", "--execute",
                                       "--confirm", "not-the-vm", "--url", "https://pool.invalid"])
    assert result.exit_code == 2
    assert "error:" in result.output and "does not match" in result.output and "nothing was changed" in result.output
    assert result.output.count("does not match") == 1  # said once, as the error line
    assert Journal(journal_path("cli2")).records()[-1]["event"] == "refused"


def test_execute_without_confirmation_and_confirm_without_execute_are_usage_errors(tmp_path, monkeypatch):
    path = write_plan(tmp_path, monkeypatch)
    result = CliRunner().invoke(main, ["transfer", "--plan", str(path), "--incident", "c3", "--execute"])
    assert result.exit_code == 2 and "set --confirm to the uuid" in result.output
    assert "confirm_vm_uuid" not in result.output
    assert "--execute --confirm" in Journal(journal_path("c3")).records()[-1]["next_step"]
    result = CliRunner().invoke(main, ["transfer", "--plan", str(path), "--incident", "c3", "--confirm", VM])
    assert result.exit_code == 2 and "--execute" in result.output


def test_missing_plan_and_unknown_pool_are_one_line_errors(tmp_path):
    result = CliRunner().invoke(main, ["transfer", "--plan", str(tmp_path / "nope.json"), "--incident", "c4"])
    assert result.exit_code == 2 and result.output.startswith("error: plan file not found")
    assert "Traceback" not in result.output


def test_a_bad_incident_id_is_refused_first(tmp_path):
    """Before the plan is read or a pool is named: the id becomes a folder name."""
    result = CliRunner().invoke(main, ["transfer", "--plan", "tests/data/transfer/plan_copy.json",
                                       "--incident", "../../etc"])
    assert result.exit_code == 2 and result.output.startswith("error: incident id '../../etc'")
    assert len(result.output.strip().splitlines()) == 1


def test_ctrl_c_during_execute_prints_where_the_vm_is_and_how_to_continue(tmp_path, monkeypatch):
    from runbook_lib.transfer.context import Context

    path = write_plan(tmp_path, monkeypatch)
    real = Context.task_started

    def ctrl_c(self, step, task_ref):
        real(self, step, task_ref)
        if step.kind == "copy-out":
            raise KeyboardInterrupt

    monkeypatch.setattr(Context, "task_started", ctrl_c)
    result = CliRunner().invoke(main, ["transfer", "--plan", str(path), "--incident", "cc", "--execute",
                                       "--confirm", VM, "--url", SIM_URL])
    assert result.exit_code == 130, result.output
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("error: interrupted: VM 'fileserver': the original") and "stopped during copy-out" in last
    assert "VM.start may still be blocked" in last and "same --incident and --plan" in last
    assert "Aborted!" not in result.output and "Traceback" not in result.output
    assert Journal(journal_path("cc")).records()[-2]["event"] == "interrupted"
    monkeypatch.setattr(Context, "task_started", real)
    dry = CliRunner().invoke(main, ["transfer", "--plan", str(path), "--incident", "cc", "--url", SIM_URL])
    header = next(line for line in dry.output.splitlines() if line.lstrip().startswith("step"))
    assert "journal" in header and "under way when it stopped" in dry.output
    assert "already done in incident cc's journal" in dry.output
