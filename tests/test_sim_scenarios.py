"""Shipped scenarios load with their documented shape; scenario files are checked."""

import pytest
import XenAPI
import yaml

from runbook_lib.errors import InputError
from runbook_lib.sim import Simulator
from runbook_lib.sim.scenarios import list_scenarios, load_scenario, rate, size


def test_shipped_scenarios():
    assert list_scenarios() == ["ha-enabled", "healthy", "large-pool", "nfs-old-sm", "nfs-only",
                                "seed-stuck-leaf-coalesce", "xcp-ng-8.3", "xenserver-8"]
    for name in list_scenarios():
        data = load_scenario(name)
        assert data["name"] == name and data["description"]


def test_seed_shape():
    sim = Simulator("seed-stuck-leaf-coalesce")
    st, storage = sim.state, sim.storage
    sr = st.ref_by_uuid("SR", "db4c3909-4b61-e5f6-8548-16dc56780f61")
    assert st.get("SR", sr)["name_label"] == "Local SATA Storage"
    vdis = st.children("VDI", "SR", sr)
    roots = [r for r in vdis if storage.vhds[r].parent is None]
    assert (len(vdis), len(roots)) == (5, 4)          # "5 VDIs in 4 VHD trees"
    leaf = next(r for r in vdis if st.get("VDI", r)["uuid"].startswith("67558d6a"))
    assert storage.vhds[leaf].virtual == 2020 * 2**30 and storage.vhds[leaf].attached
    assert storage.free(sr) < 64 * 2**20
    nfs = st.ref_by_uuid("SR", "7b1e5c9a-2d84-4f3b-8a6e-0c9d2f4b7e61")
    assert storage.free(nfs) > storage.union_blocks(leaf) * 2 * 2**20
    # fixed uuids: a second load gives the same ones
    again = Simulator("seed-stuck-leaf-coalesce").state
    assert set(again.by_uuid["VDI"]) == set(st.by_uuid["VDI"])


def test_large_pool_counts():
    sim = Simulator("large-pool")
    st = sim.state
    assert len(st.tables["host"]) == 2 and len(st.tables["SR"]) == 20
    assert len(st.tables["VDI"]) == 3000
    assert sum(not r["is_control_domain"] for r in st.tables["VM"].values()) == 500
    assert max(len(sim.storage.chain(r)) for r in sim.storage.vhds) == 30
    assert set(Simulator("large-pool").state.by_uuid["VDI"]) == set(st.by_uuid["VDI"])


def test_sizes_and_rates():
    assert size("2020G") == 2020 * 2**30 and size("1.5 TiB") == int(1.5 * 2**40)
    assert size(4096) == 4096 and size("512MiB") == 512 * 2**20
    assert rate("20M/h") == 20 * 2**20 / 3600 and rate("5M") == 5 * 2**20
    with pytest.raises(InputError):
        size("lots")


