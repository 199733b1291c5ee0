"""VHD trees from vhd-parent: depth, sizes, VMs and snapshots, the 30-deep limit, XO's check."""

from runbook_lib.chains import build_chains
from tests.xapi_records import PoolRecords

GiB = 1 << 30


def _snapshot_tree():
    """base <- leaf (VM 'web'), base <- snapshot of leaf; a second, flat disk."""
    p = PoolRecords()
    sr = p.sr("lvm", "lvm", 100 * GiB, 50 * GiB)
    base = p.vdi(sr, 10 * GiB, 3 * GiB, managed=False)
    leaf = p.vdi(sr, 10 * GiB, 11 * GiB, parent=base)
    snap = p.vdi(sr, 10 * GiB, 8 * 1024 * 1024, parent=base, snapshot_of=leaf)
    flat = p.vdi(sr, 5 * GiB, 5 * GiB)
    vm = p.vm("web", "Running", [leaf, flat])
    return p, base, leaf, snap, flat, vm


def test_tree_shape_sizes_and_owners():
    p, base, leaf, snap, flat, vm = _snapshot_tree()
    ch = build_chains(p.inventory().vdis)
    assert len(ch.trees) == 2
    tree = ch.tree_of(p.uuid("VDI", leaf))
    assert tree["root"] == p.uuid("VDI", base)
    assert tree["nodes"] == 3 and tree["depth"] == 2 and tree["leaves"] == 2 and tree["hidden"] == 1
    assert tree["total_size"] == 3 * GiB + 11 * GiB + 8 * 1024 * 1024
    assert tree["vms"] == (p.uuid("VM", vm),)
    assert tree["snapshots"] == (p.uuid("VDI", snap),)
    assert ch.chain_of(p.uuid("VDI", leaf)) == [p.uuid("VDI", leaf), p.uuid("VDI", base)]
    assert set(ch.subtree(p.uuid("VDI", base))) == {p.uuid("VDI", x) for x in (base, leaf, snap)}
    flat_tree = ch.tree_of(p.uuid("VDI", flat))
    assert flat_tree["depth"] == 1 and not flat_tree["too_deep"]


def test_depth_limit_and_xo_uncoalesced_count():
    p = PoolRecords()
    sr = p.sr("lvm", "lvm", 1000 * GiB, 10 * GiB)
    parent = None
    for _ in range(31):  # 31 hidden nodes in a line, then the leaf: 32 deep
        parent = p.vdi(sr, GiB, GiB, parent=parent, managed=False)
    leaf = p.vdi(sr, GiB, GiB, parent=parent)
    ch = build_chains(p.inventory().vdis, warn_depth=25)
    (tree,) = ch.trees.to_dict("records")
    assert tree["depth"] == 32 and tree["too_deep"] and tree["near_limit"]
    assert tree["uncoalesced"] == 30  # every hidden node whose only child is hidden
    assert tree["xo_unhealthy"]
    node = ch.nodes.set_index("uuid").loc[p.uuid("VDI", leaf)]
    assert node["depth"] == 32 and node["is_leaf"] and node["height"] == 1
    assert len(ch.chain_of(p.uuid("VDI", leaf))) == 32


def test_exactly_at_the_limit_is_not_too_deep():
    p = PoolRecords()
    sr = p.sr("ext", "ext", 1000 * GiB, 10 * GiB)
    parent = None
    for _ in range(29):
        parent = p.vdi(sr, GiB, GiB, parent=parent, managed=False)
    p.vdi(sr, GiB, GiB, parent=parent)
    (tree,) = build_chains(p.inventory().vdis).trees.to_dict("records")
    assert tree["depth"] == 30 and not tree["too_deep"] and not tree["near_limit"]


def test_missing_parent_and_cycle_do_not_crash():
    p = PoolRecords()
    sr = p.sr("ext", "ext", 10 * GiB, 1 * GiB)
    a = p.vdi(sr, GiB, GiB, managed=False)
    b = p.vdi(sr, GiB, GiB, parent=a, managed=False)
    p.records["VDI"][a]["sm_config"]["vhd-parent"] = p.uuid("VDI", b)  # a <-> b
    orphan = p.vdi(sr, GiB, GiB)
    p.records["VDI"][orphan]["sm_config"]["vhd-parent"] = "deadbeef-0000-0000-0000-000000000000"
    ch = build_chains(p.inventory().vdis)
    assert set(ch.nodes["uuid"]) == {p.uuid("VDI", x) for x in (a, b, orphan)}
    assert ch.nodes.set_index("uuid").loc[p.uuid("VDI", orphan), "missing_parent"]
    assert ch.trees["nodes"].sum() == 3


def test_empty_inventory():
    ch = build_chains(PoolRecords().inventory().vdis)
    assert ch.nodes.empty and ch.trees.empty


def test_roots_have_no_parent_not_nan():
    p = PoolRecords()
    sr = p.sr("lvm", "lvm", 100 * GiB, 10 * GiB)
    base = p.vdi(sr, GiB, GiB, managed=False)
    p.vdi(sr, GiB, GiB, parent=base)
    nodes = build_chains(p.inventory().vdis).nodes.set_index("uuid")
    assert nodes.loc[p.uuid("VDI", base), "parent"] is None


def test_ancestry_walks_up_and_always_ends():
    from runbook_lib.chains import VhdParents, ancestry

    assert ancestry("c", {"c": "b", "b": "a", "a": None}) == ["c", "b", "a"]
    assert ancestry("c", {"c": "b", "b": "gone"}) == ["c", "b"]  # a parent not in the map
    assert ancestry("a", {"a": "b", "b": "a"}) == ["a", "b"]  # a damaged, looping chain
    assert ancestry("x", {}) == [] and ancestry(None, {"a": None}) == []
    records = {"leaf": {"sm_config": {"vhd-parent": "base"}}, "base": {"sm_config": {"vhd-parent": ""}},
               "flat": {"sm_config": None}}
    assert ancestry("leaf", VhdParents(records)) == ["leaf", "base"]
    assert ancestry("flat", VhdParents(records)) == ["flat"] and "nope" not in VhdParents(records)
