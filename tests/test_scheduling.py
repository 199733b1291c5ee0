"""scheduling/: the cron line, the systemd units and the Airflow DAG point at real notebooks and
valid, credential-free parameters files, agree on the time, and the scheduled command works."""

import ast
import configparser
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from runbook_lib.audit import params
from tests.conftest import ROOT

SCHED = ROOT / "scheduling"
DAG = SCHED / "airflow" / "runbook_snapshot_hygiene.py"
POOLS = sorted((ROOT / "parameters" / "pools").glob("*.yaml"))
NOTEBOOK_05 = ROOT / "notebooks" / "05_snapshot_hygiene.ipynb"


def _dag_paths() -> dict:
    """Run the DAG file's plain-Python head (everything before the first Airflow import)."""
    tree = ast.parse(DAG.read_text())
    head = []
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("airflow"):
            break
        head.append(node)
    namespace = {"__file__": str(DAG), "__name__": "dag_head"}
    exec(compile(ast.Module(body=head, type_ignores=[]), str(DAG), "exec"), namespace)
    return namespace


def _unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None, comment_prefixes=("#", ";"))
    parser.optionxform = str
    parser.read_string(path.read_text())
    return parser


def _cron_entry() -> list[str]:
    lines = [ln for ln in (SCHED / "cron" / "runbook-hygiene").read_text().splitlines()
             if ln.strip() and not ln.startswith("#") and not re.match(r"^[A-Z_]+=", ln)]
    assert len(lines) == 1
    return lines[0].split(None, 6)


@pytest.mark.parametrize("path", POOLS, ids=lambda p: p.name)
def test_every_pool_file_is_valid_for_notebook_05_and_holds_no_credential(path):
    values = params.load_parameters_file(path)
    assert values == params.resolve_parameters(NOTEBOOK_05, values)
    assert not any(k in values for k in ("password", "token", "secret"))


def test_there_are_pool_files_and_one_is_the_simulator():
    assert len(POOLS) >= 2
    assert params.load_parameters_file(ROOT / "parameters" / "pools" / "simulator.yaml")["url"] == ""


def test_dag_points_at_notebook_05_and_maps_over_every_pool_file():
    head = _dag_paths()
    assert head["NOTEBOOK"] == NOTEBOOK_05 and head["NOTEBOOK"].is_file()
    assert head["pool_files"]() == [str(p) for p in POOLS]
    kwargs = head["operator_kwargs"]({"notebook": "n.ipynb", "output": "o.ipynb", "parameters": {"a": 1},
                                      "run_id": "x"})
    assert kwargs == {"input_nb": "n.ipynb", "output_nb": "o.ipynb", "parameters": {"a": 1}}
    source = DAG.read_text()
    compile(source, str(DAG), "exec")
    assert "from airflow.providers.papermill.operators.papermill import PapermillOperator" in source
    assert ".expand_kwargs(" in source and "prepare.expand(pool_file=pool_files())" in source
    from runbook_lib.audit.runner import PreparedRun, finish_run, prepare_run  # what the DAG calls

    assert callable(prepare_run) and callable(finish_run) and hasattr(PreparedRun, "from_dict")


def test_cron_systemd_and_airflow_run_at_the_same_time():
    minute, hour, *_ = _cron_entry()
    timer = _unit(SCHED / "systemd" / "runbook-hygiene@.timer")
    assert timer["Timer"]["OnCalendar"] == f"*-*-* {int(hour):02d}:{int(minute):02d}:00 UTC"
    assert timer["Timer"]["Persistent"] == "true" and timer["Install"]["WantedBy"] == "timers.target"
    assert _dag_paths()["SCHEDULE"] == f"{minute} {hour} * * *"
    if shutil.which("systemd-analyze"):
        check = subprocess.run(["systemd-analyze", "calendar", timer["Timer"]["OnCalendar"]],
                               capture_output=True, text=True)
        assert check.returncode == 0, check.stderr


def test_cron_and_systemd_run_the_same_command_on_a_pool_file():
    minute, hour, dom, month, dow, user, command = _cron_entry()
    assert (dom, month, dow, user) == ("*", "*", "*", "runbook")
    assert "%" not in command.replace("\\%", "")  # cron would cut the line at a bare %
    cron_run = shlex.split(command.split("&&", 1)[1].split(">>", 1)[0])
    service = _unit(SCHED / "systemd" / "runbook-hygiene@.service")["Service"]
    assert service["Type"] == "oneshot" and service["UMask"] == "0077"
    unit_run = shlex.split(service["ExecStart"].replace("%i", "prod-a"))
    assert Path(unit_run[0]).name == "runbook" and Path(cron_run[0]).name == "runbook"
    assert cron_run[1:] == unit_run[1:] == ["run", "05", "--incident", "hygiene-prod-a", "-f",
                                            "parameters/pools/prod-a.yaml", "--timeout", "900"]
    assert (ROOT / cron_run[6]).is_file()


def test_the_scheduled_command_runs_and_exits_3_on_the_simulated_seed_pool(tmp_path):
    """The systemd ExecStart for instance `simulator`, run from the checkout: the seed pool breaches."""
    service = _unit(SCHED / "systemd" / "runbook-hygiene@.service")["Service"]
    argv = shlex.split(service["ExecStart"].replace("%i", "simulator"))[1:]
    env = {"PATH": "/usr/bin:/bin", "RUNBOOK_OUTPUTS": str(tmp_path / "outputs"), "HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "runbook_lib", *argv], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert proc.stdout.startswith("breach: ") and "hygiene-simulator" in proc.stdout
    assert "Local SATA Storage" in proc.stderr
