"""Airflow DAG: snapshot hygiene (notebook 05) every night for every pool in parameters/pools/.

One parameters file per pool; the DAG maps over them, so each pool is its own task instance on
Airflow's executors (Celery, Kubernetes, ...) instead of one machine's loop. Per pool:

  prepare   runbook_lib checks the file against the notebook (unknown names, types,
            credentials refused) and reserves outputs/hygiene-<pool>/<time>_05_..._<id>.ipynb
  run_05    the papermill provider's PapermillOperator executes the notebook into that file
  judge     runbook_lib renders the HTML, hashes everything into outputs/index.jsonl and fails
            the task on a breach or a failed notebook, so Airflow alerts

Install as an optional extra (`pip install -e '.[airflow]'`) and point Airflow at this folder
(or copy this file into your dags folder and set RUNBOOK_HOME to the checkout).
Credentials: the workers' environment holds the variables the pool files name (password_env),
or the files they name exist on the workers (password_file); nothing secret passes through
Airflow's parameters or XCom.
"""

from __future__ import annotations

import os
from pathlib import Path

# ---- paths (plain Python: the tests read this part without Airflow) ----------------------------
REPO = Path(os.environ.get("RUNBOOK_HOME") or Path(__file__).resolve().parents[2])
NOTEBOOK = REPO / "notebooks" / "05_snapshot_hygiene.ipynb"
POOLS_DIR = REPO / "parameters" / "pools"
SCHEDULE = "15 2 * * *"  # every night at 02:15 UTC, like the cron and systemd examples
CELL_TIMEOUT_S = 900


def pool_files() -> list[str]:
    return [str(p) for p in sorted(POOLS_DIR.glob("*.yaml"))]


def operator_kwargs(run: dict) -> dict:
    """What PapermillOperator needs from a prepared run."""
    return {"input_nb": run["notebook"], "output_nb": run["output"], "parameters": run["parameters"]}


# ---- the DAG -------------------------------------------------------------------------------------
import datetime as dt  # noqa: E402

from airflow.exceptions import AirflowFailException  # noqa: E402
from airflow.providers.papermill.operators.papermill import PapermillOperator  # noqa: E402

try:  # Airflow 3
    from airflow.sdk import dag, task
except ImportError:  # Airflow 2.4+
    from airflow.decorators import dag, task


@dag(
    dag_id="runbook_snapshot_hygiene",
    schedule=SCHEDULE,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    max_active_runs=1,
    tags=["xen", "runbooks", "hygiene"],
    doc_md=__doc__,
)
def runbook_snapshot_hygiene():
    @task
    def prepare(pool_file: str) -> dict:
        from runbook_lib.audit.runner import prepare_run

        pool = Path(pool_file).stem
        return prepare_run(NOTEBOOK, f"hygiene-{pool}", parameters_file=pool_file,
                           timeout=CELL_TIMEOUT_S).to_dict()

    @task(trigger_rule="all_done")
    def judge(run: dict) -> str:
        from runbook_lib.audit.runner import PreparedRun, finish_run

        result = finish_run(PreparedRun.from_dict(run))
        if result.exit_code == 3:
            found = result.records.get("breach") or []
            raise AirflowFailException(f"{result.incident}: {len(found)} breach(es): " + "; ".join(map(str, found[:5])))
        if result.exit_code:
            raise AirflowFailException(f"{result.incident}: notebook failed: {result.error}")
        return str(result.output)

    prepared = prepare.expand(pool_file=pool_files())
    executed = PapermillOperator.partial(
        task_id="run_05", kernel_name="python3", execution_timeout=dt.timedelta(hours=1),
    ).expand_kwargs(prepared.map(operator_kwargs))
    executed >> judge.expand(run=prepared)


runbook_snapshot_hygiene()
