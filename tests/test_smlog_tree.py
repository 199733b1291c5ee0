"""Tree printouts -> chain table; short ids -> full UUIDs."""

from runbook_lib.smlog.tree import chain_table, link_ids, render_tree

TREE = "\n".join([
    "        *85ff84a8[VHD](2020.000G//2023.953G|n)",
    "            67558d6a[VHD](2020.000G//2023.953G|ao)",
    "            *11112222[VHD](2020.000G//8.000G|n)",
    "                33334444[VHD](2020.000G//1.000G|ao)",
    "        3a9f1c20[VHD](40.000G//40.086G|ao)",
])


def test_chain_table_parents_and_depths():
    t = chain_table(TREE)
    assert list(t["vdi"]) == ["85ff84a8", "67558d6a", "11112222", "33334444", "3a9f1c20"]
    assert list(t["depth"]) == [0, 1, 1, 2, 0]
    assert [p if isinstance(p, str) else None for p in t["parent"]] == [None, "85ff84a8", "85ff84a8", "11112222", None]
    assert list(t["root"]) == ["85ff84a8"] * 4 + ["3a9f1c20"]
    assert t.loc[0, "hidden"] and not t.loc[1, "hidden"]
    assert t.loc[1, "virtual_size"] == 2020 << 30


def test_lost_indentation_gives_roots():
    t = chain_table("\n".join(line.strip() for line in TREE.splitlines()))
    assert set(t["depth"]) == {0} and t["parent"].isna().all()


def test_link_ids_unique_prefix_only():
    fulls = ["db4c3909-4b61-e5f6-8548-16dc56780f61", "67558d6a-1f2e-4c3b-9a8d-2b7c6e5f4a31",
             "abcd0000-0000-4000-8000-000000000000", "abcd1111-0000-4000-8000-000000000000"]
    links = link_ids(["db4c", "67558d6a", "abcd", "ffff"], fulls)
    assert links == {"db4c": fulls[0], "67558d6a": fulls[1]}


def test_render_tree_indents_children():
    text = render_tree(chain_table(TREE))
    assert text.splitlines()[1].startswith("     67558d6a") and "2020.0G" in text


def test_cow_tree_keeps_each_format():
    t = chain_table("\n".join([
        "        *0a1b2c3d[qcow2](2500.000G/600.000G/598.000G/602.125G|n)",
        "            4e5f6a7b[qcow2](2500.000G/30.000G/29.500G/32.125G|ao)",
        "        c1c2c3c4(100.000G/12.000G/11.900G)[vhd]",
    ]))
    assert list(t["format"]) == ["qcow2", "qcow2", "vhd"] and list(t["depth"]) == [0, 1, 0]
    text = render_tree(t)
    assert text.splitlines()[1].endswith("qcow2") and not text.splitlines()[2].endswith("vhd")
