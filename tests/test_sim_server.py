"""The simulator speaks XenAPI as xapi does: the official client works unchanged, and raw
XML-RPC / JSON-RPC requests show the envelope and the encoding."""

import json
import urllib.request

import pytest
import XenAPI

from runbook_lib.errors import UsageError
from runbook_lib.sim import Simulator

SEED_SR = "db4c3909-4b61-e5f6-8548-16dc56780f61"


@pytest.fixture
def sim(tmp_path):
    with Simulator("seed-stuck-leaf-coalesce", smlog=tmp_path / "SMlog",
                   calls=tmp_path / "calls.jsonl", speed=36000) as s:
        yield s


@pytest.fixture
def session(sim):
    s = XenAPI.Session(sim.url)
    s.xenapi.login_with_password(sim.user, sim.password, "1.0", "tests")
    yield s
    s.xenapi.session.logout()


def _post(url, body, ctype):
    req = urllib.request.Request(url, data=body, headers={"Content-Type": ctype})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.read().decode()


def test_official_client_lists_the_seed_pool(session):
    x = session.xenapi
    srs = x.SR.get_all_records()
    by_uuid = {rec["uuid"]: rec for rec in srs.values()}
    sata = by_uuid[SEED_SR]
    assert sata["name_label"] == "Local SATA Storage" and sata["type"] == "lvm"
    # int64 fields arrive as decimal strings, as from a real pool
    assert isinstance(sata["physical_size"], str)
    free = int(sata["physical_size"]) - int(sata["physical_utilisation"])
    assert 0 < free < 64 * 2**20
    vdis = x.VDI.get_all_records()
    leaf = [r for r in vdis.values() if r["uuid"].startswith("67558d6a")][0]
    assert leaf["virtual_size"] == str(2020 * 2**30)
    assert leaf["physical_utilisation"] == "2173203120128"   # inflated: lvhd_lv_size(2020 GiB)
    parent = [r for r in vdis.values() if r["uuid"] == leaf["sm_config"]["vhd-parent"]][0]
    assert parent["managed"] is False
    vms = x.VM.get_all_records()
    names = {r["name_label"]: r for r in vms.values() if not r["is_control_domain"]}
    assert names["fileserver"]["power_state"] == "Running"
    assert any(r["is_control_domain"] for r in vms.values())
    assert x.VM.get_by_uuid(names["fileserver"]["uuid"]) in vms
    assert x.SR.get_by_name_label("NFS staging")
    assert x.VDI.get_virtual_size(x.VDI.get_by_uuid(leaf["uuid"])) == str(2020 * 2**30)
    assert len(x.SR.get_VDIs(x.SR.get_by_uuid(SEED_SR))) == 5


def test_real_error_codes(sim, session):
    x = session.xenapi
    with pytest.raises(XenAPI.Failure) as e:
        x.VM.get_record("OpaqueRef:00000000-0000-0000-0000-000000000000")
    assert e.value.details[0] == "HANDLE_INVALID"
    with pytest.raises(XenAPI.Failure) as e:
        x.VM.get_by_uuid("not-a-uuid")
    assert e.value.details == ["UUID_INVALID", "VM", "not-a-uuid"]
    with pytest.raises(XenAPI.Failure) as e:
        x.VM.no_such_method()
    assert e.value.details == ["MESSAGE_METHOD_UNKNOWN", "VM.no_such_method"]
    with pytest.raises(XenAPI.Failure) as e:
        x.VM.get_record()
    assert e.value.details == ["MESSAGE_PARAMETER_COUNT_MISMATCH", "VM.get_record", "2", "1"]
    bad = XenAPI.Session(sim.url)
    with pytest.raises(XenAPI.Failure) as e:
        bad.xenapi.login_with_password("root", "wrong", "1.0", "tests")
    assert e.value.details[0] == "SESSION_AUTHENTICATION_FAILED"


