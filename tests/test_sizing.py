"""The storage manager's formulas against values worked out by hand from gc-space-rules.md.

Derivations (MiB = 1048576, GiB = 1073741824, a VHD block = 2 MiB, block + bitmap = 2101248):

overhead_empty(MSIZE = 2 TiB): mb = 2097152, blocks = 1048576;
    3072 + 4*1048576 = 4197376 (already a multiple of 512); + 1048576//8 = 131072 -> 4328448;
    round up to 4096 -> 1057*4096 = 4329472.
lvhd_lv_size(2020 GiB): 2168958484480 + 4329472 + bitmap(1034240 blocks * 4096 = 4236247040)
    = 2173199060992 -> round up to 4 MiB: 518132 * 4194304 = 2173203120128 = 2023.953 GiB
    (the seed's "2020.000G//2023.953G").
lvhd_lv_size(2 GiB): 2147483648 + 4329472 + 1024*4096 = 2156007424 -> 515 * 4 MiB
    = 2160066560 = 2.012 GiB.
overhead_empty(10 GiB): blocks 5120: 3072 + 20480 = 23552 (46*512); + 640 = 24192 -> 24576.
vhd_full_size(10 GiB) = 10737418240 + 24576 + 5120*4096 = 10758414336.
overhead_empty(40 GiB): blocks 20480: 3072 + 81920 = 84992 (166*512); + 2560 = 87552 -> 90112.
A 40 GiB VHD holding 10 GiB of data: 90112 + 5120*2101248 = 10758479872; deflated LV:
    ceil(10758479872 / 4 MiB) = 2566 -> 10762584064 (holds 5121 whole blocks' worth).
A 40 GiB VHD holding 1 GiB: 90112 + 512*2101248 = 1075929088; LV 257*4 MiB = 1077936128.
lvhd_lv_size(40 GiB) = 42949672960 + 4329472 + 83886080 = 43037888512 -> 10262*4 MiB = 43041947648.
vhd_full_size(40 GiB) = 42949672960 + 90112 + 83886080 = 43033649152; lv_size of it 43037753344.
"""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runbook_lib import sizing as s
from tests.xapi_records import PoolRecords

GiB = 1 << 30
MiB = 1 << 20


def test_seed_lv_size_and_printout():
    assert s.lvhd_lv_size(2020 * GiB) == 2173203120128
    assert s.fmt_gib(s.lvhd_lv_size(2020 * GiB)) == "2023.953G"
    assert s.fmt_gib(s.lvhd_lv_size(2 * GiB)) == "2.012G"
    assert s.lvhd_lv_size(2 * GiB) == 2160066560


def test_overheads_by_hand():
    assert s.overhead_empty(s.MSIZE) == 4329472
    assert s.overhead_empty(10 * GiB) == 24576
    assert s.overhead_empty(40 * GiB) == 90112
    assert s.overhead_bitmap(1) == 4096
    assert s.overhead_bitmap(2 * MiB) == 4096
    assert s.overhead_bitmap(2 * MiB + 1) == 8192
    assert s.vhd_full_size(10 * GiB) == 10758414336
    assert s.vhd_full_size(40 * GiB) == 43033649152
    assert s.lvhd_lv_size(40 * GiB) == 43041947648
    assert s.lv_size(1) == 4 * MiB
    assert s.lv_size(10758479872) == 10762584064


def test_data_and_vhd_size_are_inverse():
    assert s.vhd_size_for_data(40 * GiB, 10 * GiB) == 10758479872
    assert s.data_in_vhd(40 * GiB, 10758479872) == 10 * GiB
    assert s.data_in_vhd(40 * GiB, 10762584064) == 5121 * 2 * MiB  # LV rounding: one block more
    assert s.data_in_vhd(40 * GiB, 0) == 0


@given(st.integers(min_value=1, max_value=s.VHD_MAX_SIZE))
def test_lv_is_at_least_the_full_vhd_and_4mib_aligned(v):
    lv = s.lvhd_lv_size(v)
    assert lv % (4 * MiB) == 0
    assert lv >= s.vhd_full_size(v) - s.overhead_empty(v) + s.overhead_empty(s.MSIZE)
    assert lv - (v + s.overhead_empty(s.MSIZE) + s.overhead_bitmap(v)) < 4 * MiB


