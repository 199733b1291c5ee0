"""Crash and lost-reply trials of a seed transfer: the harness behind `make chaos` and the
quick fixed sample in `make test` (tests/test_transfer_chaos.py). Not a test module itself.

A trial runs the seed remedy (copy, migrate, export or offline mode) on a fresh simulator with one
fault, then re-runs it as an admin would (same incident, same plan, up to three times) and
checks the pool: the remedy is done, the VM is on its SR with its disks, MACs and name, its
data is the latest the original had (the simulator's data version), and nothing the runbook
made is left (no copies, marks, blocks or stray disks). Faults:
- kill-before N / kill-after N: the process "dies" just before / after the Nth call that
  changes the pool (a BaseException, so nothing in the runbook catches it);
- lose-reply METHOD@N: the simulator carries out the Nth call of METHOD and drops the
  connection without answering.

Offline mode is the seed's plan with exact sizes from the simulator's dom0 (SSH): the VM halted,
its leaf forced, the GC waited for, the key removed, the VM started; after it the data disk's
chain must be flat and no leaf-coalesce=force left behind.

    python -m tests.chaos_trials [--modes copy,migrate,export,offline] [--limit N]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from runbook_lib.sim import Simulator, load_scenario
from runbook_lib.transfer import run_transfer
from runbook_lib.transfer.marks import KEYS as MARK_KEYS
from runbook_lib.transfer.plan_steps import BACK_SUFFIX, COPY_SUFFIX
from runbook_lib.transfer.progress import Reporter
from runbook_lib.transfer.runner import KilledForTest
from runbook_lib.xapi import connect
from runbook_lib.xapi import operations as ops
from runbook_lib.xapi.connect import PoolSession, _is_read
from tests.transfer_pool import SCENARIO, SPEED, STAGING, VM, make_plan

MODES = ("copy", "migrate", "export", "offline")
DATA_DISK = "1"  # userdevice of fileserver's 2020 GiB disk


@dataclasses.dataclass
class Trial:
    mode: str
    fault: str  # "kill-before 3", "kill-after 3", "lose-reply VIF.create@1", "none"
    ok: bool = False
    problems: list = dataclasses.field(default_factory=list)
    reruns: int = 0
    seconds: float = 0.0


@contextlib.contextmanager
def pool(workdir: Path, mode: str, faults=()):
    scenario = load_scenario(SCENARIO)
    if mode == "migrate":  # the seed's 36 MiB cannot hold storage motion's snapshot
        scenario["srs"][0]["free"] = "30G"
    saved = {k: os.environ.get(k) for k in ("RUNBOOK_OUTPUTS", "CHAOS_SIM_PASSWORD")}
    os.environ["RUNBOOK_OUTPUTS"] = str(workdir / "outputs")
    try:
        with Simulator(scenario=scenario, calls=str(workdir / "calls.jsonl"), speed=SPEED, faults=tuple(faults),
                       ssh=mode == "offline") as sim:
            os.environ["CHAOS_SIM_PASSWORD"] = sim.password
            with connect(sim.url, sim.user, password_env="CHAOS_SIM_PASSWORD") as session:
                yield sim, session
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def offline_plan(sim, session) -> dict:
    """The planner's choice on the seed once dom0 gave the exact sizes: the offline coalesce."""
    from runbook_lib.dom0.ssh import SshOptions
    from runbook_lib.plan import assess
    from runbook_lib.xapi.inventory import ask_dom0, fetch_inventory

    inv = fetch_inventory(session)
    inv.host_sizes = ask_dom0(inv, SshOptions(), sim)
    result = assess(inv)
    assert result.chosen is not None and result.chosen.kind == "offline-coalesce", result.chosen
    return json.loads(json.dumps(result.plan()))


