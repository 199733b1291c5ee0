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
                          "first_failure", "last_failure", "evidence", "next_step",
                          "format", "coalesced_size", "detail", "release", "sizing_note"}
    for s in j["srs"]:
        assert {"sr", "name", "verdict", "vdis", "trees", "release", "detail"} <= set(s)
    assert {"release", "release_markers"} <= set(j)


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


# -- the three field shapes of issue 14 ------------------------------------------------------------

def test_a_relink_failure_after_apparently_done_is_stuck_never_healthy(data_dir):
    d = run(data_dir, "relink_failure.log")
    j = d.to_json()
    assert j["verdict"] == "stuck-error"
    (sr,) = j["srs"]
    assert sr["verdict"] == "stuck-error" and sr["sr"] == "7a7b7c7d-1111-4222-8333-944455556666"
    vdis = {v["vdi"]: v for v in j["vdis"]}
    coalesced, child = vdis["3f0c9e21"], vdis["e25e01be"]  # the VDI merged and the child it could not relink
    assert coalesced["verdict"] == child["verdict"] == "stuck-error"
    assert (coalesced["attempts"], coalesced["failures"], child["attempts"], child["failures"]) == (1, 1, 0, 1)
    assert coalesced["detail"] == "relinking e25e01be failed: util.CommandException: No such file or directory"
    assert child["virtual_size"] == 120 << 30  # from its relink line
    assert "vhd-util query -p" in j["next_step"] and "relink" in j["next_step"]


def test_a_gc_exception_wins_over_any_success_line_before_it(data_dir, tmp_path):
    lines = (data_dir / "smlog" / "relink_failure.log").read_text().splitlines()
    # the merge itself is reported done before the relink fails
    lines.insert(2, "Mar  4 09:12:41 xcp02 SMGC: [41007] Coalesced size = 88.402G")
    (tmp_path / "SMlog").write_text("\n".join(lines) + "\n")
    d = diagnose(read_smlog([tmp_path / "SMlog"], year=2026))
    assert d.verdict == "stuck-error" and d.srs.iloc[0]["verdict"] == "stuck-error"


def test_an_excerpt_that_starts_at_the_exception_is_still_stuck(data_dir):
    d = run(data_dir, "relink_excerpt.log")
    assert d.verdict == "stuck-error" and d.vdis.empty
    assert "does not say on which VDI" in d.next_step and "No such file or directory" in d.next_step


def test_a_grep_coales_excerpt_is_coalescing_with_the_sizes_it_shows(data_dir):
    d = run(data_dir, "grep_coales.log")
    j = d.to_json()
    assert j["verdict"] == "coalescing"
    (v,) = j["vdis"]
    assert (v["vdi"], v["verdict"], v["format"]) == ("e25e01be", "coalescing", "vhd")
    assert (v["virtual_size"], v["size"], v["lv_size"]) == (80 << 30, round(12.301 * 2**30), round(80.164 * 2**30))


def test_a_running_line_then_its_coalesced_size_stays_coalescing(tmp_path):
    (tmp_path / "SMlog").write_text(
        "Mar  5 02:10:11 xcp03 SMGC: [5377]   Running VHD coalesce on *e25e01be[VHD](80.000G/12.301G/12.375G/80.164G|n)\n"
        "Mar  5 02:14:40 xcp03 SMGC: [5377] Coalesced size = 61.004G\n")
    (v,) = diagnose(read_smlog([tmp_path / "SMlog"], year=2026)).to_json()["vdis"]
    # without its `Coalescing X -> Y` start the log does not show the coalesce end (relink, delete)
    assert v["verdict"] == "coalescing" and v["coalesced_size"] == round(61.004 * 2**30) and v["attempts"] == 1


def test_lvm_lock_contention_is_benign_noise_counted_as_such(data_dir):
    j = run(data_dir, "lvm_lock.log").to_json()
    assert j["events"]["lock_contention"] == 1 and j["verdict"] == "healthy" and j["exceptions"] == []
    assert [s["verdict"] for s in j["srs"]] == ["healthy"]


# -- the tracker giving up, every release -----------------------------------------------------------

def test_the_tracker_giving_up_is_stuck_write_rate_not_damage(data_dir):
    j = run(data_dir, "tracker_abort.log").to_json()
    assert j["verdict"] == "stuck-write-rate"
    stuck = [v for v in j["vdis"] if v["verdict"].startswith("stuck")]
    # printed as 9c8b7a65, named in full by the exception: one VDI
    assert [v["vdi"] for v in stuck] == ["9c8b7a65-3e2d-4c1b-a098-f7e6d5c4b3a2"]
    assert not any(v["vdi"] == "9c8b7a65" for v in j["vdis"])
    (v,) = stuck
    assert (v["attempts"], v["failures"]) == (1, 1)
    assert v["detail"] == "No progress made for 3 iterations after 4 rounds"
    step = v["next_step"]
    assert "coalesce-leaf" in step and "leaf-coalesce=force" in step and "quieter moment" in step
    assert "do not run `vhd-util repair`" in step and "vhd-util check" not in step
    assert j["srs"][0]["verdict"] == "stuck-write-rate"