def test_raw_xmlrpc_wire_format(sim):
    body = ("<?xml version='1.0'?><methodCall><methodName>session.login_with_password"
            "</methodName><params><param><value>root</value></param><param><value>simulator"
            "</value></param></params></methodCall>")
    text = _post(sim.url, body.encode(), "text/xml")
    assert "<name>Status</name><value>Success</value>" in text
    ref = text.split("<name>Value</name><value>")[1].split("<")[0]
    assert ref.startswith("OpaqueRef:")
    call = ("<?xml version='1.0'?><methodCall><methodName>SR.get_all_records</methodName>"
            f"<params><param><value>{ref}</value></param></params></methodCall>")
    text = _post(sim.url + "xmlrpc", call.encode(), "text/xml")
    assert "<name>physical_size</name><value>" in text and "<int>" not in text
    assert "<i4>" not in text
    call = ("<?xml version='1.0'?><methodCall><methodName>VDI.get_all_records</methodName>"
            f"<params><param><value>{ref}</value></param></params></methodCall>")
    text = _post(sim.url, call.encode(), "text/xml")
    assert "<dateTime.iso8601>19700101T00:00:00Z</dateTime.iso8601>" in text
    assert "<boolean>0</boolean>" in text
    bad = ("<?xml version='1.0'?><methodCall><methodName>VM.get_all</methodName>"
           "<params><param><value>OpaqueRef:nope</value></param></params></methodCall>")
    text = _post(sim.url, bad.encode(), "text/xml")
    assert "<name>Status</name><value>Failure</value>" in text
    assert "<value>SESSION_INVALID</value>" in text


def test_raw_jsonrpc_wire_format(sim):
    url = sim.url + "jsonrpc"
    login = {"jsonrpc": "2.0", "method": "session.login_with_password",
             "params": ["root", "simulator", "1.0", "tests"], "id": 1}
    out = json.loads(_post(url, json.dumps(login).encode(), "application/json"))
    assert out["jsonrpc"] == "2.0" and out["id"] == 1
    ref = out["result"]
    call = {"jsonrpc": "2.0", "method": "SR.get_all_records", "params": [ref], "id": 2}
    out = json.loads(_post(url, json.dumps(call).encode(), "application/json"))
    sizes = [r["physical_size"] for r in out["result"].values()]
    assert all(isinstance(s, int) for s in sizes)       # JSON-RPC: ints as numbers
    bad = {"jsonrpc": "2.0", "method": "session.login_with_password",
           "params": ["root", "nope"], "id": 3}
    out = json.loads(_post(url, json.dumps(bad).encode(), "application/json"))
    assert out["error"]["code"] == 1
    assert out["error"]["message"] == "SESSION_AUTHENTICATION_FAILED"
    assert out["error"]["data"][0] == "root"
    methods = json.loads(_post(url, json.dumps({"jsonrpc": "2.0", "method": "system.listMethods",
                                                "params": [], "id": 4}).encode(),
                               "application/json"))["result"]
    assert "VM.copy" in methods and "Async.VM.copy" in methods and "event.from" in methods


def test_non_loopback_bind_refused():
    with pytest.raises(UsageError):
        Simulator("healthy", host="0.0.0.0")
    with pytest.raises(UsageError):
        Simulator("healthy", host="192.0.2.1")


def test_password_never_logged(tmp_path, monkeypatch):
    calls = tmp_path / "calls.jsonl"
    smlog = tmp_path / "SMlog"
    secret = "s3cret-Pw-For-Test"
    with Simulator("seed-stuck-leaf-coalesce", calls=calls, smlog=smlog, password=secret,
                   speed=36000) as sim:
        s = XenAPI.Session(sim.url)
        s.xenapi.login_with_password("root", secret, "1.0", "tests")
        session_ref = s._session
        s.xenapi.PBD.get_all_records()
        with pytest.raises(XenAPI.Failure):
            XenAPI.Session(sim.url).xenapi.login_with_password("root", "simulator", "1.0", "t")
        sim.run_gc(SEED_SR)
        s.xenapi.session.logout()
    text = calls.read_text()
    assert "session.login_with_password" in text and "PBD.get_all_records" in text
    assert secret not in text and session_ref not in text
    assert secret not in smlog.read_text()
    lines = [json.loads(line) for line in text.splitlines()]
    assert any(entry.get("error", [""])[0] == "SESSION_AUTHENTICATION_FAILED" for entry in lines)


