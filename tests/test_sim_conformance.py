"""The simulator against the real datamodel (tests/data/xapi_datamodel.json, read from xapi's
sources by tools/xapi_datamodel.py): every class returns the complete record with the right
wire types over XML-RPC and JSON-RPC, and every error the simulator raises exists in xapi with
the number of parameters xapi gives it."""

from __future__ import annotations

import ast
import json
import re
import urllib.request
import xmlrpc.client
from pathlib import Path

import pytest
import XenAPI

from runbook_lib.sim import Simulator
from tests.conftest import ROOT

DATAMODEL = json.loads((ROOT / "tests" / "data" / "xapi_datamodel.json").read_text())
CLASSES = list(DATAMODEL["classes"])
ENUMS = DATAMODEL["enums"]
ERRORS = DATAMODEL["errors"]
SIM_SOURCES = sorted((ROOT / "runbook_lib" / "sim").rglob("*.py"))
JSON_DATE = re.compile(r"^\d{8}T\d{2}:\d{2}:\d{2}Z$")


# -- wire types ----------------------------------------------------------------------------------
def _split_map(wire: str) -> tuple[str, str]:
    inner = wire[1:wire.rindex(")")]
    depth = 0
    for i in range(len(inner) - 3):
        depth += inner[i] == "("
        depth -= inner[i] == ")"
        if depth == 0 and inner[i:i + 4] == " -> ":
            return inner[:i], inner[i + 4:]
    raise ValueError(wire)


def _scalar_ok(wire: str, value, protocol: str) -> bool:
    if wire == "int":   # int64: a decimal string over XML-RPC, a number over JSON-RPC
        return (isinstance(value, str) and re.fullmatch(r"-?\d+", value) is not None) if protocol == "xml" \
            else isinstance(value, int) and not isinstance(value, bool)
    if wire == "float":
        return isinstance(value, float)
    if wire == "bool":
        return isinstance(value, bool)
    if wire == "string":
        return isinstance(value, str)
    if wire == "datetime":
        return isinstance(value, xmlrpc.client.DateTime) if protocol == "xml" \
            else isinstance(value, str) and JSON_DATE.match(value) is not None
    if wire.endswith(" ref"):
        return isinstance(value, str) and value.startswith("OpaqueRef:")
    if wire.startswith("enum "):
        return isinstance(value, str) and value in ENUMS[wire[5:]]
    raise ValueError(f"unknown wire type {wire!r}")


def wire_errors(wire: str, value, protocol: str, where: str) -> list[str]:
    """What is wrong with `value` as the datamodel type `wire` sent over `protocol` ("xml", "json")."""
    if wire.endswith(" set"):
        if not isinstance(value, list):
            return [f"{where}: {type(value).__name__}, not a set (array)"]
        return [e for i, v in enumerate(value) for e in wire_errors(wire[:-4], v, protocol, f"{where}[{i}]")]
    if wire.endswith(" map"):
        if not isinstance(value, dict):
            return [f"{where}: {type(value).__name__}, not a map (struct)"]
        key_type, value_type = _split_map(wire)
        out = []
        for k, v in value.items():
            if not isinstance(k, str):   # XML-RPC struct and JSON object keys are strings
                out.append(f"{where}: key {k!r} is not a string")
            elif key_type in ("int",) and not re.fullmatch(r"-?\d+", k) or key_type.endswith(" ref") \
                    and not k.startswith("OpaqueRef:"):
                out.append(f"{where}: key {k!r} is not a {key_type}")
            out += wire_errors(value_type, v, protocol, f"{where}[{k!r}]")
        return out
    return [] if _scalar_ok(wire, value, protocol) else [f"{where}: {value!r} is not a {wire}"]


def record_errors(cls: str, record: dict, protocol: str) -> list[str]:
    fields = DATAMODEL["classes"][cls]["fields"]
    out = [f"{cls}.{name}: missing" for name in fields if name not in record]
    out += [f"{cls}.{name}: not a field of the real {cls}" for name in record if name not in fields]
    for name, value in record.items():
        if name in fields:
            out += wire_errors(fields[name]["type"], value, protocol, f"{cls}.{name}")
    return out


def test_the_checker_finds_what_is_wrong():
    """The checks below can fail: a missing, an extra and each kind of mistyped field is found."""
    fields = DATAMODEL["classes"]["VBD"]["fields"]
    good = {name: _sample(f["type"]) for name, f in fields.items()}
    assert record_errors("VBD", good, "xml") == []
    bad = dict(good, userdevice=0, currently_attached="true", mode="rw", VM="vm-1", other_config=[],
               allowed_operations=["attach", "fly"], status_code=3, surplus="x")
    del bad["uuid"]
    found = record_errors("VBD", bad, "xml")
    for name in ("uuid", "surplus", "userdevice", "currently_attached", "mode", "VM", "other_config",
                 "allowed_operations[1]", "status_code"):
        assert any(f"VBD.{name}" in e for e in found), name
    assert any("status_code" in e for e in record_errors("VBD", dict(good, status_code="3"), "json"))


def _sample(wire: str):
    if wire.endswith(" set"):
        return []
    if wire.endswith(" map"):
        return {}
    return {"int": "0", "float": 0.0, "bool": False, "string": "",
            "datetime": xmlrpc.client.DateTime("19700101T00:00:00")}.get(
        wire, "OpaqueRef:NULL" if wire.endswith(" ref") else ENUMS.get(wire[5:], [""])[0])


