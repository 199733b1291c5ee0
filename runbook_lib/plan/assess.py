"""Rank the remedies of every SR that needs one, and `assess`: sizing + remedies + the chosen
one, which `runbook size` and notebook 02 show.

Ranking, best first: feasible before infeasible, runbook-executable before admin actions,
then least downtime, least bytes moved, shortest duration.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from runbook_lib.errors import UsageError
from runbook_lib.plan.document import choose, make_plan, remedies_json
from runbook_lib.plan.grow import grow_remedy
from runbook_lib.plan.move import move_remedy
from runbook_lib.plan.offline import offline_remedy
from runbook_lib.plan.remedy import DEFAULT_THROUGHPUT_BPS, Remedy
from runbook_lib.plan.snapshots import delete_snapshots_remedy
from runbook_lib.sizing import Sizing, measured_rate, size_pool, sr_family


def rank_remedies(sizing: Sizing, *, sr: str | None = None, staging_sr: str | None = None,
                  throughput_bps: float | None = None, snapshots: list[str] | tuple = (),
                  export_path: str | None = None, allow_migrate: bool = True) -> list[Remedy]:
    """Every remedy for every SR that needs one (or just `sr`), best first."""
    throughput = throughput_bps or sizing.gc_speed_bps or DEFAULT_THROUGHPUT_BPS
    gc_speed = sizing.gc_speed_bps or throughput
    inv = sizing.inventory
    known = set(inv.srs["uuid"])
    for uuid, what in ((sr, "--sr"), (staging_sr, "--staging-sr")):
        if uuid and uuid not in known:
            raise UsageError(f"{what} {uuid}: no such SR in the pool")
    targets = sizing.srs[sizing.srs["verdict"].isin(["short", "offline-only"])]
    if sr:
        targets = targets[targets["sr"] == sr]
    targets = targets.sort_values("shortfall", ascending=False, kind="stable")
    out: list[Remedy] = []
    for target in targets.to_dict("records"):
        if staging_sr:
            staging = [staging_sr] if staging_sr != target["sr"] else []
        else:
            cand = inv.srs[(inv.srs["uuid"] != target["sr"]) & (inv.srs["content_type"] != "iso")]
            cand = cand[cand["type"].map(sr_family).notna()].sort_values("free", ascending=False)
            staging = list(cand["uuid"])
        remedies = [
            move_remedy(sizing, target, staging_uuids=staging, throughput=throughput,
                        export_path=export_path, allow_migrate=allow_migrate),
            offline_remedy(sizing, target, gc_speed=gc_speed, throughput=throughput),
            grow_remedy(target),
        ]
        if snapshots:
            remedies.append(delete_snapshots_remedy(sizing, target, list(snapshots), gc_speed=gc_speed))
        out.extend(sorted(remedies, key=Remedy.rank_key))
    return out


def resolve_sr(inventory, text: str | None, what: str = "SR") -> str | None:
    """An SR's uuid from its uuid, a unique uuid prefix (8 characters will do) or its name."""
    if not text:
        return None
    srs = inventory.srs
    if text in set(srs["uuid"]):
        return text
    hits = srs[srs["uuid"].str.startswith(text.lower()) | (srs["name"] == text)]
    if len(hits) == 1:
        return hits.iloc[0]["uuid"]
    if hits.empty:
        raise UsageError(f"{what} {text}: no such SR in the pool")
    raise UsageError(f"{what} {text} matches {len(hits)} SRs: "
                     + ", ".join(f"{n} ({u[:8]})" for u, n in zip(hits["uuid"], hits["name"])))


@dataclass
class Assessment:
    """Sizing plus ranked remedies plus the chosen one: what `runbook size` and notebook 02 show."""

    sizing: Sizing
    remedies: list[Remedy]
    chosen: Remedy | None
    throughput_bps: float
    throughput_source: str

    def to_json(self) -> dict[str, Any]:
        out = self.sizing.to_json()
        out["remedies"] = remedies_json(self.remedies)
        out["chosen"] = self.chosen.kind if self.chosen else None
        out["throughput_bps"] = self.throughput_bps
        out["throughput_source"] = self.throughput_source
        return out

    def plan(self, **kwargs) -> dict | None:
        if self.chosen is None:
            return None
        return make_plan(self.sizing, self.chosen, alternatives=self.remedies, **kwargs)


def assess(inventory, *, sr: str | None = None, staging_sr: str | None = None,
           findings: dict | None = None, throughput_bps: float | None = None,
           gc_speed_bps: float | None = None, snapshots: list[str] | tuple = (),
           export_path: str | None = None, allow_migrate: bool = True,
           vhd_sizes: dict[str, int] | None = None, host_sizes=None) -> Assessment:
    """Size the pool (or one SR) and rank what would get its coalesces going."""
    if throughput_bps is not None and not throughput_bps > 0:
        raise UsageError(f"throughput must be a positive rate, not {throughput_bps / 2**20:g} MiB/s "
                         "(0 or nothing: measured in the SMlog, else 100 MiB/s)")
    sr = resolve_sr(inventory, sr, "--sr")
    staging_sr = resolve_sr(inventory, staging_sr, "--staging-sr")
    sizing = size_pool(inventory, srs=[sr] if sr else None, findings=findings,
                       gc_speed_bps=gc_speed_bps, vhd_sizes=vhd_sizes, host_sizes=host_sizes)
    if throughput_bps:
        source = "given"
    elif measured_rate(findings):
        throughput_bps, source = measured_rate(findings), "measured in SMlog"
    else:
        throughput_bps, source = DEFAULT_THROUGHPUT_BPS, "assumed (100 MiB/s)"
    remedies = rank_remedies(sizing, sr=sr, staging_sr=staging_sr, throughput_bps=throughput_bps,
                             snapshots=snapshots, export_path=export_path,
                             allow_migrate=allow_migrate)
    return Assessment(sizing=sizing, remedies=remedies, chosen=choose(remedies),
                      throughput_bps=float(throughput_bps), throughput_source=source)
