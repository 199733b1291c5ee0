"""What `runbook check-pool` reads (xapi/preflight_reads.py), from the simulator through the real client."""

import ast
import json
from pathlib import Path

import pytest

from runbook_lib.sim import Simulator
from runbook_lib.xapi import health, operations
from runbook_lib.xapi.connect import connect
from runbook_lib.xapi.inventory import FIELDS as INVENTORY_FIELDS
from runbook_lib.xapi.preflight_reads import (
    FIELDS,
    PROBE_FUNCTION,
    fetch_preflight,
    open_preflight,
    plugin_hosts,
    probe_plugin,
    suite_fields,
)
from tests.check_pools import PBD_SECRET, SMALL, THIN, THIN_BY_PBD, mixed_pool

OPERATIONS = Path(operations.__file__)
# string keys operations.py uses that are not record fields: its own dicts and map keys
NOT_FIELDS = {"free", "mac", "mtu", "start", "token", "leaf-coalesce", "disks"}  # our own keys, and a map key


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    with Simulator(mixed_pool()) as sim, _login(sim, tmp_path_factory.mktemp("pw")) as session:
        yield sim, fetch_preflight(session, source_url=sim.url)


def _login(sim, folder: Path):
    password = folder / "password"
    password.write_text(sim.password)
    return connect(sim.url, sim.user, password_env=None, password_file=password)


def test_suite_fields_hold_every_list_the_suite_reads_by():
    fields = suite_fields()
    for table in (INVENTORY_FIELDS, operations.RECORD_FIELDS, health.RECORD_FIELDS, FIELDS):
        for cls, names in table.items():
            assert set(names) <= set(fields[cls]), cls
    assert all(list(names) == sorted(set(names)) for names in fields.values())


def _string_keys(path: Path) -> set[str]:
    """Every "key" in rec.get("key") or rec["key"] in a module."""
    keys = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get" \
                and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            keys.add(node.args[0].value)
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) \
                and isinstance(node.slice.value, str):
            keys.add(node.slice.value)
    return keys


def test_operations_record_fields_name_every_field_operations_reads():
    """A field read in operations.py but missing from its RECORD_FIELDS would go unchecked."""
    listed = {name for names in operations.RECORD_FIELDS.values() for name in names}
    assert _string_keys(OPERATIONS) - NOT_FIELDS - listed == set()
    assert "network" in _string_keys(OPERATIONS) and "bogus" not in listed  # the scan sees keys


def test_the_mixed_pool_as_read(mixed):
    sim, reads = mixed
    hosts = reads.hosts.set_index("name")
    assert hosts.loc["xs01", ["api_major", "api_minor", "product_brand", "product_version"]].tolist() == \
        [2, 21, "XCP-ng", "8.3.0"]
    assert hosts.loc["xs02", "product_version"] == "8.2.1"
    uuid = {r["name_label"]: r["uuid"] for r in sim.state.tables["SR"].values()}
    # xs02's is named; xs01's is what an install sets: one of its own local SRs
    assert hosts.loc["xs02", "suspend_image_sr"] == uuid[THIN] and hosts.loc["xs01", "suspend_image_sr"] == uuid[SMALL]
    assert reads.pool == {"default_sr": uuid["NFS shared"], "suspend_image_sr": uuid[SMALL]}
    assert reads.pbd_allocation == {uuid[THIN_BY_PBD]: "thin"}
    vms = reads.vms.set_index("uuid")
    assert vms.loc["0c0c0c0c-0000-4000-8000-0000000000d1", "memory_static_max"] == 4 << 30
    assert reads.fields[reads.fields["missing"] > 0].empty and not reads.errors
    assert set(reads.fields["cls"]) == set(suite_fields())


def test_only_the_allocation_key_of_a_pbd_is_kept(mixed):
    _, reads = mixed
    kept = json.dumps({k: str(v) for k, v in vars(reads).items()}, default=str)
    kept += json.dumps(reads.inventory.to_json(), default=str)
    assert PBD_SECRET not in kept


def test_the_plugin_probe_answers(mixed, tmp_path):
    sim, reads = mixed
    present = dict(zip(reads.plugins["host"], reads.plugins["present"]))
    assert present == {"0c0c0c0c-0000-4000-8000-0000000000a1": True, "0c0c0c0c-0000-4000-8000-0000000000a2": False}
    answers = dict(zip(reads.plugins["host"], reads.plugins["answer"]))
    assert answers["0c0c0c0c-0000-4000-8000-0000000000a1"] == f"UNKNOWN_XENAPI_PLUGIN_FUNCTION {PROBE_FUNCTION}"
    assert answers["0c0c0c0c-0000-4000-8000-0000000000a2"] == "XENAPI_MISSING_PLUGIN coalesce-leaf"
    assert plugin_hosts(reads.inventory) == sorted(present)
    with _login(sim, tmp_path) as session:  # neither answer: say so, do not guess
        assert probe_plugin(session, "OpaqueRef:nothing-here") == (None, "HANDLE_INVALID host OpaqueRef:nothing-here")


def test_a_field_missing_from_the_records_is_counted(tmp_path):
    with Simulator("healthy") as sim:
        with sim.pool.lock:   # an xapi from before changed block tracking
            for rec in sim.state.tables["VDI"].values():
                rec.pop("cbt_enabled")
        with _login(sim, tmp_path) as session:
            reads = fetch_preflight(session)
    missing = reads.fields[reads.fields["missing"] > 0]
    assert missing[["cls", "field"]].values.tolist() == [["VDI", "cbt_enabled"]]
    assert missing["missing"].iloc[0] == missing["records"].iloc[0] == len(sim.state.tables["VDI"])


def test_open_preflight_on_the_embedded_simulator_logs_out(tmp_path):
    calls = tmp_path / "calls.jsonl"
    reads = open_preflight("sim:nfs-only", sim_options={"calls": str(calls)})
    methods = [json.loads(line)["method"] for line in calls.read_text().splitlines()]
    assert methods[0] == "session.login_with_password" and methods[-1] == "session.logout"
    assert reads.inventory.source == {"url": "sim:nfs-only", "kind": "simulator"}
