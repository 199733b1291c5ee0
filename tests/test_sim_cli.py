"""`runbook sim serve` and `runbook sim snapshot` as an administrator runs them."""

import datetime as dt
import os
import signal
import subprocess
import sys

import XenAPI
import yaml
from click.testing import CliRunner

from runbook_lib.cli import main
from runbook_lib.sim import Simulator

RUNBOOK = [sys.executable, "-m", "runbook_lib"]


def _serve(*args, env=None):
    proc = subprocess.Popen(RUNBOOK + ["sim", "serve", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    return proc, proc.stdout.readline().strip()


def test_serve_prints_its_url_first_and_serves(tmp_path):
    env = dict(os.environ, SIM_CLI_PW="another-pass")
    proc, first = _serve("--scenario", "healthy", "--port", "0", "--speed", "1000",
                         "--password-env", "SIM_CLI_PW", "--calls", str(tmp_path / "calls.jsonl"),
                         "--smlog", str(tmp_path / "SMlog"), "--fault", "vm-wont-stop", env=env)
    try:
        assert first.startswith("listening on http://127.0.0.1:")
        url = first.split(" ", 2)[2] + "/"
        s = XenAPI.Session(url)
        s.xenapi.login_with_password("root", "another-pass", "1.0", "tests")
        assert len(s.xenapi.SR.get_all()) == 2
        # the clock starts a day back by default (the scenario's is 2026-11-10), as `make demo` does
        ago = dt.datetime.now(dt.timezone.utc) - _servertime(s)
        assert dt.timedelta(hours=20) < ago < dt.timedelta(hours=24, minutes=5), ago
        s.xenapi.session.logout()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)
    assert "another-pass" not in (tmp_path / "calls.jsonl").read_text()


def _servertime(session) -> dt.datetime:
    host = session.xenapi.host.get_all()[0]
    return dt.datetime.strptime(str(session.xenapi.host.get_servertime(host)),
                                "%Y%m%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)


def test_serve_keeps_the_scenarios_clock_when_asked():
    proc, first = _serve("--scenario", "healthy", "--speed", "1", "--clock-start", "scenario")
    try:
        s = XenAPI.Session(first.split(" ", 2)[2] + "/")
        s.xenapi.login_with_password("root", "simulator", "1.0", "tests")
        assert _servertime(s).date() == dt.date(2026, 11, 10)
        s.xenapi.session.logout()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)


def test_clock_start_values_and_with_clock_start():
    from runbook_lib.errors import UsageError
    from runbook_lib.sim.scenarios import clock_start, load_scenario, with_clock_start

    now = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.timezone.utc)
    assert clock_start("now-24h", now) == dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.timezone.utc)
    assert clock_start("now-90m", now) == now - dt.timedelta(minutes=90)
    assert clock_start("now", now) == now
    assert clock_start("2026-11-25T08:00:00Z") == dt.datetime(2026, 11, 25, 8, 0, tzinfo=dt.timezone.utc)
    assert clock_start("2026-11-25 08:00") == dt.datetime(2026, 11, 25, 8, 0, tzinfo=dt.timezone.utc)
    seed = load_scenario("seed-stuck-leaf-coalesce")
    moved = with_clock_start(seed, "2026-11-25T09:30:00+01:00")
    assert moved["clock"] == {"start": "2026-11-25T08:30:00Z", "speed": 3600}
    assert seed["clock"]["start"] == "2026-12-06T02:20:00Z"  # the loaded scenario is left as it was
    import pytest

    with pytest.raises(UsageError, match="not an ISO date"):
        clock_start("yesterday")


def test_serve_refuses_other_addresses_and_bad_options():
    runner = CliRunner()
    result = runner.invoke(main, ["sim", "serve", "--host", "0.0.0.0"])
    assert result.exit_code == 2 and "127.0.0.1 only" in result.output
    result = runner.invoke(main, ["sim", "serve", "--fault", "nope"])
    assert result.exit_code == 2 and "unknown fault" in result.output
    result = runner.invoke(main, ["sim", "serve", "--password-env", "SURELY_NOT_SET_ANYWHERE"])
    assert result.exit_code == 2 and "SURELY_NOT_SET_ANYWHERE" in result.output
    result = runner.invoke(main, ["sim", "serve", "--scenario", "no-such"])
    assert result.exit_code == 2 and "unknown scenario" in result.output
    result = runner.invoke(main, ["sim", "serve", "--port", "99999"])
    assert result.exit_code == 2 and "--port" in result.output and "Traceback" not in result.output
    for option in ("--smlog", "--calls"):  # a path that cannot be written
        result = runner.invoke(main, ["sim", "serve", option, "/proc/no-such-dir/file"])
        assert result.exit_code == 2 and result.output.startswith("error: cannot write")
        assert "Traceback" not in result.output
    for fault, what in (("vm-wont-stop=no-such-vm", "no VM"), ("staging-full=no-such-sr", "no SR")):
        result = runner.invoke(main, ["sim", "serve", "--fault", fault])
        assert result.exit_code == 2 and result.output.startswith(f"error: --fault {fault}: scenario ")
        assert what in result.output and len(result.output.strip().splitlines()) == 1
    assert "fileserver" in runner.invoke(main, ["sim", "serve", "--fault", "vm-wont-stop=x"]).output  # what exists
    result = runner.invoke(main, ["sim", "serve", "--clock-start", "yesterday"])
    assert result.exit_code == 2 and "not an ISO date" in result.output
    result = runner.invoke(main, ["sim", "serve", "--list"])
    assert result.exit_code == 0 and "seed-stuck-leaf-coalesce" in result.output


