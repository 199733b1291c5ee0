"""Carry out a plan.json: dry run by default, confirmed execution, resumable from the journal.

The order of things is the safety argument:
1. the plan is read and turned into steps (nothing connected yet);
2. executing needs dry_run=False AND confirm_vm_uuid equal to the plan's VM uuid(s), checked
   before the pool is touched (no input(): papermill cannot answer prompts);
3. the pool is checked read-only: same pool uuid, the VM and the SRs still exist, the power
   state is what the plan expected; a mismatch is refused before any change;
4. a dry run stops here, having called only read methods;
5. each step is journaled (fsynced) before it starts and after it ends. A step the journal
   shows as done is skipped; one that started and never ended is checked against the pool and
   completed or rolled back. A lost connection (xapi restart) is waited out and the step is
   checked the same way, so no call that changes the pool is ever blindly repeated.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

from runbook_lib.errors import RunbookError, UsageError
from runbook_lib.input_files import read_json
from runbook_lib.transfer import recover
from runbook_lib.transfer.cleanup import leftovers, remove_leftovers
from runbook_lib.transfer.context import Context, final_vm_uuid
from runbook_lib.transfer.copies import blocked_by
from runbook_lib.transfer.fronts import NEW_PLAN, check_front, execute_with, option, rerun_same
from runbook_lib.transfer.journal import Journal, journal_path
from runbook_lib.transfer.lock import incident_lock
from runbook_lib.transfer.plan_steps import Step, plan_steps, sr_names, steps_table, validate_plan
from runbook_lib.transfer.progress import ConsoleReporter, Reporter
from runbook_lib.transfer.runner import StepRunner, safe_free
from runbook_lib.units import gib
from runbook_lib.xapi import operations as ops

DEFAULT_WAIT_TIMEOUT_S = 3600.0
DEFAULT_RECONNECT_S = 300.0


class ConfirmationError(UsageError):
    """Executing was asked for without the confirmation that names the VM."""


class TransferNotFinished(RunbookError):
    """A refused or part-way run, raised after its outcome is shown, so `runbook run` exits 1 with one line."""


class TransferInterrupted(RunbookError):
    """Ctrl-C during an executing run: the journal says where it stopped; re-running continues."""

    exit_code = 130


@dataclasses.dataclass
class TransferOutcome:
    status: str  # dry-run | refused | stopped | done
    message: str
    next_step: str
    incident: str
    journal: str
    steps: list[Step]
    table: Any  # the plan's steps as a DataFrame
    outcomes: Any  # each step's outcome in this run (DataFrame)
    samples: Any  # free space over time (DataFrame: time, sr, name, free, phase)
    final: dict  # per VM: final uuid, differences, chain depth before/after; per SR: free

    @property
    def exit_code(self) -> int:
        return {"dry-run": 0, "done": 0, "refused": 2}.get(self.status, 1)

    def raise_unless_finished(self) -> None:
        """Fail the notebook when the run was refused or stopped part-way (a dry run or a done one passes)."""
        if self.status in ("refused", "stopped"):
            raise TransferNotFinished(f"transfer {self.status}: {self.message}",
                                      hint=f"next step: {self.next_step}" if self.next_step else None)

    def summary(self) -> dict:
        return {"status": self.status, "message": self.message, "next_step": self.next_step,
                "incident": self.incident, "journal": self.journal, "final": self.final}


def load_plan(path: str | Path) -> dict:
    return validate_plan(read_json(path, "plan"))


def plan_digest(plan: dict) -> str:
    """Identifies what a plan asks for (not when it was written), to tie a journal to its plan."""
    what = {k: v for k, v in plan.items() if k not in ("created", "alternatives")}
    return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()[:16]


def check_confirmation(plan: dict, *, dry_run: bool, confirm_vm_uuid: str, front: str = "notebook") -> None:
    """Raise ConfirmationError unless this is a dry run or the confirmation names every VM of the plan."""
    check_front(front)
    if dry_run:
        return
    confirm = option(front, "confirm")
    expected = sorted(vm["uuid"] for vm in plan["vms"])
    given = sorted(part.strip() for part in (confirm_vm_uuid or "").split(",") if part.strip())
    names = ", ".join(f"{vm.get('name') or '?'} = {vm['uuid']}" for vm in plan["vms"])
    if not given:
        raise ConfirmationError(
            f"executing changes the pool: set {confirm} to the uuid of the VM to move ({names}); "
            "nothing was changed")
    if given != expected:
        raise ConfirmationError(
            f"{confirm} {', '.join(given)} does not match the plan's VM ({names}); nothing was changed")


def preflight(session, plan: dict, journal: Journal, *, staging: str, front: str = "notebook",
              incident: str = "") -> list[str]:
    """Read-only checks; returns the problems (empty = go)."""
    problems = []
    pool = ops.pool_uuid(session)
    if pool != plan["pool"]["uuid"]:
        return [f"the plan was made on pool {plan['pool']['uuid']}, this is pool {pool}: {NEW_PLAN} on this pool"]
    for label, uuid in (("SR", plan["sr"]["uuid"]), ("staging SR", staging)):
        if uuid and ops.ref_by_uuid(session, "SR", uuid) is None:
            problems.append(f"the plan's {label} {uuid} no longer exists")
    if staging and not problems:
        waiting = [vm for vm in plan["vms"] if vm["mode"] in ("copy", "migrate")
                   and journal.step_status(f"{vm['uuid']}:copy-out") != "done"
                   and not any(journal.step_status(f"{vm['uuid']}:migrate-out:{d.get('userdevice')}") == "done"
                               for d in vm.get("disks") or [])]
        need = sum(int(vm.get("staging_bytes") or vm.get("bytes") or 0) for vm in waiting)
        free = ops.sr_free(session, [staging]).get(staging, 0)
        if need > free:
            problems.append(f"the staging SR has {gib(free)} free now, the plan needs about "
                            f"{gib(need)} there: free space on it or choose another ({option(front, 'staging')})")
    for vm in plan["vms"]:
        problems += _vm_problems(session, plan, vm, journal, incident)
    return problems


def _vm_problems(session, plan: dict, vm: dict, journal: Journal, incident: str) -> list[str]:
    st = journal.vm_state(vm["uuid"])
    ref = ops.ref_by_uuid(session, "VM", vm["uuid"])
    if ref is None:
        survivors = [u for u in (st.get("back_uuid"), st.get("copy_uuid"), st.get("imported_uuid"))
                     if u and ops.ref_by_uuid(session, "VM", u)]
        destroying = journal.step_status(f"{vm['uuid']}:destroy-original") is not None
        if destroying and (survivors or st.get("export_file")):
            return []
        return [_vm_not_found(session, plan, vm)]
    if st.get("original"):
        return []  # an earlier run recorded it (and may have shut it down): the journal rules
    rec = ops.vm_record(session, ref)
    problems = []
    ours = blocked_by(ops.start_block(session, ref), incident)  # halted by this incident's own earlier run
    if rec.get("power_state") != vm.get("power_state") and not (ours and rec.get("power_state") == "Halted"):
        problems.append(f"VM {vm.get('name')} is {rec.get('power_state')} now, the plan expected "
                        f"{vm.get('power_state')}: {NEW_PLAN}")
    planned = {d.get("vdi") for d in vm.get("disks") or [] if d.get("vdi")}
    if planned and any(ops.ref_by_uuid(session, "VDI", u) is None for u in planned):
        problems.append(f"a disk of VM {vm.get('name')} named in the plan no longer exists: {NEW_PLAN}")
    elsewhere = sorted({sr for sr in ops.vm_disk_srs(session, ref) if sr != plan["sr"]["uuid"]})
    if vm["mode"] == "copy" and elsewhere:
        problems.append(f"VM {vm.get('name')} also has disks on other SRs ({', '.join(elsewhere)});"
                        " a copy round trip would bring them all back to this SR: use mode migrate or export")
    problems += _xapi_refusals(session, plan, vm, rec)
    if vm["mode"] in ("copy", "export"):
        unplanned = [u for u in (ops.vm_uuid(session, s) for s in rec.get("snapshots") or [])
                     if u not in (plan.get("snapshots") or [])]
        if unplanned:
            problems.append(f"VM {vm.get('name')} has snapshot(s) {', '.join(unplanned)} that the plan does not "
                            "delete; a copy does not take them and they keep the old chain on the SR. Delete "
                            "them first or make a plan that names them")
    return problems


def _xapi_refusals(session, plan: dict, vm: dict, rec: dict) -> list[str]:
    """What the pool would refuse later, said now: storage migration of a reset-on-boot or CBT
    disk, and an HA-protected VM's disks on an SR that is not shared."""
    problems = []
    name = vm.get("name") or vm["uuid"][:8]
    if vm["mode"] == "migrate":
        for d in vm.get("disks") or []:
            ref = ops.ref_by_uuid(session, "VDI", d.get("vdi") or "")
            vdi = ops.vdi_record(session, ref) if ref else {}
            if vdi.get("on_boot") == "reset":
                problems.append(f"disk {d.get('userdevice')} of VM {name} resets on boot (on_boot=reset); storage "
                                f"migration refuses it (VDI_ON_BOOT_MODE_INCOMPATIBLE_WITH_OPERATION): {NEW_PLAN}")
            if vdi.get("cbt_enabled"):
                problems.append(f"disk {d.get('userdevice')} of VM {name} has changed block tracking on; storage "
                                f"migration refuses it (VDI_CBT_ENABLED): {NEW_PLAN}")
    staging = (plan.get("staging_sr") or {}).get("uuid")
    if vm["mode"] in ("copy", "migrate") and staging and rec.get("ha_restart_priority") == "restart" \
            and ops.ha_enabled(session):
        ref = ops.ref_by_uuid(session, "SR", staging)
        if ref and not ops.sr_record(session, ref).get("shared"):
            problems.append(f"VM {name} is protected by HA and the staging SR is not shared; the pool refuses "
                            f"that (HA_CONSTRAINT_VIOLATION_SR_NOT_SHARED): choose a shared staging SR or {NEW_PLAN}")
    return problems


