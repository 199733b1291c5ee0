"""Verdicts per VDI / SR / overall with evidence and next steps; the JSON schema."""

import pytest

from runbook_lib.smlog import SCHEMA, VERDICTS, diagnose, read_smlog, sample_path
from runbook_lib.smlog.rate import coalesce_rates

SR = "db4c3909-4b61-e5f6-8548-16dc56780f61"


def run(data_dir, name, **kw):
    return diagnose(read_smlog([data_dir / "smlog" / name], year=2026), **kw)


def test_seed_excerpt_is_stuck_timeout(data_dir):
    d = run(data_dir, "seed_excerpt.log")
    j = d.to_json()
    assert j["schema"] == SCHEMA and j["verdict"] == "stuck-timeout"
    (vdi,) = j["vdis"]
    assert vdi["vdi"] == "67558d6a" and vdi["verdict"] == "stuck-timeout" and vdi["sr"] == SR
    assert vdi["virtual_size"] == 2168958484480 and vdi["lv_size"] == round(2023.953 * 2**30)
    assert (vdi["attempts"], vdi["failures"]) == (1, 1)
    assert vdi["evidence"] == [f"{data_dir / 'smlog' / 'seed_excerpt.log'}:7", f"{data_dir / 'smlog' / 'seed_excerpt.log'}:24"]
    assert "notebooks/02_size_space.ipynb" in vdi["next_step"] and SR in vdi["next_step"]
    assert f"`runbook size --sr {SR}`" in vdi["next_step"]  # the CLI user's way to the same sizing
    (sr,) = j["srs"]
    assert (sr["sr"], sr["name"], sr["vdis"], sr["trees"], sr["verdict"]) == (SR, "Local SATA Storage", 5, 4, "stuck-timeout")
    assert [(e["type"], e["message"], e["count"]) for e in j["exceptions"]] == [("util.SMException", "Timed out", 1)]


@pytest.mark.parametrize("name,verdict,vdi", [
    ("nospace.log", "stuck-no-space", "12ab34cd"),
    ("error.log", "stuck-error", "deadbeef"),
    ("rollover.log", "healthy", "11aa22bb"),
    ("filesr.log", "healthy", "0badf00d"),
    ("interleaved.log", "stuck-error", "bbbb0002"),
    ("iso.log", "stuck-timeout", "67558d6a"),
    ("bare.log", "stuck-timeout", "67558d6a"),
    ("quoted.log", "stuck-timeout", "67558d6a"),
])
def test_verdicts_of_the_format_variants(data_dir, name, verdict, vdi):
    d = run(data_dir, name)
    assert d.verdict == verdict
    assert d.vdis.iloc[0]["vdi"] == vdi and d.vdis.iloc[0]["verdict"] == verdict


def test_no_space_next_step_names_notebook_02_and_runbook_size():
    from runbook_lib.smlog.diagnose import next_step

    text = next_step("stuck-no-space", "db4c3909", "12ab34cd")
    assert "notebooks/02_size_space.ipynb" in text and "`runbook size --sr db4c3909`" in text


def test_error_next_step_names_vhd_util(data_dir):
    assert "vhd-util check" in run(data_dir, "error.log").next_step


def test_benign_noise_is_not_a_failure(data_dir):
    d = run(data_dir, "benign.log")
    assert d.verdict == "healthy" and d.to_json()["exceptions"] == [] and d.vdis.empty


def test_sr_filter_keeps_one_sr(data_dir):
    d = run(data_dir, "interleaved.log", sr="1111aaaa")
    assert d.verdict == "stuck-timeout" and list(d.srs["sr"]) == ["1111aaaa-2222-4333-8444-555566667777"]
    other = run(data_dir, "interleaved.log", sr="0000ffff")
    assert other.verdict == "unknown" and "xe sr-scan" in other.next_step


def test_no_gc_evidence_is_unknown(tmp_path):
    (tmp_path / "SMlog").write_text("Nov  1 00:00:00 xs01 SM: [1] lock: acquired /x\n")
    d = diagnose(read_smlog([tmp_path / "SMlog"], year=2026))
    assert d.verdict == "unknown" and d.to_json()["vdis"] == []


def test_success_after_failures_clears_the_vdi(data_dir, tmp_path):
    text = (data_dir / "smlog" / "seed_excerpt.log").read_text()
    text += "Dec 6 03:27:17 xen SMGC: [10999] Leaf-coalescing 67558d6a[VHD](2020.000G//2023.953G|ao) -> *85ff84a8[VHD](1G//1G|n)\n"
    text += "Dec 6 03:27:30 xen SMGC: [10999] *** FINISH LEAF-COALESCE\n"
    (tmp_path / "SMlog").write_text(text)
    d = diagnose(read_smlog([tmp_path / "SMlog"], year=2026))
    v = d.vdis.iloc[0]
    assert (v["verdict"], v["attempts"], v["failures"]) == ("healthy", 2, 1)


