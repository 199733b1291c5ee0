"""Sessions, events and the calls log: what clients rely on to wait and to prove a dry run."""

import json
import re
import threading
import time

import pytest
import XenAPI

from runbook_lib.sim import Simulator


@pytest.fixture
def sim(tmp_path):
    with Simulator("healthy", speed=360000, calls=tmp_path / "calls.jsonl") as s:
        yield s


def _login(sim):
    s = XenAPI.Session(sim.url)
    s.xenapi.login_with_password(sim.user, sim.password, "1.0", "tests")
    return s


def _event_from(x, classes, token, timeout):
    return getattr(x.event, "from")(classes, token, timeout)


def test_logout_invalidates_the_session(sim):
    s = _login(sim)
    ref = s._session
    s.xenapi.session.logout()
    assert sim.dispatcher.call("session.login_with_password", ["root", "simulator"])
    with pytest.raises(Exception) as e:
        sim.dispatcher.call("VM.get_all", [ref])
    assert e.value.description == ["SESSION_INVALID", ref]


def test_event_from_initial_state_then_add_mod_del(sim):
    s = _login(sim)
    x = s.xenapi
    first = _event_from(x, ["vm", "vdi"], "", 0.0)
    assert {e["operation"] for e in first["events"]} == {"add"}
    assert first["valid_ref_counts"]["vm"] == len(x.VM.get_all())
    assert first["valid_ref_counts"]["vdi"] == len(x.VDI.get_all())
    token = first["token"]
    # nothing happens: the call returns after its timeout with no events
    start = time.monotonic()
    quiet = _event_from(x, ["vm"], token, 0.3)
    assert quiet["events"] == [] and time.monotonic() - start >= 0.25
    db = x.VM.get_by_name_label("db")[0]

    def later():
        time.sleep(0.2)
        other = _login(sim)
        other.xenapi.VM.set_name_label(db, "db renamed")
        other.xenapi.session.logout()

    t = threading.Thread(target=later)
    t.start()
    out = _event_from(x, ["vm"], quiet["token"], 10.0)
    t.join()
    mods = [e for e in out["events"] if e["ref"] == db]
    assert mods and mods[-1]["operation"] == "mod"
    assert mods[-1]["snapshot"]["name_label"] == "db renamed"
    clone = x.VM.clone(db, "db clone")
    out = _event_from(x, ["vm"], out["token"], 5.0)
    assert any(e["ref"] == clone and e["operation"] == "add" for e in out["events"])
    x.VM.destroy(clone)
    out = _event_from(x, ["vm"], out["token"], 5.0)
    assert any(e["ref"] == clone and e["operation"] == "del" for e in out["events"])
    assert out["valid_ref_counts"]["vm"] == len(x.VM.get_all())
    s.xenapi.session.logout()


def test_event_inject_wakes_a_waiter(sim):
    x = _login(sim).xenapi
    token = _event_from(x, ["sr"], "", 0.0)["token"]
    sr = x.SR.get_all()[0]
    injected = x.event.inject("sr", sr)
    # xapi's inject answers the token before its own change: event.from with it reports the object
    assert re.fullmatch(r"\d{20},\d{20}", injected)
    out = _event_from(x, ["sr"], injected, 5.0)
    assert [e["operation"] for e in out["events"] if e["ref"] == sr] == ["mod"]
    out = _event_from(x, ["sr"], token, 5.0)
    assert sr in [e["ref"] for e in out["events"]]
    with pytest.raises(XenAPI.Failure) as e:
        _event_from(x, ["nosuchclass"], token, 0.1)
    assert e.value.details[0] == "EVENT_SUBSCRIPTION_PARSE_FAILURE"


