"""Inventory: wire records -> documented DataFrames, secrets dropped, file round trip."""

import json
import xmlrpc.client

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runbook_lib.errors import InputError, RunbookError
from runbook_lib.xapi.inventory import SCHEMA, Inventory, normalise_record
from tests.xapi_records import PoolRecords

GiB = 1 << 30


def _pool():
    p = PoolRecords("lab")
    lvm = p.sr("Local SATA Storage", "lvm", 100 * GiB, 60 * GiB)
    nfs = p.sr("NFS staging", "nfs", 500 * GiB, 10 * GiB, shared=True)
    base = p.vdi(lvm, 40 * GiB, 10 * GiB, managed=False)
    leaf = p.vdi(lvm, 40 * GiB, 43041947648, parent=base)
    snap = p.vdi(lvm, 40 * GiB, 8 << 20, parent=base, snapshot_of=leaf,
                 snapshot_time="20261116T10:00:00Z", leaf_coalesce="offline")
    other = p.vdi(nfs, 8 * GiB, 1 * GiB)
    vm = p.vm("web", "Running", [leaf, other])
    return p, dict(lvm=lvm, nfs=nfs, base=base, leaf=leaf, snap=snap, other=other, vm=vm)


def test_ints_travel_as_strings_and_dates_as_xmlrpc_datetimes():
    rec = normalise_record("VDI", {"uuid": "u", "virtual_size": "2168958484480",
                                   "physical_utilisation": 5,
                                   "snapshot_time": xmlrpc.client.DateTime("20261110T03:14:15Z"),
                                   "sm_config": {"vhd-parent": "p", "secret-ish": "x"},
                                   "other_config": {"leaf-coalesce": "offline", "folder": "y"}})
    assert rec["virtual_size"] == 2168958484480 and rec["physical_utilisation"] == 5
    assert rec["snapshot_time"] == "2026-11-10T03:14:15Z"
    assert rec["sm_config"] == {"vhd-parent": "p"} and rec["other_config"] == {"leaf-coalesce": "offline"}
    assert normalise_record("VDI", {"snapshot_time": "19700101T00:00:00Z"})["snapshot_time"] is None


def test_pbd_device_config_is_never_kept():
    p, _ = _pool()
    inv = p.inventory()
    text = json.dumps(inv.to_json())
    assert "hunter2" not in text and "device_config" not in text
    assert list(inv.pbds.columns) == ["uuid", "ref", "host", "sr", "currently_attached"]


def test_frames_have_the_documented_columns_and_values():
    p, o = _pool()
    inv = p.inventory()
    srs = inv.srs.set_index("uuid")
    lvm = srs.loc[p.uuid("SR", o["lvm"])]
    assert (lvm["type"], lvm["size"], lvm["used"], lvm["free"]) == ("lvm", 100 * GiB, 60 * GiB, 40 * GiB)
    assert lvm["hosts"] == (inv.hosts.iloc[0]["uuid"],)
    assert srs.loc[p.uuid("SR", o["nfs"]), "shared"]
    vdis = inv.vdis.set_index("uuid")
    leaf = vdis.loc[p.uuid("VDI", o["leaf"])]
    assert leaf["vhd_parent"] == p.uuid("VDI", o["base"]) and leaf["attached"] and leaf["managed"]
    assert leaf["vms"] == (p.uuid("VM", o["vm"]),)
    base = vdis.loc[p.uuid("VDI", o["base"])]
    assert base["hidden"] and not base["attached"] and base["vms"] == ()
    snap = vdis.loc[p.uuid("VDI", o["snap"])]
    assert snap["is_a_snapshot"] and snap["snapshot_of"] == p.uuid("VDI", o["leaf"])
    assert snap["snapshot_time"] == pd.Timestamp("2026-11-16T10:00:00Z")
    assert snap["snapshot_age_days"] == pytest.approx(10.0)
    assert snap["leaf_coalesce"] == "offline"
    assert pd.isna(leaf["snapshot_age_days"])
    vms = inv.vms.set_index("uuid")
    web = vms.loc[p.uuid("VM", o["vm"])]
    assert web["power_state"] == "Running" and web["disks"] == 2
    assert set(web["srs"]) == {p.uuid("SR", o["lvm"]), p.uuid("SR", o["nfs"])}
    assert web["disk_virtual_size"] == 48 * GiB
    assert vms["is_control_domain"].sum() == 1
    vbds = inv.vbds
    assert set(vbds["userdevice"]) == {"0", "1"} and vbds["currently_attached"].all()
    assert inv.vifs.iloc[0]["mac"] == "aa:bb:cc:dd:ee:01"
    assert inv.hosts.iloc[0]["is_master"]


