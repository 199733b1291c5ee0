"""`runbook size` and `runbook inventory`: usage errors, JSON schema, plan file, offline inventory."""

import json

import pytest
from click.testing import CliRunner

from runbook_lib.cli import main
from tests.xapi_records import PoolRecords

GiB = 1 << 30


@pytest.fixture
def inventory_file(tmp_path):
    p = PoolRecords("lab")
    lvm = p.sr("Local SATA Storage", "lvm", 60 * GiB, 58 * GiB)
    nfs = p.sr("NFS staging", "nfs", 1000 * GiB, 10 * GiB, shared=True)
    base = p.vdi(lvm, 40 * GiB, 10762584064, managed=False)
    leaf = p.vdi(lvm, 40 * GiB, 43041947648, parent=base)
    vm = p.vm("big", "Running", [leaf])
    path = p.inventory().save(tmp_path / "inv.json")
    return path, p.uuid("SR", lvm), p.uuid("SR", nfs), p.uuid("VM", vm)


def run(*args, env=None):
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def test_without_a_source_it_says_so_with_exit_2():
    res = run("size")
    assert res.exit_code == 2
    assert "--url" in res.output and "--inventory" in res.output and "Traceback" not in res.output


def test_url_and_inventory_together_is_a_usage_error(inventory_file):
    path, *_ = inventory_file
    res = run("size", "--url", "https://x", "--inventory", str(path))
    assert res.exit_code == 2 and "not both" in res.output


def test_json_from_an_inventory_file(inventory_file, tmp_path):
    path, lvm, nfs, vm = inventory_file
    plan_path = tmp_path / "plan.json"
    res = run("size", "--inventory", str(path), "--json", "--plan-out", str(plan_path))
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["schema"] == "runbook.sizing/1"
    srs = {s["sr"]: s for s in out["srs"]}
    assert srs[lvm]["verdict"] == "short" and srs[lvm]["shortfall"] > 0
    assert srs[nfs]["verdict"] == "healthy" and srs[nfs]["shortfall"] == 0
    for s in out["srs"]:
        assert set(s) >= {"sr", "name", "type", "size", "used", "free", "needed", "shortfall", "verdict"}
    (c,) = out["coalesces"]
    assert set(c) >= {"vdi", "sr", "kind", "needed", "fits"} and c["fits"] is False
    kinds = [r["kind"] for r in out["remedies"]]
    assert kinds[0] == "move-vms" and set(kinds) <= {"grow-sr", "move-vms", "offline-coalesce", "delete-snapshots"}
    best = out["remedies"][0]
    assert best["vms"] == [vm] and best["sr"] == lvm
    for r in out["remedies"]:
        assert set(r) >= {"kind", "sr", "vms", "bytes_to_move", "frees", "duration_s", "downtime_s"}
    plan = json.loads(plan_path.read_text())
    assert plan["schema"] == "runbook.plan/1" and plan["staging_sr"]["uuid"] == nfs
    assert plan["pool"]["inventory"] == str(path) and plan["pool"]["url"] is None


def test_human_output_and_sr_filter(inventory_file):
    path, lvm, nfs, vm = inventory_file
    res = run("size", "--inventory", str(path), "--sr", nfs)
    assert res.exit_code == 0 and "nothing to plan" in res.output
    res = run("size", "--inventory", str(path))
    assert "Local SATA Storage" in res.output and "move-vms" in res.output and "short" in res.output


def test_unknown_sr_and_bad_inventory_are_one_line_errors(inventory_file, tmp_path):
    path, *_ = inventory_file
    res = run("size", "--inventory", str(path), "--staging-sr", "nope")
    assert res.exit_code == 2 and "no such SR" in res.output
    res = run("size", "--inventory", str(tmp_path / "missing.json"))
    assert res.exit_code == 2 and "not found" in res.output and "Traceback" not in res.output


def test_inventory_show(inventory_file):
    path, *_ = inventory_file
    res = run("inventory", "show", str(path))
    assert res.exit_code == 0 and "NFS staging" in res.output and "captured" in res.output


def test_inventory_save_needs_a_url(tmp_path):
    res = run("inventory", "save", "--out", str(tmp_path / "x.json"))
    assert res.exit_code == 2 and "--url" in res.output


def test_missing_password_variable_is_a_one_line_error(tmp_path):
    res = run("size", "--url", "https://127.0.0.1:1", "--password-env", "RUNBOOK_TEST_NO_SUCH_VAR")
    assert res.exit_code == 2
    assert "RUNBOOK_TEST_NO_SUCH_VAR is not set" in res.output and "Traceback" not in res.output


