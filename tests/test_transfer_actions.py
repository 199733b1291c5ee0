"""What the transfer's actions do to a pool, one at a time, on the simulator."""

import XenAPI

from runbook_lib.sim import Simulator
from runbook_lib.sim.scenarios import load_scenario
from runbook_lib.transfer.actions import Context, _destroy_vm_and_disks
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
        gone = _destroy_vm_and_disks(ctx, checkpoint, local, keep=set())
        assert gone == [disk]
        assert x.VM.get_by_name_label("app before upgrade") == []
        assert x.VM.get_power_state(x.VM.get_by_name_label("app")[0]) == "Running"  # the VM itself untouched
