"""The move-vms remedy: stage the smallest set of VMs (by bytes) on another SR so the rest of the
SR's coalesces fit, each staging SR judged by its own SR type's rules, then move them back."""

from __future__ import annotations

import itertools
import math

from runbook_lib.plan.lookups import Candidate, Lookups, lookups, move_mode
from runbook_lib.plan.remedy import EXHAUSTIVE_LIMIT, MIGRATE_PAUSE_S, POWER_CYCLE_S, Remedy
from runbook_lib.sizing import Sizing, copy_size, sr_family
from runbook_lib.units import gib


def candidates(look: Lookups, sr: dict) -> list[Candidate]:
    """Every VM with a disk on the SR, with what moving it frees, moves and takes along."""
    out = []
    for vm_uuid, disks in look.disks_of.items():
        vm = look.vms.get(vm_uuid)
        if vm is None or vm["is_control_domain"] or vm["is_a_template"] or vm["is_a_snapshot"]:
            continue
        leaves = {d["vdi"] for d in disks if d["sr"] == sr["sr"]}
        if not leaves:
            continue
        gone, frees = look.freed_on_sr(leaves)
        flat = {d["vdi"]: look.flat_data(d["vdi"], d["virtual_size"]) for d in disks}
        lvm_leaves = [d for d in disks if sr["family"] == "lvm" and d["sr"] == sr["sr"]
                      and look.inflated.get(d["vdi"])]
        need = max((look.migrate_snapshot(d) for d in lvm_leaves), default=0)
        out.append(Candidate(
            vm={"uuid": vm_uuid, "name": vm["name"], "power_state": vm["power_state"],
                "resident_on": vm["resident_on"]},
            disks=disks, gone=gone, frees=frees, bytes=sum(flat.values()), flat=flat, migrate_need=need,
            migrate_ok=need <= sr["free"], migrate_blocker=migrate_blocker(look, leaves),
            snap_disks=snapshot_disks(look, leaves),
            ha_protected=look.ha_enabled and bool(vm.get("ha_protected"))))
    return out


def migrate_blocker(look: Lookups, leaves: set[str]) -> str:
    """Why storage migration (migrate_send) would refuse one of these disks, or ""."""
    for vdi in sorted(leaves):
        info = look.vdi_info.get(vdi) or {}
        if info.get("on_boot") == "reset":
            return (f"its disk {vdi[:8]} resets on boot (on_boot=reset), which storage migration refuses "
                    "(VDI_ON_BOOT_MODE_INCOMPATIBLE_WITH_OPERATION)")
        if info.get("cbt_enabled"):
            return (f"its disk {vdi[:8]} has changed block tracking on, which storage migration refuses "
                    "(VDI_CBT_ENABLED)")
    return ""


def snapshot_disks(look: Lookups, leaves: set[str]) -> list[dict]:
    """The disks of snapshots taken of these leaves: a storage migration moves them with the leaf."""
    out = []
    for leaf in sorted(leaves):
        for snap in look.snapshots_of.get(leaf, []):
            size = int((look.vdi_info.get(snap) or {}).get("virtual_size") or 0)
            out.append({"vdi": snap, "virtual_size": size, "flat": look.flat_data(snap, size)})
    return out


def smallest_subset(cands: list[Candidate], ok) -> list[Candidate] | None:
    """The set of candidates with the fewest bytes for which ok(set) holds."""
    if len(cands) <= EXHAUSTIVE_LIMIT:
        best = None
        for k in range(1, len(cands) + 1):
            for combo in itertools.combinations(cands, k):
                size = sum(c.bytes for c in combo)
                if best is not None and size >= best[0]:
                    continue
                if ok(combo):
                    best = (size, list(combo))
        return best[1] if best else None
    # many VMs: the best single VM, or a greedy set by space freed per byte moved, pruned
    singles = sorted((c for c in cands if ok([c])), key=lambda c: c.bytes)
    options = [[singles[0]]] if singles else []
    chosen: list[Candidate] = []
    for c in sorted(cands, key=lambda c: -(c.frees + 1) / (c.bytes + 1)):
        chosen.append(c)
        if ok(chosen):
            for extra in sorted(chosen, key=lambda c: -c.bytes):
                trial = [x for x in chosen if x is not extra]
                if trial and ok(trial):
                    chosen = trial
            options.append(chosen)
            break
    return min(options, key=lambda s: sum(c.bytes for c in s)) if options else None


