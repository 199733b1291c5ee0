"""plan.json -> steps: the order that keeps a VM safe, per mode, and the free-space effects."""

import copy
import json

import pytest

from runbook_lib.errors import InputError
from runbook_lib.transfer.plan_steps import expected_free, plan_steps, steps_table, validate_plan


@pytest.fixture
def plan(data_dir):
    return json.loads((data_dir / "transfer" / "plan_copy.json").read_text())


def kinds(steps):
    return [s.kind for s in steps]


def test_copy_mode_of_a_running_vm_orders_verify_before_destroy(plan):
    steps = plan_steps(plan)
    assert kinds(steps) == ["check-pool", "record-original", "shutdown", "copy-out", "verify-out",
                            "destroy-original", "rename-copy", "scan-source", "wait-gc", "copy-back",
                            "verify-back", "destroy-staging", "rename-back", "start", "final-check"]
    assert len({s.id for s in steps}) == len(steps)
    order = kinds(steps)
    assert order.index("verify-out") < order.index("destroy-original")
    assert order.index("verify-back") < order.index("destroy-staging")
    assert [s.kind for s in steps if s.changes_pool] == ["shutdown", "copy-out", "destroy-original", "rename-copy",
                                                         "scan-source", "copy-back", "destroy-staging",
                                                         "rename-back", "start"]


def test_halted_vm_has_no_shutdown_or_start(plan):
    plan["vms"][0]["power_state"] = "Halted"
    order = kinds(plan_steps(plan))
    assert "shutdown" not in order and "start" not in order


def test_free_space_effects_follow_the_moves(plan):
    steps = {s.kind: s for s in plan_steps(plan)}
    staging, source = plan["staging_sr"]["uuid"], plan["sr"]["uuid"]
    moved = plan["vms"][0]["bytes"]
    assert steps["copy-out"].effect == {staging: -moved}
    assert steps["destroy-original"].effect == {source: 536870912000 + 10737418240}
    assert steps["wait-gc"].effect == {source: plan["remedy"]["frees"] - 536870912000 - 10737418240}
    assert steps["destroy-staging"].effect == {staging: moved}
    end = expected_free(plan, plan_steps(plan))
    assert end[staging] == plan["staging_sr"]["free"]  # the staging SR gets its space back
    assert end[source] == plan["sr"]["free"] + plan["remedy"]["frees"] - moved


def test_migrate_mode_moves_each_disk_in_device_order(plan):
    plan["vms"][0]["mode"] = "migrate"
    steps = plan_steps(plan)
    out = [s for s in steps if s.kind == "migrate-out"]
    assert [s.disk for s in out] == ["0", "1"]
    assert "shutdown" not in kinds(steps) and "destroy-original" not in kinds(steps)
    assert kinds(steps).index("wait-gc") < kinds(steps).index("migrate-back")


def test_export_mode_needs_a_path_and_imports_back(plan):
    plan["vms"][0]["mode"] = "export"
    with pytest.raises(InputError, match="export_path"):
        plan_steps(plan)
    plan["export_path"] = "/mnt/transfer"
    order = kinds(plan_steps(plan))
    assert order.index("export-out") < order.index("verify-out") < order.index("destroy-original")
    assert "import-back" in order and "copy-back" not in order


def test_offline_mode_halts_forces_the_leaf_scans_waits_unforces_and_starts(plan):
    plan["vms"][0]["mode"] = "offline"
    assert kinds(plan_steps(plan)) == ["check-pool", "record-original", "shutdown", "force-leaf", "scan-source",
                                       "wait-gc", "unforce-leaf", "start", "final-check"]
    plan["vms"][0]["coalesce_plugin"] = True
    assert kinds(plan_steps(plan)) == ["check-pool", "record-original", "coalesce-plugin", "final-check"]
    steps = {s.kind: s for s in plan_steps(plan)}
    assert steps["coalesce-plugin"].call == "Async.host.call_plugin coalesce-leaf leaf-coalesce"


