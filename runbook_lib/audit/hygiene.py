"""Snapshot hygiene, the check notebook 05 runs every night.

The seed report's advice, "delete snapshots promptly, before the space problem starts", made
into four checks a scheduler can alert on: snapshots older than N days, VHD chains deeper
than N, SRs whose free space is below what their pending coalesces need, and GC failures in
the SMlog over the last N hours. Any finding is a breach: `runbook run` exits 3.

`gather()` reads the pool (or the simulator, or a saved inventory) and the SMlog; `assess()`
is pure and turns what was read into the `Hygiene` findings below.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from runbook_lib.schemas import HYGIENE_SCHEMA
from runbook_lib.units import GIB, gib_or_mib

# Columns of the findings tables (documented for notebooks and tests).
SNAPSHOT_COLUMNS = ["kind", "uuid", "name", "snapshot_of", "srs", "snapshot_time", "age_days", "size"]
CHAIN_COLUMNS = ["root", "sr", "sr_name", "depth", "nodes", "vms", "too_deep"]
SR_COLUMNS = ["sr", "name", "type", "free", "needed", "needed_min", "shortfall", "sizes_known",
              "verdict", "coalesces"]
GC_COLUMNS = ["sr", "vdi", "verdict", "failures", "last_failure", "next_step"]
SUMMARY_COLUMNS = ["check", "threshold", "found", "status"]


@dataclass
class Thresholds:
    snapshot_age_days: float = 7.0
    max_chain_depth: int = 25  # the storage manager refuses chains longer than 30
    gc_failure_hours: float = 24.0


@dataclass
class Hygiene:
    pool: dict[str, Any]
    checked_at: pd.Timestamp
    thresholds: Thresholds
    old_snapshots: pd.DataFrame
    deep_chains: pd.DataFrame
    short_srs: pd.DataFrame
    gc_failures: pd.DataFrame
    srs: pd.DataFrame  # every SR with free and needed, for the plot
    smlog_checked: bool
    notes: list[str] = field(default_factory=list)

    @property
    def summary(self) -> pd.DataFrame:
        t = self.thresholds
        rows = [
            ("snapshots older than", f"{t.snapshot_age_days:g} days", len(self.old_snapshots), True),
            ("chains deeper than", f"{t.max_chain_depth} VHDs", len(self.deep_chains), True),
            ("SRs short of coalesce space", "free < needed", len(self.short_srs), True),
            ("GC failures in the SMlog", f"last {t.gc_failure_hours:g} h", len(self.gc_failures), self.smlog_checked),
        ]
        return pd.DataFrame([(c, th, n, ("breach" if n else "ok") if checked else "not checked")
                             for c, th, n, checked in rows], columns=SUMMARY_COLUMNS)

    @property
    def breaches(self) -> list[str]:
        """One line per finding; empty when the pool is clean."""
        t = self.thresholds
        out = [f"{r.kind} {r.name or r.uuid} is {r.age_days:.0f} days old (limit {t.snapshot_age_days:g})"
               for r in self.old_snapshots.itertuples()]
        out += [f"chain of {r.root} on SR {r.sr_name or r.sr} is {r.depth} VHDs deep (limit {t.max_chain_depth})"
                for r in self.deep_chains.itertuples()]
        out += [f"SR {r.name or r.sr} has {gib_or_mib(r.free)} free but its pending coalesce needs "
                + (f"{gib_or_mib(r.needed)}" if r.sizes_known else
                   f"up to {gib_or_mib(r.needed)} (at least {gib_or_mib(r.needed_min)}: a running disk's "
                   "written size is unknown, notebook 02 says how to measure it)")
                + f" (short {gib_or_mib(r.shortfall)})" for r in self.short_srs.itertuples()]
        out += [f"VDI {r.vdi} on SR {str(r.sr)[:8]}: {r.verdict}, {r.failures} GC failure(s), last {r.last_failure}"
                for r in self.gc_failures.itertuples()]
        return out

    def to_json(self) -> dict[str, Any]:
        from runbook_lib.record import to_jsonable

        return to_jsonable({
            "schema": HYGIENE_SCHEMA, "pool": self.pool, "checked_at": self.checked_at,
            "thresholds": asdict(self.thresholds), "summary": self.summary, "breaches": self.breaches,
            "old_snapshots": self.old_snapshots, "deep_chains": self.deep_chains, "short_srs": self.short_srs,
            "gc_failures": self.gc_failures, "smlog_checked": self.smlog_checked, "notes": self.notes,
        })


def _old_snapshots(inv, now: pd.Timestamp, max_days: float) -> pd.DataFrame:
    vms, vdis = inv.vms, inv.vdis
    vm_names = dict(zip(vms["uuid"], vms["name"]))
    vdi_names = dict(zip(vdis["uuid"], vdis["name"]))
    rows = []
    snap_vms = vms[vms["is_a_snapshot"]]
    for r in snap_vms.itertuples():
        if pd.isna(r.snapshot_time):
            continue
        age = (now - r.snapshot_time).total_seconds() / 86400
        if age > max_days:
            rows.append(("VM snapshot", r.uuid, r.name, vm_names.get(r.snapshot_of, r.snapshot_of),
                         ", ".join(r.srs), r.snapshot_time, age, int(r.disk_physical_utilisation)))
    covered = set(snap_vms["uuid"])
    for r in vdis[vdis["is_a_snapshot"]].itertuples():
        if pd.isna(r.snapshot_time) or set(r.vms) & covered:
            continue  # counted with its VM snapshot
        age = (now - r.snapshot_time).total_seconds() / 86400
        if age > max_days:
            rows.append(("VDI snapshot", r.uuid, r.name, vdi_names.get(r.snapshot_of, r.snapshot_of), r.sr,
                         r.snapshot_time, age, int(r.physical_utilisation)))
    frame = pd.DataFrame(rows, columns=SNAPSHOT_COLUMNS)
    return frame.sort_values("age_days", ascending=False).reset_index(drop=True)


def _deep_chains(chains, inv, max_depth: int) -> pd.DataFrame:
    sr_names = dict(zip(inv.srs["uuid"], inv.srs["name"]))
    vm_names = dict(zip(inv.vms["uuid"], inv.vms["name"]))
    trees = chains.trees[chains.trees["depth"] > max_depth]
    rows = [(t.root, t.sr, sr_names.get(t.sr, ""), int(t.depth), int(t.nodes),
             ", ".join(vm_names.get(v, v) for v in t.vms), bool(t.too_deep)) for t in trees.itertuples()]
    return pd.DataFrame(rows, columns=CHAIN_COLUMNS).sort_values("depth", ascending=False).reset_index(drop=True)


def _gc_failures(diagnosis: dict | None, since: pd.Timestamp) -> pd.DataFrame:
    rows = []
    for v in (diagnosis or {}).get("vdis") or []:
        last = pd.Timestamp(v["last_failure"]) if v.get("last_failure") else None
        if last is not None and last.tzinfo is None:
            last = last.tz_localize("UTC")
        if last is not None and last >= since and str(v.get("verdict", "")).startswith("stuck"):
            rows.append((v.get("sr"), v.get("vdi"), v.get("verdict"), int(v.get("failures") or 0), last,
                         v.get("next_step")))
    return pd.DataFrame(rows, columns=GC_COLUMNS)


def assess(inv, diagnosis: dict | None = None, thresholds: Thresholds | None = None,
           now: pd.Timestamp | None = None, smlog_last: pd.Timestamp | None = None) -> Hygiene:
    """The four checks over an inventory and (optionally) an SMlog diagnosis.

    `now` defaults to the pool's own clock at capture; the GC window ends at the later of
    that and the log's last line (a simulator's log may run ahead of the wall clock).
    """
    from runbook_lib.chains import build_chains
    from runbook_lib.sizing import size_pool

    t = thresholds or Thresholds()
    now = now if now is not None else inv.captured_at
    chains = build_chains(inv.vdis, warn_depth=t.max_chain_depth)
    sizing = size_pool(inv, findings=diagnosis, chains=chains)
    srs = sizing.srs
    short = srs[(srs["shortfall"] > 0) & (srs["verdict"] != "not-sized")]
    end = max(now, smlog_last) if smlog_last is not None else now
    notes = []
    if diagnosis is None:
        notes.append("no SMlog given: GC failures were not checked (parameter smlog_paths)")
    too_deep = chains.trees[chains.trees["too_deep"]]
    if len(too_deep):
        notes.append(f"{len(too_deep)} chain(s) are past the storage manager's limit of 30: it will refuse them")
    return Hygiene(
        pool=dict(inv.pool), checked_at=now, thresholds=t,
        old_snapshots=_old_snapshots(inv, now, t.snapshot_age_days),
        deep_chains=_deep_chains(chains, inv, t.max_chain_depth),
        short_srs=short[SR_COLUMNS].reset_index(drop=True),
        gc_failures=_gc_failures(diagnosis, end - pd.Timedelta(hours=t.gc_failure_hours)),
        srs=srs.reset_index(drop=True), smlog_checked=diagnosis is not None, notes=notes,
    )


def gather(url: str = "", *, inventory_path: str = "", user: str = "root",
           password_env: str = "XEN_PASSWORD", password_file: str = "", verify_tls: bool = True,
           ca_bundle: str = "", smlog_paths: list | str = (), sim_hours: float = 6.0, year: int = 0):
    """(inventory, diagnosis dict or None, last log time or None) from a pool, the simulator or a file.

    For the simulator (url "" or "sim:<scenario>") its own SMlog is used unless `smlog_paths`
    (a list, or one comma-separated string) is given, after running it `sim_hours` of simulated
    time so its GC has had a go.
    """
    from runbook_lib.smlog import as_path_list, diagnose, read_smlog
    from runbook_lib.xapi.connect import connect, is_simulator_url
    from runbook_lib.xapi.inventory import Inventory, fetch_inventory

    paths = as_path_list(smlog_paths)
    if inventory_path:
        inv = Inventory.load(inventory_path)
        read = read_smlog(paths, year=year or None) if paths else None
    elif is_simulator_url(url):
        with tempfile.TemporaryDirectory(prefix="runbook-05-") as tmp:
            own_log = Path(tmp) / "SMlog"
            with connect(url, sim_options={"smlog": None if paths else str(own_log)}) as session:
                sim = session.simulator
                sim.advance(sim_hours * 3600)
                inv = fetch_inventory(session, source_url=url or "sim:")
                sim_year = dt.datetime.fromtimestamp(sim.now, dt.timezone.utc).year
            read = read_smlog(paths or [own_log], year=year or (None if paths else sim_year))
    else:
        with connect(url, user=user, password_env=password_env or None, password_file=password_file or None,
                     verify_tls=verify_tls, ca_bundle=ca_bundle or None) as session:
            inv = fetch_inventory(session, source_url=url)
        read = read_smlog(paths, year=year or None) if paths else None
    diagnosis = diagnose(read).to_json() if read is not None else None
    last = read.last if read is not None and read.last is not None and not pd.isna(read.last) else None
    if last is not None and last.tzinfo is None:
        last = last.tz_localize("UTC")
    return inv, diagnosis, last


def plot(h: Hygiene):
    """Left: free space and what pending coalesces need, per SR. Right: snapshot ages."""
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.2))
    srs = h.srs[h.srs["verdict"] != "not-sized"]
    if len(srs):
        y = range(len(srs))
        left.barh([i + 0.2 for i in y], srs["free"] / GIB, height=0.4, label="free", color="tab:green")
        left.barh([i - 0.2 for i in y], srs["needed"] / GIB, height=0.4, label="needed by pending coalesce",
                  color="tab:red")
        left.set_yticks(list(y), [str(n) for n in srs["name"]])
        left.set_xlabel("GiB")
        left.legend(fontsize=8)
    left.set_title("SR space", fontsize=10)
    ages = h.old_snapshots
    if len(ages):
        right.barh(range(len(ages)), ages["age_days"], color="tab:orange")
        right.set_yticks(range(len(ages)), [str(n) for n in ages["name"]])
        right.set_xlabel("days")
    else:
        right.text(0.5, 0.5, f"no snapshot older than {h.thresholds.snapshot_age_days:g} days", ha="center",
                   va="center", transform=right.transAxes)
        right.set_yticks([])
    right.axvline(h.thresholds.snapshot_age_days, color="grey", linestyle="--")
    right.set_title("Snapshots over the age limit", fontsize=10)
    fig.tight_layout()
    return fig
