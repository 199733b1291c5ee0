"""`runbook diagnose`: the pool over XenAPI (changing nothing), SMlog files, or both."""

import json

from click.testing import CliRunner

from runbook_lib.cli import main
from runbook_lib.sim import Simulator

SR = "3b5d7f9b-1c3e-4a7c-8e2a-4c6e8a0c2e5f"


def invoke(*args):
    return CliRunner().invoke(main, ["diagnose", *map(str, args)])


def test_diagnose_url_changes_nothing_on_the_pool(tmp_path):
    """Every call `runbook diagnose --url` makes, in the simulator's call log, only reads."""
    calls, pw = tmp_path / "calls.jsonl", tmp_path / "pw"
    with Simulator("nfs-old-sm", calls=calls, speed=1) as sim:
        pw.write_text(sim.password)
        res = invoke("--url", sim.url, "--password-file", pw, "--json")
        mutating = {name for name, entry in sim.dispatcher.methods.items() if entry[3]}
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["schema"] == "runbook.diagnosis/1" and data["srs"][0]["sr"] == SR
    methods = [json.loads(line)["method"] for line in calls.read_text().splitlines()]
    assert {"SR.get_all_records", "VDI.get_all_records", "message.get_all_records_where",
            "task.get_all_records", "SM.get_all_records"} <= set(methods)
    assert not set(methods) & mutating
    assert all(m.rsplit(".", 1)[1].startswith("get_") or m in ("session.login_with_password", "session.logout")
               for m in methods), methods


def test_text_output_with_log_pool_and_version(tmp_path):
    log = tmp_path / "SMlog"
    with Simulator("nfs-old-sm", smlog=log, speed=1) as sim:
        sim.run_gc(SR)
        sim.run_gc(SR)
        pw = tmp_path / "pw"
        pw.write_text(sim.password)
        res = invoke(log, "--url", sim.url, "--password-file", pw, "--sm-version", "sm-3.2.3-1.7.xcpng8.3")
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert lines[0] == "verdict:   stuck-timeout" and lines[1].startswith("next step: update sm on the SR master")
    assert "sm:        sm 3.2.3-1.7.xcpng8.3 (parameter)" in lines
    assert any(line.startswith("defect:    filesr-live-coalesce-units (yes;") for line in lines)
    assert any(line.startswith(SR) and "smlog+pool" in line for line in lines)


def test_usage_errors_are_one_line_with_exit_2(tmp_path):
    res = invoke()
    assert res.exit_code == 2 and "nothing to diagnose" in res.output
    res = invoke(tmp_path / "SMlog", "--sm-version", "latest")
    assert res.exit_code == 2 and "not an sm version" in res.output and "Traceback" not in res.output


def test_smlog_diagnose_takes_the_version_too(data_dir):
    path = data_dir / "smlog" / "seed_excerpt.log"
    res = CliRunner().invoke(main, ["smlog", "diagnose", str(path), "--year", "2019", "--json",
                                    "--sm-version", "3.2.5"])
    data = json.loads(res.output)
    assert data["schema"] == "runbook.smlog.diagnosis/1" and data["sm_version"]["version"] == "3.2.5"
    # the seed is an LVM SR: the FileSR defect is not its cause, the advice stays
    assert not any(v.get("known_defect") for v in data["vdis"]) and "02_size_space" in data["next_step"]


def test_a_status_report_gives_the_log_and_sm_version(tmp_path, data_dir):
    import io
    import tarfile

    report = tmp_path / "bug-report-20261110.tar.gz"
    log = (data_dir / "smlog" / "seed_excerpt.log").read_bytes()
    with tarfile.open(report, "w:gz") as tf:
        for name, data in (("bug-report-20261110/rpm-qa.out", b"sm-3.2.11-1.xs8.x86_64\nxapi-core-1-1.x86_64\n"),
                           ("bug-report-20261110/var/log/SMlog", log)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    for command in (["diagnose"], ["smlog", "diagnose"]):
        res = CliRunner().invoke(main, [*command, str(report), "--year", "2019", "--json"])
        assert res.exit_code == 0, res.output
        data = json.loads(res.output)
        assert data["verdict"] == "stuck-timeout"
        assert data["sm_version"]["version"] == "3.2.11" and data["sm_version"]["source"].startswith("status report")
