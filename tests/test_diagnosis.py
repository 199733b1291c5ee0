"""One diagnosis from the log, the pool, or both, with sm's version (diagnosis.py), on the simulator."""

import io
import json
import tarfile

import pytest

from runbook_lib.diagnosis import read_sm_version, report_version, run_diagnosis
from runbook_lib.errors import UsageError
from runbook_lib.sim import Simulator

SR = "3b5d7f9b-1c3e-4a7c-8e2a-4c6e8a0c2e5f"
LEAF = "5d7f9b1d-3e5a-4c9e-a04c-6e8a0c2e4a7b"


@pytest.fixture(scope="module")
def old_sm(tmp_path_factory):
    """The nfs-old-sm pool after three GC runs (its SMlog), still serving, with its call log."""
    tmp = tmp_path_factory.mktemp("oldsm")
    log, calls, pw = tmp / "SMlog", tmp / "calls.jsonl", tmp / "pw"
    sim = Simulator("nfs-old-sm", smlog=log, calls=calls, speed=1)
    sim.start()
    for _ in range(3):
        sim.run_gc(SR)
    pw.write_text(sim.password)
    yield {"sim": sim, "log": log, "calls": calls, "options": {"password_env": None, "password_file": str(pw)}}
    sim.stop()


def _methods(calls):
    return [json.loads(line)["method"] for line in calls.read_text().splitlines()]


def test_pool_only_sees_the_waiting_chain_but_not_why(old_sm):
    result = run_diagnosis(url=old_sm["sim"].url, **old_sm["options"])
    data = result.to_json()
    assert data["schema"] == "runbook.diagnosis/1" and data["smlog"] is None
    (sr,) = data["srs"]
    assert (sr["sr"], sr["verdict"], sr["to_coalesce"], sr["sources"]) == (SR, "coalescing", 1, ["pool"])
    assert result.sm.product == "XCP-ng 8.3.0" and not result.sm.known     # XenAPI does not tell sm's version
    assert data["vdis"][0]["vdi"] == LEAF and data["vdis"][0]["pending"] == "leaf"


def test_log_and_pool_merged_with_the_version_say_update_sm(old_sm):
    result = run_diagnosis(paths=[str(old_sm["log"])], url=old_sm["sim"].url, sm_version="3.2.3-1.7.xcpng8.3",
                           **old_sm["options"])
    data = result.to_json()
    assert data["verdict"] == "stuck-timeout"
    assert data["next_step"].startswith(f"update sm on the SR master of {SR}")
    vdi = next(v for v in data["vdis"] if v["vdi"] == LEAF)
    assert vdi["sources"] == ["smlog", "pool"] and vdi["known_defect"]["applies"] == "yes"
    assert vdi["smlog_verdict"] == "stuck-timeout" and vdi["pool_verdict"] == "coalescing"
    assert data["sm_version"]["source"] == "parameter"
    fixed = run_diagnosis(paths=[str(old_sm["log"])], url=old_sm["sim"].url, sm_version="3.2.3-1.8.xcpng8.3",
                          **old_sm["options"]).to_json()
    assert fixed["verdict"] == "stuck-timeout" and "update sm" not in fixed["next_step"]


def test_without_a_version_the_answer_says_what_to_check(old_sm):
    data = run_diagnosis(paths=[str(old_sm["log"])], url=old_sm["sim"].url, **old_sm["options"]).to_json()
    assert "rpm -q sm" in data["next_step"] and "filesr-live-coalesce-units" in data["next_step"]


def test_the_diagnosis_changes_nothing_on_the_pool(old_sm):
    before = len(old_sm["calls"].read_text().splitlines())
    run_diagnosis(paths=[str(old_sm["log"])], url=old_sm["sim"].url, **old_sm["options"])
    methods = _methods(old_sm["calls"])[before:]
    mutating = {name for name, entry in old_sm["sim"].dispatcher.methods.items() if entry[3]}
    assert methods and not set(methods) & mutating
    assert all(m.rsplit(".", 1)[1].startswith("get_") or m in ("session.login_with_password", "session.logout")
               for m in methods), methods


def _report(path, sm):
    with tarfile.open(path, "w:gz") as tf:
        for name, text in (("bug-report-1/rpm-qa.out", f"{sm}.x86_64\n"), ("bug-report-1/var/log/SMlog", "")):
            info = tarfile.TarInfo(name)
            info.size = len(text)
            tf.addfile(info, io.BytesIO(text.encode()))
    return path


def test_the_version_from_a_status_report_and_the_parameter_first(tmp_path, old_sm):
    report = _report(tmp_path / "report.tar.gz", "sm-3.2.5-1.xs8")
    sm = report_version([str(old_sm["log"]), str(report)])
    assert str(sm.version) == "3.2.5" and sm.source.startswith("status report")
    assert read_sm_version("3.2.12", [str(report)]).source == "parameter"
    assert read_sm_version(None, [str(old_sm["log"])]) is None


def test_nothing_or_a_bad_version_is_refused_before_reading(tmp_path):
    with pytest.raises(UsageError, match="nothing to diagnose"):
        run_diagnosis()
    with pytest.raises(UsageError, match="not an sm version"):
        run_diagnosis(paths=[str(tmp_path / "missing")], sm_version="newest")