def test_jsonrpc_event_from_all_classes(sim):
    url = sim.url + "jsonrpc"
    call = lambda method, params: json.loads(_post(  # noqa: E731
        url, json.dumps({"jsonrpc": "2.0", "method": method, "params": params, "id": 7}).encode(),
        "application/json"))
    session = call("session.login_with_password", ["root", "simulator"])["result"]
    out = call("event.from", [session, ["*"], "", 1.0])["result"]
    counts = out["valid_ref_counts"]
    assert counts["vdi"] == 5 and counts["sr"] == 3 and isinstance(counts["vm"], int)
    assert {e["class"] for e in out["events"]} >= {"vm", "vdi", "sr", "host", "pool"}
    assert all(e["operation"] == "add" for e in out["events"])
    sr = next(e["ref"] for e in out["events"] if e["class"] == "sr")
    call("event.inject", [session, "sr", sr])
    later = call("event.from", [session, ["*"], out["token"], 5.0])["result"]
    assert sr in [e["ref"] for e in later["events"] if e["operation"] == "mod"]
    assert later["token"] > out["token"]


def test_background_errors_are_logged_not_dropped(tmp_path, caplog, monkeypatch):
    """A failing timed step is logged with its traceback once, its repeats at DEBUG (none is
    dropped); a crashed GC process is logged even without an SMlog to write it to."""
    import logging
    import time

    caplog.set_level(logging.DEBUG, logger="runbook_lib.sim")
    with Simulator("seed-stuck-leaf-coalesce", speed=36000) as sim:
        def boom():
            raise RuntimeError("tick broke")

        monkeypatch.setattr(sim.pool, "tick", boom)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and sum("tick broke" in r.getMessage() for r in caplog.records) < 3:
            time.sleep(0.02)
        monkeypatch.undo()

        def crash(g):
            raise ValueError("gc broke")
            yield 1.0

        sr_ref = sim.sr_ref(SEED_SR)
        monkeypatch.setattr(sim.gc, "_run", crash)
        sim.gc.srs[sr_ref].running = False
        sim.gc.kick(sr_ref)
        sim.pool.clock.advance(1.0)
    ticks = [r for r in caplog.records if "tick broke" in r.getMessage()]
    assert ticks[0].levelno == logging.ERROR and ticks[0].exc_info
    assert len(ticks) >= 3 and all(r.levelno == logging.DEBUG for r in ticks[1:])
    gc = [r for r in caplog.records if "gc broke" in r.getMessage()]
    assert gc and all(r.levelno == logging.ERROR and r.name == "runbook_lib.sim.gc" for r in gc)
    assert any(SEED_SR in r.getMessage() for r in gc)


def test_jsonrpc_1_0_requests_get_1_0_replies(sim):
    """A request without "jsonrpc" is JSON-RPC 1.0: xapi answers result, error (null or the
    ErrorDescription array) and id, with no "jsonrpc" member."""
    url = sim.url + "jsonrpc"

    def call(method, params, rid):
        body = json.dumps({"method": method, "params": params, "id": rid}).encode()
        return json.loads(_post(url, body, "application/json"))

    login = call("session.login_with_password", ["root", "simulator"], "a")
    assert set(login) == {"result", "error", "id"} and login["error"] is None and login["id"] == "a"
    out = call("VM.get_by_uuid", [login["result"], "no-such-uuid"], 7)
    assert out == {"result": None, "error": ["UUID_INVALID", "VM", "no-such-uuid"], "id": 7}
    listed = call("system.listMethods", [login["result"]], 8)    # xapi ignores listMethods' parameters
    assert "VM.copy" in listed["result"]
    malformed = json.loads(_post(url, json.dumps({"method": "VM.get_all", "jsonrpc": "1.0",
                                                  "params": [], "id": 9}).encode(), "application/json"))
    assert malformed["error"]["code"] == -32700