def test_coalesce_needs_by_type():
    # file: data 11 GiB + bitmap(5632 blocks) + metadata(40 GiB) - parent file
    need = s.coalesce_need("file", data=11 * GiB, virtual_size=40 * GiB, parent_size=10758479872)
    assert need == 11 * GiB + 5632 * 4096 + 90112 - 10758479872 == 1075838976
    assert s.snapshot_coalesce_need("file", need, virtual_size=40 * GiB, leaf_vhd_size=0) == 1075929088
    assert s.live_leaf_need("file", need, leaf_size=1075929088, leaf_vhd_size=1075929088) == need
    # lvm: lvhd_lv_size(data) - parent LV; 0 for a raw parent
    assert s.coalesce_need("lvm", data=40 * GiB, virtual_size=40 * GiB,
                           parent_size=10762584064) == 43041947648 - 10762584064
    assert s.coalesce_need("lvm", data=40 * GiB, virtual_size=40 * GiB, parent_size=1,
                           parent_raw=True) == 0
    # live on LVM: the inflated leaf is deflated first
    assert s.live_leaf_need("lvm", 10 * GiB, leaf_size=43041947648,
                            leaf_vhd_size=43033649152) == 10 * GiB - 4 * MiB
    assert s.snapshot_coalesce_need("lvm", 10 * GiB, virtual_size=40 * GiB,
                                    leaf_vhd_size=1075929088) == 10 * GiB + 1077936128


def test_live_coalesce_limits():
    assert s.can_live_coalesce(19 * MiB) and not s.can_live_coalesce(20 * MiB)
    assert s.can_live_coalesce(400 * MiB, speed_bps=100 * MiB)      # 4 s < 5 s
    assert not s.can_live_coalesce(500 * MiB, speed_bps=100 * MiB)  # 5 s is not < 5 s
    assert s.can_live_coalesce(2020 * GiB, force=True)


def test_copy_size_follows_the_destination_type():
    assert s.copy_size("lvm", 40 * GiB, 1 * GiB) == 43041947648
    assert s.copy_size("file", 40 * GiB, 10 * GiB) == 10758479872
    assert s.copy_size("file", 40 * GiB, 100 * GiB) == 43033649152  # never more than full


def _file_pool(free: int):
    """ext SR of 100 GiB; a running VM's 40 GiB leaf (1 GiB data) over a 10 GiB base copy."""
    p = PoolRecords()
    size = 100 * GiB
    sr = p.sr("Local ext", "ext", size, size - free)
    base = p.vdi(sr, 40 * GiB, 10758479872, managed=False, name="base copy")
    leaf = p.vdi(sr, 40 * GiB, 1075929088, parent=base)
    p.vm("web", "Running", [leaf])
    return p, sr, base, leaf


def test_file_sr_fits_with_snapshot_coalesce():
    p, sr, base, leaf = _file_pool(free=2 * GiB)
    sz = s.size_pool(p.inventory())
    (c,) = sz.coalesces.to_dict("records")
    assert c["vdi"] == p.uuid("VDI", leaf) and c["parent"] == p.uuid("VDI", base)
    assert c["data"] == 11 * GiB
    assert c["needed_live"] == 1075838976 and c["needed_snapshot"] == 1075929088
    assert c["kind"] == "snapshot-coalesce" and c["fits"]
    row = sz.sr(p.uuid("SR", sr))
    assert row["verdict"] == "fits" and row["shortfall"] == 0 and row["needed"] == 1075929088


def test_file_sr_short_by_the_difference():
    p, sr, *_ = _file_pool(free=1 * GiB)
    row = s.size_pool(p.inventory()).sr(p.uuid("SR", sr))
    # 1 GiB of leaf data cannot be live-coalesced without a measured speed (>= 20 MiB)
    assert row["verdict"] == "short" and row["shortfall"] == 1075929088 - GiB == 2187264


def test_file_sr_when_only_the_live_need_fits():
    """The GC would set leaf-coalesce=offline; the snapshot-coalesce does not fit and the big leaf
    cannot take the live path under the 10 s limit. Halted and forced (leaf-coalesce=force) it
    needs only the live need, which fits: offline-only, by the force route (no plugin on ext)."""
    p, sr, *_ = _file_pool(free=1075900000)
    sz = s.size_pool(p.inventory())
    row = sz.sr(p.uuid("SR", sr))
    assert row["verdict"] == "offline-only" and row["shortfall"] == 1075929088 - 1075900000
    (c,) = sz.coalesces.to_dict("records")
    assert not c["fits"] and c["fits_offline"] and c["offline_via"] == "force"
    assert c["offline_needed"] == 1075838976 and "LVM SRs only" in c["plugin_note"]
    # with a fast enough measured speed the GC would live-coalesce it instead
    fast = s.size_pool(p.inventory(), gc_speed_bps=1 * GiB).sr(p.uuid("SR", sr))
    assert fast["verdict"] == "fits"