class _Move:
    """One SR's move-vms search: which VMs, onto which staging SR."""

    def __init__(self, look: Lookups, sr: dict, cands: list[Candidate], *, throughput: float,
                 export_path: str | None, allow_migrate: bool):
        self.look, self.sr, self.cands = look, sr, cands
        self.throughput, self.export_path, self.allow_migrate = throughput, export_path, allow_migrate
        self.room = sr["free"] + sr["garbage"]
        self.back_size = {c.vm["uuid"]: sum(copy_size(sr["family"], d["virtual_size"], c.flat[d["vdi"]])
                                            for d in c.disks if d["sr"] == sr["sr"]) for c in cands}

    def mode(self, c: Candidate, info: dict | None) -> str:
        return move_mode(c.vm, info, self.export_path, c.live_ok(self.allow_migrate))

    def frees_enough(self, subset) -> bool:
        """The rest of the SR's coalesces fit, and the VMs fit again when they come back."""
        gone = set().union(*(c.gone for c in subset))
        room_after = self.room + sum(c.frees for c in subset)
        return (self.look.remaining_need(self.sr["sr"], gone) <= room_after
                and sum(self.back_size[c.vm["uuid"]] for c in subset) <= room_after)

    def staging(self, st_uuid: str) -> tuple[dict, dict[str, float]]:
        """The staging SR's facts, and what each candidate takes there by that SR's own rules."""
        st = self.look.srs[st_uuid]
        info = {"uuid": st_uuid, "name": st["name"], "type": st["type"], "free": int(st["free"]),
                "shared": bool(st["shared"]), "hosts": tuple(st["hosts"])}
        fam = sr_family(st["type"])

        def need(c: Candidate) -> float:
            if c.ha_protected and not info["shared"]:
                return math.inf  # HA_CONSTRAINT_VIOLATION_SR_NOT_SHARED: never staged here
            if self.mode(c, info) != "migrate":
                return sum(copy_size(fam, d["virtual_size"], c.flat[d["vdi"]]) for d in c.disks)
            moving = [d for d in c.disks if d["sr"] == self.sr["sr"]] + c.snap_disks  # snapshots go along
            return sum(copy_size(fam, d["virtual_size"], d.get("flat", c.flat.get(d["vdi"], 0))) for d in moving)
        return info, {c.vm["uuid"]: need(c) for c in self.cands}

    def downtime(self, subset, info) -> float:
        total = 0.0
        for c in subset:
            if self.mode(c, info) == "migrate":
                total += 2 * MIGRATE_PAUSE_S
            elif c.vm["power_state"] != "Halted":
                total += 2 * c.bytes / self.throughput + POWER_CYCLE_S
        return total

    def score(self, subset, info, needs):
        """Fewest bytes, then least downtime, then the most room left on the staging SR."""
        need = sum(needs[c.vm["uuid"]] for c in subset)
        return (sum(c.bytes for c in subset), self.downtime(subset, info), need - info["free"])

    def best(self, staging_uuids: list[str], unconstrained: list[Candidate]):
        """(subset, staging info, needs) with the best score, or (None, why-not lines)."""
        best = None
        for st_uuid in staging_uuids:  # the smallest set, if some staging SR holds it by its own rules
            info, needs = self.staging(st_uuid)
            if sum(needs[c.vm["uuid"]] for c in unconstrained) <= info["free"]:
                key = self.score(unconstrained, info, needs)
                if best is None or key < best[0]:
                    best = (key, unconstrained, info, needs)
        if best is not None:
            return best[1:], []
        why_not = []
        for st_uuid in staging_uuids:  # no staging SR holds that set: search again within each one's room
            info, needs = self.staging(st_uuid)
            found = smallest_subset(self.cands, lambda s, n=needs, f=info["free"]: self.frees_enough(s)
                                    and sum(n[c.vm["uuid"]] for c in s) <= f)
            if found is None:
                why_not.append(self._why_not(unconstrained, info, needs))
                continue
            key = self.score(found, info, needs)
            if best is None or key < best[0]:
                best = (key, found, info, needs)
        return (best[1:] if best else None), why_not

    @staticmethod
    def _why_not(subset, info, needs) -> str:
        protected = [c.vm["name"] for c in subset if c.ha_protected and not info["shared"]]
        if protected:
            return f"{info['name']} (HA-protected {', '.join(protected)} can be staged on a shared SR only)"
        return (f"{info['name']} ({gib(info['free'])} free, "
                f"needs {gib(sum(needs[c.vm['uuid']] for c in subset))})")