def test_staging_override_replaces_the_plans_staging_sr(plan):
    other = "00000000-0000-4000-8000-00000000beef"
    steps = {s.kind: s for s in plan_steps(plan, staging_sr_uuid=other)}
    assert other in steps["copy-out"].effect and other in steps["copy-out"].target


@pytest.mark.parametrize("change, message", [
    (lambda p: p.update(schema="runbook.plan/0"), "schema"),
    (lambda p: p["pool"].pop("uuid"), "pool.uuid"),
    (lambda p: p.update(vms=[]), "no VMs"),
    (lambda p: p["vms"][0].update(mode="teleport"), "mode"),
    (lambda p: p.update(staging_sr=None), "staging_sr"),
    (lambda p: p["vms"][0].update(power_state="Suspended"), "power_state"),
    (lambda p: p["vms"][0].update(mode="migrate", power_state="Halted"), "live migration"),
])
def test_bad_plans_are_refused_with_one_line(plan, change, message):
    bad = copy.deepcopy(plan)
    change(bad)
    with pytest.raises(InputError, match=message):
        validate_plan(bad)


def test_table_has_one_row_per_step_and_readable_effects(plan):
    steps = plan_steps(plan)
    table = steps_table(steps, plan)
    assert len(table) == len(steps)
    row = table[table.step == "copy-out"].iloc[0]
    assert row["free space (expected)"] == "NFS staging -1,000.0 GiB"  # units.gib, as everywhere
    assert row["changes pool"]


def test_several_vms_leave_together_and_come_back_after_the_gc(plan):
    second = dict(plan["vms"][0], uuid="second-vm", name="mail", power_state="Halted")
    plan["vms"].append(second)
    steps = plan_steps(plan)
    order = [(s.vm[:6], s.kind) for s in steps]
    last_out = max(i for i, (_, k) in enumerate(order) if k in ("destroy-original", "rename-copy"))
    first_gc = min(i for i, (_, k) in enumerate(order) if k == "scan-source")
    first_back = min(i for i, (_, k) in enumerate(order) if k == "copy-back")
    assert last_out < first_gc < first_back
    assert [k for v, k in order if v == "second"] == [
        "check-pool", "record-original", "copy-out", "verify-out", "destroy-original", "rename-copy",
        "scan-source", "wait-gc", "copy-back", "verify-back", "destroy-staging", "rename-back", "final-check"]


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_json = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                     lambda inner: (st.lists(inner, max_size=3)
                                    | st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                     max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(key=st.sampled_from(["schema", "pool", "sr", "vms", "staging_sr", "export_path", "remedy", "wait"]),
       value=_json, vm_key=st.sampled_from(["uuid", "mode", "power_state", "disks", "bytes", "name"]), vm_value=_json)
def test_any_damaged_plan_is_refused_in_one_line_or_planned(plan_file_text, key, value, vm_key, vm_value):
    plan = json.loads(plan_file_text)
    plan[key] = value
    if isinstance(plan.get("vms"), list) and plan["vms"] and isinstance(plan["vms"][0], dict):
        plan["vms"][0][vm_key] = vm_value
    try:
        steps = plan_steps(plan)
    except InputError:
        return
    assert steps and steps_table(steps, plan) is not None


@pytest.fixture(scope="module")
def plan_file_text():
    from tests.conftest import DATA

    return (DATA / "transfer" / "plan_copy.json").read_text()


def test_table_shows_each_srs_expected_free_space_after_each_step(plan):
    table = steps_table(plan_steps(plan), plan)
    staging = table["NFS staging free GiB after"]
    start = plan["staging_sr"]["free"] / 2**30
    copy_out = table.index[table.step == "copy-out"][0]
    assert staging[copy_out] == round(start - plan["vms"][0]["bytes"] / 2**30, 1)
    assert staging.iloc[-1] == round(start, 1)
