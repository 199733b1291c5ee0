"""Operations that change the pool, with xapi's preconditions and errors, through the
official client."""

import re
import time

import pytest
import XenAPI

from runbook_lib.sim import Simulator
from runbook_lib.sizing import GiB, lvhd_lv_size, migrate_snapshot_need

NULL = "OpaqueRef:NULL"


@pytest.fixture
def sim():
    with Simulator("healthy", speed=360000) as s:
        yield s


@pytest.fixture
def x(sim):
    session = XenAPI.Session(sim.url)
    session.xenapi.login_with_password(sim.user, sim.password, "1.0", "tests")
    yield session.xenapi
    session.xenapi.session.logout()


def _free(x, sr):
    return int(x.SR.get_physical_size(sr)) - int(x.SR.get_physical_utilisation(sr))


def _vm(x, name):
    return x.VM.get_by_name_label(name)[0]


_VHD_HEADER_BOUND = 64 << 20  # an empty VHD's metadata, whatever its virtual size here


def test_vm_copy_makes_a_flat_halted_copy_with_new_macs(x):
    db = _vm(x, "db")
    nfs = x.SR.get_by_name_label("NFS backup")[0]
    x.VM.set_name_description(db, "database")
    x.VM.add_to_other_config(db, "owner", "ops")
    free = _free(x, nfs)
    new = x.VM.copy(db, "db copy", nfs)
    rec = x.VM.get_record(new)
    assert rec["power_state"] == "Halted" and rec["name_label"] == "db copy"
    assert rec["name_description"] == "database" and rec["other_config"]["owner"] == "ops"
    old_macs = [x.VIF.get_MAC(v) for v in x.VM.get_VIFs(db)]
    new_macs = [x.VIF.get_MAC(v) for v in rec["VIFs"]]
    assert len(new_macs) == 1 and new_macs != old_macs        # xapi: copies get new MACs
    vdi = x.VBD.get_VDI(rec["VBDs"][0])
    assert x.VBD.get_userdevice(rec["VBDs"][0]) == "0"
    vdi_rec = x.VDI.get_record(vdi)
    assert vdi_rec["SR"] == nfs and "vhd-parent" not in vdi_rec["sm_config"]
    assert vdi_rec["name_label"] == "db disk 0"
    # a file SR writes the copy's size into its record on SR.scan / SR.update, not as it grows
    assert int(vdi_rec["physical_utilisation"]) < _VHD_HEADER_BOUND
    x.SR.update(nfs)
    assert _free(x, nfs) == free - int(x.VDI.get_physical_utilisation(vdi))


def test_vm_copy_refuses_a_running_vm(x):
    with pytest.raises(XenAPI.Failure) as e:
        x.VM.copy(_vm(x, "app"), "no", NULL)
    assert e.value.details[0] == "VM_BAD_POWER_STATE"
    assert e.value.details[2:] == ["halted", "running"]


def test_copy_that_does_not_fit_leaves_nothing(sim, x):
    lvm = x.SR.get_by_name_label("Local storage")[0]
    sim.storage.srs[sim.sr_ref("Local storage")].other_used += _free(x, lvm) - 10 * GiB
    x.SR.update(lvm)
    vdis_before = set(x.VDI.get_all())
    vms_before = set(x.VM.get_all())
    with pytest.raises(XenAPI.Failure) as e:
        x.VM.copy(_vm(x, "db"), "too big", lvm)      # an 80 GiB disk needs its inflated size
    assert e.value.details == ["SR_BACKEND_FAILURE_44", "", "There is insufficient space", ""]
    assert set(x.VDI.get_all()) == vdis_before and set(x.VM.get_all()) == vms_before


def test_async_call_reports_a_failed_precondition_in_its_task(x):
    """xapi checks an Async call's preconditions inside the task: the caller gets a task ref
    and reads the failure from it, where the plain call raises at once."""
    app = _vm(x, "app")
    nfs = x.SR.get_by_name_label("NFS backup")[0]
    with pytest.raises(XenAPI.Failure) as sync:
        x.VM.copy(app, "app copy", nfs)
    task = x.Async.VM.copy(app, "app copy", nfs)
    assert task.startswith("OpaqueRef:") and x.task.get_status(task) == "failure"
    assert x.task.get_error_info(task) == sync.value.details
    assert sync.value.details[0] == "VM_BAD_POWER_STATE" and sync.value.details[2:] == ["halted", "running"]
    assert x.VM.get_by_name_label("app copy") == []