def test_smlog_gives_the_measured_rate(inventory_file, tmp_path):
    path, *_ = inventory_file
    smlog = tmp_path / "SMlog"
    smlog.write_text(
        "Jul  7 07:07:07 xs06 SMGC: [1300] Coalescing *0badf00d(20.000G/3.000G/3.250G)"
        " -> *0badcafe(20.000G/15.000G/15.250G)\n"
        "Jul  7 07:07:30 xs06 SMGC: [1300] Coalesced size = 16.123G\n")
    res = run("size", "--inventory", str(path), "--smlog", str(smlog), "--year", "2026", "--json")
    out = json.loads(res.output)
    assert out["throughput_source"] == "measured in SMlog"
    assert out["throughput_bps"] == pytest.approx(3.25 * GiB / 23)
    move = out["remedies"][0]
    assert move["duration_s"] == pytest.approx(2 * move["bytes_to_move"] / (3.25 * GiB / 23))
    res = run("size", "--inventory", str(path), "--throughput", "50", "--json")
    assert json.loads(res.output)["throughput_bps"] == 50 * 2**20


def test_against_the_simulator_wrong_password_unreachable_and_right(tmp_path):
    import socket

    from runbook_lib.sim import Simulator

    with Simulator("healthy") as sim:
        res = run("size", "--url", sim.url, "--password-env", "RUNBOOK_TEST_PW",
                  env={"RUNBOOK_TEST_PW": "Bad-Pw-42"})
        assert res.exit_code == 2 and res.output.count("\n") == 1
        assert res.output.startswith("error: login to ") and "Bad-Pw-42" not in res.output
        res = run("inventory", "save", "--url", sim.url, "--password-env", "RUNBOOK_TEST_PW",
                  "--out", str(tmp_path / "healthy.json"), env={"RUNBOOK_TEST_PW": sim.password})
        assert res.exit_code == 0 and "saved" in res.output
    out = json.loads(run("size", "--inventory", str(tmp_path / "healthy.json"), "--json").output)
    assert out["remedies"] == [] and all(s["shortfall"] == 0 for s in out["srs"])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    res = run("size", "--url", f"http://127.0.0.1:{port}/", "--password-env", "RUNBOOK_TEST_PW",
              env={"RUNBOOK_TEST_PW": "x"})
    assert res.exit_code == 1 and "connection refused" in res.output and "Traceback" not in res.output


def test_srs_by_short_uuid_or_name(inventory_file):
    path, lvm, nfs, vm = inventory_file
    out = json.loads(run("size", "--inventory", str(path), "--sr", lvm[:8], "--staging-sr", "NFS staging",
                         "--json").output)
    assert [s["sr"] for s in out["srs"]] == [lvm]
    assert out["remedies"][0]["staging_sr"]["uuid"] == nfs
    res = run("size", "--inventory", str(path), "--sr", "0")
    assert res.exit_code == 2 and "matches 2 SRs" in res.output


def test_an_unknown_running_disk_is_called_an_upper_bound_and_a_measured_size_makes_it_exact(inventory_file):
    path, lvm, nfs, vm = inventory_file
    res = run("size", "--inventory", str(path))
    assert "upper bound" in res.output and "vhd-util query -s -n /dev/VG_XenStorage-" + lvm in res.output
    assert "worst case" in res.output  # the grow-sr remedy says its size may be far too high
    # the leaf holds 1 GiB (test_sizing): needs 2160066560 bytes, 12 MiB more than the 2 GiB free
    res = run("size", "--inventory", str(path), "--json")
    leaf = json.loads(res.output)["coalesces"][0]["vdi"]
    res = run("size", "--inventory", str(path), "--json", "--vhd-size", f"{leaf[:8]}=1075929088")
    out = json.loads(res.output)
    (c,) = out["coalesces"]
    assert c["size_source"] == "given" and c["needed"] == 2160066560 and c["fits"] is False
    sr = next(s for s in out["srs"] if s["sr"] == lvm)
    assert sr["shortfall"] == 2160066560 - 2 * GiB and sr["sizes_known"]
    res = run("size", "--inventory", str(path), "--vhd-size", "feedbeef=10")
    assert res.exit_code == 2 and res.output.startswith("error: VHD size for feedbeef: no VDIs match")


def test_a_negative_rate_and_unwritable_outputs_are_one_line_errors(inventory_file, tmp_path):
    path, *_ = inventory_file
    res = run("size", "--inventory", str(path), "--throughput", "-5")
    assert res.exit_code == 2 and res.output.startswith("error: throughput must be a positive rate")
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    res = run("size", "--inventory", str(path), "--plan-out", str(blocker / "plan.json"))
    assert res.exit_code == 2 and res.output.startswith("error: cannot write the plan to ")
    res = run("inventory", "save", "--url", "sim:healthy", "--out", str(blocker / "inv.json"))
    assert res.exit_code == 2 and res.output.startswith("error: cannot write the inventory to ")
    assert "Traceback" not in res.output


