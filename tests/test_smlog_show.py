"""The notebook's text: verdict first, human sizes, chains as an indented tree."""

from runbook_lib.smlog import diagnose, read_smlog, sample_path, show


def test_verdict_markdown_leads_with_the_verdict(data_dir):
    d = diagnose(read_smlog([data_dir / "smlog" / "seed_excerpt.log"], year=2026))
    text = show.verdict_markdown(d)
    assert text.startswith("### Verdict: STUCK: the live leaf-coalesce keeps timing out")
    assert "notebooks/02_size_space.ipynb" in text and "25 lines (0 unparsed)" in text


def test_vdi_table_sizes_in_gib(data_dir):
    d = diagnose(read_smlog([data_dir / "smlog" / "seed_excerpt.log"], year=2026))
    row = show.vdi_table(d).iloc[0]
    assert row["virtual_size"] == "2,020.0 GiB" and row["lv_size"] == "2,024.0 GiB" and row["size"] == ""
    assert row["evidence"] == "seed_excerpt.log:7, seed_excerpt.log:24"


def test_chains_text():
    text = show.chains_text(diagnose(read_smlog(sample_path())))
    lines = text.splitlines()
    assert lines[0] == "SR db4c3909-4b61-e5f6-8548-16dc56780f61 (Local SATA Storage)"
    assert lines[1].startswith("*85ff84a8") and lines[2].startswith("     67558d6a")


def test_chains_text_without_tree(data_dir):
    d = diagnose(read_smlog([data_dir / "smlog" / "seed_excerpt.log"], year=2026))
    assert "no VHD tree printout" in show.chains_text(d)


def test_verdict_markdown_names_the_release_and_its_lines(data_dir):
    seed = show.verdict_markdown(diagnose(read_smlog([data_dir / "smlog" / "seed_excerpt.log"], year=2026)))
    assert "**Storage manager:** sm ≤ 3.0.10" in seed and "`printout-lvm-3` (sm before 3.0.11, seed_excerpt.log:2)" in seed
    bare = show.verdict_markdown(diagnose(read_smlog([data_dir / "smlog" / "relink_excerpt.log"], year=2026)))
    assert "**Storage manager:** unknown: no line of this log tells the release" in bare
    rate = show.verdict_markdown(diagnose(read_smlog([data_dir / "smlog" / "tracker_abort.log"], year=2026)))
    assert rate.startswith("### Verdict: STUCK: the VM writes faster than the GC can merge its leaf")


def test_vdi_table_shows_qcow2_sizes_and_says_not_sized(data_dir):
    t = show.vdi_table(diagnose(read_smlog([data_dir / "smlog" / "qcow2_file.log"], year=2026)))
    rows = {v[:8]: r for v, r in zip(t["vdi"], t.to_dict("records"))}
    assert rows["b1b2b3b4"]["format"] == "qcow2" and rows["b1b2b3b4"]["virtual_size"] == "3,000.0 GiB"
    assert rows["b1b2b3b4"]["sizing"] == "not sized (QCOW2)" and rows["d1d2d3d4"]["sizing"] == ""
    assert rows["d1d2d3d4"]["coalesced_size"] == "13.5 GiB" and "sizing_note" not in t.columns


def test_sr_table_shows_the_rate_with_its_unit_and_counts_the_evidence_left_out():
    d = diagnose(read_smlog(sample_path()))
    t = show.sr_table(d).set_index("name")
    stuck, healthy = t.loc["Local SATA Storage"], t.loc["NFS VM store"]
    assert healthy["coalesce_rate"] == "13.5 MiB/s" and stuck["coalesce_rate"] == ""
    n = len(d.srs.set_index("name").loc["Local SATA Storage", "evidence"])
    assert n > 4 and stuck["evidence"].endswith(f" and {n - 4} more") and "..." not in stuck["evidence"]
    assert stuck["evidence"].startswith("SMlog:") and list(t.columns)[-1] == "next_step"
    assert stuck["next_step"] == d.srs.set_index("name").loc["Local SATA Storage", "next_step"]
