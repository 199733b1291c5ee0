"""`runbook check-pool`: the table, --json, exit 0 / 3, and the usage errors."""

import json

from click.testing import CliRunner

from runbook_lib.cli import main
from runbook_lib.sim import Simulator
from tests.check_pools import mixed_pool
from tests.transfer_pool import changing_calls


def invoke(*args):
    return CliRunner().invoke(main, ["check-pool", *map(str, args)])


def test_the_table_on_a_pool_over_its_url(tmp_path):
    calls, pw = tmp_path / "calls.jsonl", tmp_path / "pw"
    with Simulator(mixed_pool(), calls=calls) as sim:
        pw.write_text(sim.password)
        res = invoke("--url", sim.url, "--password-file", pw)
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert lines[0].startswith("pool mixed, read ") and lines[0].endswith("0 problem(s), 4 warning(s), 13 ok")
    assert lines[1] == "" and lines[2].split() == ["status", "check", "subject", "detail"]
    rows = [line.split(None, 2) for line in lines[3:]]
    assert len(rows) == 17 and {r[0] for r in rows} == {"ok", "warning"}
    assert any(r[:2] == ["warning", "plugin"] and "Thin local" in r[2] for r in rows)
    # the subject column is as wide as the longest subject: details start in one column
    column = lines[2].index("detail")
    assert all(line[column - 1] == " " and line[column] != " " for line in lines[3:])
    assert set(changing_calls(calls)) == {"host.call_plugin"}


def test_json_on_the_embedded_simulator():
    res = invoke("--url", "sim:nfs-only", "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["schema"] == "runbook.pool.check/1" and data["status"] == "ok" and data["exit_code"] == 0
    assert data["source"] == {"url": "sim:nfs-only", "kind": "simulator"}
    assert {i["check"] for i in data["items"]} >= {"version", "sr", "plugin", "fields"}


def test_a_problem_exits_3(tmp_path):
    pw = tmp_path / "pw"
    with Simulator("healthy") as sim:
        with sim.pool.lock:
            for rec in sim.state.tables["VBD"].values():
                rec.pop("bootable")
        pw.write_text(sim.password)
        res = invoke("--url", sim.url, "--password-file", pw, "--json")
    assert res.exit_code == 3, res.output
    data = json.loads(res.output)
    assert data["status"] == "problem" and data["exit_code"] == 3
    (problem,) = [i for i in data["items"] if i["status"] == "problem"]
    assert problem["subject"] == "VBD" and "lack bootable" in problem["detail"]


def test_usage_errors():
    res = invoke()
    assert res.exit_code == 2 and "say which pool to check: --url URL" in res.output
    res = invoke("--inventory", "saved.json")   # the preflight needs the pool itself
    assert res.exit_code == 2 and "No such option '--inventory'" in res.output
    res = invoke("--url", "https://user:pw@xs01.example")
    assert res.exit_code == 2 and "holds a user or password" in res.output and "Traceback" not in res.output