def test_async_copy_task_progress_and_result(sim, x):
    db = _vm(x, "db")
    nfs = x.SR.get_by_name_label("NFS backup")[0]
    sim.pool.clock.speed = 200.0       # slow enough to see progress move
    task = x.Async.VM.copy(db, "db async", nfs)
    assert task.startswith("OpaqueRef:")
    assert x.task.get_status(task) == "pending"
    seen = set()
    token = ""
    while x.task.get_status(task) == "pending":
        out = getattr(x.event, "from")(["task"], token, 5.0)
        token = out["token"]
        assert "task" in out["valid_ref_counts"]
        for ev in out["events"]:
            if ev["ref"] == task and "snapshot" in ev:
                seen.add(ev["snapshot"]["progress"])
    assert x.task.get_status(task) == "success"
    assert len(seen) >= 3 and max(seen) <= 1.0
    result = x.task.get_result(task)
    assert re.fullmatch(r"<value>OpaqueRef:[0-9a-f-]+</value>", result)
    new = result[len("<value>"):-len("</value>")]
    assert x.VM.get_name_label(new) == "db async"
    assert x.task.get_finished(task).value.startswith("2026")


def test_task_cancel(sim, x):
    sim.pool.clock.speed = 1.0
    task = x.Async.VM.copy(_vm(x, "db"), "cancelled", x.SR.get_by_name_label("NFS backup")[0])
    vdis = len(x.VDI.get_all())
    x.task.cancel(task)
    sim.pool.clock.speed = 100000.0
    assert sim.wait_until(lambda s: s.state.get("task", task)["status"] != "cancelling")
    assert x.task.get_status(task) == "cancelled"
    assert x.task.get_error_info(task)[0] == "TASK_CANCELLED"
    assert len(x.VDI.get_all()) == vdis - 1 or len(x.VDI.get_all()) <= vdis   # copy removed
    assert not x.VM.get_by_name_label("cancelled")


def test_snapshot_keeps_macs_and_builds_a_chain(sim, x):
    app = _vm(x, "app")
    disk = x.VBD.get_VDI(x.VM.get_VBDs(app)[0])
    snap = x.VM.snapshot(app, "before change")
    rec = x.VM.get_record(snap)
    assert rec["is_a_snapshot"] and rec["snapshot_of"] == app and rec["is_a_template"]
    assert [x.VIF.get_MAC(v) for v in rec["VIFs"]] == [x.VIF.get_MAC(v) for v in x.VM.get_VIFs(app)]
    snap_vdi = x.VBD.get_VDI(rec["VBDs"][0])
    assert x.VDI.get_is_a_snapshot(snap_vdi) and x.VDI.get_snapshot_of(snap_vdi) == disk
    assert snap_vdi in x.VDI.get_snapshots(disk)
    parent = x.VDI.get_sm_config(disk)["vhd-parent"]
    assert x.VDI.get_sm_config(snap_vdi)["vhd-parent"] == parent
    assert x.VDI.get_managed(x.VDI.get_by_uuid(parent)) is False
    with pytest.raises(XenAPI.Failure) as e:
        x.VDI.destroy(x.VDI.get_by_uuid(parent))
    assert e.value.details[0] == "VDI_NOT_MANAGED"
    # the running disk stays inflated
    assert x.VDI.get_physical_utilisation(disk) == str(lvhd_lv_size(40 * GiB))


def test_clone_needs_a_halted_vm_and_gives_new_macs(x):
    with pytest.raises(XenAPI.Failure) as e:
        x.VM.clone(_vm(x, "app"), "c")
    assert e.value.details[0] == "VM_BAD_POWER_STATE"
    clone = x.VM.clone(_vm(x, "db"), "db clone")
    assert x.VIF.get_MAC(x.VM.get_VIFs(clone)[0]) != x.VIF.get_MAC(x.VM.get_VIFs(_vm(x, "db"))[0])
    assert not x.VM.get_is_a_snapshot(clone)