@pytest.mark.parametrize("cls", ["util.SMException", "<class 'util.SMException'>", "sm.core.util.SMException",
                                 "<class 'sm.core.util.SMException'>"])
def test_could_not_be_coalesced_with_either_exception_module(tmp_path, cls):
    uuid = "0f1e2d3c-aaaa-4bbb-8ccc-0123456789ab"
    (tmp_path / "SMlog").write_text(
        "Feb  2 04:00:01 xs72 SMGC: [8800] Leaf-coalescing 0f1e2d3c[VHD](500.000G//500.984G|ao) -> *4b5a6978[VHD](500.000G//500.984G|n)\n"
        "Feb  2 06:10:00 xs72 SMGC: [8800] Aborted coalesce\n"
        "Feb  2 06:10:00 xs72 SMGC: [8800] Max iterations (20) exceeded\n"
        f"Feb  2 06:10:00 xs72 SMGC: [8800] leaf-coalesce: EXCEPTION {cls}, VDI {uuid} could not be coalesced\n"
        "Feb  2 06:10:00 xs72 SMGC: [8800] Leaf-coalesce failed on 0f1e2d3c[VHD](500.000G//500.984G|ao), skipping\n")
    j = diagnose(read_smlog([tmp_path / "SMlog"], year=2026)).to_json()
    (v,) = j["vdis"]
    assert (v["vdi"], v["verdict"], v["failures"]) == (uuid, "stuck-write-rate", 1)
    assert v["detail"] == "Max iterations (20) exceeded"


def test_the_old_tracker_spelling_and_release(data_dir):
    j = run(data_dir, "tracker_abort_legacy.log").to_json()
    assert j["verdict"] == "stuck-write-rate" and j["release"].startswith("sm ≤ 3.0.10")
    assert j["vdis"][0]["detail"].startswith("Unexpected bump in size")


# -- other failures of sm 3.2 to 4.1 ----------------------------------------------------------------

def test_a_failing_gc_process_makes_its_sr_stuck(data_dir):
    j = run(data_dir, "gc_error.log").to_json()
    (sr,) = j["srs"]
    assert (sr["verdict"], sr["failures"]) == ("stuck-error", 1)  # `* * * * * SR ...: ERROR` is the same failure
    assert sr["detail"].startswith("the GC failed: XenAPI.Failure")
    assert "stops with an error" in sr["next_step"] and j["verdict"] == "stuck-error"


def test_an_error_line_alone_is_enough(tmp_path):
    (tmp_path / "SMlog").write_text(
        "Nov 20 14:00:03 xs8a SMGC: [2010] * * * * * SR 71727374-7576-4778-8900-aabbccddeeff: ERROR\n")
    j = diagnose(read_smlog([tmp_path / "SMlog"], year=2026)).to_json()
    assert j["verdict"] == "stuck-error" and j["srs"][0]["failures"] == 1


def test_a_later_gc_process_with_no_work_clears_an_sr_level_failure(data_dir, tmp_path):
    text = (data_dir / "smlog" / "gc_error.log").read_text()
    same = text + "Nov 20 14:00:04 xs8a SMGC: [2010] No work, exiting\n"
    later = text + ("Nov 20 15:00:00 xs8a SMGC: [2210] === SR 71727374-7576-4778-8900-aabbccddeeff: gc ===\n"
                    "Nov 20 15:00:01 xs8a SMGC: [2210] No work, exiting\n")
    verdicts = []
    for body in (same, later):
        (tmp_path / "SMlog").write_text(body)
        verdicts.append(diagnose(read_smlog([tmp_path / "SMlog"], year=2026)).verdict)
    assert verdicts == ["stuck-error", "healthy"]


def test_sigterm_during_a_coalesce_is_an_interruption_not_damage(data_dir):
    j = run(data_dir, "sigterm.log").to_json()
    (v,) = j["vdis"]
    assert (v["vdi"], v["verdict"], v["failures"]) == ("3a3b3c3d", "coalescing", 1)
    assert "Signalled 15" in v["detail"] and "stopped in the middle" in v["next_step"]
    assert j["verdict"] == "coalescing" and j["events"]["gc_stop"] == 2


def test_an_orphan_leaf_journal_gets_its_own_next_step(data_dir):
    j = run(data_dir, "journal_orphan.log").to_json()
    (v,) = j["vdis"]
    assert (v["vdi"], v["verdict"]) == ("5f5e5d5c-1b1a-4918-8716-151413121110", "stuck-error")
    assert "leaf_<uuid>" in v["next_step"] and "vhd-util" not in v["next_step"]
    assert j["srs"][0]["failures"] == 1


