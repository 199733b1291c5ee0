"""The runbook's marks on the VMs it creates, so that a re-run finds exactly its own objects,
even when its journal is damaged, missing or kept under another outputs folder.

Every copy carries these `other_config` keys from the moment the runbook adopts it:
`runbook-incident` (the incident id), `runbook-original` (uuid of the plan's VM),
`runbook-role` (staging-copy, copy-back or import) and, once it has passed verification against
the original, `runbook-verified`. The VM that stays at the end loses them again. The original
itself is never marked: a run that is abandoned leaves it as the admin had it.
"""

from __future__ import annotations

from runbook_lib.xapi import operations as ops

PREFIX = "runbook-"
INCIDENT = PREFIX + "incident"
ORIGINAL = PREFIX + "original"
ROLE = PREFIX + "role"
VERIFIED = PREFIX + "verified"
KEYS = (INCIDENT, ORIGINAL, ROLE, VERIFIED)

STAGING_COPY = "staging-copy"
COPY_BACK = "copy-back"
IMPORT = "import"


def mark(session, vm_ref: str, *, incident: str, original: str, role: str) -> None:
    """Mark a copy as this incident's; a copy of a marked VM inherits stale marks, so the
    verified mark is taken away until this copy is verified itself."""
    ops.set_other_config_keys(session, vm_ref, {INCIDENT: incident, ORIGINAL: original, ROLE: role})
    ops.remove_other_config_keys(session, vm_ref, [VERIFIED])


def mark_verified(session, vm_ref: str) -> None:
    ops.set_other_config_keys(session, vm_ref, {VERIFIED: "yes"})


def unmark(session, vm_ref: str) -> list[str]:
    return ops.remove_other_config_keys(session, vm_ref, KEYS)


def is_mark(key: str) -> bool:
    return key.startswith(PREFIX)


def own_vms(session, *, incident: str, original: str, role: str | None = None) -> list[str]:
    """Refs of this incident's copies of the VM `original` (of one role, or all)."""
    wanted = {ORIGINAL: original, INCIDENT: incident, **({ROLE: role} if role else {})}
    return ops.vms_with_other_config(session, wanted)


def incident_of(session, vm_ref: str) -> str | None:
    """The incident whose mark the VM carries (None: unmarked)."""
    return ops.vm_other_config(session, vm_ref).get(INCIDENT)