def test_calls_log_shows_a_read_only_session(sim, tmp_path):
    s = _login(sim)
    x = s.xenapi
    x.VM.get_all_records()
    x.SR.get_all_records()
    s.xenapi.session.logout()
    entries = [json.loads(line) for line in (tmp_path / "calls.jsonl").read_text().splitlines()]
    methods = [e["method"] for e in entries]
    assert methods == ["session.login_with_password", "VM.get_all_records", "SR.get_all_records",
                       "session.logout"]
    assert entries[0]["args"][1] == "********"
    assert all(e["args"][0] == "<session>" for e in entries[1:])
    assert all("result" in e for e in entries)
    mutating = {m for m, spec in sim.dispatcher.methods.items() if spec[3]}
    assert not set(methods) & mutating and "VM.copy" in mutating


def test_wrong_credentials_and_arity_in_calls_log(sim, tmp_path):
    with pytest.raises(XenAPI.Failure):
        XenAPI.Session(sim.url).xenapi.login_with_password("admin", "simulator", "1.0", "t")
    entries = [json.loads(line) for line in (tmp_path / "calls.jsonl").read_text().splitlines()]
    assert entries[-1]["error"] == ["SESSION_AUTHENTICATION_FAILED", "admin",
                                    "Authentication failure"]
    assert "simulator" not in (tmp_path / "calls.jsonl").read_text()


def test_long_calls_work_without_the_server():
    """In-process use: a blocking call drives the simulated clock itself."""
    sim = Simulator("healthy", speed=1)
    d = sim.dispatcher
    session = d.call("session.login_with_password", ["root", "simulator"])
    app = d.call("VM.get_by_name_label", [session, "app"])[0]
    before = sim.now
    assert d.call("VM.clean_shutdown", [session, app]) == ""
    assert d.call("VM.get_power_state", [session, app]) == "Halted"
    assert sim.now - before >= 30          # a clean shutdown takes 30 simulated seconds


def test_event_from_speaks_xapis_tokens_and_event_fields(sim):
    """Tokens are two comma-separated 20-digit numbers (anything else: EVENT_FROM_TOKEN_PARSE_FAILURE);
    events carry the generation as id and "0.0" as timestamp; adds come before mods before dels,
    a del has no snapshot, and an object made and removed since the token is not reported."""
    x = _login(sim).xenapi
    first = _event_from(x, ["vm"], "", 0.0)
    assert re.fullmatch(r"\d{20},\d{20}", first["token"])
    assert all(e["timestamp"] == "0.0" and re.fullmatch(r"\d+", e["id"]) and int(e["id"]) > 0
               for e in first["events"])
    assert set(first["valid_ref_counts"]) >= {"vm", "vdi", "sr", "task", "pool"}   # every class, as xapi counts
    for bad in ("12", "00000000000000000001,", "a,b", "1,2,3"):
        with pytest.raises(XenAPI.Failure) as e:
            _event_from(x, ["vm"], bad, 0.0)
        assert e.value.details == ["EVENT_FROM_TOKEN_PARSE_FAILURE", bad]
    db = x.VM.get_by_name_label("db")[0]
    app = x.VM.get_by_name_label("app")[0]
    gone = x.VM.clone(db, "made and removed")
    x.VM.destroy(gone)
    clone = x.VM.clone(db, "db clone")
    x.VM.set_name_label(app, "app renamed")
    out = _event_from(x, ["vm"], first["token"], 5.0)
    ops = [(e["operation"], e["ref"]) for e in out["events"]]
    assert ("add", clone) in ops and ("mod", app) in ops and all(ref != gone for _, ref in ops)
    assert [op for op, _ in ops] == sorted((op for op, _ in ops), key=["add", "mod", "del"].index)
    x.VM.destroy(clone)
    out = _event_from(x, ["vm"], out["token"], 5.0)
    (deleted,) = [e for e in out["events"] if e["ref"] == clone]
    assert deleted["operation"] == "del" and "snapshot" not in deleted
    current = x.event.get_current_id()
    assert re.fullmatch(r"\d+", current) and int(current) >= int(out["token"].split(",")[0])  # an int64
    quiet = _event_from(x, ["sr"], out["token"], 0.2)
    assert quiet["events"] == [] and quiet["token"] == out["token"]   # nothing for the classes: the same token