def _vm_not_found(session, plan: dict, vm: dict) -> str:
    """The plan's VM is gone and this journal knows no copy: say where the runbook's marks or an
    export put it, and how to bring it back, rather than asking for a plan that cannot."""
    from runbook_lib.transfer import marks

    name = vm.get("name") or vm["uuid"]
    for ref in ops.vms_with_other_config(session, {marks.ORIGINAL: vm["uuid"]}):
        other = ops.vm_other_config(session, ref)
        incident = other.get(marks.INCIDENT, "?")
        return (f"the plan's VM {name} {vm['uuid']} is gone; a copy of it made by incident {incident} "
                f"({other.get(marks.ROLE, 'copy')}, {'verified' if other.get(marks.VERIFIED) else 'not verified'}) "
                f"is VM {ops.vm_uuid(session, ref)}: re-run with incident {incident} and this plan to finish")
    if plan.get("export_path"):
        xva = Path(plan["export_path"]).expanduser()
        found = sorted(xva.glob(f"*_{vm['uuid']}.xva")) if xva.is_dir() else []
        if found:
            return (f"the plan's VM {name} {vm['uuid']} is gone; its export is {found[-1]}: bring it back with "
                    f"`xe vm-import filename={found[-1]} sr-uuid={plan['sr']['uuid']}`")
    return f"the plan's VM {name} {vm['uuid']} no longer exists and no copy of it by this runbook was found"


