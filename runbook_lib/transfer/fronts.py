"""How each front end (notebook 03, `runbook transfer`) names the same choices.

A next step is only useful if the reader can type it where they are: the executor words its
messages through these, so a CLI user reads `--execute --confirm <uuid>` and a notebook user
reads `dry_run=False and confirm_vm_uuid=<uuid>`, from one message each.
"""

from __future__ import annotations

FRONTS = ("notebook", "cli")

_OPTIONS = {
    "staging": {"notebook": "staging_sr_uuid", "cli": "--staging-sr"},
    "wait": {"notebook": "wait_timeout_s", "cli": "--wait-timeout"},
    "incident": {"notebook": "incident", "cli": "--incident"},
    "confirm": {"notebook": "confirm_vm_uuid", "cli": "--confirm"},
}

# Both ways to make a plan, whichever front end is running: the plan may come from either.
NEW_PLAN = "make a new plan (notebook 02, or `runbook size --plan-out FILE`)"


def check_front(front: str) -> str:
    if front not in FRONTS:
        raise ValueError(f"front must be one of {', '.join(FRONTS)}, not {front!r}")
    return front


def option(front: str, name: str) -> str:
    """The parameter or option that sets `name` (staging, wait, incident, confirm) in this front end."""
    return _OPTIONS[name][check_front(front)]


def execute_with(front: str, vm_uuids: str = "<the VM's uuid>") -> str:
    """What to add to run for real."""
    if check_front(front) == "cli":
        return f"--execute --confirm {vm_uuids}"
    return f"dry_run=False and confirm_vm_uuid={vm_uuids}"


def rerun_same(front: str) -> str:
    """How to continue a run: same incident (and, from the CLI, the same plan file)."""
    if check_front(front) == "cli":
        return "re-run with the same --incident and --plan"
    return "re-run with the same incident"
