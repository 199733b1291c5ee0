"""SMlog and pool findings merged per SR and VDI; known defects applied to the rows they explain."""

import copy

from runbook_lib.findings_merge import apply_known_defects, log_sr_kinds, merge_findings, overall
from runbook_lib.known_defects import load_table, parse_table
from runbook_lib.sm_version import parse_sm_version

SR = "3b5d7f9b-1c3e-4a7c-8e2a-4c6e8a0c2e5f"
LEAF = "5d7f9b1d-3e5a-4c9e-a04c-6e8a0c2e4a7b"
OTHER_SR = "aaaa0000-1c3e-4a7c-8e2a-4c6e8a0c2e5f"


def _log():
    """A log of a file SR (no LV in the printout) whose leaf keeps timing out."""
    step = f"the live leaf-coalesce of {LEAF[:8]} keeps timing out: run notebooks/02_size_space.ipynb"
    return {"schema": "runbook.smlog.diagnosis/1", "verdict": "stuck-timeout", "next_step": step,
            "srs": [{"sr": SR, "name": "NFS VM store", "verdict": "stuck-timeout", "failures": 3,
                     "evidence": ["SMlog:9"], "next_step": step, "coalesce_rate_bps": None}],
            "vdis": [{"vdi": LEAF[:8], "sr": SR, "verdict": "stuck-timeout", "attempts": 3, "failures": 3,
                      "virtual_size": 200 << 30, "size": 6 << 30, "lv_size": None, "evidence": ["SMlog:12"],
                      "next_step": step}]}


def _pool(sr_type="nfs", findings=("chains-waiting",)):
    return {"schema": "runbook.pool.diagnosis/1", "verdict": "coalescing", "next_step": "pool step",
            "srs": [{"sr": SR, "name": "NFS VM store", "type": sr_type, "verdict": "coalescing", "to_coalesce": 1,
                     "gc_running": False, "gc_progress": None, "switches": {}, "findings": list(findings),
                     "evidence": ["1 VDI(s) to coalesce"], "next_step": "pool step"},
                    {"sr": OTHER_SR, "name": "other", "type": "lvm", "verdict": "healthy", "to_coalesce": 0,
                     "findings": [], "evidence": [], "next_step": "nothing to do"}],
            "vdis": [{"vdi": LEAF, "sr": SR, "name": "web disk 0", "verdict": "coalescing", "pending": "leaf",
                      "xo_length": 1, "findings": [], "evidence": [], "next_step": "pool vdi step"}]}


def test_rows_of_one_sr_and_one_vdi_become_one_with_the_worse_verdict():
    srs, vdis = merge_findings(_log(), _pool())
    sr = next(r for r in srs if r["sr"] == SR)
    assert sr["sources"] == ["smlog", "pool"] and sr["verdict"] == "stuck-timeout"
    assert (sr["smlog_verdict"], sr["pool_verdict"], sr["to_coalesce"], sr["failures"]) == (
        "stuck-timeout", "coalescing", 1, 3)
    assert sr["evidence"] == ["SMlog:9", "1 VDI(s) to coalesce"] and sr["type"] == "nfs"
    (vdi,) = vdis
    assert vdi["vdi"] == LEAF and vdi["sources"] == ["smlog", "pool"] and vdi["size"] == 6 << 30
    assert vdi["verdict"] == "stuck-timeout" and vdi["next_step"] == _log()["next_step"]
    assert [r["sr"] for r in srs][-1] == OTHER_SR and srs[-1]["sources"] == ["pool"]
    assert overall(srs, vdis)[0] == "stuck-timeout"


def test_the_pool_wins_when_it_is_worse_and_ambiguous_short_ids_stay_apart():
    pool = _pool()
    pool["vdis"][0].update(verdict="stuck-error", next_step="unpause it")
    _, vdis = merge_findings(_log(), pool)
    assert vdis[0]["verdict"] == "stuck-error" and vdis[0]["next_step"] == "unpause it"
    twin = copy.deepcopy(pool["vdis"][0])
    twin.update(vdi=LEAF[:8] + "-ffff-4c9e-a04c-6e8a0c2e4a7b")
    pool["vdis"].append(twin)
    _, vdis = merge_findings(_log(), pool)
    assert len(vdis) == 3 and all(len(v["sources"]) == 1 for v in vdis)