def test_the_gcs_informational_offline_key_does_not_park_the_leaf():
    """cleanup.py gatherLeafCoalesceable skips only leaf-coalesce=false; `offline` is informational."""
    p, sr, base, leaf = _file_pool(free=2 * GiB)
    p.records["VDI"][leaf]["other_config"]["leaf-coalesce"] = "offline"
    sz = s.size_pool(p.inventory())
    (c,) = sz.coalesces.to_dict("records")
    assert c["fits"] and sz.sr(p.uuid("SR", sr))["verdict"] == "fits"
    p.records["VDI"][leaf]["other_config"]["leaf-coalesce"] = "false"  # disabled by the admin
    assert s.size_pool(p.inventory()).coalesces.empty


def _lvm_pool(free: int):
    p = PoolRecords()
    sr = p.sr("Local SATA Storage", "lvm", 200 * GiB, 200 * GiB - free)
    base = p.vdi(sr, 40 * GiB, 10762584064, managed=False, name="base copy")
    leaf = p.vdi(sr, 40 * GiB, 43041947648, parent=base)  # attached: fully inflated
    p.vm("db", "Running", [leaf])
    return p, sr, base, leaf


def test_lvm_leaf_of_unknown_size_is_sized_for_the_worst_case():
    p, sr, base, leaf = _lvm_pool(free=5 * GiB)
    sz = s.size_pool(p.inventory())
    (c,) = sz.coalesces.to_dict("records")
    need = 43041947648 - 10762584064
    assert c["data"] == 40 * GiB and not c["size_known"]
    assert c["needed_live"] == need - (43041947648 - 43037753344)
    assert c["needed_snapshot"] == need + 43037753344
    assert not c["live_ok"] and c["kind"] == "snapshot-coalesce"
    row = sz.sr(p.uuid("SR", sr))
    assert row["verdict"] == "short" and row["shortfall"] == need + 43037753344 - 5 * GiB


def test_findings_give_the_leaf_size_and_the_timeout_verdict():
    p, sr, base, leaf = _lvm_pool(free=1 * GiB)
    leaf_uuid = p.uuid("VDI", leaf)
    findings = {"vdis": [{"vdi": leaf_uuid[:8], "verdict": "stuck-timeout",
                          "virtual_size": 40 * GiB, "size": 1075929088, "lv_size": 43041947648}],
                "srs": [{"sr": p.uuid("SR", sr)[:8], "verdict": "stuck-timeout"}]}
    sz = s.size_pool(p.inventory(), findings=findings, gc_speed_bps=10 * GiB)
    (c,) = sz.coalesces.to_dict("records")
    # 512 blocks in the leaf + 5121 in the base LV = 5633 blocks; lvhd_lv_size(5633 blocks) =
    # 11813257216 + 4329472 + 5633*4096 = 11840659456 -> 2824 * 4 MiB = 11844714496
    need = 11844714496 - 10762584064
    assert c["size_known"] and c["data"] == 5633 * 2 * MiB
    assert c["needed_live"] == 0  # deflating the 40 GiB leaf frees far more than the merge takes
    assert c["needed_snapshot"] == need + 1077936128
    assert c["diagnosis"] == "stuck-timeout" and not c["live_ok"]  # the log beats the estimate
    row = sz.sr(p.uuid("SR", sr))
    assert row["verdict"] == "offline-only" and row["diagnosis"] == "stuck-timeout"
    # thick SR: a shutdown frees nothing, but the halted VM's leaf forced needs only the live need;
    # the plugin would suspend the running VM and it has no suspend SR here
    assert c["offline_via"] == "force" and c["offline_needed"] == 0
    assert "VM_NO_SUSPEND_SR" in c["plugin_note"]