def plan_for(session, mode: str, workdir: Path, sim=None) -> dict:
    if mode == "offline":
        return offline_plan(sim, session)
    export = workdir / "nfs-export"
    export.mkdir(exist_ok=True)
    plan = make_plan(session, migrate=(mode == "migrate"), export_path=str(export) if mode == "export" else None)
    if mode == "migrate":
        plan["vms"][0]["mode"] = "migrate"  # the planner cannot know the leaves are small (as in bench_transfer)
    assert plan["vms"][0]["mode"] == mode, plan["vms"][0]["mode"]
    return plan


@contextlib.contextmanager
def dying_at(nth: int, after: bool, seen: list):
    """Make the Nth call that changes the pool kill the run (before it is sent, or after its answer)."""
    real = PoolSession.call

    def call(self, method, *args):
        if _is_read(method):
            return real(self, method, *args)
        seen.append(method)
        if len(seen) == nth and not after:
            raise KilledForTest(f"before {method}")
        result = real(self, method, *args)
        if len(seen) == nth and after:
            raise KilledForTest(f"after {method}")
        return result

    PoolSession.call = call
    try:
        yield
    finally:
        PoolSession.call = real


def execute(plan, session, incident="chaos"):
    return run_transfer(plan, session, incident=incident, dry_run=False, confirm_vm_uuid=VM, wait_timeout_s=120,
                        reconnect_timeout_s=30, reporter=Reporter())


def mutations(mode: str) -> list[str]:
    """The calls that change the pool in a clean run of this mode, in order."""
    with tempfile.TemporaryDirectory() as tmp, pool(Path(tmp), mode) as (sim, session):
        seen: list = []
        with dying_at(10**9, False, seen):
            outcome = execute(plan_for(session, mode, Path(tmp), sim), session)
        assert outcome.status == "done", outcome.message
        return seen


def run_trial(mode: str, fault: str) -> Trial:
    trial = Trial(mode, fault)
    began = time.monotonic()
    kind, _, arg = fault.partition(" ")
    sim_faults = (f"lose-reply={arg}",) if kind == "lose-reply" else ()
    with tempfile.TemporaryDirectory() as tmp, pool(Path(tmp), mode, sim_faults) as (sim, session):
        plan = plan_for(session, mode, Path(tmp), sim)
        before = _snapshot(sim, session)
        try:
            if kind.startswith("kill"):
                with dying_at(int(arg), kind == "kill-after", []):
                    outcome = execute(plan, session)
            else:
                outcome = execute(plan, session)
        except KilledForTest:
            outcome = None
        while (outcome is None or outcome.status != "done") and trial.reruns < 3:
            trial.reruns += 1
            outcome = execute(plan, session)
        if outcome.status != "done":
            trial.problems.append(f"not done after {trial.reruns} re-runs: {outcome.status}: {outcome.message}")
        trial.problems += check_pool(sim, session, before, mode)
    trial.ok = not trial.problems
    trial.seconds = time.monotonic() - began
    return trial


def _snapshot(sim, session) -> dict:
    identity = ops.vm_identity(session, ops.ref_by_uuid(session, "VM", VM))
    staging_ref = ops.ref_by_uuid(session, "SR", STAGING)
    return {"identity": identity, "data_vdi": next(d["vdi"] for d in identity["disks"] if d["userdevice"] == DATA_DISK),
            "staging_vdis": set(session.xenapi.SR.get_VDIs(staging_ref))}