def _staging_uuids(look: Lookups, staging_uuids: list[str]) -> tuple[list[str], list[str]]:
    """The staging SRs attached to a host, and the names of those that are not."""
    unplugged = [look.srs[u]["name"] for u in staging_uuids if u in look.srs and not look.srs[u]["hosts"]]
    return [u for u in staging_uuids if u in look.srs and look.srs[u]["hosts"]], unplugged


def move_remedy(sizing: Sizing, sr: dict, *, staging_uuids: list[str], throughput: float,
                export_path: str | None, allow_migrate: bool) -> Remedy:
    look = lookups(sizing)
    cands = candidates(look, sr)
    if not cands:
        return Remedy(kind="move-vms", sr=sr["sr"], feasible=False, reason="no VM has a disk on this SR")
    move = _Move(look, sr, cands, throughput=throughput, export_path=export_path, allow_migrate=allow_migrate)
    unconstrained = smallest_subset(cands, move.frees_enough)
    if unconstrained is None:
        return Remedy(kind="move-vms", sr=sr["sr"], feasible=False,
                      reason="moving every VM off this SR would still not free enough")
    staging_uuids, unplugged = _staging_uuids(look, staging_uuids)
    if not staging_uuids:
        return Remedy(kind="move-vms", sr=sr["sr"], feasible=False,
                      reason=("staging SR not attached to any host: " + ", ".join(unplugged))
                      if unplugged else "no other SR to stage VMs on")
    best, why_not = move.best(staging_uuids, unconstrained)
    if best is None:
        return Remedy(kind="move-vms", sr=sr["sr"], feasible=False,
                      reason="no staging SR has room for the VMs: " + "; ".join(why_not[:3]))
    return _remedy(move, *best)


def _remedy(move: _Move, chosen: list[Candidate], st_info: dict, needs: dict) -> Remedy:
    sr = move.sr
    vm_entries, downtime, total_bytes = [], 0.0, 0
    for c in chosen:
        mode = move.mode(c, st_info)
        moving = c.disks if mode != "migrate" else [d for d in c.disks if d["sr"] == sr["sr"]]
        nbytes = sum(c.flat[d["vdi"]] for d in moving)
        total_bytes += nbytes
        downtime += move.downtime([c], st_info)
        vm_entries.append({
            "uuid": c.vm["uuid"], "name": c.vm["name"], "power_state": c.vm["power_state"],
            "mode": mode, "bytes": nbytes, "staging_bytes": int(needs[c.vm["uuid"]]),
            "disks": [{k: d[k] for k in ("vdi", "userdevice", "virtual_size", "physical_utilisation")}
                      for d in moving],
        })
    st_need = sum(needs[c.vm["uuid"]] for c in chosen)
    names = ", ".join(v["name"] or v["uuid"][:8] for v in vm_entries)
    return Remedy(
        kind="move-vms", sr=sr["sr"], vms=vm_entries, bytes_to_move=total_bytes,
        frees=sum(c.frees for c in chosen), duration_s=2 * total_bytes / move.throughput, downtime_s=downtime,
        staging_sr={k: st_info[k] for k in ("uuid", "name", "type", "free")},
        reason=(f"stage {names} on {st_info['name']} ({gib(st_need)} of its {gib(st_info['free'])} free), "
                f"SR.scan, wait for the GC, move back{_why_copied(move, chosen)}"))


def _why_copied(move: _Move, chosen: list[Candidate]) -> str:
    """Why a running VM is copied with a shutdown instead of migrated live."""
    if not move.allow_migrate or move.export_path:
        return ""
    why = ""
    for c in chosen:
        name = c.vm["name"] or c.vm["uuid"][:8]
        if c.vm["power_state"] != "Running":
            continue
        if c.migrate_blocker:
            why += f"; {name} is copied with a shutdown: {c.migrate_blocker}"
        elif not c.migrate_ok:
            why += (f"; {name} is copied with a shutdown: live migration would first snapshot its "
                    f"disk on this SR, needing {gib(c.migrate_need)} free there")
            if not all(move.look.size_known.get(d["vdi"], True) for d in c.disks if d["sr"] == move.sr["sr"]):
                why += (" (its written size is unknown, so the worst case: let --ssh ask the host, or "
                        "measure the disk with --vhd-size; a smaller one may migrate live)")
    return why
