"""Each injected fault behaves as documented in docs/simulator.md."""

import http.client
import socket
import time

import pytest
import XenAPI

from runbook_lib.errors import UsageError
from runbook_lib.sim import Simulator
from runbook_lib.sim.faults import FAULTS, Faults, parse_fault


def _x(sim):
    s = XenAPI.Session(sim.url)
    s.xenapi.login_with_password(sim.user, sim.password, "1.0", "tests")
    return s, s.xenapi


def _vm(x, name):
    return x.VM.get_by_name_label(name)[0]


def test_parse_and_reject():
    assert parse_fault("copy-fails-at=0.6") == ("copy-fails-at", "0.6")
    assert parse_fault({"session-expiry": 3}) == ("session-expiry", "3")
    assert parse_fault("gc-stuck") == ("gc-stuck", None)
    assert parse_fault("lose-reply=VIF.create@2") == ("lose-reply", "VIF.create@2")
    for bad in ("nope", "copy-fails-at", "copy-fails-at=2", "restart=0", "session-expiry=x", "lose-reply",
                "lose-reply=create", "lose-reply=VIF.create@0"):
        with pytest.raises(UsageError):
            parse_fault(bad)
    assert set(FAULTS) == {"copy-fails-at", "staging-full", "session-expiry", "restart",
                           "gc-stuck", "vm-wont-stop", "host-is-slave", "lose-reply", "unpause-fails"}


def test_a_lost_reply_is_sent_again_by_the_stock_client_and_once_by_ours(tmp_path, monkeypatch):
    """The call is carried out, its answer never arrives. Python's XML-RPC transport (under the
    official XenAPI client) then sends the same request again, so the change reaches the pool
    twice; the suite's transport sends a change once and reports the lost connection."""
    import json

    from runbook_lib.xapi import connect
    from runbook_lib.xapi.connect import PoolUnreachable

    calls = tmp_path / "calls.jsonl"
    with Simulator("healthy", speed=360000, calls=str(calls), faults=["lose-reply=VM.set_name_label@1"]) as sim:
        s, x = _x(sim)
        x.VM.set_name_label(_vm(x, "app"), "twice")  # no error: the stock transport re-sent it
        sent = [json.loads(line)["method"] for line in calls.read_text().splitlines()]
        assert sent.count("VM.set_name_label") == 2 and sim.pool.faults.replies_lost == ["VM.set_name_label"]

    calls = tmp_path / "calls2.jsonl"
    with Simulator("healthy", speed=360000, calls=str(calls), faults=["lose-reply=VM.set_name_label@1"]) as sim:
        monkeypatch.setenv("SIM_PW", sim.password)
        with connect(sim.url, sim.user, password_env="SIM_PW") as session:
            app = session.xenapi.VM.get_by_name_label("app")[0]
            with pytest.raises(PoolUnreachable):
                session.xenapi.VM.set_name_label(app, "once")
            assert session.xenapi.VM.get_name_label(app) == "once"  # carried out, once
            session.xenapi.VM.set_name_label(app, "again")  # the fault fires once only
        sent = [json.loads(line)["method"] for line in calls.read_text().splitlines()]
        assert sent.count("VM.set_name_label") == 2


def test_copy_fails_at_fraction_and_cleans_up():
    with Simulator("healthy", speed=360000, faults=["copy-fails-at=0.6"]) as sim:
        s, x = _x(sim)
        nfs = x.SR.get_by_name_label("NFS backup")[0]
        vdis = set(x.VDI.get_all())
        free = int(x.SR.get_physical_size(nfs)) - int(x.SR.get_physical_utilisation(nfs))
        task = x.Async.VM.copy(_vm(x, "db"), "fails", nfs)
        assert sim.wait_until(lambda s: s.state.get("task", task)["status"] != "pending")
        assert x.task.get_status(task) == "failure"
        info = x.task.get_error_info(task)
        assert info[0] == "VDI_COPY_FAILED" and "60%" in info[1]
        assert x.task.get_progress(task) == pytest.approx(0.6, abs=0.06)
        assert set(x.VDI.get_all()) == vdis and not x.VM.get_by_name_label("fails")
        assert int(x.SR.get_physical_size(nfs)) - int(x.SR.get_physical_utilisation(nfs)) == free
        x.VM.copy(_vm(x, "db"), "second try", nfs)        # one-shot: the retry works
        s.xenapi.session.logout()