def check_pool(sim, session, before: dict, mode: str) -> list[str]:
    """What must hold after the remedy, whatever happened on the way: problems found (empty: fine)."""
    from runbook_lib.transfer.verify import compare_disks, compare_vifs

    original = before["identity"]
    problems = []
    holders = [ref for ref in ops.vms_named(session, original["name"])]
    strays = [ref for suffix in (COPY_SUFFIX, BACK_SUFFIX) for ref in ops.vms_named(session, original["name"] + suffix)]
    if strays:
        problems.append(f"orphaned copies: {len(strays)}")
    if len(holders) != 1:
        return problems + [f"{len(holders)} VMs named {original['name']!r}"]
    vm = ops.vm_identity(session, holders[0])
    problems += compare_disks(original, vm, expect_sr=original["disks"][0]["sr"]) + compare_vifs(original, vm)
    if vm["power_state"] != "Running":
        problems.append(f"the VM is {vm['power_state']}")
    marks = [k for k in vm["other_config"] if k in MARK_KEYS]
    if marks:
        problems.append(f"marks left on the VM: {marks}")
    if ops.start_block(session, holders[0]):
        problems.append("a start block is left on the VM")
    extra = set(session.xenapi.SR.get_VDIs(ops.ref_by_uuid(session, "SR", STAGING))) - before["staging_vdis"]
    if extra:
        problems.append(f"{len(extra)} orphaned VDI(s) on the staging SR")
    problems += lost_data(sim, before["data_vdi"], vm)
    if mode == "offline":
        problems += offline_done(session, vm)
    return problems


def offline_done(session, vm: dict) -> list[str]:
    """After the offline coalesce: the data disk's chain is flat and no leaf stays forced."""
    data = next(d["vdi"] for d in vm["disks"] if d["userdevice"] == DATA_DISK)
    by_uuid = {rec["uuid"]: rec for rec in ops.vdi_records(session).values()}
    problems = []
    if len(ops.chain_of(data, by_uuid)) != 1:
        problems.append(f"the data disk's chain is {len(ops.chain_of(data, by_uuid))} deep")
    if ops.vdi_leaf_coalesce(session, ops.ref_by_uuid(session, "VDI", data)) == "force":
        problems.append("leaf-coalesce=force left on the data disk")
    return problems


def lost_data(sim, original_data_vdi: str, final: dict) -> list[str]:
    """The final disk must carry the original's last data: the simulator's data version of the
    original disk when it was destroyed (or now, if it still exists) against what the final disk
    had when it was last started."""
    storage, store = sim.pool.storage, sim.pool.store
    final_disk = next(d["vdi"] for d in final["disks"] if d["userdevice"] == DATA_DISK)
    final_vhd = storage.vhds[store.ref_by_uuid("VDI", final_disk)]
    if final_disk == original_data_vdi:
        return []  # the VM kept its own disk (nothing was copied back)
    last = storage.gone_content.get(original_data_vdi)
    if last is None:
        return [f"the original data disk {original_data_vdi} still exists beside the final one"]
    if final_vhd.content_at_attach < last:
        return [f"stale data: the final disk came from version {final_vhd.content_at_attach}, "
                f"the original had reached {last}"]
    return []


def faults_for(mode: str, limit: int | None = None) -> list[str]:
    seen = mutations(mode)
    counts: dict[str, int] = {}
    lose = []
    for method in seen:
        counts[method] = counts.get(method, 0) + 1
        lose.append(f"lose-reply {method}@{counts[method]}")
    faults = [f"kill-before {n}" for n in range(1, len(seen) + 1)] + \
             [f"kill-after {n}" for n in range(1, len(seen) + 1)] + lose
    return faults[:limit] if limit else faults


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--limit", type=int, default=None, help="at most N trials per mode")
    parser.add_argument("--json", help="write every trial to this file")
    args = parser.parse_args(argv)
    trials = []
    for mode in args.modes.split(","):
        faults = faults_for(mode, args.limit)
        print(f"{mode}: {len(faults)} trials", flush=True)
        for fault in faults:
            trial = run_trial(mode, fault)
            trials.append(trial)
            if not trial.ok:
                print(f"  FAIL {mode} {fault}: {'; '.join(trial.problems)}", flush=True)
        failed = [t for t in trials if t.mode == mode and not t.ok]
        print(f"{mode}: {len(faults) - len(failed)} passed, {len(failed)} failed", flush=True)
    failed = [t for t in trials if not t.ok]
    if args.json:
        Path(args.json).write_text(json.dumps([dataclasses.asdict(t) for t in trials], indent=1))
    print(f"chaos: {len(trials) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
