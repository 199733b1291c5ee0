"""`runbook smlog diagnose`: exit codes, one JSON object, a short human table."""

import json
import subprocess
import sys

from click.testing import CliRunner

from runbook_lib.cli import main


def invoke(*args):
    return CliRunner().invoke(main, ["smlog", "diagnose", *map(str, args)])


def test_json_is_exactly_one_object(data_dir):
    res = invoke(data_dir / "smlog" / "seed_excerpt.log", "--json", "--year", "2019")
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)  # fails on anything but one JSON document
    assert data["schema"] == "runbook.smlog.diagnosis/1" and data["verdict"] == "stuck-timeout"
    assert data["first"].startswith("2019-12-06T02:27:17")


def test_human_table(data_dir):
    res = invoke(data_dir / "smlog" / "nospace.log")
    assert res.exit_code == 0
    assert res.output.splitlines()[0] == "verdict:   stuck-no-space"
    assert "12ab34cd" in res.output and "Local storage" in res.output
    assert "evidence for 12ab34cd: " in res.output and "nospace.log:8" in res.output


def test_sr_filter_option(data_dir):
    res = invoke(data_dir / "smlog" / "interleaved.log", "--sr", "1111aaaa", "--json")
    assert json.loads(res.output)["verdict"] == "stuck-timeout"


def test_missing_path_exits_2_with_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "runbook_lib", "smlog", "diagnose", str(tmp_path / "nope")],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"error: {tmp_path / 'nope'}: no such file or directory"]
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_unreadable_archive_exits_2(tmp_path):
    bad = tmp_path / "report.tar.bz2"
    bad.write_bytes(b"garbage")
    res = invoke(bad)
    assert res.exit_code == 2 and "error:" in res.output


def test_damaged_input_still_exits_0(tmp_path):
    (tmp_path / "SMlog").write_bytes(b"\x00\xff\xfe garbage\n\n")
    res = invoke(tmp_path / "SMlog", "--json")
    data = json.loads(res.output)
    assert res.exit_code == 0 and data["verdict"] == "unknown" and data["unparsed"] == 2


def test_year_zero_means_from_the_files_and_bad_years_are_usage_errors(data_dir):
    assert invoke(data_dir / "smlog" / "seed_excerpt.log", "--year", "0").exit_code == 0
    res = invoke(data_dir / "smlog" / "seed_excerpt.log", "--year", "20")
    assert res.exit_code == 2 and "not a plausible year" in res.output and "Traceback" not in res.output


def _diagnose_proc(*paths, timeout=30):
    """The CLI in a subprocess: a hang fails the test (TimeoutExpired) instead of stalling the run."""
    return subprocess.run([sys.executable, "-m", "runbook_lib", "smlog", "diagnose", *map(str, paths)],
                          capture_output=True, text=True, timeout=timeout)


def test_devices_and_fifos_are_refused_before_they_are_opened(tmp_path):
    """`runbook smlog diagnose /dev/zero` never ended; a FIFO blocked in open()."""
    import os

    fifo = tmp_path / "SMlog"
    os.mkfifo(fifo)
    for path, kind in (("/dev/zero", "a character device"), (fifo, "a FIFO (named pipe)")):
        proc = _diagnose_proc(path)
        assert proc.returncode == 2 and proc.stdout == ""
        assert proc.stderr.splitlines() == [f"error: {path} is {kind}, not a log file"]
        assert "Traceback" not in proc.stderr


def test_a_directory_skips_its_devices_and_fifos_with_a_warning(tmp_path, data_dir):
    import os

    (tmp_path / "SMlog").write_bytes((data_dir / "smlog" / "nospace.log").read_bytes())
    os.mkfifo(tmp_path / "SMlog.fifo")
    (tmp_path / "SMlog.1").symlink_to("/dev/zero")
    proc = _diagnose_proc(tmp_path, "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["files"] == [{"path": str(tmp_path / "SMlog"), "lines": 11,
                                                 "bytes": (tmp_path / "SMlog").stat().st_size, "truncated": False}]
    assert proc.stderr.splitlines() == [
        f"warning:   skipped {tmp_path / 'SMlog.1'}: a character device, not a log file",
        f"warning:   skipped {tmp_path / 'SMlog.fifo'}: a FIFO (named pipe), not a log file"]


def test_size_smlog_refuses_a_fifo_in_one_line(tmp_path):
    import os

    fifo = tmp_path / "SMlog"
    os.mkfifo(fifo)
    proc = subprocess.run([sys.executable, "-m", "runbook_lib", "size", "--url", "sim:healthy", "--smlog", str(fifo)],
                          capture_output=True, text=True, timeout=60)
    assert (proc.returncode, proc.stderr) == (2, f"error: {fifo} is a FIFO (named pipe), not a log file\n")
