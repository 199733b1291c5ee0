"""Helpers shared by the transfer tests that run on the simulator (not a test module)."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from runbook_lib.plan import assess
from runbook_lib.sim import Simulator, load_scenario
from runbook_lib.xapi import connect, fetch_inventory
from runbook_lib.xapi import operations as ops

SCENARIO = "seed-stuck-leaf-coalesce"
SPEED = 200000.0  # simulated seconds per wall second: a 2 TB copy takes a fraction of a second
VM = "9c2d4e6f-1a3b-4c5d-8e7f-0a1b2c3d4e5f"  # 'fileserver', Running, 2020 GiB disk on a 2-deep chain
SOURCE = "db4c3909-4b61-e5f6-8548-16dc56780f61"
STAGING = "7b1e5c9a-2d84-4f3b-8a6e-0c9d2f4b7e61"
READ_PREFIXES = ("get_",)
READ_METHODS = {"session.login_with_password", "session.logout", "event.from", "system.listMethods"}


@contextlib.contextmanager
def simulated_pool(tmp_path: Path, monkeypatch, *, faults=(), retry_refused_s: float = 0.0,
                   source_free: str | None = None):
    """The seed scenario on loopback; source_free changes what is left free on the LVM SR."""
    calls = tmp_path / "calls.jsonl"
    scenario = SCENARIO
    if source_free:
        scenario = load_scenario(SCENARIO)
        scenario["srs"][0]["free"] = source_free
    with Simulator(scenario=scenario, calls=str(calls), smlog=str(tmp_path / "SMlog"), speed=SPEED,
                   faults=tuple(faults)) as sim:
        monkeypatch.setenv("SIM_PASSWORD", sim.password)
        with connect(sim.url, sim.user, password_env="SIM_PASSWORD", retry_refused_s=retry_refused_s) as session:
            yield sim, session, calls


def make_plan(session, *, migrate: bool = False, export_path: str | None = None) -> dict:
    """A plan by the real planner (notebook 02's), copy mode unless migrate or export_path."""
    plan = assess(fetch_inventory(session), allow_migrate=migrate, export_path=export_path).plan(
        export_path=export_path)
    assert plan is not None and plan["vms"][0]["uuid"] == VM
    return json.loads(json.dumps(plan))


def make_offline_plan(session, *, plugin: bool) -> dict:
    """The planner's offline-coalesce remedy as a plan (it ranks move-vms first on the seed)."""
    from runbook_lib.plan import make_plan as plan_of

    result = assess(fetch_inventory(session))
    remedy = next(r for r in result.remedies if r.kind == "offline-coalesce")
    plan = json.loads(json.dumps(plan_of(result.sizing, remedy)))
    assert plan["vms"][0]["mode"] == "offline"
    plan["vms"][0]["coalesce_plugin"] = plugin
    return plan


def stop_once_task_journaled(monkeypatch, kind: str, error):
    """The process 'dies' (raises error(task ref)) right after the task of a `kind` step is
    journaled; returns the function that undoes it, for the re-run."""
    from runbook_lib.transfer.context import Context

    real = Context.task_started

    def stop(self, step, task_ref):
        real(self, step, task_ref)
        if step.kind == kind:
            raise error(task_ref)

    monkeypatch.setattr(Context, "task_started", stop)
    return lambda: monkeypatch.setattr(Context, "task_started", real)


def calls_made(calls: Path) -> list[dict]:
    return [json.loads(line) for line in calls.read_text().splitlines() if line.strip()]


def changing_calls(calls: Path) -> list[str]:
    """Methods in the call log that can change the pool (anything not a read)."""
    out = []
    for call in calls_made(calls):
        method = call["method"]
        last = method.split(".")[-1]
        if method in READ_METHODS or last.startswith(READ_PREFIXES):
            continue
        out.append(method)
    return out


def vms_holding(session, name: str) -> list[dict]:
    """Identity of every real VM whose name starts with `name` (the VM and any copy of it)."""
    found = []
    for ref, rec in session.xenapi.VM.get_all_records().items():
        if rec["is_a_snapshot"] or rec["is_a_template"] or rec["is_control_domain"]:
            continue
        if rec["name_label"].startswith(name):
            found.append(ops.vm_identity(session, ref))
    return found


def assert_vm_intact_on_one_sr(session, original: dict) -> dict:
    """Exactly one VM holds the data, all its disks on one SR, same disks and MACs as the original."""
    from runbook_lib.transfer.verify import compare_disks, compare_vifs

    holders = vms_holding(session, original["name"])
    assert len(holders) == 1, [h["name"] for h in holders]
    vm = holders[0]
    assert len({d["sr"] for d in vm["disks"]}) == 1
    assert compare_disks(original, vm) == []
    assert compare_vifs(original, vm) == []
    return vm


def depth_of_data_disk(session, vm: dict) -> int:
    records = ops.vdi_records(session)
    by_uuid = {r["uuid"]: r for r in records.values()}
    disk = next(d for d in vm["disks"] if d["userdevice"] == "1")
    return len(ops.chain_of(disk["vdi"], by_uuid))