def run_transfer(plan: dict | str | Path, session, *, incident: str, dry_run: bool = True,
                 confirm_vm_uuid: str = "", staging_sr_uuid: str = "", wait_timeout_s: float | None = None,
                 reporter: Reporter | None = None, smlog: str | Path | None = None,
                 reconnect_timeout_s: float = DEFAULT_RECONNECT_S, task_timeout_s: float | None = None,
                 crash_after: str | None = None, front: str = "notebook") -> TransferOutcome:
    """Dry-run or execute a plan on a connected session; never raises for an expected failure.

    front ("notebook" or "cli") words the next steps in the options the reader has there.

    crash_after (tests): raise KilledForTest right after the step of that kind is journaled done.
    """
    check_front(front)
    try:
        plan = load_plan(plan) if isinstance(plan, (str, Path)) else validate_plan(plan)
        jpath = journal_path(incident)
    except RunbookError as err:
        return _outcome("refused", str(err), "fix the plan or the incident id", incident, "", [], plan=None)
    run = _Run(plan, session, incident=incident, journal=Journal(jpath), staging_sr_uuid=staging_sr_uuid,
               reporter=reporter, front=front)
    try:
        if dry_run:
            return run.checked(dry_run=True, confirm_vm_uuid=confirm_vm_uuid)
        with incident_lock(jpath, incident):
            refused = run.checked(dry_run=False, confirm_vm_uuid=confirm_vm_uuid)
            if refused is not None:
                return refused
            return run.execute(wait_timeout_s=wait_timeout_s, smlog=smlog, reconnect_timeout_s=reconnect_timeout_s,
                               task_timeout_s=task_timeout_s, crash_after=crash_after)
    except RunbookError as err:  # a lock held by another run, a journal that cannot be read or written
        return _outcome("refused", str(err), f"nothing was changed; {rerun_same(front)} once that is fixed",
                        incident, str(jpath), run.steps, plan=plan, staging=staging_sr_uuid)


