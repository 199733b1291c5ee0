"""Waiting for the GC: conditions, the SMlog tail, and an event-driven wait that ends on time."""

import time

from runbook_lib.transfer.progress import Reporter
from runbook_lib.transfer.wait import SmlogTail, chain_gone, chains_shorter, wait_for_gc
from tests.transfer_pool import SOURCE, simulated_pool


def vdi(uuid, parent=None):
    return {"uuid": uuid, "sm_config": {"vhd-parent": parent} if parent else {}}


def test_chain_gone_needs_the_old_vdis_gone_and_room_to_come_back():
    check = chain_gone({"leaf", "base"}, need_free=100)
    done, why = check({"leaf": vdi("leaf", "base"), "base": vdi("base")}, 500)
    assert not done and "2 of 2" in why
    done, why = check({"other": vdi("other")}, 50)
    assert not done and "old chain gone" in why and "need" in why
    assert check({"other": vdi("other")}, 100)[0]


def test_chains_shorter_waits_for_every_leaf():
    check = chains_shorter({"a": 2, "b": 3})
    vdis = {"a": vdi("a", "pa"), "pa": vdi("pa"), "b": vdi("b", "pb"), "pb": vdi("pb", "ppb"), "ppb": vdi("ppb")}
    assert not check(vdis, 0)[0]
    vdis = {"a": vdi("a"), "b": vdi("b", "pb"), "pb": vdi("pb")}
    assert check(vdis, 0) == (True, "chains coalesced")


def test_smlog_tail_reads_only_new_gc_lines_and_survives_rotation(tmp_path):
    log = tmp_path / "SMlog"
    log.write_text("Dec 6 02:27:17 xen SMGC: [1] old line\n")
    tail = SmlogTail(log)
    assert tail.read() == []
    with log.open("a") as fh:
        fh.write("Dec 6 02:28:00 xen SM: [2] not the GC\nDec 6 02:28:01 xen SMGC: [3] Coalesced x\npartial")
    assert tail.read() == ["Dec 6 02:28:01 xen SMGC: [3] Coalesced x"]
    log.write_text("Dec 6 03:00:00 xen SMGC: [4] after rotation\n")
    assert tail.read() == ["Dec 6 03:00:00 xen SMGC: [4] after rotation"]
    assert SmlogTail(tmp_path / "absent").read() == [] and not SmlogTail(None).reachable


def test_wait_times_out_on_time_without_touching_anything(tmp_path, monkeypatch):
    with simulated_pool(tmp_path, monkeypatch) as (sim, session, calls):
        reporter = Reporter({SOURCE: "Local SATA Storage"})
        started = time.monotonic()
        result = wait_for_gc(session, SOURCE, lambda vdis, free: (False, "never"), timeout_s=1.0,
                             reporter=reporter, smlog=tmp_path / "SMlog", slice_s=0.3)
        took = time.monotonic() - started
    assert result.status == "timeout" and result.reason == "never"
    assert 1.0 <= took < 3.0
    assert len(reporter.samples) >= 2 and {s["sr"] for s in reporter.samples} == {SOURCE}


def test_wait_wakes_on_the_pool_event_that_satisfies_it(tmp_path, monkeypatch):
    with simulated_pool(tmp_path, monkeypatch) as (sim, session, calls):
        vdis_seen = []

        def condition(vdis, free):
            vdis_seen.append(set(vdis))
            return ("67558d6a-2f3e-4c8b-a1d9-7e5f3b2c9d10" not in vdis), "waiting for the leaf to go"

        import threading

        from runbook_lib.xapi import connect
        from runbook_lib.xapi import operations as ops

        def delete_leaf():  # another client (a session is not shared between threads)
            time.sleep(0.3)
            with connect(sim.url, sim.user, password_env="SIM_PASSWORD") as other:
                vm = ops.ref_by_uuid(other, "VM", "9c2d4e6f-1a3b-4c5d-8e7f-0a1b2c3d4e5f")
                other.xenapi.VM.hard_shutdown(vm)
                other.xenapi.VM.destroy(vm)
                other.xenapi.VDI.destroy(ops.ref_by_uuid(other, "VDI", "67558d6a-2f3e-4c8b-a1d9-7e5f3b2c9d10"))

        worker = threading.Thread(target=delete_leaf)
        worker.start()
        result = wait_for_gc(session, SOURCE, condition, timeout_s=120, slice_s=60.0)
        worker.join()
    assert result.status == "done" and result.elapsed_s < 30.0  # woken by the event, not the 60 s slice
    assert result.events >= 1
