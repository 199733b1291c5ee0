"""runbook_lib.transfer.fronts: one choice, named the way each front end spells it."""

import pytest

from runbook_lib.transfer import fronts


def test_execute_and_options_per_front_end():
    assert fronts.execute_with("cli", "u1") == "--execute --confirm u1"
    assert fronts.execute_with("notebook", "u1") == "dry_run=False and confirm_vm_uuid=u1"
    assert [fronts.option("cli", n) for n in ("staging", "wait", "incident")] == [
        "--staging-sr", "--wait-timeout", "--incident"]
    assert fronts.option("notebook", "staging") == "staging_sr_uuid"
    assert "--plan" in fronts.rerun_same("cli") and "--plan" not in fronts.rerun_same("notebook")


def test_a_new_plan_names_both_ways_to_make_one():
    assert "notebook 02" in fronts.NEW_PLAN and "runbook size --plan-out FILE" in fronts.NEW_PLAN


def test_an_unknown_front_end_is_a_bug_not_a_message():
    with pytest.raises(ValueError):
        fronts.option("gui", "staging")
