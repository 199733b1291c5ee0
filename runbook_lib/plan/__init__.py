"""The what-if planner: ways to get a short SR's coalesce going, ranked, and plan.json.

For each SR whose pending coalesces do not fit (sizing verdict "short" or "offline-only")
it weighs four remedies, each with bytes to move, duration, downtime and space freed:

grow-sr           add space (an admin action outside the pool API; the runbook only describes it)
move-vms          stage the smallest set of VMs (by bytes) on another SR so the rest fits; the
                  staging SR's own free space is checked with its own SR type's rules
offline-coalesce  the coalesce-leaf plugin, or the VM halted and its leaf forced (no 10 s limit)
delete-snapshots  delete the snapshots the admin names, then let the GC work

Durations come from one throughput (bytes/s) for copies and one for coalescing: given, or the
rate notebook 01 measured in SMlog, else DEFAULT_THROUGHPUT_BPS (an assumption, reported).
One module per job: remedy (the Remedy record, time constants), lookups, move, offline, grow,
snapshots, document (plan.json), assess (ranking).
"""

from runbook_lib.plan.assess import Assessment, assess, rank_remedies, resolve_sr
from runbook_lib.plan.document import choose, make_plan, remedies_json, write_plan
from runbook_lib.plan.remedy import (
    DEFAULT_THROUGHPUT_BPS,
    EXHAUSTIVE_LIMIT,
    KINDS,
    MIGRATE_PAUSE_S,
    PLUGIN_PAUSE_S,
    POWER_CYCLE_S,
    Remedy,
)
from runbook_lib.plan.snapshots import what_if_removed

__all__ = ["Assessment", "assess", "rank_remedies", "resolve_sr", "choose", "make_plan", "remedies_json",
           "write_plan", "DEFAULT_THROUGHPUT_BPS", "EXHAUSTIVE_LIMIT", "KINDS", "MIGRATE_PAUSE_S",
           "PLUGIN_PAUSE_S", "POWER_CYCLE_S", "Remedy", "what_if_removed"]