class _Run:
    """One call of run_transfer: the checks before anything changes, then the steps."""

    def __init__(self, plan: dict, session, *, incident: str, journal: Journal, staging_sr_uuid: str,
                 reporter: Reporter | None, front: str):
        self.plan, self.session, self.incident, self.journal, self.front = plan, session, incident, journal, front
        self.staging_sr_uuid = staging_sr_uuid
        self.steps = plan_steps(plan, staging_sr_uuid=staging_sr_uuid)
        self.staging = staging_sr_uuid or (plan.get("staging_sr") or {}).get("uuid") or ""
        self.reporter = reporter or ConsoleReporter(sr_names(plan, staging_sr_uuid=self.staging))
        if not self.reporter.sr_names:
            self.reporter.sr_names = sr_names(plan, staging_sr_uuid=self.staging)
        self.digest = plan_digest(plan)

    def finish(self, status: str, message: str, next_step: str, final: dict | None = None) -> TransferOutcome:
        event = {"dry-run": "dry-run", "refused": "refused", "done": "finished"}.get(status, "stopped")
        self.journal.append(event, status=status, message=message, next_step=next_step, plan_digest=self.digest)
        self.reporter.message(f"{status}: {message}" + (f"\nnext: {next_step}" if next_step else ""))
        self.reporter.close()
        return _outcome(status, message, next_step, self.incident, str(self.journal.path), self.steps, plan=self.plan,
                        reporter=self.reporter, final=final or {}, staging=self.staging_sr_uuid,
                        steps_journal=self.journal)

    def checked(self, *, dry_run: bool, confirm_vm_uuid: str) -> TransferOutcome | None:
        """Everything before the first change; an outcome when the run ends here, else None."""
        front, journal = self.front, self.journal
        if journal.executed_before() and self.digest not in journal.plan_digests():
            return self.finish("refused", f"incident {self.incident} already has a journal for another plan",
                               "use a new incident id for a new plan, or re-run with the plan this journal belongs to")
        try:
            check_confirmation(self.plan, dry_run=dry_run, confirm_vm_uuid=confirm_vm_uuid, front=front)
        except ConfirmationError as err:
            return self.finish("refused", str(err), f"re-run with {execute_with(front)}")
        try:
            if not dry_run:
                self._recover()
            problems = preflight(self.session, self.plan, journal, staging=self.staging, front=front,
                                 incident=self.incident)
        except RunbookError as err:
            return self.finish("refused", f"could not check the pool: {err}",
                               "check the URL and credentials; nothing was changed")
        if problems:
            return self.finish("refused", "; ".join(problems), f"nothing was changed; {NEW_PLAN}")
        self.reporter.sample(ops.sr_free(self.session, [s for s in (self.plan["sr"]["uuid"], self.staging) if s]))
        if not dry_run:
            return None
        done = sum(journal.step_status(step.id) == "done" for step in self.steps)
        return self.finish("dry-run", f"{len(self.steps)} steps checked against the pool"
                           + (f"; {done} of them already done in incident {self.incident}'s journal (an executing "
                              "run continues after them)" if done else "") + "; nothing was changed"
                           + _downtime_note(self.plan),
                           f"to execute: {execute_with(front, ','.join(vm['uuid'] for vm in self.plan['vms']))}")

    def _recover(self) -> None:
        """A damaged journal is set aside; a journal that knows nothing of a VM that is gone is
        rebuilt from the runbook's marks on the pool."""
        damage = self.journal.damage()
        if damage:
            aside = self.journal.set_aside()
            self.journal.append("note", message=f"the journal was damaged ({damage}); kept as {aside.name}, "
                                               "the state is rebuilt from the pool")
        recover.rebuild(self.session, self.plan, self.steps, self.journal, self.incident)

    def execute(self, *, wait_timeout_s, smlog, reconnect_timeout_s, task_timeout_s, crash_after) -> TransferOutcome:
        plan, journal = self.plan, self.journal
        journal.append("run", plan_digest=self.digest, incident=self.incident, vms=[vm["uuid"] for vm in plan["vms"]],
                       staging=self.staging, resumed=journal.executed_before())
        ctx = Context(session=self.session, plan=plan, journal=journal, reporter=self.reporter,
                      source=plan["sr"]["uuid"], staging=self.staging, incident=self.incident,
                      wait_timeout_s=float(wait_timeout_s if wait_timeout_s is not None else
                                           (plan.get("wait") or {}).get("timeout_s") or DEFAULT_WAIT_TIMEOUT_S),
                      smlog=str(smlog) if smlog else None, task_timeout_s=task_timeout_s, front=self.front)
        runner = StepRunner(ctx, reconnect_timeout_s, crash_after)
        try:
            stop = runner.run_steps(self.steps) or self._look_at_pool(ctx)
        except KeyboardInterrupt:
            step = runner.current
            line = interrupted_message(journal, plan, front=self.front)
            journal.append("interrupted", step=step.id if step else None, vm=step.vm if step else None,
                           kind=step.kind if step else None, message="interrupted by the user (Ctrl-C)")
            journal.append("stopped", status="stopped", message=line, next_step=rerun_same(self.front),
                           plan_digest=self.digest)
            raise
        final = self._final(ctx)
        if stop is not None:
            return self.finish("stopped", *stop, final=final)
        return self.finish("done", *_done_message(plan, final), final=final)

    def _look_at_pool(self, ctx: Context) -> tuple[str, str] | None:
        """"done" is said only after looking: the VM that stays is on the pool, and nothing of this
        incident's is left beside it (a finished journal alone proves neither)."""
        for vm in self.plan["vms"]:
            st = self.journal.vm_state(vm["uuid"])
            uuid = final_vm_uuid(st, vm["uuid"])
            if ops.ref_by_uuid(self.session, "VM", uuid) is None:
                return (f"the journal says incident {self.incident} is finished, but its VM {uuid} is not on the pool",
                        "find the VM (XenCenter, xe vm-list) before anything else; this runbook changes nothing more")
            found = leftovers(ctx, vm, st)
            if found["vms"] or found["vdis"]:
                removed = remove_leftovers(ctx, vm, st)
                self.journal.append("tidied", vm=vm["uuid"], removed=removed,
                                    message="removed what this incident had left on the pool")
        return None

    def _final(self, ctx: Context) -> dict:
        final: dict = {"vms": {}, "srs": safe_free(ctx)}
        for vm in self.plan["vms"]:
            st = self.journal.vm_state(vm["uuid"])
            final["vms"][vm["uuid"]] = {k: st.get(k) for k in ("final_uuid", "differences", "depth_before",
                                                                "depth_after", "wait") if k in st}
        return final