def test_the_gc_keys_switches_and_product_become_columns():
    p, o = _pool()
    p.records["SR"][o["lvm"]]["other_config"] = {"gc": "false", "auto-scan": "true", "folder": "x"}
    p.records["SR"][o["lvm"]]["sm_config"] = {"gc_no_space": "OpaqueRef:m1"}
    p.records["VDI"][o["leaf"]]["sm_config"].update(paused="true", relinking="True", gc_no_space="OpaqueRef:m1",
                                                    other="dropped")
    p.records["VDI"][o["leaf"]]["allow_caching"] = True
    p.records["host"][p.host]["software_version"] = {"product_brand": "XCP-ng", "product_version": "8.3.0",
                                                     "hostname": "not kept"}
    inv = p.inventory()
    lvm = inv.srs.set_index("uuid").loc[p.uuid("SR", o["lvm"])]
    assert (lvm["gc"], lvm["coalesce"], lvm["leaf_coalesce"], lvm["auto_scan"]) == ("false", None, None, "true")
    assert lvm["gc_no_space"] == "OpaqueRef:m1"
    assert set(lvm["vdi_order"]) == {p.uuid("VDI", o[k]) for k in ("base", "leaf", "snap")}
    leaf = inv.vdis.set_index("uuid").loc[p.uuid("VDI", o["leaf"])]
    assert (leaf["paused"], leaf["relinking"], leaf["activating"], leaf["gc_no_space"]) == (
        "true", "True", None, "OpaqueRef:m1")
    assert leaf["allow_caching"] and not inv.vdis.set_index("uuid").loc[p.uuid("VDI", o["base"]), "allow_caching"]
    host = inv.hosts.iloc[0]
    assert (host["product_brand"], host["product_version"], host["build_number"]) == ("XCP-ng", "8.3.0", None)
    assert "hostname" not in inv.records["host"][p.host]["software_version"]


def test_save_load_round_trip_is_identical(tmp_path):
    p, _ = _pool()
    inv = p.inventory()
    path = inv.save(tmp_path / "inv.json")
    again = Inventory.load(path)
    assert json.loads(path.read_text())["schema"] == SCHEMA
    assert again.records == inv.records and again.captured == inv.captured
    for frame in ("srs", "vdis", "vms", "vbds", "pbds", "hosts", "vifs"):
        pd.testing.assert_frame_equal(getattr(inv, frame), getattr(again, frame))
    assert again.source["file"] == str(path)


def test_load_errors_are_one_line(tmp_path):
    with pytest.raises(InputError, match="not found"):
        Inventory.load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    with pytest.raises(InputError, match="cannot read"):
        Inventory.load(bad)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"schema": "something/9"}))
    with pytest.raises(InputError, match="runbook.inventory/1"):
        Inventory.load(other)


# ---- against the simulator -----------------------------------------------------------------

SEED_LEAF = "67558d6a-2f3e-4c8b-a1d9-7e5f3b2c9d10"
SEED_BASE = "3f0b7c2e-8d41-4a6b-9e27-5c1d0f9a8b34"


@pytest.fixture(scope="module")
def seed_inventory(tmp_path_factory):
    from runbook_lib.sim import Simulator
    from runbook_lib.xapi.connect import connect
    from runbook_lib.xapi.inventory import fetch_inventory

    calls = tmp_path_factory.mktemp("inv") / "calls.jsonl"
    with Simulator("seed-stuck-leaf-coalesce", calls=str(calls)) as sim:
        with connect("http://" + sim.url.split("://", 1)[1], password_env=None,
                     password_file=_password_file(tmp_path_factory, sim.password)) as session:
            inv = fetch_inventory(session, source_url=sim.url)
    return inv, [json.loads(line) for line in calls.read_text().splitlines()]


def _password_file(factory, password):
    path = factory.mktemp("pw") / "pw"
    path.write_text(password)
    return path


def test_one_get_all_records_per_class_and_no_call_per_object(seed_inventory):
    _, calls = seed_inventory
    methods = [c["method"] for c in calls]
    per_class = [m for m in methods if m.endswith(".get_all_records")]
    assert sorted(per_class) == sorted(f"{c}.get_all_records" for c in
                                       ("pool", "host", "SR", "PBD", "VDI", "VM", "VBD", "VIF", "network"))
    assert not any(m.endswith(".get_record") for m in methods)


