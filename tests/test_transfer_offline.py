"""The offline remedy carried out on the simulator as sm behaves: the seed's stuck leaf with exact
sizes from dom0 (SSH), forced with its VM halted; the coalesce-leaf plugin's "nothing to do"
success caught by the chain check; a resume that waits on the plugin's task instead of calling
it a second time."""

import json
import os

import pytest

from runbook_lib.dom0.ssh import SshOptions
from runbook_lib.plan import assess
from runbook_lib.plan import make_plan as plan_of
from runbook_lib.sim import Simulator
from runbook_lib.transfer import Journal, run_transfer
from runbook_lib.transfer.journal import journal_path
from runbook_lib.xapi import connect, fetch_inventory
from runbook_lib.xapi import operations as ops
from runbook_lib.xapi.inventory import open_inventory
from tests.transfer_pool import (
    SPEED,
    VM,
    assert_vm_intact_on_one_sr,
    calls_made,
    depth_of_data_disk,
    vms_holding,
)

LEAF = "67558d6a-2f3e-4c8b-a1d9-7e5f3b2c9d10"
SOURCE = "db4c3909-4b61-e5f6-8548-16dc56780f61"


@pytest.fixture
def seed(tmp_path, monkeypatch):
    calls = tmp_path / "calls.jsonl"
    with Simulator("seed-stuck-leaf-coalesce", ssh=True, speed=SPEED, calls=str(calls),
                   smlog=str(tmp_path / "SMlog")) as sim:
        monkeypatch.setenv("SIM_PW", sim.password)
        known = tmp_path / "known_hosts"
        known.write_text("\n".join(sim.ssh.known_hosts_lines()) + "\n")
        port = next(iter(sim.ssh.ports.values()))
        # the scenario's host.address is not this machine: the pool's parameters override it
        ssh = SshOptions(known_hosts=str(known), password_env="SIM_PW", hosts={"xen": f"127.0.0.1:{port}"})
        with connect(sim.url, sim.user, password_env="SIM_PW") as session:
            yield sim, session, ssh, calls


def test_the_seed_with_dom0_sizes_is_coalesced_offline_in_minutes_with_the_vm_intact(seed):
    sim, session, ssh, calls = seed
    inv = open_inventory(url=sim.url, user=sim.user, password_env="SIM_PW", ssh=ssh)
    result = assess(inv)
    sr = result.sizing.sr(SOURCE)
    assert sr["sizes_known"] and result.chosen.kind == "offline-coalesce"
    assert result.chosen.downtime_s < 10 * 60 and result.chosen.vms[0]["route"] == "force"
    with sim.pool.lock:
        _, live = sim.gc.leaf_needs(sim.state.ref_by_uuid("VDI", LEAF))
    assert result.chosen.needed == max(live, 0)  # the forced leaf needs the GC's live need
    plan = json.loads(json.dumps(result.plan()))
    assert plan["remedy"]["downtime_s"] == pytest.approx(result.chosen.downtime_s)
    dry = run_transfer(plan, session, incident="off-ssh-dry", dry_run=True)
    assert dry.status == "dry-run" and f"about {plan['remedy']['downtime_s'] / 60:.1f} min of downtime" in dry.message
    original = vms_holding(session, "fileserver")[0]
    free_before = ops.sr_free(session, [SOURCE])[SOURCE]
    outcome = run_transfer(plan, session, incident="off-ssh", dry_run=False, confirm_vm_uuid=VM, wait_timeout_s=600)
    assert outcome.status == "done", (outcome.message, outcome.next_step)
    vm = assert_vm_intact_on_one_sr(session, original)
    assert vm["power_state"] == "Running" and depth_of_data_disk(session, vm) == 1
    assert ops.sr_free(session, [SOURCE])[SOURCE] > free_before + (1000 << 30)  # the old base is gone
    leaf = ops.ref_by_uuid(session, "VDI", LEAF)
    assert ops.vdi_leaf_coalesce(session, leaf) is None  # no force left behind
    kinds = [r["kind"] for r in Journal(journal_path("off-ssh")).records() if r["event"] == "done"]
    assert kinds.index("shutdown") < kinds.index("force-leaf") < kinds.index("wait-gc") < kinds.index("start")


def _plugin_plan(sim, ssh) -> dict:
    result = assess(open_inventory(url=sim.url, user=sim.user, password_env="SIM_PW", ssh=ssh))
    remedy = next(r for r in result.remedies if r.kind == "offline-coalesce")
    plan = json.loads(json.dumps(plan_of(result.sizing, remedy)))
    plan["vms"][0].update(coalesce_plugin=True, route="plugin")
    return plan


def test_the_plugins_nothing_to_do_success_is_caught_by_the_chain_check(seed):
    sim, session, ssh, calls = seed
    with sim.pool.lock:  # the VM halted and a snapshot of its disk: the leaf's parent has two children now
        vm = sim.state.ref_by_uuid("VM", VM)
        sim.pool._halt(vm)
    session.xenapi.VDI.snapshot(ops.ref_by_uuid(session, "VDI", LEAF), {})
    result = assess(fetch_inventory(session))
    plan = json.loads(json.dumps(plan_of(result.sizing, result.remedies[0])))
    plan["sr"]["uuid"] = SOURCE
    plan["vms"] = [{"uuid": VM, "name": "fileserver", "power_state": "Halted", "mode": "offline",
                    "coalesce_plugin": True, "route": "plugin", "leaves": [LEAF], "disks": [], "bytes": 0}]
    outcome = run_transfer(plan, session, incident="nothing", dry_run=False, confirm_vm_uuid=VM, wait_timeout_s=60)
    assert outcome.status == "stopped" and "chain is as long as before" in outcome.message


def test_a_resume_waits_on_the_plugins_task_and_never_calls_it_twice(seed, monkeypatch):
    sim, session, ssh, calls = seed
    with sim.pool.lock:
        sim.pool._halt(sim.state.ref_by_uuid("VM", VM))   # a halted VM: the plugin does not suspend it
    plan = _plugin_plan(sim, ssh)
    real = ops.wait_task
    state = {"killed": False}

    class Killed(BaseException):
        pass

    def dies_while_waiting(sess, task, **kw):
        if not state["killed"] and sess.xenapi.task.get_name_label(task) == ops.PLUGIN_TASK:
            state["killed"] = True
            raise Killed()  # the process dies after the call was sent and its task journaled
        return real(sess, task, **kw)
    monkeypatch.setattr(ops, "wait_task", dies_while_waiting)
    with pytest.raises(Killed):
        run_transfer(plan, session, incident="plug", dry_run=False, confirm_vm_uuid=VM, wait_timeout_s=60)
    outcome = run_transfer(plan, session, incident="plug", dry_run=False, confirm_vm_uuid=VM, wait_timeout_s=60)
    assert outcome.status == "done", (outcome.message, outcome.next_step)
    sent = [c for c in calls_made(calls) if c.get("method") == ops.PLUGIN_TASK]
    assert len(sent) == 1
    vm = vms_holding(session, "fileserver")[0]
    assert depth_of_data_disk(session, vm) == 1 and os.path.exists(journal_path("plug"))