def test_shutdown_on_a_thick_sr_frees_nothing(sim, x):
    app = _vm(x, "app")
    lvm = x.SR.get_by_name_label("Local storage")[0]
    disk = x.VBD.get_VDI(x.VM.get_VBDs(app)[0])
    free = _free(x, lvm)
    with pytest.raises(XenAPI.Failure) as e:
        x.VM.destroy(app)
    assert e.value.details[0] == "VM_BAD_POWER_STATE"
    with pytest.raises(XenAPI.Failure) as e:
        x.VDI.destroy(disk)
    assert e.value.details == ["VDI_IN_USE", disk, "destroy"]
    x.VM.clean_shutdown(app)
    assert x.VM.get_power_state(app) == "Halted"
    assert not x.VBD.get_currently_attached(x.VM.get_VBDs(app)[0])
    # a thick LVM SR (sm's default) does not deflate at detach: nothing is freed
    assert _free(x, lvm) == free
    assert int(x.VDI.get_physical_utilisation(disk)) == lvhd_lv_size(40 * GiB)
    with pytest.raises(XenAPI.Failure) as e:
        x.VM.clean_shutdown(app)
    assert e.value.details[0] == "VM_BAD_POWER_STATE"
    x.VM.start(app, False, False)
    assert x.VM.get_power_state(app) == "Running"
    assert x.VDI.get_physical_utilisation(disk) == str(lvhd_lv_size(40 * GiB))
    x.VM.hard_shutdown(app)
    assert x.VM.get_power_state(app) == "Halted"


def test_vbd_and_vif_create_destroy(x):
    db = _vm(x, "db")
    disk = x.VBD.get_VDI(x.VM.get_VBDs(db)[0])
    lvm = x.SR.get_by_name_label("Local storage")[0]
    data = x.VDI.copy(disk, lvm)
    x.VDI.set_name_label(data, "db data")
    assert x.VDI.get_name_label(data) == "db data"
    with pytest.raises(XenAPI.Failure) as e:
        x.VBD.create({"VM": db, "VDI": data, "userdevice": "0", "bootable": False,
                      "mode": "RW", "type": "Disk", "empty": False, "other_config": {}})
    assert e.value.details == ["DEVICE_ALREADY_EXISTS", "0"]
    vbd = x.VBD.create({"VM": db, "VDI": data, "userdevice": "2", "bootable": False,
                        "mode": "RW", "type": "Disk", "empty": False, "other_config": {}})
    assert x.VBD.get_userdevice(vbd) == "2" and vbd in x.VM.get_VBDs(db)
    net = x.network.get_all()[0]
    vif = x.VIF.create({"VM": db, "network": net, "device": "1", "MAC": "6e:1a:2b:3c:4d:99",
                        "MTU": "1500", "other_config": {}, "qos_algorithm_type": "",
                        "qos_algorithm_params": {}})
    assert x.VIF.get_MAC(vif) == "6e:1a:2b:3c:4d:99"
    x.VIF.destroy(vif)
    x.VBD.destroy(vbd)
    x.VDI.destroy(data)
    with pytest.raises(XenAPI.Failure) as e:
        x.VDI.get_record(data)
    assert e.value.details[0] == "HANDLE_INVALID"
    x.VM.destroy(db)
    assert disk in x.VDI.get_all()                  # VM.destroy keeps the disks


def test_pool_migrate_moves_a_running_disk(sim, x):
    app = _vm(x, "app")
    nfs = x.SR.get_by_name_label("NFS backup")[0]
    disk = x.VBD.get_VDI(x.VM.get_VBDs(app)[0])
    uuid = x.VDI.get_uuid(disk)
    new = x.VDI.pool_migrate(disk, nfs, {})
    assert x.VDI.get_SR(new) == nfs
    assert x.VBD.get_VDI(x.VM.get_VBDs(app)[0]) == new
    with pytest.raises(XenAPI.Failure) as e:      # the source leaf is gone; the copy is new
        x.VDI.get_by_uuid(uuid)
    assert e.value.details[0] == "UUID_INVALID"
    # migrate_send semantics: a halted VM's disk moves too (no mirror needed)
    db_disk = x.VBD.get_VDI(x.VM.get_VBDs(_vm(x, "db"))[0])
    moved = x.VDI.pool_migrate(db_disk, nfs, {})
    assert x.VDI.get_SR(moved) == nfs and x.VBD.get_VDI(x.VM.get_VBDs(_vm(x, "db"))[0]) == moved