def test_seed_inventory_from_the_simulator(seed_inventory):
    inv, _ = seed_inventory
    srs = inv.srs.set_index("name")
    sata = srs.loc["Local SATA Storage"]
    assert sata["type"] == "lvm" and sata["free"] < 64 * 2**20
    assert srs.loc["NFS staging", "type"] == "nfs"
    vdis = inv.vdis.set_index("uuid")
    assert vdis.loc[SEED_LEAF, "vhd_parent"] == SEED_BASE and vdis.loc[SEED_BASE, "hidden"]
    assert vdis.loc[SEED_LEAF, "virtual_size"] == 2020 * 2**30 and vdis.loc[SEED_LEAF, "attached"]
    fileserver = inv.vms.set_index("name").loc["fileserver"]
    assert fileserver["power_state"] == "Running" and fileserver["disks"] == 2
    text = json.dumps(inv.to_json())
    assert "device_config" not in text and "nas01.example.lan" not in text


def test_saved_and_loaded_inventory_gives_identical_sizing(seed_inventory, tmp_path):
    from runbook_lib.plan import assess

    inv, _ = seed_inventory
    again = Inventory.load(inv.save(tmp_path / "seed.json"))
    a, b = assess(inv).to_json(), assess(again).to_json()
    assert a == b
    assert any(s["shortfall"] > 0 for s in a["srs"])


# ---- never crash on input --------------------------------------------------------------------


_scalar = st.one_of(st.none(), st.booleans(), st.integers(-2**62, 2**62), st.text(max_size=12),
                    st.floats(allow_nan=True))
_value = st.one_of(_scalar, st.lists(_scalar, max_size=3), st.dictionaries(st.text(max_size=8), _scalar, max_size=3))


@st.composite
def _messy_pools(draw):
    """A real little pool, then random fields overwritten with random values."""
    p, _ = _pool()
    data = p.inventory().to_json()
    for _ in range(draw(st.integers(0, 12))):
        cls = draw(st.sampled_from(sorted(data["records"])))
        refs = sorted(data["records"][cls])
        if not refs:
            continue
        rec = data["records"][cls][draw(st.sampled_from(refs))]
        field = draw(st.sampled_from(sorted(rec) + ["uuid", "virtual_size", "sm_config"]))
        rec[field] = draw(_value)
    return data


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_messy_pools())
def test_messy_inventory_files_size_or_fail_in_one_line(data):
    from runbook_lib.plan import assess

    try:
        result = assess(Inventory.from_json(json.loads(json.dumps(data, default=str))))
        json.dumps(result.to_json())
        if result.chosen is not None:
            json.dumps(result.plan())
    except RunbookError as err:
        assert "\n" not in str(err)


def test_sr_masters_are_the_pool_master_or_the_pbds_host():
    p, refs = _pool()
    second = p._add("host", {"name_label": "host2", "address": "10.0.0.2", "enabled": True, "PBDs": [],
                             "resident_VMs": []})
    local2 = p.sr("local on host2", "lvm", 10 * GiB, 0)
    for pbd in p.records["SR"][local2]["PBDs"]:
        p.records["PBD"][pbd].update(host=second, currently_attached=False)   # still its master
    orphan = p._add("SR", {"name_label": "no PBD", "type": "ext", "shared": False, "PBDs": []})
    inv = Inventory(p.records, captured="2026-11-20T00:00:00Z")
    master = inv.pool["master"]
    masters = inv.sr_masters
    assert masters[p.uuid("SR", refs["nfs"])] == masters[p.uuid("SR", refs["lvm"])] == master
    assert masters[p.uuid("SR", local2)] == p.uuid("host", second) != master
    assert masters[p.uuid("SR", orphan)] is None


def test_on_raw_sees_each_class_as_sent(tmp_path):
    from runbook_lib.sim import Simulator
    from runbook_lib.xapi.connect import connect
    from runbook_lib.xapi.inventory import CLASSES, fetch_inventory

    seen = {}
    with Simulator("healthy") as sim:
        pw = tmp_path / "pw"
        pw.write_text(sim.password)
        with connect(sim.url, sim.user, password_env=None, password_file=pw) as session:
            inv = fetch_inventory(session, on_raw=lambda cls, records: seen.setdefault(cls, records))
    assert tuple(seen) == CLASSES
    pbd = next(iter(seen["PBD"].values()))
    assert "device_config" in pbd and "device_config" not in next(iter(inv.records["PBD"].values()))
