"""`runbook sim snapshot`: a pool's inventory becomes a scenario that serves the same pool."""

import yaml

from runbook_lib.sim import Simulator
from runbook_lib.sim.snapshot import snapshot_pool
from runbook_lib.xapi.connect import connect
from runbook_lib.xapi.inventory import fetch_inventory


def _inventory(sim, monkeypatch):
    monkeypatch.setenv("SIM_TEST_PW", sim.password)
    with connect(sim.url, "root", "SIM_TEST_PW") as session:
        return fetch_inventory(session)


def test_snapshot_round_trip(tmp_path, monkeypatch):
    out = tmp_path / "copy.yaml"
    with Simulator("seed-stuck-leaf-coalesce", speed=1) as sim:
        monkeypatch.setenv("SIM_TEST_PW", sim.password)
        summary = snapshot_pool(sim.url, "root", "SIM_TEST_PW", out)
        before = _inventory(sim, monkeypatch)
    assert summary == "1 hosts, 3 SRs, 5 VDIs, 3 VMs"
    data = yaml.safe_load(out.read_text())
    assert "simulator" not in out.read_text()          # no password in the scenario
    leaf = next(v for v in data["vdis"] if v["uuid"].startswith("67558d6a"))
    assert leaf["allocated_unknown"] is True            # inflated LV hides its blocks
    with Simulator(out, speed=1) as copy:
        after = _inventory(copy, monkeypatch)
    cols = ["uuid", "name", "size", "used", "free", "type"]
    assert before.srs[cols].sort_values("uuid").values.tolist() == \
        after.srs[cols].sort_values("uuid").values.tolist()
    vcols = ["uuid", "virtual_size", "physical_utilisation", "managed", "sr"]
    assert before.vdis[vcols].sort_values("uuid").values.tolist() == \
        after.vdis[vcols].sort_values("uuid").values.tolist()
    parents = lambda inv: sorted(inv.vdis["vhd_parent"].fillna("").tolist())  # noqa: E731
    assert parents(before) == parents(after)
    assert sorted(before.vms["uuid"]) == sorted(after.vms["uuid"])
    assert sorted(before.vifs["mac"]) == sorted(after.vifs["mac"])


def test_snapshots_keep_what_they_are_snapshots_of(tmp_path, monkeypatch):
    """VM and VDI snapshots survive the round trip with snapshot_of (by uuid) and snapshot_time."""
    import XenAPI

    def snapshots(sim):
        s = XenAPI.Session(sim.url)
        s.xenapi.login_with_password(sim.user, sim.password, "1.0", "tests")
        out = {}
        for cls in ("VM", "VDI"):
            records = getattr(s.xenapi, cls).get_all_records()
            out[cls] = sorted((rec["uuid"], records[rec["snapshot_of"]]["uuid"], str(rec["snapshot_time"]))
                              for rec in records.values() if rec["is_a_snapshot"])
        s.xenapi.session.logout()
        return out

    out = tmp_path / "healthy-copy.yaml"
    with Simulator("healthy", speed=1) as sim:
        monkeypatch.setenv("SIM_TEST_PW", sim.password)
        snapshot_pool(sim.url, "root", "SIM_TEST_PW", out)
        before = snapshots(sim)
    with Simulator(out, speed=1) as copy:
        after = snapshots(copy)
    assert before["VM"] and before["VDI"]  # the healthy pool has a VM snapshot with its disk
    assert after == before


NET_A = "a1a1a1a1-0000-4000-8000-00000000000a"
NET_B = "b2b2b2b2-0000-4000-8000-00000000000b"


def _two_network_pool() -> dict:
    """healthy, with a second network and every VM's VIFs on both (VIF 0 on the second)."""
    import copy

    from runbook_lib.sim.scenarios import load_scenario

    scenario = copy.deepcopy(load_scenario("healthy"))
    scenario["networks"] = [{"uuid": NET_A, "name_label": "Pool-wide network associated with eth0",
                             "bridge": "xenbr0"},
                            {"uuid": NET_B, "name_label": "backend", "bridge": "xenbr1"}]
    for i, vm in enumerate(scenario["vms"]):
        vm["vifs"] = [{"device": "0", "mac": f"a2:00:00:00:00:{i:02x}", "network": "backend"},
                      {"device": "1", "mac": f"a2:00:00:00:01:{i:02x}", "network": NET_A}]
    return scenario


def _networks(sim) -> tuple[dict, dict]:
    """{network uuid: (name_label, bridge)}, {(VM uuid, VIF device): network uuid} as XenAPI shows them."""
    import XenAPI

    s = XenAPI.Session(sim.url)
    s.xenapi.login_with_password(sim.user, sim.password, "1.0", "tests")
    nets = s.xenapi.network.get_all_records()
    vms = s.xenapi.VM.get_all_records()
    vifs = {(vms[v["VM"]]["uuid"], v["device"]): nets[v["network"]]["uuid"]
            for v in s.xenapi.VIF.get_all_records().values()}
    s.xenapi.session.logout()
    return {n["uuid"]: (n["name_label"], n["bridge"]) for n in nets.values()}, vifs


def test_networks_keep_their_uuids_and_vifs_their_networks(tmp_path, monkeypatch):
    """A snapshot used to drop networks: the copy's VIFs pointed at a new, random network."""
    from runbook_lib.sim.snapshot import snapshot_inventory

    out, offline, inv = tmp_path / "copy.yaml", tmp_path / "offline.yaml", tmp_path / "inv.json"
    with Simulator(_two_network_pool(), speed=1) as sim:
        monkeypatch.setenv("SIM_TEST_PW", sim.password)
        snapshot_pool(sim.url, "root", "SIM_TEST_PW", out)
        _inventory(sim, monkeypatch).save(inv)
        before = _networks(sim)
    snapshot_inventory(inv, offline)
    assert set(before[0]) == {NET_A, NET_B} and set(before[1].values()) == {NET_A, NET_B}
    for scenario in (out, offline):
        with Simulator(scenario, speed=1) as copy:
            assert _networks(copy) == before


def test_an_inventory_saved_without_networks_still_snapshots(tmp_path, monkeypatch):
    """Inventories saved before networks were kept: VIFs go on the default network."""
    import json

    from runbook_lib.sim.snapshot import snapshot_inventory

    inv = tmp_path / "inv.json"
    with Simulator(_two_network_pool(), speed=1) as sim:
        _inventory(sim, monkeypatch).save(inv)
    data = json.loads(inv.read_text())
    del data["records"]["network"]
    inv.write_text(json.dumps(data))
    snapshot_inventory(inv, tmp_path / "old.yaml")
    scenario = yaml.safe_load((tmp_path / "old.yaml").read_text())
    assert "networks" not in scenario and all("network" not in f for vm in scenario["vms"] for f in vm["vifs"])
    with Simulator(tmp_path / "old.yaml", speed=1) as copy:
        nets, vifs = _networks(copy)
    assert len(nets) == 1 and set(vifs.values()) == set(nets)


def test_a_network_keeps_its_mtu(tmp_path, monkeypatch):
    scenario = _two_network_pool()
    scenario["networks"][1]["MTU"] = 9000
    out = tmp_path / "copy.yaml"
    with Simulator(scenario, speed=1) as sim:
        monkeypatch.setenv("SIM_TEST_PW", sim.password)
        snapshot_pool(sim.url, "root", "SIM_TEST_PW", out)
    assert [n.get("MTU") for n in yaml.safe_load(out.read_text())["networks"]] == [1500, 9000]