def test_pool_migrate_refuses_as_migrate_send_does(sim, x):
    """A VDI no VM uses, a reset-on-boot disk, changed block tracking, and an HA-protected VM
    whose disk would land on an SR that is not shared."""
    lvm = x.SR.get_by_name_label("Local storage")[0]
    nfs = x.SR.get_by_name_label("NFS backup")[0]
    loose = x.VDI.create({"SR": lvm, "virtual_size": str(GiB), "type": "user", "name_label": "loose",
                          "sharable": False, "read_only": False, "other_config": {}})
    with pytest.raises(XenAPI.Failure) as e:
        x.VDI.pool_migrate(loose, nfs, {})
    assert e.value.details == ["VDI_NEEDS_VM_FOR_MIGRATE", loose]
    app = _vm(x, "app")
    disk = x.VBD.get_VDI(x.VM.get_VBDs(app)[0])
    for field, value, details in (("on_boot", "reset", ["VDI_ON_BOOT_MODE_INCOMPATIBLE_WITH_OPERATION"]),
                                  ("cbt_enabled", True, ["VDI_CBT_ENABLED", disk])):   # xapi: no parameter, [vdi]
        with sim.pool.lock:
            old = sim.pool.store.get("VDI", disk)[field]
            sim.pool.store.set("VDI", disk, **{field: value})
        with pytest.raises(XenAPI.Failure) as e:
            x.VDI.pool_migrate(disk, nfs, {})
        assert e.value.details == details
        with sim.pool.lock:
            sim.pool.store.set("VDI", disk, **{field: old})
    pool = x.pool.get_all()[0]
    with sim.pool.lock:
        sim.pool.store.set("pool", pool, ha_enabled=True)
        sim.pool.store.set("VM", app, ha_restart_priority="restart")
        sim.pool.store.set("SR", nfs, shared=False)
    with pytest.raises(XenAPI.Failure) as e:
        x.VDI.pool_migrate(disk, nfs, {})
    assert e.value.details == ["HA_CONSTRAINT_VIOLATION_SR_NOT_SHARED", nfs]


def test_scan_and_plugin_errors(x):
    lvm = x.SR.get_by_name_label("Local storage")[0]
    assert x.SR.scan(lvm) == ""
    host = x.host.get_all()[0]
    with pytest.raises(XenAPI.Failure) as e:
        x.host.call_plugin(host, "nope", "fn", {})
    assert e.value.details == ["XENAPI_MISSING_PLUGIN", "nope"]
    with pytest.raises(XenAPI.Failure) as e:  # the plugin is there, the function is not (XenAPIPlugin.dispatch)
        x.host.call_plugin(host, "coalesce-leaf", "no-such-function", {})
    assert e.value.details == ["UNKNOWN_XENAPI_PLUGIN_FUNCTION", "no-such-function"]
    with pytest.raises(XenAPI.Failure) as e:
        x.host.call_plugin(host, "coalesce-leaf", "leaf-coalesce", {"vm_uuid": "missing"})
    assert e.value.details == ["XENAPI_PLUGIN_FAILURE", "leaf-coalesce", "Exception", "VM not found"]


def test_operations_in_progress_block_others(sim, x):
    db = _vm(x, "db")
    assert "copy" in x.VM.get_allowed_operations(db)
    assert "clean_shutdown" in x.VM.get_allowed_operations(_vm(x, "app"))
    sim.pool.clock.speed = 1.0
    task = x.Async.VM.copy(db, "in progress", x.SR.get_by_name_label("NFS backup")[0])
    assert list(x.VM.get_current_operations(db).values()) == ["copy"]
    assert x.VM.get_allowed_operations(db) == []
    with pytest.raises(XenAPI.Failure) as e:
        x.VM.destroy(db)
    assert e.value.details == ["OTHER_OPERATION_IN_PROGRESS", "VM", db, "copy", task]  # xapi's four parameters
    sim.pool.clock.speed = 100000.0
    assert sim.wait_until(lambda s: s.state.get("task", task)["status"] == "success")
    assert x.VM.get_current_operations(db) == {}