def test_snapshot_command(tmp_path, monkeypatch):
    from runbook_lib.xapi.connect import connect
    from runbook_lib.xapi.inventory import fetch_inventory

    out = tmp_path / "pool.yaml"
    inv = tmp_path / "inv.json"
    with Simulator("nfs-only", speed=1) as sim:
        monkeypatch.setenv("XEN_PASSWORD", sim.password)
        result = CliRunner().invoke(main, ["sim", "snapshot", "--url", sim.url, "--out", str(out)])
        with connect(sim.url, "root", "XEN_PASSWORD") as session:
            fetch_inventory(session).save(inv)
    assert result.exit_code == 0, result.output
    assert "1 hosts, 1 SRs, 5 VDIs, 2 VMs" in result.output
    assert yaml.safe_load(out.read_text())["srs"][0]["name_label"] == "NFS VM store"
    # a saved inventory gives the same scenario, offline
    offline = tmp_path / "offline.yaml"
    result = CliRunner().invoke(main, ["sim", "snapshot", "--inventory", str(inv),
                                       "--out", str(offline)])
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(offline.read_text())["vdis"] == yaml.safe_load(out.read_text())["vdis"]
    result = CliRunner().invoke(main, ["sim", "snapshot", "--out", str(offline)])
    assert result.exit_code == 2 and "--url" in result.output
    monkeypatch.delenv("XEN_PASSWORD")
    result = CliRunner().invoke(main, ["sim", "snapshot", "--url", "http://127.0.0.1:9/",
                                       "--out", str(out)])
    assert result.exit_code == 2 and "XEN_PASSWORD" in result.output


def test_files_that_are_not_scenarios_or_not_files_are_one_line_errors(tmp_path):
    """A binary --scenario was a traceback; a plan or {} served an empty pool."""
    binary = tmp_path / "scenario.yaml"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    plan = tmp_path / "plan.json"
    plan.write_text('{"schema": "runbook.plan/1", "steps": []}')
    empty = tmp_path / "empty.json"
    empty.write_text("{}")
    hint = "(a scenario lists srs:, vdis: and vms:; see docs/simulator.md)"
    cases = [
        (["serve", "--scenario", binary],
         f"scenario file {binary} is not YAML/JSON text: it holds NUL bytes (a binary file?)"),
        (["serve", "--scenario", plan],
         f"{plan} is not a simulator scenario: it is a runbook.plan/1 file, not a pool {hint}"),
        (["serve", "--scenario", empty], f"{empty} is not a simulator scenario: no 'srs' list {hint}"),
        (["serve", "--scenario", tmp_path], f"scenario file {tmp_path} is a directory"),
        (["serve", "--scenario", "/dev/zero"], "scenario file /dev/zero is a character device, not a file"),
        (["serve", "--smlog", tmp_path], f"cannot write the SMlog to {tmp_path}: it is a directory; give a file name"),
        (["serve", "--calls", tmp_path],
         f"cannot write the call log to {tmp_path}: it is a directory; give a file name"),
        (["serve", "--calls", binary / "calls"],
         f"cannot write the call log to {binary / 'calls'}: {binary} is not a directory"),
        (["snapshot", "--inventory", binary, "--out", tmp_path / "s.yaml"],
         f"inventory file {binary} is not JSON text: it holds NUL bytes (a binary file?)"),
        (["snapshot", "--inventory", plan, "--out", tmp_path / "s.yaml"],
         f"{plan} is not a runbook.inventory/1 file (schema: 'runbook.plan/1')"),
        (["snapshot", "--inventory", tmp_path, "--out", tmp_path / "s.yaml"],
         f"inventory file {tmp_path} is a directory"),
        (["snapshot", "--url", "sim:healthy", "--out", tmp_path],
         f"cannot write the scenario to {tmp_path}: it is a directory; give a file name"),
        (["snapshot", "--url", "sim:healthy", "--out", binary / "s.yaml"],
         f"cannot write the scenario to {binary / 's.yaml'}: {binary} is not a directory"),
        (["snapshot", "--url", "sim:healthy", "--out", "/dev/null"],
         "cannot write the scenario to /dev/null: it is a character device, not a file"),
    ]
    for args, expected in cases:
        result = CliRunner().invoke(main, ["sim", *map(str, args)], catch_exceptions=False)
        assert (result.exit_code, result.output) == (2, f"error: {expected}\n"), args
    assert not (tmp_path / "s.yaml").exists()


def test_serve_with_ssh_prints_each_hosts_dom0_and_the_known_hosts_lines(capsys):
    from runbook_lib.cli.sim import _echo_ssh
    from runbook_lib.sim import Simulator

    with Simulator("seed-stuck-leaf-coalesce", ssh=True) as sim:
        _echo_ssh(sim)
        port = sim.ssh.ports["8e4f1a27-6c3b-4d95-a0e8-2b7c9d1f3e54"]
        lines = sim.ssh.known_hosts_lines()
    out = capsys.readouterr().out
    assert f"ssh: host xen (8e4f1a27) dom0 at 127.0.0.1:{port}, user root" in out
    assert f"  {lines[0]}" in out and f"--ssh-host xen=127.0.0.1:{port}" in out
