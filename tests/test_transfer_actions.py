"""What the transfer's actions do to a pool, one at a time, on the simulator."""

import XenAPI

from runbook_lib.sim import Simulator
from runbook_lib.sim.scenarios import load_scenario
from runbook_lib.transfer.cleanup import destroy_vm_and_disks
from runbook_lib.transfer.context import Context
from runbook_lib.transfer.progress import Reporter


def test_a_planned_checkpoint_snapshot_is_destroyed_with_its_disk_without_a_shutdown():
    """A snapshot with memory is Suspended; xapi refuses to shut a snapshot down, so the
    clean-up must destroy it as it is (else the run would stop at destroy-original)."""
    scenario = load_scenario("healthy")
    next(vm for vm in scenario["vms"] if vm.get("is_a_snapshot"))["power_state"] = "Suspended"
    with Simulator(scenario, speed=360000) as sim:
        session = XenAPI.Session(sim.url)
        session.xenapi.login_with_password(sim.user, sim.password, "1.0", "tests")
        x = session.xenapi
        local = x.SR.get_uuid(x.SR.get_by_name_label("Local storage")[0])
        ctx = Context(session=session, plan={}, journal=None, reporter=Reporter(), source=local, staging="",
                      incident="t", wait_timeout_s=1.0)
        checkpoint = x.VM.get_by_name_label("app before upgrade")[0]
        disk = x.VDI.get_uuid(x.VBD.get_VDI(x.VM.get_VBDs(checkpoint)[0]))
        gone = destroy_vm_and_disks(ctx, checkpoint, local, keep=set())
        assert gone == [disk]
        assert x.VM.get_by_name_label("app before upgrade") == []
        assert x.VM.get_power_state(x.VM.get_by_name_label("app")[0]) == "Running"  # the VM itself untouched


def test_a_shutdown_already_under_way_is_waited_for_not_sent_again():
    """After a lost connection the VM may still be shutting down from the first call: a second
    clean_shutdown would fail (OTHER_OPERATION_IN_PROGRESS) and stop the run for nothing."""
    from runbook_lib.transfer.plan_steps import Step
    from runbook_lib.transfer.power import shutdown

    with Simulator("healthy", speed=15) as sim:  # a clean shutdown takes 2 s
        session = XenAPI.Session(sim.url)
        session.xenapi.login_with_password(sim.user, sim.password, "1.0", "tests")
        x = session.xenapi
        app = x.VM.get_by_name_label("app")[0]
        uuid = x.VM.get_uuid(app)
        ctx = Context(session=session, plan={}, journal=None, reporter=Reporter(), source="", staging="",
                      incident="t", wait_timeout_s=1.0)
        x.Async.VM.clean_shutdown(app)  # the first, interrupted run's call
        step = Step(f"{uuid}:shutdown", uuid, "shutdown", "Async.VM.clean_shutdown", "app", True, {})
        assert shutdown(ctx, step, {}) == {"shut_down_by_us": True}
        assert x.VM.get_power_state(app) == "Halted"
