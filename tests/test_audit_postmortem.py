"""runbook_lib.audit.postmortem and notebook 04 on the seed case: the demo incident's timeline."""

import datetime as dt
import json

import pandas as pd
import pytest

from runbook_lib.audit import postmortem
from runbook_lib.audit.runner import run_notebook
from runbook_lib.locations import notebooks_dir
from tests.conftest import DATA

NB = DATA / "notebooks"
SEED = DATA / "postmortem"
SR = "db4c3909-4b61-e5f6-8548-16dc56780f61"
STAGING = "5a1f0c2e-8d3b-4c6a-9e7f-0b1c2d3e4f50"
VM = "7e0b2a1c-3d4e-4f50-8a6b-9c0d1e2f3a4b"
G = 1 << 30


def _journal(folder, start):
    """What notebook 03's executor writes for the seed's copy-away-and-back remedy."""
    t = lambda minutes: (start + dt.timedelta(minutes=minutes)).isoformat()  # noqa: E731
    step = lambda kind: {"step": f"{VM}:{kind}", "vm": VM, "kind": kind}  # noqa: E731
    lines = [
        {"seq": 1, "time": t(1), "event": "run", "mode": "execute", "staging": STAGING, "vms": [VM]},
        {"seq": 2, "time": t(2), "event": "start", **step("copy-away"), "call": "VM.copy"},
        {"seq": 3, "time": t(30), "event": "done", **step("copy-away"), "call": "VM.copy",
         "before": {SR: 40 * G, STAGING: 3000 * G}, "after": {SR: 40 * G, STAGING: 976 * G}},
        {"seq": 4, "time": t(31), "event": "done", **step("destroy-original"), "call": "VM.destroy"},
        {"seq": 5, "time": t(32), "event": "done", **step("scan"), "call": "SR.scan"},
        {"seq": 6, "time": t(50), "event": "done", **step("wait-gc"), "after": {SR: 2100 * G}},
        {"seq": 7, "time": t(60), "event": "start", **step("copy-back"), "call": "VM.copy"},
        {"seq": 8, "time": t(80), "event": "done", **step("copy-back"), "call": "VM.copy",
         "after": {SR: 76 * G, STAGING: 3000 * G}},
        {"seq": 9, "time": t(81), "event": "finished", "status": "done", "message": "remedy complete"},
    ]
    text = "".join(json.dumps(line) + "\n" for line in lines) + '{"seq": 10, "time": "2026-11-\n'
    (folder / "transfer-journal.jsonl").write_text(text)


@pytest.fixture(scope="module")
def seed_incident(tmp_path_factory):
    """The seed case as the demo leaves it: a diagnosis run, a sizing run, a finished transfer."""
    out = tmp_path_factory.mktemp("outputs")
    diag = run_notebook(NB / "records.ipynb", "demo", {"records_file": str(SEED / "seed_diagnosis.json")}, outputs=out)
    plan = run_notebook(NB / "records.ipynb", "demo", {"records_file": str(SEED / "seed_plan.json")}, outputs=out)
    assert diag.exit_code == 0 and plan.exit_code == 0
    _journal(out / "demo", plan.end)
    return out, diag, plan


def test_the_timeline_shows_the_seed_case_in_order(seed_incident):
    out, diag, plan = seed_incident
    pm = postmortem.build("demo", out)
    tl = pm.timeline
    assert list(tl.columns) == postmortem.TIMELINE_COLUMNS
    assert tl["time"].is_monotonic_increasing
    seed_time = pd.Timestamp("2018-12-06 02:27:17", tz="UTC")
    first = tl.iloc[0]
    assert first["time"] == seed_time and first["source"] == "SMlog"
    smlog = tl[tl["source"] == "SMlog"]
    assert (smlog["time"] == seed_time).all()
    details = " ".join(smlog["detail"])
    assert "util.SMException: Timed out" in details and "VDI 67558d6a on SR db4c3909" in details
    runs = tl[tl["source"] == "run"]
    assert len(runs) == 4 and runs.iloc[0]["time"] == pd.Timestamp(diag.start)
    transfer = tl[tl["source"] == "transfer"]["event"].tolist()
    vm = f"VM {VM[:8]}"
    assert transfer == ["run", f"done copy-away {vm} (VM.copy)", f"done destroy-original {vm} (VM.destroy)",
                        f"done scan {vm} (SR.scan)", f"done wait-gc {vm}", f"done copy-back {vm} (VM.copy)",
                        "finished"]  # a step's start line is folded into its end line