def test_sample_default_diagnosis():
    d = diagnose(read_smlog(sample_path()))
    j = d.to_json()
    assert j["verdict"] == "stuck-timeout"
    top = j["vdis"][0]
    assert top["vdi"].startswith("67558d6a") and top["sr"] == SR and top["failures"] >= 10
    assert any(s["sr"] == SR and s["name"] == "Local SATA Storage" for s in j["srs"])
    assert set(v["verdict"] for v in j["vdis"]) <= set(VERDICTS)
    tl = d.timeline
    assert list(tl.columns) == ["gc_runs", "attempts", "coalesces", "failures"] and tl["failures"].sum() == top["failures"]
    chains = d.chains
    assert set(chains["sr"]) == {SR, "9f3b2c1e-7d4a-4e8b-b1c2-5a6d7e8f9012"}
    leaf = chains[chains["vdi"] == "67558d6a"].iloc[0]
    assert leaf["parent"] == "85ff84a8" and leaf["depth"] == 1 and leaf["uuid"].startswith("67558d6a-")
    assert d.exceptions.iloc[0]["count"] == top["failures"]


def test_json_schema_keys_and_types(data_dir):
    j = run(data_dir, "nospace.log").to_json()
    assert {"schema", "files", "lines", "parsed", "unparsed", "first", "last", "events", "exceptions", "srs",
            "vdis", "verdict", "next_step"} <= set(j)
    for v in j["vdis"]:
        assert set(v) == {"vdi", "sr", "verdict", "attempts", "failures", "virtual_size", "size", "lv_size", "flags",
                          "first_failure", "last_failure", "evidence", "next_step"}
    for s in j["srs"]:
        assert {"sr", "name", "verdict", "vdis", "trees"} <= set(s)


def test_coalesce_rate_from_finished_coalesces(data_dir):
    # filesr.log: a 3.000G VHD coalesced from 07:07:07 to 07:07:30 (23 s)
    j = run(data_dir, "filesr.log").to_json()
    assert j["srs"] == []  # the excerpt names no SR
    d = diagnose(read_smlog([sample_path()]))
    nfs = next(s for s in d.to_json()["srs"] if s["name"] == "NFS VM store")
    # the child's allocated 1.250G (its VHD is 1.211G) merged in 95 s: the rate sizing uses too
    assert nfs["coalesce_rate_bps"] == round(1.250 * 2**30 / 95)
    assert nfs["coalesce_rate_bps"] == round(coalesce_rates(d.records)[nfs["sr"]])
    lvm = next(s for s in d.to_json()["srs"] if s["name"] == "Local SATA Storage")
    assert lvm["coalesce_rate_bps"] is None


def test_sr_level_no_space_echo_is_not_a_second_failure(data_dir):
    d = run(data_dir, "nospace.log")
    # 08:00:02 the VDI's no-space, 09:00:00 the SR-level line an hour later: two failures in the timeline
    assert d.timeline["failures"].sum() == 2


def test_lock_failures_get_wait_and_retry_advice_not_vhd_util(tmp_path):
    text = ("Jun  6 06:06:06 xs05 SMGC: [1200] === SR 3c3c3c3c-aaaa-4bbb-8ccc-dddddddddddd: gc ===\n"
            "Jun  6 06:06:07 xs05 SMGC: [1200] Leaf-coalescing 0a0b0c0d[VHD](8.000G//8.016G|ao) -> *0e0f0a0b[VHD](8.000G//8.016G|n)\n"
            "Jun  6 06:06:08 xs05 SMGC: [1200] leaf-coalesce: EXCEPTION util.SMException, Failed to pause VDI 0a0b0c0d\n"
            "Jun  6 06:06:08 xs05 SMGC: [1200] Leaf-coalesce failed, skipping\n")
    (tmp_path / "SMlog").write_text(text)
    d = diagnose(read_smlog([tmp_path / "SMlog"], year=2026))
    assert d.verdict == "stuck-error"
    assert "another operation holds" in d.next_step and "vhd-util" not in d.next_step


def test_sr_rows_carry_evidence_and_counts(data_dir):
    j = run(data_dir, "seed_excerpt.log").to_json()
    (sr,) = j["srs"]
    assert (sr["attempts"], sr["failures"]) == (1, 1)
    assert sr["evidence"] == j["vdis"][0]["evidence"] and sr["last_failure"] == j["vdis"][0]["last_failure"]
    healthy = run(data_dir, "benign.log").to_json()["srs"][0]
    assert healthy["verdict"] == "healthy" and healthy["evidence"] and healthy["failures"] == 0


def test_a_deleted_vdi_is_no_longer_stuck(data_dir, tmp_path):
    text = (data_dir / "smlog" / "error.log").read_text()
    text += "Jun  6 07:00:00 xs05 SMGC: [1300] Deleting unlinked VDI *deadbeef[VHD](80.000G/10.000G/10.500G/80.156G|n)\n"
    (tmp_path / "SMlog").write_text(text)
    d = diagnose(read_smlog([tmp_path / "SMlog"], year=2026))
    v = d.vdis.iloc[0]
    assert (v["vdi"], v["verdict"], v["failures"]) == ("deadbeef", "healthy", 1)
    assert v["evidence"][-1].endswith(":7")
