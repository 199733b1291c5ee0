"""Executing a plan: the confirmation gate, the dry run, and the full round trip on the simulator."""

import json

import pytest

from runbook_lib.transfer import ConfirmationError, Journal, check_confirmation, run_transfer
from runbook_lib.transfer.journal import journal_path


@pytest.fixture
def plan(data_dir):
    return json.loads((data_dir / "transfer" / "plan_copy.json").read_text())


VM = "67558d6a-1111-4000-8000-000000000001"


def test_dry_run_needs_no_confirmation(plan):
    check_confirmation(plan, dry_run=True, confirm_vm_uuid="")


@pytest.mark.parametrize("given", ["", "  ", "67558d6a", VM.upper() + "x", "00000000-0000-4000-8000-000000000000"])
def test_execute_without_the_exact_vm_uuid_is_refused(plan, given):
    with pytest.raises(ConfirmationError, match="nothing was changed"):
        check_confirmation(plan, dry_run=False, confirm_vm_uuid=given)
    check_confirmation(plan, dry_run=False, confirm_vm_uuid=f" {VM} ")


def test_multi_vm_plans_need_every_uuid(plan):
    second = dict(plan["vms"][0], uuid="second-vm")
    plan["vms"].append(second)
    with pytest.raises(ConfirmationError):
        check_confirmation(plan, dry_run=False, confirm_vm_uuid=VM)
    check_confirmation(plan, dry_run=False, confirm_vm_uuid=f"second-vm,{VM}")


def test_wrong_confirmation_stops_before_touching_the_pool(plan):
    # session=None: any use of the pool would raise, so reaching the gate first is proven
    outcome = run_transfer(plan, None, incident="INC-1", dry_run=False, confirm_vm_uuid="wrong")
    assert outcome.status == "refused" and outcome.exit_code == 2
    assert "does not match" in outcome.message and "nothing was changed" in outcome.message
    records = Journal(journal_path("INC-1")).records()
    assert [r["event"] for r in records] == ["refused"]
    assert "confirm_vm_uuid" in records[0]["next_step"]


def test_a_bad_plan_file_is_refused_with_one_line(tmp_path):
    path = tmp_path / "plan.json"
    path.write_text("{not json")
    outcome = run_transfer(path, None, incident="INC-2")
    assert outcome.status == "refused" and "not JSON" in outcome.message
    outcome = run_transfer(tmp_path / "missing.json", None, incident="INC-2")
    assert outcome.status == "refused" and "not found" in outcome.message