def test_copy_keeps_userdevice_order_past_nine():
    scenario = {
        "srs": [{"uuid": "5a5a5a5a-0000-4000-8000-000000000001", "name_label": "s", "type": "ext",
                 "physical_size": "1T"}],
        "vdis": [{"uuid": f"d0000000-0000-4000-8000-0000000000{i:02d}", "sr": "s",
                  "virtual_size": f"{i + 1}G", "allocated": "1G"} for i in range(12)],
        "vms": [{"uuid": "e0000000-0000-4000-8000-000000000001", "name_label": "many",
                 "vbds": [{"vdi": f"d0000000-0000-4000-8000-0000000000{i:02d}",
                           "userdevice": str(i)} for i in range(12)]}],
    }
    with Simulator(scenario, speed=360000) as sim:
        s = XenAPI.Session(sim.url)
        s.xenapi.login_with_password(sim.user, sim.password, "1.0", "t")
        x = s.xenapi
        new = x.VM.copy(_vm(x, "many"), "copy", NULL)
        sizes = {x.VBD.get_userdevice(b): int(x.VDI.get_virtual_size(x.VBD.get_VDI(b)))
                 for b in x.VM.get_VBDs(new)}
        assert sizes == {str(i): (i + 1) * GiB for i in range(12)}


def test_snapshot_refused_at_the_chain_limit():
    sim = Simulator("large-pool")
    d = sim.dispatcher
    session = d.call("session.login_with_password", ["root", "simulator"])
    deepest = max(sim.storage.vhds, key=lambda r: len(sim.storage.chain(r)))
    assert len(sim.storage.chain(deepest)) == 30
    with pytest.raises(Exception) as e:
        d.call("VDI.snapshot", [session, deepest, {}])
    assert e.value.description == ["SR_BACKEND_FAILURE_109", "", "The snapshot chain is too long", ""]


def test_vdi_create(sim, x):
    lvm = x.SR.get_by_name_label("Local storage")[0]
    nfs = x.SR.get_by_name_label("NFS backup")[0]
    free = _free(x, lvm)
    rec = {"name_label": "scratch", "name_description": "", "SR": lvm,
           "virtual_size": str(10 * GiB), "type": "user", "sharable": False, "read_only": False,
           "other_config": {}}
    vdi = x.VDI.create(rec)
    assert x.VDI.get_physical_utilisation(vdi) == str(lvhd_lv_size(10 * GiB))   # inflated
    assert _free(x, lvm) == free - lvhd_lv_size(10 * GiB)
    on_nfs = x.VDI.create(dict(rec, SR=nfs))
    assert int(x.VDI.get_physical_utilisation(on_nfs)) < 1 * 2**20              # metadata only
    with pytest.raises(XenAPI.Failure) as e:    # sm's VDISize error, 79 (78 is "VDI Creation failed")
        x.VDI.create(dict(rec, virtual_size=str(4096 * GiB)))
    assert e.value.details[:2] == ["SR_BACKEND_FAILURE_79", ""] and e.value.details[2].startswith("VDI Invalid size")
    with pytest.raises(XenAPI.Failure) as e:
        x.VDI.create(dict(rec, virtual_size="-1"))
    assert e.value.details[0] == "SR_BACKEND_FAILURE_79"
    tiny = x.VDI.create(dict(rec, SR=nfs, virtual_size="0"))   # sm rounds a size under 2 MiB up, as it does 1 B
    assert x.VDI.get_virtual_size(tiny) == str(2 * 2**20)
    with pytest.raises(XenAPI.Failure) as e:
        x.VDI.create(dict(rec, virtual_size=str(2000 * GiB)))
    assert e.value.details[0] == "SR_BACKEND_FAILURE_44"


def test_a_blocked_start_is_refused_not_copied_and_lifted(x):
    db = _vm(x, "db")
    nfs = x.SR.get_by_name_label("NFS backup")[0]
    x.VM.add_to_blocked_operations(db, "start", "being copied")
    with pytest.raises(XenAPI.Failure) as blocked:
        x.VM.start(db, False, False)
    assert blocked.value.details == ["OPERATION_BLOCKED", db, "being copied"]
    copy = x.VM.copy(db, "db copy", nfs)
    assert x.VM.get_blocked_operations(copy) == {}  # xapi makes a copy with blocked_operations empty
    x.VM.remove_from_blocked_operations(db, "start")
    x.VM.start(db, False, False)
    assert x.VM.get_power_state(db) == "Running"