# -- XCP-ng 8.3 with QCOW2 --------------------------------------------------------------------------

def test_qcow2_sizes_are_shown_and_not_sized(data_dir):
    j = run(data_dir, "qcow2_file.log").to_json()
    vdis = {v["vdi"][:8]: v for v in j["vdis"]}
    q = vdis["b1b2b3b4"]
    assert (q["verdict"], q["format"], q["virtual_size"], q["size"]) == (
        "stuck-no-space", "qcow2", 3000 << 30, round(40.5 * 2**30))
    assert q["sizing_note"].startswith("not sized") and "not sized" in q["next_step"]
    assert "02_size_space" not in q["next_step"]
    v = vdis["d1d2d3d4"]
    assert (v["verdict"], v["format"], v["sizing_note"], v["coalesced_size"]) == ("healthy", "vhd", None, 13.5 * 2**30)
    assert j["release"] == "XCP-ng 8.3 with QCOW2" and j["srs"][0]["release"] == "XCP-ng 8.3 with QCOW2"


def test_a_chain_attached_on_two_hosts(tmp_path, data_dir):
    first_run = (data_dir / "smlog" / "qcow2_lvm.log").read_text().splitlines()[:11]
    (tmp_path / "SMlog").write_text("\n".join(first_run) + "\n")
    j = diagnose(read_smlog([tmp_path / "SMlog"], year=2026)).to_json()
    (v,) = j["vdis"]
    assert (v["vdi"], v["verdict"], v["format"]) == ("4e5f6a7b", "stuck-error", "qcow2")
    assert "attached on more than one host" in v["next_step"] and j["srs"][0]["failures"] == 1


def test_a_corrupt_qcow2_image_is_checked_with_qemu_img(data_dir):
    j = run(data_dir, "qcow2_lvm.log").to_json()
    top = j["vdis"][0]
    assert top["vdi"] == "4e5f6a7b" and "COW image" in top["detail"] and "qemu-img check" in top["next_step"]


def test_each_sr_names_the_release_of_the_host_that_logged_it(data_dir):
    j = diagnose(read_smlog([data_dir / "smlog" / "qcow2_lvm.log", data_dir / "smlog" / "tracker_abort_legacy.log"],
                            year=2026)).to_json()
    releases = {s["sr"][:8]: s["release"] for s in j["srs"]}
    assert releases == {"f1f2f3f4": "XCP-ng 8.3 with QCOW2",
                        "61626364": "sm ≤ 3.0.10 (XenServer 7.x, Citrix Hypervisor 8.2, XCP-ng 8.2)"}
    assert j["release"] == "XCP-ng 8.3 with QCOW2"  # the log as a whole: the newest family
    assert {v["release"] for v in j["vdis"]} == set(releases.values())


def test_verdict_vocabulary_worst_first():
    assert VERDICTS == ("stuck-error", "stuck-no-space", "stuck-timeout", "stuck-write-rate", "coalescing", "healthy",
                        "unknown")


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from tests.test_smlog_events import _PIECES  # noqa: E402

_FAILING_COALESCE = ["Coalescing *77aa12cd[VHD](50.000G///3.004G|n) -> *0d9e8f7a[VHD](50.000G///20.125G|n)",
                     "==> Coalesce apparently already done: skipping",
                     "coalesce: EXCEPTION <class 'util.CommandException'>, No such file or directory",
                     "Coalesce failed, skipping"]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([1, 2, 3]), st.one_of(st.sampled_from(_PIECES), st.text(max_size=40))),
                max_size=30))
def test_a_coalesce_that_fails_last_is_stuck_whatever_came_before(tmp_path_factory, lines):
    """Any GC lines, then a coalesce whose relink fails in process 9: the log is stuck-error, and
    every verdict stays in the vocabulary."""
    path = tmp_path_factory.mktemp("log") / "SMlog"
    body = [f"Dec 6 02:27:{i % 60:02d} xen SMGC: [{pid}] {msg}" for i, (pid, msg) in enumerate(lines)]
    body += [f"Dec 6 03:00:00 xen SMGC: [9] {msg}" for msg in _FAILING_COALESCE]
    path.write_text("\n".join(body) + "\n", encoding="utf-8", errors="surrogatepass")
    j = diagnose(read_smlog([path], year=2026)).to_json()
    assert j["verdict"] == "stuck-error"
    assert next(v for v in j["vdis"] if v["vdi"] == "77aa12cd")["verdict"] == "stuck-error"
    assert {v["verdict"] for v in j["vdis"]} | {s["verdict"] for s in j["srs"]} <= set(VERDICTS)