# -- records over both protocols -----------------------------------------------------------------
@pytest.fixture(scope="module")
def served():
    with Simulator("seed-stuck-leaf-coalesce", speed=3600) as sim:
        s = XenAPI.Session(sim.url)
        s.xenapi.login_with_password(sim.user, sim.password, "1.0", "conformance")
        x = s.xenapi
        # objects the seed has none of at rest: a task and a message
        x.task.create("conformance", "a task of every field")
        vm = next(r for r, v in x.VM.get_all_records().items() if not v["is_control_domain"])
        x.message.create("CONFORMANCE", "3", "VM", x.VM.get_uuid(vm), "a message of every field")
        yield sim, s
        s.xenapi.session.logout()


def _jsonrpc(sim, method, params):
    body = json.dumps({"jsonrpc": "2.0", "method": method, "params": params, "id": 1}).encode()
    req = urllib.request.Request(sim.url + "jsonrpc", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:  # noqa: S310 - loopback simulator
        return json.loads(r.read())


@pytest.mark.parametrize("cls", CLASSES)
def test_every_record_is_complete_and_typed_over_xmlrpc(served, cls):
    sim, s = served
    api = getattr(s.xenapi, cls)
    records = api.get_all_records()
    assert records, f"the seed scenario has no {cls}"
    problems = [e for rec in records.values() for e in record_errors(cls, rec, "xml")]
    ref = next(iter(records))
    problems += record_errors(cls, api.get_record(ref), "xml")
    assert problems == []


@pytest.mark.parametrize("cls", CLASSES)
def test_every_record_is_complete_and_typed_over_jsonrpc(served, cls):
    sim, s = served
    records = _jsonrpc(sim, f"{cls}.get_all_records", [s._session])["result"]
    assert records
    problems = [e for rec in records.values() for e in record_errors(cls, rec, "json")]
    ref = next(iter(records))
    problems += record_errors(cls, _jsonrpc(sim, f"{cls}.get_record", [s._session, ref])["result"], "json")
    assert problems == []


def test_every_field_has_its_getter(served):
    sim, s = served
    methods = set(s.xenapi.system.listMethods())
    missing = [f"{cls}.get_{name}" for cls in CLASSES for name in DATAMODEL["classes"][cls]["fields"]
               if f"{cls}.get_{name}" not in methods]
    assert missing == []


# -- errors ----------------------------------------------------------------------------------------
def raised_errors(paths) -> list[tuple[str, int, str]]:
    """(code, number of parameters, where) of every ApiFailure(...) built in these sources; a code
    that is not a literal comes back as ("?", -1, where) so that it cannot slip through."""
    out = []
    for path in paths:
        tree = ast.parse(Path(path).read_text(), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
            if name != "ApiFailure" or not node.args:
                continue
            where = f"{Path(path).name}:{node.lineno}"
            code = node.args[0]
            if not isinstance(code, ast.Constant) or not isinstance(code.value, str) \
                    or any(isinstance(a, ast.Starred) for a in node.args):
                out.append(("?", -1, where))
            else:
                out.append((code.value, len(node.args) - 1, where))
    return out


def expected_params(code: str) -> int | None:
    """The number of parameters xapi gives this error, None if xapi has no such error."""
    backend = re.fullmatch(r"SR_BACKEND_FAILURE_(\d+)", code)
    if backend:
        known = DATAMODEL["sm_backend_failure"]
        return len(known["params"]) if backend.group(1) in known["codes"] else None
    entry = ERRORS.get(code)
    if entry is None:
        return None
    return len(entry.get("raised", entry["params"]))


def test_every_error_the_simulator_raises_is_xapis_with_its_parameters():
    found = raised_errors(SIM_SOURCES)
    assert len(found) > 30 and {"HANDLE_INVALID", "VM_BAD_POWER_STATE", "SR_BACKEND_FAILURE_44"} <= {
        code for code, _, _ in found}
    wrong = [f"{where}: {code} with {n} parameters (xapi: {expected_params(code)})"
             for code, n, where in found if expected_params(code) != n]
    assert wrong == []


def test_the_error_check_can_fail(tmp_path):
    src = tmp_path / "bad.py"
    src.write_text("from x import ApiFailure\n"
                   "a = ApiFailure('VDI_LOCATION_EXISTS', 'sr')\n"            # not an xapi error
                   "b = ApiFailure('HANDLE_INVALID', 'VM')\n"                 # one parameter short
                   "c = ApiFailure('SR_BACKEND_FAILURE_78', '', 'VDI Invalid size', '')\n"
                   "d = ApiFailure(code, 'x')\n")                             # not a literal
    found = raised_errors([src])
    assert [(code, n) for code, n, _ in found] == [("VDI_LOCATION_EXISTS", 1), ("HANDLE_INVALID", 1),
                                                   ("SR_BACKEND_FAILURE_78", 3), ("?", -1)]
    assert [expected_params(code) == n for code, n, _ in found] == [False, False, True, False]
    assert expected_params("SR_BACKEND_FAILURE_4242") is None


def test_the_data_file_names_its_source():
    source = DATAMODEL["source"]
    assert re.fullmatch(r"[0-9a-f]{40}", source["commit"]) and source["repository"] == "xapi-project/xen-api"
    assert re.fullmatch(r"[0-9a-f]{40}", source["sm"]["commit"])
    assert DATAMODEL["sm_backend_failure"]["codes"]["79"] == "VDI Invalid size"