def test_a_checkpoint_is_destroyed_as_it_is_and_snapshots_refuse_as_xapi_does():
    """A snapshot with memory (power_state Suspended): VM.destroy takes it as it is; xapi's
    checks run power state first, then the snapshot's own refusals (VM_IS_SNAPSHOT [vm, op]),
    and let a snapshot be hard-shut-down (a Suspended one) or copied."""
    from runbook_lib.sim.scenarios import load_scenario

    scenario = load_scenario("healthy")
    next(vm for vm in scenario["vms"] if vm.get("is_a_snapshot"))["power_state"] = "Suspended"
    with Simulator(scenario, speed=360000) as sim:
        session = XenAPI.Session(sim.url)
        session.xenapi.login_with_password(sim.user, sim.password, "1.0", "tests")
        x = session.xenapi
        checkpoint = _vm(x, "app before upgrade")
        assert x.VM.get_power_state(checkpoint) == "Suspended"
        with pytest.raises(XenAPI.Failure) as refused:
            x.VM.start(checkpoint, False, False)
        assert refused.value.details == ["VM_BAD_POWER_STATE", checkpoint, "halted", "suspended"]
        with pytest.raises(XenAPI.Failure) as refused:
            x.VM.snapshot(checkpoint, "of a snapshot")
        assert refused.value.details == ["VM_IS_SNAPSHOT", checkpoint, "snapshot"]
        x.VM.destroy(checkpoint)
        assert x.VM.get_by_name_label("app before upgrade") == []


def _lvm_migrate_case(sim, x):
    """app's running leaf on the LVM SR, the NFS SR, and the snapshot's need on the source."""
    app = _vm(x, "app")
    nfs = x.SR.get_by_name_label("NFS backup")[0]
    disk = x.VBD.get_VDI(x.VM.get_VBDs(app)[0])
    v = sim.storage.vhds[disk]
    assert sim.storage.srs[v.sr].is_lvm and v.attached and not v.raw
    v.growth = 0.0                                # the need stays put while the test runs
    return app, nfs, disk, v.sr, migrate_snapshot_need(v.vhd_size)


def _leave_free(sim, sr, free):
    sim.storage.srs[sr].physical_size += free - sim.storage.free(sr)
    assert sim.storage.free(sr) == free


def test_pool_migrate_needs_room_for_its_snapshot_on_an_lvm_source(sim, x):
    """Storage motion snapshots the leaf on the source first (the planner's own estimate):
    one byte short and it is refused with nothing changed, sync and Async alike."""
    app, nfs, disk, lvm, need = _lvm_migrate_case(sim, x)
    _leave_free(sim, lvm, need - 1)
    vdis_before = sorted(x.VDI.get_all())
    with pytest.raises(XenAPI.Failure) as e:
        x.VDI.pool_migrate(disk, nfs, {})
    assert e.value.details == ["SR_BACKEND_FAILURE_44", "", "There is insufficient space", ""]
    task = x.Async.VDI.pool_migrate(disk, nfs, {})
    assert sim.wait_until(lambda s: s.state.get("task", task)["status"] != "pending")
    assert x.task.get_status(task) == "failure"
    assert x.task.get_error_info(task) == e.value.details
    assert sorted(x.VDI.get_all()) == vdis_before and x.VDI.get_SR(disk) == lvm
    assert x.VBD.get_VDI(x.VM.get_VBDs(app)[0]) == disk and sim.storage.free(lvm) == need - 1
    assert x.VDI.get_current_operations(disk) == {}
    _leave_free(sim, lvm, need)                   # exactly enough: it goes
    new = x.VDI.pool_migrate(disk, nfs, {})
    assert x.VDI.get_SR(new) == nfs


def test_seed_fileserver_cannot_migrate_live_off_its_full_sr():
    """The field report's SR (36 MiB free) cannot hold the snapshot of the ~120 MiB leaf."""
    with Simulator("seed-stuck-leaf-coalesce", speed=360000) as sim:
        session = XenAPI.Session(sim.url)
        session.xenapi.login_with_password(sim.user, sim.password, "1.0", "tests")
        x = session.xenapi
        leaf = x.VDI.get_by_uuid("67558d6a-2f3e-4c8b-a1d9-7e5f3b2c9d10")
        nfs = x.SR.get_by_name_label("NFS staging")[0]
        sata = x.VDI.get_SR(leaf)
        assert sim.storage.free(sata) < migrate_snapshot_need(sim.storage.vhds[leaf].vhd_size)
        with pytest.raises(XenAPI.Failure) as e:
            x.VDI.pool_migrate(leaf, nfs, {})
        assert e.value.details[0] == "SR_BACKEND_FAILURE_44"
        assert x.VDI.get_SR(leaf) == sata and x.SR.get_VDIs(nfs) == []
        session.xenapi.session.logout()


