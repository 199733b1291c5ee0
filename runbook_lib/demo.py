"""The rehearsal behind `make demo`: the whole remedy, end to end, on the bundled simulator.

It runs the same notebooks, through the same runner, that an administrator runs on a real
pool; only the pool is simulated. One simulator serves every notebook, so the state carries
over from diagnosis to sizing to the transfer, as it would on a real pool.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from runbook_lib.errors import RunbookError

SCENARIO = "seed-stuck-leaf-coalesce"
SR_UUID = "db4c3909-4b61-e5f6-8548-16dc56780f61"  # 'Local SATA Storage' in the seed report
# The simulator's documented password reaches the kernels through this variable; its name,
# never its value, is what the notebooks get as a parameter.
PASSWORD_ENV = "RUNBOOK_SIM_PASSWORD"
HOURS_BEFORE = 6.0  # simulated hours of failing GC runs written before the admin looks
# The simulated clock runs 3600x faster than the wall clock, so it starts a day back: the
# SMlog then ends well before the runs, whatever the machine's speed.
START_HOURS_AGO = 24.0


@dataclass
class SrState:
    free: int
    used: int
    size: int
    depth: int  # deepest VHD chain on the SR


@dataclass
class DemoResult:
    incident: str
    folder: Path
    before: SrState
    after: SrState
    runs: list = field(default_factory=list)  # audit RunResult per notebook run
    seconds: float = 0.0


def sr_state(url: str, sr_uuid: str = SR_UUID) -> SrState:
    """Free space and deepest chain of one SR, read through the same library the notebooks use."""
    from runbook_lib.chains import build_chains
    from runbook_lib.xapi.connect import connect
    from runbook_lib.xapi.inventory import fetch_inventory

    with connect(url, "root", password_env=PASSWORD_ENV) as session:
        inventory = fetch_inventory(session)
    srs = inventory.srs.set_index("uuid")
    sr = srs.loc[sr_uuid]
    vdis = inventory.vdis
    trees = build_chains(vdis[vdis["sr"] == sr_uuid]).trees
    depth = int(trees["depth"].max()) if len(trees) else 0
    return SrState(free=int(sr["free"]), used=int(sr["used"]), size=int(sr["size"]), depth=depth)


def run_demo(incident: str | None = None, echo: Callable[[str], None] = print) -> DemoResult:
    from runbook_lib.audit.runner import check_incident, run_notebook
    from runbook_lib.locations import outputs_dir
    from runbook_lib.sim import Simulator, load_scenario
    from runbook_lib.sim.scenarios import with_clock_start
    from runbook_lib.transfer.notebook import demo_parameters

    started = time.monotonic()
    incident = check_incident(incident or "demo-" + dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ"))
    folder = outputs_dir() / incident
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    smlog = folder / "SMlog"
    runs = []

    def run(notebook: str, what: str, **parameters):
        echo(f"-> {what} ({notebook})")
        result = run_notebook(notebook, incident, parameters)
        runs.append(result)
        echo(f"   {result.status}: {result.output}")
        if result.exit_code not in (0, 3):
            raise RunbookError(f"{notebook} failed: {result.error}",
                               hint=f"open {result.output} to see the failing cell")
        return result

    # A fresh random password: the documented "simulator" is a plain word that the secret
    # scan (runbook verify) would rightly find all over the outputs.
    password = secrets.token_urlsafe(18)
    # The scenario's own clock starts on the seed's date; start it a day ago instead, so the
    # SMlog (which has no year) and the run times tell one story in the postmortem.
    scenario = with_clock_start(load_scenario(SCENARIO), f"now-{START_HOURS_AGO:g}h")
    with Simulator(scenario, smlog=smlog, calls=folder / "pool-calls.jsonl", password=password, ssh=True) as sim:
        os.environ[PASSWORD_ENV] = sim.password
        echo(f"simulator: {SCENARIO} on {sim.url} (SMlog: {smlog})")
        sim.advance(HOURS_BEFORE * 3600)  # the GC fails for a while before anyone looks
        before = sr_state(sim.url)
        pool = dict(url=sim.url, password_env=PASSWORD_ENV)
        run("01_diagnose_smlog", "diagnose the SMlog", smlog_paths=[str(smlog)])
        plan_path = folder / "plan.json"
        run("02_size_space", "size the space (exact sizes from dom0 over SSH) and plan the remedy", **pool,
            smlog_paths=[str(smlog)], plan_path=str(plan_path), **dom0_parameters(sim, folder))
        echo(chosen_remedy(plan_path))
        execute = demo_parameters(plan_path, incident)  # dry_run False, the plan's VMs confirmed
        run("03_transfer_and_rescan", "dry run of the plan", **pool, plan_path=str(plan_path), incident=incident)
        run("03_transfer_and_rescan", "carry out the plan (a rehearsal: the pool is simulated)", **pool, **execute)
        after = sr_state(sim.url)
    run("04_postmortem", "write the postmortem", incident=incident)
    return DemoResult(incident, folder, before, after, runs, time.monotonic() - started)


def dom0_parameters(sim, folder: Path) -> dict:
    """Notebook 02's SSH parameters for the simulator: its hosts on loopback and their keys only."""
    known = folder / "known_hosts"
    known.write_text("\n".join(sim.ssh.known_hosts_lines()) + "\n")
    names = {rec["uuid"]: rec["name_label"] for rec in sim.state.tables["host"].values()}
    hosts = {names[uuid]: f"{address}:{port}" for uuid, (address, port) in sim.ssh.endpoints().items()}
    return dict(ssh=True, known_hosts_file=str(known), ssh_password_env=PASSWORD_ENV, ssh_hosts=hosts)


def chosen_remedy(plan_path: Path) -> str:
    """One line: the remedy notebook 02 chose, its downtime estimate and what it needs free."""
    import json

    from runbook_lib.units import gib_or_mib

    try:
        plan = json.loads(Path(plan_path).read_text())
    except (OSError, ValueError):
        return "   chosen remedy: none (no plan written)"
    remedy = plan["remedy"]
    exact = "exact sizes from dom0" if plan["sr"].get("sizes_known") else "worst-case sizes"
    return (f"   chosen remedy: {remedy['kind']}, downtime about {remedy['downtime_s'] / 60:.1f} min, "
            f"needs {gib_or_mib(remedy.get('needed', 0))} free ({exact})")


def summary(result: DemoResult) -> str:
    from runbook_lib.units import gc_gib

    b, a = result.before, result.after
    lines = [
        "",
        f"'Local SATA Storage' ({SR_UUID}):",
        f"  free space   {gc_gib(b.free):>10} -> {gc_gib(a.free):>10}   of {gc_gib(b.size)}",
        f"  chain depth  {b.depth:>10} -> {a.depth:>10}",
        f"executed notebooks (the audit trail) in {result.folder}:",
        *[f"  {r.output.name}  [{r.status}]" for r in result.runs],
        *[f"postmortem: {result.folder / r.records['postmortem']['markdown']}"
          for r in result.runs[-1:] if "postmortem" in r.records],
        f"run index:  {result.folder.parent / 'index.jsonl'}  (check it with: runbook verify)",
        f"demo took {result.seconds:.0f} s",
    ]
    return "\n".join(lines)