def test_bad_scenarios(tmp_path):
    with pytest.raises(InputError):
        load_scenario("no-such-scenario")
    with pytest.raises(InputError):
        load_scenario(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- just\n- a list\n")
    with pytest.raises(InputError):
        load_scenario(bad)
    loop = {"srs": [{"uuid": "s", "name_label": "s", "type": "ext"}],
            "vdis": [{"uuid": "a", "sr": "s", "parent": "b"}, {"uuid": "b", "sr": "s", "parent": "a"}]}
    with pytest.raises(InputError):
        Simulator(loop)
    unknown_sr = {"vdis": [{"uuid": "a", "sr": "nowhere"}]}
    with pytest.raises(InputError):
        Simulator(unknown_sr)
    for broken in ({"srs": [{"name_label": "x", "type": "ext", "physical_size": "lots"}]},
                   {"srs": [{"uuid": "s", "type": "ext"}], "vdis": [{"sr": "s"}]},
                   {"hosts": ["not a mapping"]},
                   {"vms": [{"name_label": "v", "vbds": [{"vdi": "missing"}]}]}):
        with pytest.raises(InputError):
            Simulator(broken)


def test_scenario_file_round_trip(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(load_scenario("nfs-only")))
    sim = Simulator(path)
    assert sim.scenario_name == "nfs-only"
    assert len(sim.state.tables["VDI"]) == 5


@pytest.mark.parametrize("content,why", [
    (b'{"schema": "runbook.plan/1", "created": "2026-11-25T08:00:00Z", "steps": []}',
     "it is a runbook.plan/1 file, not a pool (a scenario lists srs:, vdis: and vms:; see docs/simulator.md)"),
    (b'{"schema": "runbook.inventory/1", "records": {}}',
     "it is a runbook.inventory/1 file (turn it into one with: runbook sim snapshot --inventory {p} "
     "--out SCENARIO.yaml)"),
    (b"{}", "no 'srs' list (a scenario lists srs:, vdis: and vms:; see docs/simulator.md)"),
    (b"", "it is empty (a scenario lists srs:, vdis: and vms:; see docs/simulator.md)"),
    (b"[1, 2]", "it holds a list, not a mapping (a scenario lists srs:, vdis: and vms:; see docs/simulator.md)"),
    (b"srs: []\n", "its 'srs' list is empty (a scenario lists srs:, vdis: and vms:; see docs/simulator.md)"),
    (b"srs: 3\n", "'srs' is a number, not a list (a scenario lists srs:, vdis: and vms:; see docs/simulator.md)"),
    (b"srs: [{name_label: x}]\n",
     "srs[0] has no 'uuid' (each SR needs a uuid, each VDI a uuid and an sr; see docs/simulator.md)"),
    (b"srs: [{uuid: s}]\nvdis: [{uuid: a}]\n",
     "vdis[0] has no 'sr' (each SR needs a uuid, each VDI a uuid and an sr; see docs/simulator.md)"),
    (b"srs: [{uuid: s}]\nvms: [fileserver]\n",
     "vms[0] is a string, not a mapping (a scenario lists srs:, vdis: and vms:; see docs/simulator.md)"),
    (b"srs: [{uuid: s}]\nclock: now\n",
     "'clock' is a string, not a mapping (a scenario lists srs:, vdis: and vms:; see docs/simulator.md)"),
    (b"generate: 500\n", "'generate' is not a mapping of counts (e.g. generate: {hosts: 2, srs: 20, vms: 500})"),
])
def test_a_file_that_is_not_a_scenario_is_refused_in_one_line(tmp_path, content, why):
    """It used to serve an empty pool (a plan, {}) or fail on its first use."""
    path = tmp_path / "thing.json"
    path.write_bytes(content)
    with pytest.raises(InputError) as err:
        load_scenario(path)
    assert str(err.value) == f"{path} is not a simulator scenario: {why.replace('{p}', str(path))}"


def test_a_scenario_file_must_be_text_and_a_file(tmp_path):
    import os

    binary = tmp_path / "scenario.yaml"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path, message in ((binary,
                           f"scenario file {binary} is not YAML/JSON text: it holds NUL bytes (a binary file?)"),
                          (tmp_path, f"scenario file {tmp_path} is a directory"),
                          (fifo, f"scenario file {fifo} is a FIFO (named pipe), not a file"),
                          ("/dev/zero", "scenario file /dev/zero is a character device, not a file"),
                          (tmp_path / "none.json", f"scenario file not found: {tmp_path / 'none.json'}")):
        with pytest.raises(InputError) as err:
            load_scenario(path)
        assert str(err.value) == message


def test_minimal_and_generated_scenario_files_still_load(tmp_path):
    small = tmp_path / "small.yaml"
    small.write_text("srs: [{uuid: 5a5a5a5a-0000-4000-8000-000000000001, name_label: s, type: ext}]\n")
    assert len(Simulator(small).state.tables["SR"]) == 1
    generated = tmp_path / "gen.yaml"
    generated.write_text("generate: {hosts: 1, srs: 2, vms: 3, vdis: 6, max_chain: 2}\n")
    assert len(Simulator(generated).state.tables["SR"]) == 2


def test_an_sr_without_a_name_loads():
    """docs/simulator.md makes only an SR's uuid required."""
    sim = Simulator({"srs": [{"uuid": "5a5a5a5a-0000-4000-8000-000000000001", "type": "ext"}]})
    assert len(sim.state.tables["SR"]) == 1


def _served(name):
    """(host record, pool record, VM records by name) of a shipped scenario, read over XenAPI."""
    with Simulator(name, speed=3600) as sim:
        s = XenAPI.Session(sim.url)
        s.xenapi.login_with_password(sim.user, sim.password, "1.0", "tests")
        try:
            master = s.xenapi.pool.get_master(s.xenapi.pool.get_all()[0])
            vms = {r["name_label"]: r for r in s.xenapi.VM.get_all_records().values() if not r["is_control_domain"]}
            return s.xenapi.host.get_record(master), s.xenapi.pool.get_all_records(), vms
        finally:
            s.xenapi.session.logout()


@pytest.mark.parametrize("name, api, brand, version, sm", [
    ("xenserver-8", ("2", "21"), "XenServer", "8.4.0", "3.2.12-25.xs8"),
    ("xcp-ng-8.3", ("2", "21"), "XCP-ng", "8.3.0", "3.2.12-25.1.xcpng8.3"),
])
def test_product_scenarios_serve_a_host_of_that_product(name, api, brand, version, sm):
    host, _pool, vms = _served(name)
    software = host["software_version"]
    assert (host["API_version_major"], host["API_version_minor"]) == api
    assert (software["product_brand"], software["product_version"]) == (brand, version)
    assert software["xencenter_min"] == software["xencenter_max"] == ".".join(api)
    assert {"product_version_text", "product_version_text_short", "platform_name", "platform_version", "xapi",
            "hostname", "date", "xapi_build", "xen", "linux", "network_backend", "db_schema"} <= set(software)
    assert str(load_scenario(name)["sm"]["version"]) == sm
    assert vms and all(v["power_state"] in ("Running", "Halted") for v in vms.values())


def test_ha_scenario_has_a_protected_vm_on_a_shared_sr_and_a_local_sr():
    sim = Simulator("ha-enabled")
    st = sim.state
    (pool,) = st.tables["pool"].values()
    assert pool["ha_enabled"] and pool["ha_statefiles"] and pool["ha_host_failures_to_tolerate"] == 1
    srs = {r["name_label"]: r for r in st.tables["SR"].values()}
    assert srs["iSCSI shared"]["shared"] and not srs["Local storage ha-01"]["shared"]
    erp = st.get("VM", st.find("VM", name_label="erp")[0])
    assert erp["ha_restart_priority"] == "restart" and erp["ha_always_run"]
    disk = st.get("VDI", st.get("VBD", st.children("VBD", "VM", st.find("VM", name_label="erp")[0])[0])["VDI"])
    assert st.get("SR", disk["SR"])["shared"]
    assert len(st.tables["host"]) == 2
    session = sim.dispatcher.call("session.login_with_password", [sim.user, sim.password])
    local = st.find("SR", name_label="Local storage ha-01")[0]
    with pytest.raises(Exception) as refused:   # xapi keeps a protected VM's disks on shared SRs
        sim.dispatcher.call("VDI.pool_migrate", [session, st.ref_by_uuid("VDI", disk["uuid"]), local, {}])
    assert refused.value.description == ["HA_CONSTRAINT_VIOLATION_SR_NOT_SHARED", local]