def test_a_second_add_to_a_map_is_refused_not_overwritten(x):
    """xapi's master refuses add_to_<map> for a key that is there (MAP_DUPLICATE_KEY), even with the
    same value; an operator's block is never overwritten by a second add."""
    db = _vm(x, "db")
    x.VM.add_to_blocked_operations(db, "start", "maintenance")
    with pytest.raises(XenAPI.Failure) as e:
        x.VM.add_to_blocked_operations(db, "start", "runbook transfer: mine")
    assert e.value.details == ["MAP_DUPLICATE_KEY", "VM", "blocked_operations", db, "start"]
    assert x.VM.get_blocked_operations(db) == {"start": "maintenance"}


def test_a_vm_copy_keeps_each_vifs_filter_and_each_cds_iso(x):
    db = _vm(x, "db")
    vif = x.VM.get_VIFs(db)[0]
    rec = x.VIF.get_record(vif)
    x.VIF.destroy(vif)
    x.VIF.create(dict(rec, locking_mode="locked", ipv4_allowed=["192.0.2.7"], other_config={},
                      qos_algorithm_type="", qos_algorithm_params={}))
    copy = x.VM.copy(db, "db copy", x.SR.get_by_name_label("NFS backup")[0])
    new = x.VIF.get_record(x.VM.get_VIFs(copy)[0])
    assert (new["locking_mode"], new["ipv4_allowed"], new["ipv6_allowed"]) == ("locked", ["192.0.2.7"], [])
    with pytest.raises(XenAPI.Failure) as e:
        x.VIF.create(dict(rec, device="9", locking_mode="open", other_config={}))
    assert e.value.details[:2] == ["INVALID_VALUE", "locking_mode"]


def test_async_tasks_carry_the_wire_name_and_expire_about_an_hour_after_they_end(sim, x):
    """xapi labels an async task with the call's wire name and destroys a finished task about 65
    minutes later (db GC), read or not; task.create makes a pending task for an HTTP handler."""
    sim.pool.clock.speed = 100000.0
    sim.dispatcher.task_min_wall_s = 0.0  # no wall-clock grace: the simulated hour is what counts
    task = x.Async.VM.clean_shutdown(_vm(x, "app"))
    assert x.task.get_name_label(task) == "Async.VM.clean_shutdown"
    assert sim.wait_until(lambda s: s.state.get("task", task)["status"] == "success")
    time.sleep(65 * 60 / 100000.0 + 0.05)
    with pytest.raises(XenAPI.Failure) as gone:
        x.task.get_status(task)
    assert gone.value.details[0] == "HANDLE_INVALID"
    made = x.task.create("runbook import", "an import")
    assert (x.task.get_status(made), x.task.get_name_label(made)) == ("pending", "runbook import")


def _healthy_with(**changes) -> dict:
    from runbook_lib.sim import load_scenario

    data = load_scenario("healthy")
    data["hosts"] = [{**data["hosts"][0], **changes.pop("host", {})}]
    data["pool"] = {**data["pool"], **changes.pop("pool", {})}
    return data


def test_a_host_without_the_coalesce_leaf_plugin():
    with Simulator(_healthy_with(host={"plugins": []})) as sim:
        session = XenAPI.Session(sim.url)
        session.xenapi.login_with_password(sim.user, sim.password, "1.0", "tests")
        host = session.xenapi.host.get_all()[0]
        for fn in ("leaf-coalesce", "no-such-function"):
            with pytest.raises(XenAPI.Failure) as e:
                session.xenapi.host.call_plugin(host, "coalesce-leaf", fn, {})
            assert e.value.details == ["XENAPI_MISSING_PLUGIN", "coalesce-leaf"]


def test_a_scenario_names_only_plugins_the_simulator_models():
    from runbook_lib.errors import InputError

    with pytest.raises(InputError, match="plugins must be a list of coalesce-leaf"):
        Simulator(_healthy_with(host={"plugins": ["trim"]}))


