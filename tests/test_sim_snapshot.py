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
