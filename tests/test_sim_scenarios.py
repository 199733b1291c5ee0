"""Shipped scenarios load with their documented shape; scenario files are checked."""

import pytest
import yaml

from runbook_lib.errors import InputError
from runbook_lib.sim import Simulator
from runbook_lib.sim.scenarios import list_scenarios, load_scenario, rate, size


def test_shipped_scenarios():
    assert list_scenarios() == ["healthy", "large-pool", "nfs-only", "seed-stuck-leaf-coalesce"]
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