def test_staging_full():
    with Simulator("seed-stuck-leaf-coalesce", speed=360000, faults=["staging-full"]) as sim:
        s, x = _x(sim)
        nfs = x.SR.get_by_name_label("NFS staging")[0]
        vm = _vm(x, "ubuntu-base")
        with pytest.raises(XenAPI.Failure) as e:
            x.VM.copy(vm, "staged", nfs)
        # a file SR takes sparse files without a check: the copy fails in sparse_dd when it is full
        assert e.value.details[0] == "VDI_COPY_FAILED" and "No space left on device" in e.value.details[1]
        # full but for the half copy that was removed: a retry fails the same way
        assert not x.VM.get_by_name_label("staged")
        with pytest.raises(XenAPI.Failure) as e:
            x.VM.copy(vm, "staged", nfs)
        assert e.value.details[0] == "VDI_COPY_FAILED"
        s.xenapi.session.logout()


def test_session_expiry_and_client_relogin(tmp_path):
    with Simulator("healthy", speed=360000, faults=["session-expiry=3"],
                   calls=tmp_path / "calls.jsonl") as sim:
        s, x = _x(sim)
        first = s._session
        for _ in range(5):
            assert x.VM.get_all()                 # the client logs in again by itself
        assert s._session != first
        with pytest.raises(Exception) as e:
            for _ in range(4):
                sim.dispatcher.call("VM.get_all", [first])
        assert e.value.description[0] == "SESSION_INVALID"
    log = (tmp_path / "calls.jsonl").read_text()
    assert log.count("SESSION_INVALID") >= 1 and log.count("session.login_with_password") >= 2


def test_restart_makes_the_server_go_away():
    with Simulator("healthy", speed=360000, faults=["restart=2"]) as sim:
        s, x = _x(sim)
        x.VM.set_name_label(_vm(x, "db"), "db")     # a change: the outage starts after it
        with pytest.raises((http.client.HTTPException, ConnectionError, OSError)):
            x.VM.get_all()                            # the old keep-alive connection drops
        refused = False
        deadline = time.monotonic() + 3
        while not refused and time.monotonic() < deadline:
            try:                                      # the socket goes, as during a restart
                socket.create_connection(("127.0.0.1", sim.port), timeout=1).close()
                time.sleep(0.02)
            except ConnectionRefusedError:
                refused = True
            except ConnectionResetError:                  # caught in the backlog as the socket closed
                time.sleep(0.02)
        assert refused
        deadline = time.monotonic() + 60                # back after the outage, however loaded the machine
        while True:
            try:
                s2, x2 = _x(sim)
                break
            except (http.client.HTTPException, OSError):  # refused, or reset while it comes back
                assert time.monotonic() < deadline, "the server did not come back"
                time.sleep(0.05)
        assert x2.VM.get_all()
        assert x2.VM.get_by_name_label("db")         # sessions and state survived


def test_gc_stuck_never_finishes(tmp_path):
    with Simulator("nfs-only", speed=1, faults=["gc-stuck"], smlog=tmp_path / "SMlog") as sim:
        with pytest.raises(TimeoutError):
            sim.run_gc("NFS VM store", max_seconds=6 * 3600)
        assert sim.gc.busy(sim.sr_ref("NFS VM store"))
    text = (tmp_path / "SMlog").read_text()
    assert "Running VHD coalesce on" in text and "GC process exiting" not in text


def test_vm_wont_stop():
    with Simulator("healthy", speed=360000, faults=["vm-wont-stop=app"]) as sim:
        s, x = _x(sim)
        app = _vm(x, "app")
        with pytest.raises(XenAPI.Failure) as e:
            x.VM.clean_shutdown(app)
        assert e.value.details[0] == "VM_SHUTDOWN_TIMEOUT"
        assert x.VM.get_power_state(app) == "Running"
        x.VM.hard_shutdown(app)
        assert x.VM.get_power_state(app) == "Halted"


def test_host_is_slave():
    with Simulator("healthy", speed=360000, faults=["host-is-slave"]) as sim:
        with pytest.raises(XenAPI.Failure) as e:
            XenAPI.Session(sim.url).xenapi.login_with_password("root", "simulator", "1.0", "t")
        assert e.value.details == ["HOST_IS_SLAVE", "192.0.2.11"]
    with Simulator("healthy", speed=1) as master, \
            Simulator("healthy", speed=1, faults=[f"host-is-slave=127.0.0.1:{master.port}"]) as member:
        with pytest.raises(XenAPI.Failure) as e:
            XenAPI.Session(member.url).xenapi.login_with_password("root", "simulator", "1.0", "t")
        address = e.value.details[1]
        s = XenAPI.Session(f"http://{address}/")
        s.xenapi.login_with_password("root", "simulator", "1.0", "t")   # the master answers
        assert s.xenapi.pool.get_all()


def test_faults_from_the_scenario():
    scenario = {"name": "f", "faults": ["vm-wont-stop", {"session-expiry": 50}]}
    with Simulator(scenario, speed=1) as sim:
        assert "vm-wont-stop" in sim.pool.faults and sim.pool.faults.session_expiry == 50
    assert Faults(["gc-stuck"]).active == {"gc-stuck": None}
