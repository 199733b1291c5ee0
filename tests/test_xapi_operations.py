"""The transfer's XenAPI calls against the simulator, where real xapi behaves in ways a
client must cope with: Async preconditions fail inside the task, task results are XML
fragments, and a copy needs a halted VM while storage motion needs a running one."""

import pytest
import XenAPI

from runbook_lib.sim import Simulator
from runbook_lib.xapi import operations as ops


@pytest.fixture
def session():
    with Simulator("healthy", speed=360000) as sim:
        s = XenAPI.Session(sim.url)
        s.xenapi.login_with_password(sim.user, sim.password, "1.0", "tests")
        yield s
        s.xenapi.session.logout()


def _vm(session, name):
    return session.xenapi.VM.get_by_name_label(name)[0]


def _disk(session, vm):
    x = session.xenapi
    return next(x.VBD.get_VDI(b) for b in x.VM.get_VBDs(vm) if x.VBD.get_type(b) == "Disk")


def test_copy_of_a_halted_vm_returns_the_bare_ref_and_reports_progress(session):
    nfs = session.xenapi.SR.get_by_name_label("NFS backup")[0]
    seen, tasks = [], []
    new = ops.copy_vm(session, _vm(session, "db"), "db copy", nfs, on_progress=seen.append, on_task=tasks.append)
    assert new.startswith("OpaqueRef:") and "<value>" not in new
    assert session.xenapi.VM.get_name_label(new) == "db copy"
    assert seen == sorted(seen) and seen[-1] == 1.0
    assert not ops.exists(session, "task", tasks[0])  # a finished task is cleaned up


def test_copy_of_a_running_vm_fails_in_its_task_and_makes_nothing(session):
    nfs = session.xenapi.SR.get_by_name_label("NFS backup")[0]
    with pytest.raises(ops.TaskFailed) as failed:
        ops.copy_vm(session, _vm(session, "app"), "app copy", nfs)
    assert failed.value.details[0] == "VM_BAD_POWER_STATE" and failed.value.details[2:] == ["halted", "running"]
    assert ops.failure_details(failed.value) == failed.value.details
    assert session.xenapi.VM.get_by_name_label("app copy") == []


def test_storage_motion_of_a_disk_no_vm_uses_fails_in_its_task(session):
    """migrate_send needs a VM: a VDI without a VBD fails (a halted VM's disk moves, as xapi does)."""
    nfs = session.xenapi.SR.get_by_name_label("NFS backup")[0]
    vdi = _disk(session, _vm(session, "db"))
    session.xenapi.VM.destroy(_vm(session, "db"))
    with pytest.raises(ops.TaskFailed) as failed:
        ops.pool_migrate_vdi(session, vdi, nfs)
    assert failed.value.details == ["VDI_NEEDS_VM_FOR_MIGRATE", vdi]
    assert session.xenapi.VDI.get_SR(vdi) != nfs


def test_storage_motion_of_a_running_vms_disk_returns_the_new_vdi(session):
    nfs = session.xenapi.SR.get_by_name_label("NFS backup")[0]
    app = _vm(session, "app")
    new = ops.pool_migrate_vdi(session, _disk(session, app), nfs)
    assert new.startswith("OpaqueRef:") and session.xenapi.VDI.get_SR(new) == nfs
    assert _disk(session, app) == new


@pytest.mark.parametrize("result, ref", [
    ("<value>OpaqueRef:0b1c-2d</value>", "OpaqueRef:0b1c-2d"),
    ("<value><string>OpaqueRef:ab-cd</string></value>", "OpaqueRef:ab-cd"),
    ("", None), ("<value></value>", None),
])
def test_task_result_ref_reads_xapis_xml_fragment(result, ref):
    assert ops.task_result_ref(result) == ref


def test_a_copy_that_outlasts_its_timeout_is_cancelled_before_the_caller_cleans_up():
    """Else the task would go on making a copy that appears after the rollback."""
    with Simulator("healthy", speed=20) as sim:  # a copy takes several seconds at this speed
        session = XenAPI.Session(sim.url)
        session.xenapi.login_with_password(sim.user, sim.password, "1.0", "tests")
        x = session.xenapi
        nfs = x.SR.get_by_name_label("NFS backup")[0]
        tasks = []
        before = set(x.VM.get_all())
        with pytest.raises(ops.TaskTimedOut):
            ops.copy_vm(session, _vm(session, "db"), "db slow", nfs, on_task=tasks.append, timeout_s=0.3)
        status = x.task.get_status(tasks[0]) if ops.exists(session, "task", tasks[0]) else "gone"
        assert status in ("cancelled", "gone")
        assert set(x.VM.get_all()) == before and x.VM.get_by_name_label("db slow") == []
        assert x.VM.get_current_operations(_vm(session, "db")) == {}


def test_a_shutdown_longer_than_the_clients_socket_timeout_still_completes(monkeypatch):
    """A clean shutdown (30 simulated s, 2 wall s here) outlasts a 1 s socket timeout: sent as
    a task and waited for on events, it completes instead of failing as a lost connection."""
    from runbook_lib.xapi.connect import connect

    with Simulator("healthy", speed=15) as sim:
        monkeypatch.setenv("SIM_TEST_PW", sim.password)
        with connect(sim.url, sim.user, password_env="SIM_TEST_PW", timeout=1.0) as session:
            app = _vm(session, "app")
            ops.clean_shutdown(session, app)
            assert session.xenapi.VM.get_power_state(app) == "Halted"
            ops.start_vm(session, app)
            assert session.xenapi.VM.get_power_state(app) == "Running"