def _block_map(blocks) -> str:
    """sm_config 'vhd-blocks' as the GC writes it: base64 of a zlib-compressed bitmap."""
    import base64
    import zlib

    bits = bytearray(20480 // 8)  # a 40 GiB VHD has 20480 blocks
    for i in blocks:
        bits[i // 8] |= 0x80 >> (i % 8)
    return base64.b64encode(zlib.compress(bytes(bits))).decode()


def test_block_maps_tighten_the_lower_bound_but_not_the_upper():
    """The hidden base's map is its content now; the running leaf's map (the GC's last look) is
    only a floor, since a VHD never gives blocks back. Union: 5120 base blocks + 392 leaf blocks
    outside them (5000..5511 overlaps 120) = 5512 blocks = 11559501824 bytes.
    lvhd_lv_size: 11559501824 + 4329472 + 5512*4096 = 11586408448 -> 2763 * 4 MiB = 11588861952;
    minus the base's LV 10762584064 = 826277888. Least leaf: 512 blocks, VHD 1075929088, LV
    1077936128 (see the top). Least snapshot-coalesce: 826277888 + 1077936128 = 1904214016."""
    p, sr, base, leaf = _lvm_pool(free=5 * GiB)
    p.records["VDI"][base]["sm_config"]["vhd-blocks"] = _block_map(range(5120))
    p.records["VDI"][leaf]["sm_config"]["vhd-blocks"] = _block_map(range(5000, 5512))
    sz = s.size_pool(p.inventory())
    (c,) = sz.coalesces.to_dict("records")
    assert c["needed"] == 43041947648 - 10762584064 + 43037753344  # unchanged: still the worst case
    assert c["needed_min"] == 1904214016 and c["size_source"] == "upper-bound"
    assert not c["size_known"]
    row = sz.sr(p.uuid("SR", sr))
    assert row["shortfall"] > 0 and row["shortfall_min"] == 0 and not row["sizes_known"]
    assert row["needed_min"] == 1904214016


def test_without_any_map_the_floor_is_an_empty_leaf():
    """No map: at least the merge of a leaf holding nothing: the base's 5121 blocks' worth
    (10739515392) inflated with MSIZE metadata: + 4329472 + 5121*4096 = 10764820480 -> 2567 *
    4 MiB = 10766778368, 4194304 above its LV; plus an empty 40 GiB VHD (90112 bytes) in one
    4 MiB LV: 8 MiB in all (against 72.1 GiB for the worst case)."""
    p, sr, base, leaf = _lvm_pool(free=5 * GiB)
    (c,) = s.size_pool(p.inventory()).coalesces.to_dict("records")
    assert c["needed_min"] == 8 * MiB


def test_a_measured_vhd_size_makes_the_need_exact():
    """The same pool as the findings test, with the leaf's size given by the admin instead."""
    p, sr, base, leaf = _lvm_pool(free=1 * GiB)
    leaf_uuid = p.uuid("VDI", leaf)
    sizes = s.parse_vhd_sizes(f"{leaf_uuid[:8]}=1075929088")
    sz = s.size_pool(p.inventory(), vhd_sizes=sizes)
    (c,) = sz.coalesces.to_dict("records")
    assert c["size_known"] and c["size_source"] == "given"
    assert c["needed_snapshot"] == 11844714496 - 10762584064 + 1077936128
    # the floor: the leaf's 512 blocks all inside the base's 5121 (4194304, worked out above)
    # plus the leaf's own LV 1077936128; only block maps would tell the overlap
    assert c["needed_min"] == 4194304 + 1077936128
    assert sz.sr(p.uuid("SR", sr))["sizes_known"]


@pytest.mark.parametrize("text", ["abc", "abc=", "abc=-5", "abc=1.5G", "=100"])
def test_bad_vhd_sizes_are_usage_errors(text):
    from runbook_lib.errors import UsageError

    with pytest.raises(UsageError):
        s.parse_vhd_sizes(text)


def test_a_vhd_size_for_an_unknown_vdi_is_a_usage_error():
    from runbook_lib.errors import UsageError

    p, *_ = _lvm_pool(free=1 * GiB)
    with pytest.raises(UsageError, match="no VDIs match"):
        s.size_pool(p.inventory(), vhd_sizes={"ffffffff": 10})


@pytest.mark.parametrize("text", [None, "", "not base64 !", "aGVsbG8="])
def test_unreadable_block_maps_are_ignored(text):
    assert s.block_map(text) is None


@pytest.mark.parametrize("where,key,value", [
    ("SR", "leaf-coalesce", "false"), ("SR", "coalesce", "false"), ("SR", "leaf-coalesce", "no"),
    ("VDI", "leaf-coalesce", "false"), ("VDI", "leaf-coalesce", "no"), ("VDI", "on_boot", "reset")])
def test_leaf_coalesces_the_gc_is_told_to_skip_are_not_pending(where, key, value):
    p, sr, base, leaf = _lvm_pool(free=5 * GiB)
    assert len(s.size_pool(p.inventory()).coalesces) == 1
    if where == "SR":
        p.records["SR"][sr]["other_config"][key] = value
    elif key == "on_boot":
        p.records["VDI"][leaf]["on_boot"] = value
    else:
        p.records["VDI"][leaf]["other_config"][key] = value
    sz = s.size_pool(p.inventory())
    assert sz.coalesces.empty and sz.sr(p.uuid("SR", sr))["verdict"] == "healthy"


def test_healthy_pool_and_garbage():
    p = PoolRecords()
    sr = p.sr("ext", "ext", 10 * GiB, 2 * GiB)
    disk = p.vdi(sr, 1 * GiB, 100 * MiB)
    p.vm("a", "Halted", [disk])
    p.vdi(sr, 1 * GiB, 50 * MiB, managed=False, name="orphan base copy")
    sz = s.size_pool(p.inventory())
    assert sz.coalesces.empty
    row = sz.sr(p.uuid("SR", sr))
    assert row["verdict"] == "healthy" and row["garbage"] == 50 * MiB and row["needed"] == 0


def test_snapshot_keeps_the_base_from_coalescing_and_findings_match_full_uuid():
    p = PoolRecords()
    sr = p.sr("ext", "ext", 100 * GiB, 20 * GiB)
    base = p.vdi(sr, 40 * GiB, 10758479872, managed=False)
    leaf = p.vdi(sr, 40 * GiB, 1075929088, parent=base)
    p.vdi(sr, 40 * GiB, 90112, parent=base, snapshot_of=leaf, name="snap")
    p.vm("web", "Running", [leaf])
    sz = s.size_pool(p.inventory(), findings={"vdis": [{"vdi": p.uuid("VDI", leaf), "verdict": "healthy"}]})
    assert sz.coalesces.empty
    assert p.uuid("VDI", leaf) in sz.findings


def test_sizing_json_shape():
    p, sr, *_ = _file_pool(free=1 * GiB)
    out = s.size_pool(p.inventory()).to_json()
    assert out["schema"] == "runbook.sizing/1"
    assert set(out["srs"][0]) >= {"sr", "name", "type", "size", "used", "free", "needed", "shortfall", "verdict"}
    assert set(out["coalesces"][0]) >= {"vdi", "sr", "kind", "needed", "fits"}
    assert isinstance(out["srs"][0]["size"], int)


@pytest.mark.parametrize("t,family", [("lvm", "lvm"), ("lvmoiscsi", "lvm"), ("nfs", "file"),
                                      ("ext", "file"), ("iso", None), (None, None)])
def test_sr_family(t, family):
    assert s.sr_family(t) == family


SMLOG = """\
Jul  7 07:07:07 xs06 SMGC: [1300] Coalescing *0badf00d(20.000G/3.000G/3.250G) -> *0badcafe(20.000G/15.000G/15.250G)
Jul  7 07:07:08 xs06 SMGC: [1400] Coalescing *11112222(20.000G/1.000G/1.000G) -> *33334444(20.000G/2.000G/2.000G)
Jul  7 07:07:30 xs06 SMGC: [1300] Num combined blocks = 7000
Jul  7 07:07:30 xs06 SMGC: [1300] Coalesced size = 16.123G
Jul  7 07:08:00 xs06 SMGC: [1500] Coalesced size = 1.000G
"""


def test_rate_measured_in_smlog(tmp_path):
    from runbook_lib.smlog import read_smlog
    from runbook_lib.smlog.rate import coalesce_rates

    path = tmp_path / "SMlog"
    path.write_text(SMLOG)
    # pid 1300: 3.250 GiB allocated in the child, 23 s from start to done; pid 1400 never
    # finishes and pid 1500 never started: only one measurement
    rate = coalesce_rates(read_smlog([str(path)], year=2026).records)[None]
    assert rate == pytest.approx(3.25 * GiB / 23)
    findings = s.findings_from_smlog([path], year=2026)
    assert findings["coalesce_rate_bps"] == pytest.approx(3.25 * GiB / 23)
    assert s.measured_rate(findings) == pytest.approx(3.25 * GiB / 23)
    empty = tmp_path / "empty"
    empty.write_text("")
    assert coalesce_rates(read_smlog([str(empty)]).records) == {}


_junk = st.one_of(st.none(), st.booleans(), st.integers(-2**40, 2**62), st.floats(), st.text(max_size=10),
                  st.lists(st.integers(), max_size=2))


@given(st.lists(st.dictionaries(st.sampled_from(["vdi", "verdict", "size", "sr", "rate_bps"]), _junk,
                                max_size=5) | _junk, max_size=4),
       st.dictionaries(st.sampled_from(["coalesce_rate_bps", "rate_bps", "gc_speed_bps"]), _junk, max_size=2))
def test_any_findings_shape_is_survived(items, top):
    p, sr, base, leaf = _lvm_pool(free=1 * GiB)
    leaf_uuid = p.uuid("VDI", leaf)
    items = [dict(i, vdi=leaf_uuid[:8]) if isinstance(i, dict) and "vdi" in i else i for i in items]
    sz = s.size_pool(p.inventory(), findings={"vdis": items, "srs": items, **top})
    assert len(sz.coalesces) == 1 and sz.coalesces.iloc[0]["needed"] >= 0


# ---- against the simulator's own GC arithmetic --------------------------------------------

@pytest.mark.parametrize("scenario", ["seed-stuck-leaf-coalesce", "nfs-only", "large-pool"])
def test_needs_are_never_below_what_the_simulated_gc_needs(scenario):
    """The simulator knows each VHD's real blocks; XenAPI does not. Our needs are upper bounds
    of its needs for the same pending coalesces, and equal to them where nothing is hidden
    (a file SR, and child and parent share no block)."""
    from runbook_lib.sim import Simulator
    from runbook_lib.xapi.connect import connect
    from runbook_lib.xapi.inventory import fetch_inventory

    with Simulator(scenario) as sim:
        with connect(sim.url, password_env=None, password_file=_pw_file(sim.password)) as session:
            inv = fetch_inventory(session)
        with sim.pool.lock:
            by_uuid = {rec["uuid"]: ref for ref, rec in sim.pool.store.tables["VDI"].items()}
            sz = s.size_pool(inv)
            assert len(sz.coalesces)
            exact = 0
            for c in sz.coalesces.to_dict("records"):
                ref = by_uuid[c["vdi"]]
                if c["kind"] == "non-leaf":
                    theirs = (max(0, sim.gc.coalesce_need(ref)),) * 2
                else:
                    snap, live = sim.gc.leaf_needs(ref)
                    theirs = (snap, max(0, live))
                ours = (c["needed_snapshot"], c["needed_live"])
                assert ours[0] >= theirs[0] and ours[1] >= theirs[1], (c, theirs)
                vhd = sim.pool.storage.vhds[ref]
                if s.sr_family(c["sr_type"]) == "file" and vhd.overlap == 0:
                    assert ours == theirs
                    exact += 1
            if scenario != "seed-stuck-leaf-coalesce":
                assert exact, "no coalesce where the figures can be compared exactly"


def _pw_file(password):
    import tempfile

    f = tempfile.NamedTemporaryFile("w", delete=False, suffix=".pw")
    f.write(password)
    f.close()
    return f.name


def test_per_sr_rates_from_notebook_01():
    findings = {"srs": [{"sr": "aaaa1111", "coalesce_rate_bps": 100}, {"sr": "bbbb2222", "coalesce_rate_bps": 300},
                        {"sr": "cccc3333", "coalesce_rate_bps": None}]}
    assert s.measured_rate(findings, "aaaa1111-0000-4000-8000-000000000001") == 100
    assert s.measured_rate(findings, "cccc3333-0000-4000-8000-000000000001") is None
    assert s.measured_rate(findings) == 200
    assert s.measured_rate({"coalesce_rate_bps": 50, **findings}) == 50


def test_vhd_sizes_take_equals_or_colon():
    assert s.parse_vhd_sizes("ABCdef01:10, 12345678=20,") == {"abcdef01": 10, "12345678": 20}
    assert s.parse_vhd_sizes({"abc": "5"}) == {"abc": 5}


def test_sizing_and_notebook_01_measure_the_same_rate():
    """One definition: an SR's rate in the diagnosis is the sizing's when the log has one SR."""
    from runbook_lib.smlog import diagnose, read_smlog, sample_path
    from runbook_lib.smlog.rate import coalesce_rates

    read = read_smlog([sample_path()])
    rates = coalesce_rates(read.records)
    per_sr = {r["sr"]: r["coalesce_rate_bps"] for r in diagnose(read).to_json()["srs"] if r["coalesce_rate_bps"]}
    assert per_sr and all(per_sr[sr] == round(rates[sr]) for sr in per_sr)
    assert s.findings_from_smlog([sample_path()])["coalesce_rate_bps"] == rates[None]
