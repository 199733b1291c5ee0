"""A remedy the planner weighs: what it moves, frees, takes and costs in downtime; and the
planner's time constants (assumptions, reported with every estimate)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

DEFAULT_THROUGHPUT_BPS = 100 * 1024 * 1024   # assumed copy / coalesce rate when nothing is known
MIGRATE_PAUSE_S = 10.0      # storage migration: the VM pauses briefly at the switch-over, each way
POWER_CYCLE_S = 120.0       # clean shutdown + start of a VM
PLUGIN_PAUSE_S = 10.0       # suspend + resume around the coalesce-leaf plugin, beyond writing the memory
EXHAUSTIVE_LIMIT = 12       # VMs on an SR up to which move-vms tries every subset
KINDS = ("grow-sr", "move-vms", "offline-coalesce", "delete-snapshots")


@dataclass
class Remedy:
    kind: str
    sr: str
    vms: list[dict] = field(default_factory=list)
    bytes_to_move: int = 0
    frees: int = 0
    duration_s: float = 0.0
    downtime_s: float = 0.0
    feasible: bool = True
    admin_action: bool = False
    reason: str = ""
    staging_sr: dict | None = None
    snapshots: list[str] = field(default_factory=list)
    grow_by: int = 0
    needed: int = 0  # what the coalesce needs free on the SR once this remedy is done

    def rank_key(self):
        return (not self.feasible, self.admin_action, self.downtime_s, self.bytes_to_move,
                self.duration_s)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["vms"] = [v["uuid"] for v in self.vms]
        out["vm_details"] = self.vms
        return out