def test_suspend_image_srs_from_the_scenario():
    data = _healthy_with(pool={"suspend_image_SR": "NFS backup", "default_SR": "Local storage"},
                         host={"suspend_image_sr": "Local storage"})
    with Simulator(data) as sim:
        st = sim.state
        pool = st.get("pool", st.all_refs("pool")[0])
        host = st.get("host", st.all_refs("host")[0])
        assert pool["suspend_image_SR"] == sim.sr_ref("NFS backup")
        assert pool["default_SR"] == host["suspend_image_sr"] == sim.sr_ref("Local storage")
    with Simulator("healthy") as sim:  # unnamed: as an install sets them, the pool's default SR and the host's local SR
        st = sim.state
        pool = st.get("pool", st.all_refs("pool")[0])
        assert pool["suspend_image_SR"] == pool["default_SR"]
        assert st.get("host", st.all_refs("host")[0])["suspend_image_sr"] == sim.sr_ref("Local storage")


def test_snapshots_and_templates_are_refused_as_xapi_checks_them(sim, x):
    """Power state first, then the snapshot's or template's own refusal with [vm, operation]:
    xapi lets a snapshot be copied, cloned, destroyed and hard-shut-down, nothing else."""
    snap = _vm(x, "app before upgrade")   # a Halted snapshot
    with pytest.raises(XenAPI.Failure) as e:
        x.VM.start(snap, False, False)
    assert e.value.details == ["VM_IS_SNAPSHOT", snap, "start"]
    with pytest.raises(XenAPI.Failure) as e:
        x.VM.hard_shutdown(snap)
    assert e.value.details == ["VM_BAD_POWER_STATE", snap, "paused, suspended, running", "halted"]
    db = _vm(x, "db")
    template = x.VM.clone(db, "db template")
    with sim.pool.lock:
        sim.pool.store.set("VM", template, is_a_template=True)
    with pytest.raises(XenAPI.Failure) as e:
        x.VM.start(template, False, False)
    assert e.value.details == ["VM_IS_TEMPLATE", template, "start"]
    with pytest.raises(XenAPI.Failure) as e:
        x.VM.clean_shutdown(_vm(x, "app before upgrade"))
    assert e.value.details == ["VM_BAD_POWER_STATE", snap, "running", "halted"]


def test_copy_destroy_and_device_rules_as_xapi_has_them(sim, x):
    """VM.copy: an SR ref that does not exist means each disk's own SR, an ISO SR is refused, and
    a disk's VBD gets other_config owner only where it had none; VM.destroy takes a Suspended VM;
    an attached VIF or VBD of a running VM is refused with OPERATION_NOT_ALLOWED."""
    db = _vm(x, "db")
    lvm = x.SR.get_by_name_label("Local storage")[0]
    vbd = x.VM.get_VBDs(db)[0]
    x.VBD.add_to_other_config(vbd, "owner", "true")
    copy = x.VM.copy(db, "db copy", "OpaqueRef:does-not-exist")
    new_vbd = x.VM.get_VBDs(copy)[0]
    assert x.VDI.get_SR(x.VBD.get_VDI(new_vbd)) == lvm
    assert x.VBD.get_other_config(new_vbd) == {"owner": "true"}
    with sim.pool.lock:
        iso = sim.pool.store.add("SR", {"name_label": "ISOs", "type": "iso", "content_type": "iso"})
    with pytest.raises(XenAPI.Failure) as e:
        x.VM.copy(db, "to iso", iso)
    assert e.value.details == ["OPERATION_NOT_ALLOWED", "Cannot copy a VM's disks to an ISO SR"]
    with sim.pool.lock:
        sim.pool.store.set("VM", copy, power_state="Suspended")
    x.VM.destroy(copy)
    app = _vm(x, "app")
    vif = x.VM.get_VIFs(app)[0]
    with pytest.raises(XenAPI.Failure) as e:
        x.VIF.destroy(vif)
    assert e.value.details == ["OPERATION_NOT_ALLOWED", "VIF currently attached to a running VM"]
    app_vbd = x.VM.get_VBDs(app)[0]
    with pytest.raises(XenAPI.Failure) as e:
        x.VBD.destroy(app_vbd)
    assert e.value.details == ["OPERATION_NOT_ALLOWED", f"VBD '{x.VBD.get_uuid(app_vbd)}' still attached to "
                               f"'{x.VM.get_uuid(app)}'"]