def test_impact_detection_root_cause_and_space(seed_incident):
    out, diag, _ = seed_incident
    pm = postmortem.build("demo", out)
    assert pm.has_runs
    assert pm.impact["srs"] == [f"{SR} (Local SATA Storage)"]
    assert pm.impact["vdis_stuck"] == ["67558d6a (stuck-timeout, size 2,024.0 GiB)"]
    assert pm.impact["vms"] == ["db01"] and pm.impact["failures"] == 1
    assert pm.impact["stuck_for"] == "one failure in the log (no span)"
    assert pm.impact["shortfall"] == int(2023.953 * G) - 40 * G
    assert pm.detection["first_failure_in_log"] == pd.Timestamp("2018-12-06 02:27:17", tz="UTC")
    assert pm.detection["first_run"] == pd.Timestamp(diag.start)
    assert pm.detection["delay_s"] > 7 * 365 * 86400
    assert pm.root_cause["verdict"] == "stuck-timeout"
    assert "SMlog:7" in pm.root_cause["evidence"]
    assert pm.root_cause["exceptions"] == ["util.SMException: Timed out x1"]
    assert "copy the VM to the NFS staging SR" in pm.root_cause["remedy"]
    space = pm.space.set_index("sr")
    assert space.loc[SR, "before"] == 40 * G and space.loc[SR, "after"] == 76 * G
    assert space.loc[SR, "change"] == 36 * G and space.loc[SR, "name"] == "Local SATA Storage"
    assert space.loc[STAGING, "after"] == 3000 * G
    assert pm.impact["space_recovered"] == 36 * G  # only the affected SR counts, not the staging SR
    assert "stuck-timeout on" in pm.summary and "the transfer finished" in pm.summary
    assert not any("not carried out" in f for f in pm.follow_ups)
    assert pm.notes == ["1 torn journal line(s) skipped (a write cut short)"]


def test_links_carry_every_output_with_its_hash_and_notice_changes(seed_incident, tmp_path):
    out, diag, _ = seed_incident
    links = postmortem.build("demo", out).links
    assert len(links) == 4 and set(links["check"]) == {"ok"}
    assert diag.index_record["outputs"][0]["sha256"] in set(links["sha256"])
    copy = tmp_path / "copy"
    import shutil

    shutil.copytree(out, copy)
    target = copy / diag.index_record["outputs"][1]["path"]
    target.write_text("edited")
    pm = postmortem.build("demo", copy)
    assert "changed" in set(pm.links["check"])
    assert any("runbook verify" in f for f in pm.follow_ups)


def test_export_writes_markdown_png_and_self_contained_html(seed_incident, tmp_path):
    out, _, _ = seed_incident
    pm = postmortem.build("demo", out)
    paths = postmortem.export(pm, tmp_path / "pm")
    md = paths["md"].read_text()
    for title in postmortem.SECTION_TITLES:
        assert f"## {title}" in md
    assert "| 2018-12-06 02:27:17 | SMlog |" in md and "![timeline](pm.postmortem.png)" in md
    assert paths["png"].read_bytes().startswith(b"\x89PNG")
    page = paths["html"].read_text()
    assert "<table>" in page and "data:image/png;base64," in page and "stuck-timeout" in page


def test_notebook_04_on_the_seed_incident_exports_beside_itself(seed_incident):
    out, _, _ = seed_incident
    result = run_notebook(notebooks_dir() / "04_postmortem.ipynb", "demo", outputs=out)
    assert result.exit_code == 0, result.error
    assert result.parameters == {"incident": "demo"}
    assert result.records["postmortem"]["has_runs"] is True
    exported = [o["path"] for o in result.index_record["outputs"]]
    stem = result.output.stem
    assert f"demo/{stem}.postmortem.md" in exported and f"demo/{stem}.postmortem.html" in exported
    assert "util.SMException: Timed out" in (out / "demo" / f"{stem}.postmortem.md").read_text()
    assert len(postmortem.build("demo", out).timeline.query("source == 'run'")) == 4  # it does not review itself


def test_an_incident_without_runs_says_so(tmp_path, seed_incident):
    pm = postmortem.build("demo", tmp_path)
    assert not pm.has_runs and "No runs are recorded for incident 'demo'" in pm.summary
    assert "Incidents that do have runs" not in pm.summary
    other = postmortem.build("other", seed_incident[0])
    assert "Incidents that do have runs, newest first: demo (pass one" in other.summary
    assert pm.timeline.empty and pm.links.empty
    text = postmortem.sections(pm)
    assert list(text) == postmortem.SECTION_TITLES
    result = run_notebook(notebooks_dir() / "04_postmortem.ipynb", "demo", outputs=tmp_path)
    assert result.exit_code == 0 and result.records["postmortem"]["has_runs"] is False


def test_journals_are_read_tolerantly(tmp_path):
    (tmp_path / "transfer-journal.jsonl").write_text(
        '{"time": "2026-01-02T00:00:00Z", "event": "b"}\n[1, 2]\nnot json\n\n'
        '{"time": "2026-01-01T00:00:00Z", "event": "a"}\n{"event": "no time"}\n')
    # a JSON-lines file that is not a journal (the simulator's call log) is not read
    (tmp_path / "pool-calls.jsonl").write_text('{"time": "2026-01-01T00:00:00Z", "method": "VM.copy"}\n')
    records, torn = postmortem.read_journals(tmp_path)
    assert [r["event"] for r in records] == ["no time", "a", "b"] and torn == 1
    assert postmortem.read_journals(tmp_path / "missing") == ([], 0)


