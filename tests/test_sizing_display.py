"""Display helpers: GiB tables, the per-SR space chart, chain trees, the plan as rows."""

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from runbook_lib import plan as P  # noqa: E402
from runbook_lib import sizing_display as show  # noqa: E402
from runbook_lib.sizing import size_pool  # noqa: E402
from tests.xapi_records import PoolRecords  # noqa: E402

GiB = 1 << 30


@pytest.fixture
def seed_like():
    p = PoolRecords("lab")
    lvm = p.sr("Local SATA Storage", "lvm", 60 * GiB, 58 * GiB)
    p.sr("NFS staging", "nfs", 1000 * GiB, 10 * GiB, shared=True)
    base = p.vdi(lvm, 40 * GiB, 10762584064, managed=False)
    leaf = p.vdi(lvm, 40 * GiB, 43041947648, parent=base)
    p.vm("big", "Running", [leaf])
    sz = size_pool(p.inventory())
    return p, lvm, base, leaf, sz


def test_sr_table_in_gib(seed_like):
    p, lvm, *_, sz = seed_like
    t = show.sr_table(sz).set_index("name")
    row = t.loc["Local SATA Storage"]
    assert (row["size_gib"], row["used_gib"], row["free_gib"]) == (60.0, 58.0, 2.0)
    assert row["verdict"] == "short"
    assert row["shortfall_gib"] == round(sz.sr(p.uuid("SR", lvm))["shortfall"] / GiB, 3)


def test_space_chart_stacks_used_needed_free_shortfall(seed_like):
    p, lvm, *_, sz = seed_like
    ax = show.plot_sr_space(sz)
    labels = [c.get_label() for c in ax.containers]
    assert labels == ["used", "needed by coalesce", "free", "shortfall"]
    idx = list(sz.srs["name"]).index("Local SATA Storage")
    used, needed, free, short = (c.patches[idx].get_width() for c in ax.containers)
    row = sz.sr(p.uuid("SR", lvm))
    assert used == pytest.approx(58) and needed == pytest.approx(2) and free == pytest.approx(0)
    assert short == pytest.approx(row["shortfall"] / GiB)
    # the bars of an SR end where its size plus its shortfall end
    assert used + needed + free + short == pytest.approx((row["size"] + row["shortfall"]) / GiB)


def test_chain_trees_show_sizes_owner_and_the_need(seed_like):
    p, lvm, base, leaf, sz = seed_like
    text = show.chain_trees(sz)
    lines = text.splitlines()
    assert lines[0].startswith(f"tree {p.uuid('VDI', base)[:8]}") and "2 VHDs, depth 2" in lines[0]
    assert lines[1].strip().startswith(f"*{p.uuid('VDI', base)[:8]}") and "[hidden]" in lines[1]
    assert "└─" in lines[2] and "VM big (Running)" in lines[2] and "does not fit" in lines[2]
    assert "40.000G virtual" in lines[2]
    healthy = PoolRecords()
    sr = healthy.sr("ext", "ext", 10 * GiB, GiB)
    healthy.vm("a", "Halted", [healthy.vdi(sr, GiB, GiB)])
    assert show.chain_trees(size_pool(healthy.inventory())) == "no VHD tree with a pending coalesce"


def test_remedies_and_plan_tables(seed_like):
    *_, sz = seed_like
    remedies = P.rank_remedies(sz)
    t = show.remedies_table(remedies)
    assert list(t["rank"]) == list(range(1, len(remedies) + 1))
    assert t.iloc[0]["kind"] == "move-vms" and t.iloc[0]["vms"] == "big (copy)"  # no room to snapshot
    assert t.iloc[0]["move_gib"] == 40.0
    plan = P.make_plan(sz, P.choose(remedies))
    rows = dict(zip(show.plan_table(plan)["item"], show.plan_table(plan)["value"]))
    assert rows["remedy"] == "move-vms" and rows["staging SR"].startswith("NFS staging (nfs")
    assert show.plan_table(None).iloc[0]["value"].startswith("none")
    assert list(show.coalesce_table(sz)["vm"]) == ["big"]


def test_sr_table_busy_only_keeps_the_srs_with_work(seed_like):
    *_, sz = seed_like
    assert list(show.sr_table(sz, busy_only=True)["name"]) == ["Local SATA Storage"]
    assert list(show.sr_table(sz)["name"]) == ["Local SATA Storage", "NFS staging"]  # shortest first