def test_log_only_or_pool_only():
    srs, vdis = merge_findings(_log(), None)
    assert srs[0]["sources"] == ["smlog"] and vdis[0]["vdi"] == LEAF[:8]
    srs, vdis = merge_findings(None, _pool())
    assert {r["sources"][0] for r in srs + vdis} == {"pool"}
    assert overall([], []) == ("unknown", "nothing was read: give SMlog paths, a pool URL, or both")


def test_the_filesr_defect_turns_free_space_advice_into_update_sm():
    log = _log()
    out = apply_known_defects(log, parse_sm_version("3.2.5-1.xs8"))
    vdi = out["vdis"][0]
    assert vdi["known_defect"] == {"id": "filesr-live-coalesce-units", "applies": "yes"}
    assert vdi["next_step"].startswith(f"update sm on the SR master of {SR}")
    assert "02_size_space" not in vdi["next_step"]
    assert out["next_step"] == vdi["next_step"] and out["verdict"] == "stuck-timeout"
    (defect,) = [d for d in out["known_defects"] if d["id"] == "filesr-live-coalesce-units"]
    assert defect["vdis"] == [LEAF[:8]] and defect["srs"] == [SR] and defect["sources"]
    assert out["sm_version"]["version"] == "3.2.5" and log["vdis"][0].get("known_defect") is None   # a copy


def test_a_version_outside_the_range_is_not_flagged():
    for version in ("3.2.12-1.xs8", "3.0.10", "3.2.3-1.8.xcpng8.3"):
        out = apply_known_defects(_log(), parse_sm_version(version))
        assert "known_defect" not in out["vdis"][0] and out["next_step"] == _log()["next_step"], version
        assert not [d for d in out["known_defects"] if d["id"] == "filesr-live-coalesce-units"]


def test_unknown_version_adds_what_to_check_and_lvm_is_never_flagged():
    out = apply_known_defects(_log(), None)
    step = out["vdis"][0]["next_step"]
    assert out["vdis"][0]["known_defect"]["applies"] == "maybe"
    assert step.startswith(_log()["next_step"]) and "rpm -q sm" in step and "update sm" in step
    lvm_log = _log()
    lvm_log["vdis"][0]["lv_size"] = 201 << 30
    assert log_sr_kinds(lvm_log) == {SR: "lvm"}
    out = apply_known_defects(lvm_log, parse_sm_version("3.2.5"))
    assert "known_defect" not in out["vdis"][0]
    out = apply_known_defects(_log(), parse_sm_version("3.2.5"), {SR: "lvmoiscsi"})   # the pool's type wins
    assert "known_defect" not in out["vdis"][0]


def test_a_pool_finding_symptom_and_a_new_row():
    pool = _pool(sr_type="lvm", findings=("gc-no-space-stale",))
    out = apply_known_defects(pool, parse_sm_version("4.1.7"), {SR: "lvm"})
    assert out["srs"][0]["known_defect"]["id"] == "gc-no-space-key-left"
    assert "not a lack of space" in out["srs"][0]["next_step"]
    data = {"schema": "runbook.known-defects/1", "defects": [{
        "id": "made-up", "title": "made up", "affects": {"from": "4.0.0", "before": "4.2.0"}, "sr_types": "all",
        "symptom": {"verdict": "coalescing"}, "next_step": "update sm, {sr}", "sources": ["this test"]}]}
    out = apply_known_defects(pool, parse_sm_version("4.1.7"), {SR: "lvm"}, parse_table(data).defects)
    assert out["srs"][0]["next_step"] == f"update sm, {SR}" and out["known_defects"][0]["id"] == "made-up"
    assert load_table().defects  # the shipped table is untouched