def test_the_real_diagnosis_notebook_feeds_the_seed_timeline(tmp_path):
    """Notebook 01 on the bundled sample (the seed excerpt inside a day of GC runs), then the postmortem."""
    out = tmp_path / "outputs"
    diag = run_notebook(notebooks_dir() / "01_diagnose_smlog.ipynb", "demo", {"year": 2018}, outputs=out)
    assert diag.exit_code == 0, diag.error
    pm = postmortem.build("demo", out)
    assert pm.root_cause["verdict"] == "stuck-timeout"
    assert pm.impact["srs"] == [f"{SR} (Local SATA Storage)"]
    smlog = pm.timeline[pm.timeline["source"] == "SMlog"]
    assert smlog["time"].max() == pd.Timestamp("2018-12-06 02:27:17", tz="UTC")  # the seed's Timed out
    assert smlog["event"].str.startswith("stuck-timeout").all()
    assert pm.detection["first_failure_in_log"] < pd.Timestamp("2018-12-06 02:27:17", tz="UTC")
    assert pm.impact["failures"] > 1 and pm.impact["stuck_for_s"] > 0


def test_an_empty_incident_means_the_latest_one_that_is_not_a_postmortem(tmp_path):
    from runbook_lib.audit import index

    out = tmp_path / "outputs"
    assert postmortem.latest_incident(out) is None
    index.append({"incident": "older", "records": {}}, out)
    index.append({"incident": "newer", "records": {"verdict": "stuck-timeout"}}, out)
    index.append({"incident": "review", "records": {"postmortem": {"incident": "newer"}}}, out)
    assert postmortem.latest_incident(out) == "newer"
    assert postmortem.build("", out).incident == "newer"
    assert postmortem.build("older", out).incident == "older"


def test_cli_only_work_is_reviewed_from_the_journal_and_the_plan(tmp_path):
    """`runbook transfer ... --incident INC-42` with no notebook runs indexed: the journal is the record."""
    folder = tmp_path / "INC-42"
    folder.mkdir()
    start = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.timezone.utc)
    _journal(folder, start)
    journal_only = postmortem.build("INC-42", tmp_path)
    assert not journal_only.has_runs
    assert "No notebook runs are recorded for incident 'INC-42'" in journal_only.summary
    assert journal_only.impact["srs"] == [f"{SR} (name unknown)"] and f"on {SR}" in journal_only.summary
    (folder / "plan.json").write_text(json.dumps(json.loads((SEED / "seed_plan.json").read_text())["plan"]))
    pm = postmortem.build("INC-42", tmp_path)
    assert "(a transfer journal, a plan)" in pm.summary and "the transfer finished" in pm.summary
    assert pm.root_cause["remedy"] and pm.impact["vms"]
    assert "nothing to review" not in pm.summary
    transfer = pm.timeline.query("source == 'transfer'")
    assert len(transfer) == 7 and transfer["event"].iloc[0].startswith("run")
    assert any("copy-back" in e for e in transfer["event"])
    assert "transfer: 5 step(s) done" in set(pm.actions["what"])
    space = pm.space.set_index("sr")
    assert space.loc[SR, "before"] == 40 * G and space.loc[SR, "after"] == 76 * G
    assert space.loc[SR, "source"] == "transfer journal"
    text = postmortem.sections(pm)
    assert "copy-away" in text["Timeline"] and "76.0 GiB" in text["Space before and after"]
    assert "Nothing recorded" not in text["What was done"]
    paths = postmortem.export(pm, tmp_path / "INC-42" / "review")
    assert "![timeline](review.postmortem.png)" in paths["md"].read_text()


def test_saved_findings_feed_a_postmortem_without_runs(tmp_path):
    folder = tmp_path / "INC-43"
    folder.mkdir()
    (folder / "smlog_findings.json").write_text((SEED / "seed_diagnosis.json").read_text())
    pm = postmortem.build("INC-43", tmp_path)
    assert not pm.has_runs and "SMlog findings" in pm.summary
    assert not pm.timeline.query("source == 'SMlog'").empty
    assert pm.root_cause["verdict"] == json.loads((SEED / "seed_diagnosis.json").read_text())["diagnosis"]["verdict"]
    assert pm.impact["vdis_stuck"] and "nothing to review" not in pm.summary


def test_html_export_lets_a_hash_or_path_cell_break_so_no_table_is_wider_than_the_page():
    sha = "bc64358a84574b204d83436cbc0d109ed88fba2884c1fbf69c893743d67546a"
    page = postmortem.to_html(f"| run | sha256 |\n|---|---|\n| 768596a2 | {sha} |\n", "t")
    assert f'class="long">{sha}</td>' in page and "<td>768596a2</td>" in page
    assert "td.long{word-break:break-all}" in page
