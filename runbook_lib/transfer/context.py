"""What the step actions share during one run: the context, the step failure, and the words
for where a VM is now (every next-step message starts from there)."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from runbook_lib.errors import RunbookError
from runbook_lib.transfer.plan_steps import Step
from runbook_lib.units import gib
from runbook_lib.xapi import operations as ops


class StepFailed(RunbookError):
    """A step could not be done; the pool is left as `state` says and `next_step` tells what to do."""

    def __init__(self, message: str, *, next_step: str, rolled_back: bool = False, error: list | None = None):
        super().__init__(message)
        self.next_step = next_step
        self.rolled_back = rolled_back
        self.error = error


@dataclasses.dataclass
class Context:
    """What the actions share during one run."""

    session: Any
    plan: dict
    journal: Any
    reporter: Any
    source: str  # SR uuid whose coalesce is stuck
    staging: str  # staging SR uuid ("" for export/offline)
    incident: str
    wait_timeout_s: float
    smlog: str | None = None
    task_timeout_s: float | None = None
    front: str = "notebook"  # which front end runs this: next steps name its options
    sample_every_s: float = 1.0
    _last_sample: float = 0.0

    def sr_ref(self, uuid: str) -> str:
        ref = ops.ref_by_uuid(self.session, "SR", uuid)
        if ref is None:
            raise StepFailed(f"SR {uuid} no longer exists",
                             next_step="check the pool; the journal shows where the VM is")
        return ref

    def watched_srs(self) -> list[str]:
        return [sr for sr in (self.source, self.staging) if sr]

    def free(self) -> dict[str, int]:
        return ops.sr_free(self.session, self.watched_srs())

    def sample(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last_sample >= self.sample_every_s:
            self._last_sample = now
            self.reporter.sample(self.free())

    def sr_label(self, uuid: str) -> str:
        return f"SR '{self.reporter.sr_names.get(uuid, uuid[:8])}'"

    def task_started(self, step: Step, task_ref: str) -> None:
        self.journal.append("task", step=step.id, vm=step.vm, task=task_ref)

    def last_task(self, step: Step) -> str | None:
        found = None
        for record in self.journal.records():
            if record.get("step") == step.id and record["event"] == "task":
                found = record.get("task")
        return found

    def mode(self, vm_uuid: str) -> str:
        return next(vm["mode"] for vm in self.plan["vms"] if vm["uuid"] == vm_uuid)


def vm_name(st: dict, step: Step) -> str:
    return (st.get("original") or {}).get("name") or step.vm[:8]


def vm_ref(ctx: Context, uuid: str | None) -> str | None:
    return ops.ref_by_uuid(ctx.session, "VM", uuid) if uuid else None


def final_vm_uuid(st: dict, vm_uuid: str) -> str:
    """The VM that stays at the end: the copy back, the import, or the plan's VM itself."""
    return st.get("back_uuid") or st.get("imported_uuid") or vm_uuid


def where(ctx: Context, st: dict, step: Step) -> str:
    """One line: where the VM's data is now, for every next-step message."""
    original = vm_ref(ctx, step.vm)
    name = vm_name(st, step)
    for uuid in (st.get("back_uuid"), st.get("imported_uuid")):
        if uuid and vm_ref(ctx, uuid):
            return f"VM '{name}' is on {ctx.sr_label(ctx.source)} as {uuid}"
    if original:
        identity = ops.vm_identity(ctx.session, original)
        srs = ", ".join(sorted({ctx.sr_label(d["sr"]) for d in identity["disks"]})) or "no SR"
        return f"VM '{name}' ({step.vm}) is {identity['power_state']} with its disks on {srs}"
    if st.get("copy_uuid") and vm_ref(ctx, st["copy_uuid"]):
        return f"VM '{name}' is safe on {ctx.sr_label(ctx.staging)} as {st['copy_uuid']} (verified copy)"
    if st.get("export_file"):
        return f"VM '{name}' is safe in {st['export_file']} (verified export)"
    return f"VM '{name}': see the journal"


def short_of_space(ctx: Context, sr_uuid: str, need: int, what: str) -> StepFailed | None:
    """The failure to raise when sr_uuid has less than need bytes free, else None."""
    from runbook_lib.transfer.fronts import option

    free = ops.sr_free(ctx.session, [sr_uuid]).get(sr_uuid, 0)
    if need <= free:
        return None
    return StepFailed(f"{ctx.sr_label(sr_uuid)} has {gib(free)} free, {what} needs about {gib(need)}; "
                      "nothing was copied",
                      next_step=f"free space there or choose another staging SR ({option(ctx.front, 'staging')}) "
                                "and re-run")


TRANSIENT_CODES = {"SESSION_INVALID", "FAULT"}


def is_transient(exc: BaseException) -> bool:
    """A lost connection or session: wait for the pool and check the step again."""
    from runbook_lib.xapi.connect import PoolUnreachable

    if isinstance(exc, PoolUnreachable):
        return True
    if getattr(exc, "code", None) in TRANSIENT_CODES:
        return True
    details = ops.failure_details(exc)
    return bool(details and details[0] in TRANSIENT_CODES)