def test_the_human_output_fits_a_120_column_terminal(inventory_file):
    path, *_ = inventory_file
    res = run("size", "--inventory", str(path), env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    # only the indented, copy-and-paste commands may be longer
    assert all(len(line) <= 120 for line in lines if not line.startswith("  vhd-util")), res.output
    assert not any(line.rstrip().endswith(" reason") for line in lines)
    assert "(assumed (100 MiB/s))" not in res.output and res.output.count("100 MiB/s") == 1
    full = json.loads(run("size", "--inventory", str(path), "--json").output)["remedies"][0]["reason"]
    numbered = next(i for i, line in enumerate(lines) if line.startswith("1. move-vms: "))
    shown = " ".join(line.strip() for line in lines[numbered:numbered + 5]
                     if line.startswith(("1. ", "   ")))[len("1. move-vms: "):]
    assert shown.startswith(full[:60]) and "--vhd-size" in shown


def test_a_very_long_reason_is_cut_and_points_to_json():
    import pandas as pd

    from runbook_lib.cli.size import REASON_LINES, _remedies_text

    table = pd.DataFrame([{"rank": 1, "kind": "move-vms", "sr": "0000", "feasible": True,
                           "vms": ", ".join(f"vm{i} (copy)" for i in range(20)), "move_gib": 1.0,
                           "frees_gib": 2.0, "duration_min": 1.0, "downtime_min": 1.0,
                           "reason": "word " * 400}])
    text = _remedies_text(table, 80).splitlines()
    reason = text[text.index("") + 1:]
    assert reason[0].startswith("1. move-vms: word word")
    assert len(reason) == REASON_LINES and reason[-1].endswith("... (full text: --json)")
    assert all(len(line) <= 80 for line in reason)
    assert "vm0 (copy), vm1 (copy), vm2 (..." in text[1]


def test_paths_that_are_not_files_are_one_line_errors(inventory_file, tmp_path):
    """A directory, a device or a binary file where a file is expected: `error: ...`, exit 2,
    and for --plan-out / --out before the pool is read (a device is never replaced by a file)."""
    path, *_ = inventory_file
    binary = tmp_path / "inv.bin"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    under_file = path / "plan.json"
    cases = [
        (["size", "--inventory", tmp_path], f"inventory file {tmp_path} is a directory"),
        (["size", "--inventory", "/dev/zero"], "inventory file /dev/zero is a character device, not a file"),
        (["size", "--inventory", binary],
         f"inventory file {binary} is not JSON text: it holds NUL bytes (a binary file?)"),
        (["size", "--inventory", path, "--findings", tmp_path], f"findings file {tmp_path} is a directory"),
        (["size", "--inventory", path, "--findings", binary],
         f"findings file {binary} is not JSON text: it holds NUL bytes (a binary file?)"),
        (["size", "--inventory", path, "--plan-out", tmp_path],
         f"cannot write the plan to {tmp_path}: it is a directory; give a file name"),
        (["size", "--inventory", path, "--plan-out", "/dev/null"],
         "cannot write the plan to /dev/null: it is a character device, not a file"),
        (["size", "--inventory", path, "--plan-out", under_file],
         f"cannot write the plan to {under_file}: {path} is not a directory"),
        (["inventory", "show", tmp_path], f"inventory file {tmp_path} is a directory"),
        (["inventory", "save", "--url", "sim:healthy", "--out", tmp_path],
         f"cannot write the inventory to {tmp_path}: it is a directory; give a file name"),
        (["inventory", "save", "--url", "sim:healthy", "--out", "/dev/null"],
         "cannot write the inventory to /dev/null: it is a character device, not a file"),
    ]
    for args, expected in cases:
        res = run(*map(str, args))
        assert (res.exit_code, res.output) == (2, f"error: {expected}\n"), args
    assert (tmp_path / "outputs").exists() is False


SEED_SR = "db4c3909-4b61-e5f6-8548-16dc56780f61"


def test_size_with_ssh_asks_the_simulators_dom0_and_plans_the_offline_coalesce():
    out = json.loads(run("size", "--url", "sim:seed-stuck-leaf-coalesce", "--ssh", "--json").output)
    sr = next(s for s in out["srs"] if s["sr"] == SEED_SR)
    assert sr["sizes_known"] and out["warnings"] == []
    assert out["coalesces"][0]["size_source"] == "host"
    chosen = next(r for r in out["remedies"] if r["kind"] == out["chosen"])
    assert out["chosen"] == "offline-coalesce" and chosen["downtime_s"] < 600


def test_without_ssh_the_shortfall_is_a_range():
    res = run("size", "--url", "sim:seed-stuck-leaf-coalesce")
    assert "Local SATA Storage: short by at least" in res.output and "at most 2,394.6 GiB" in res.output


def test_a_saved_inventory_keeps_the_dom0_sizes(tmp_path):
    path = tmp_path / "seed.json"
    res = run("inventory", "save", "--url", "sim:seed-stuck-leaf-coalesce", "--ssh", "--out", str(path))
    assert res.exit_code == 0 and "dom0 sizes of" in res.output
    out = json.loads(run("size", "--inventory", str(path), "--json").output)
    assert next(s for s in out["srs"] if s["sr"] == SEED_SR)["sizes_known"]
    res = run("size", "--inventory", str(path), "--ssh")
    assert res.exit_code == 2 and "saved inventory keeps the sizes" in res.output


def test_trust_on_first_use_needs_a_named_known_hosts_file():
    res = run("size", "--url", "sim:seed-stuck-leaf-coalesce", "--ssh", "--ssh-accept-new")
    assert res.exit_code == 2 and "--known-hosts" in res.output and "Traceback" not in res.output