def _done_message(plan: dict, final: dict) -> tuple[str, str]:
    differences = [d for v in final["vms"].values() for d in v.get("differences") or []]
    modes = {vm["mode"] for vm in plan["vms"]}
    message = ("remedy complete; " + ("the VM checked against what it was" if modes == {"offline"} else
                                      "every disk verified on each side of each move" if modes == {"migrate"} else
                                      "every copy verified before anything was destroyed")
               + (f"; differences: {'; '.join(differences)}" if differences else ""))
    return message, "" if not differences else "check the differences listed"


def interrupted_message(journal: Journal, plan: dict, *, front: str = "cli") -> str:
    """One line after Ctrl-C, from the journal alone (the pool may be what was interrupted)."""
    source = plan["sr"].get("name") or plan["sr"]["uuid"]
    parts = [journal.where_vm_is(vm, source) for vm in plan["vms"]]
    if journal.executed_before():
        blocked = []
        for vm in plan["vms"]:
            st = journal.vm_state(vm["uuid"])
            blocked.append(st.get("copy_uuid") if st.get("original_destroyed") else vm["uuid"])
        parts.append(f"its VM.start may still be blocked (a run that ends lifts it; by hand: xe vm-param-remove "
                     f"uuid={','.join(u for u in blocked if u)} param-name=blocked-operations param-key=start)")
    return "interrupted: " + "; ".join(parts) + f"; {rerun_same(front)} to continue"


def _outcome(status, message, next_step, incident, journal, steps, *, plan, reporter=None, final=None,
             staging="", steps_journal: Journal | None = None) -> TransferOutcome:
    import pandas as pd

    reporter = reporter or Reporter()
    table = (steps_table(steps, plan, staging_sr_uuid=staging, journal=steps_journal) if plan and steps
             else pd.DataFrame())
    return TransferOutcome(status, message, next_step, incident, journal, steps, table,
                           reporter.outcomes_frame(), reporter.samples_frame(), final or {})


def _downtime_note(plan: dict) -> str:
    """The plan's downtime estimate, as the dry run states it (docs/plan.md: remedy.downtime_s)."""
    remedy = plan.get("remedy") or {}
    try:
        seconds = float(remedy.get("downtime_s") or 0)
    except (TypeError, ValueError):
        return ""
    return f"; the {remedy.get('kind') or 'remedy'} is expected to take about {seconds / 60:.1f} min of downtime"
