"""What notebook 02 and `runbook size` show: tables in GiB, the per-SR space chart, chain trees.

Only display: every number comes from runbook_lib.sizing / runbook_lib.plan (bytes), and is
turned into GiB here and nowhere else.
"""

from __future__ import annotations

import pandas as pd

from runbook_lib.sizing import Sizing
from runbook_lib.units import GIB, gc_gib, gib, gib_number, gib_or_mib


def sr_table(sizing: Sizing, *, busy_only: bool = False) -> pd.DataFrame:
    """One row per SR, the shortest first: sizes in GiB and the verdict. `busy_only`: just the
    SRs with a pending coalesce or a shortfall (all of them if none has)."""
    t = sizing.srs
    busy = (t["coalesces"] > 0) | (t["shortfall"] > 0)
    if busy_only and busy.any():
        t = t[busy]
    return pd.DataFrame({
        "sr": t["sr"].str.slice(0, 8), "name": t["name"], "type": t["type"],
        "size_gib": t["size"].map(gib_number), "used_gib": t["used"].map(gib_number),
        "free_gib": t["free"].map(gib_number), "needed_gib": t["needed"].map(gib_number),
        "at_least_gib": t["needed_min"].map(gib_number),
        "shortfall_gib": t["shortfall"].map(gib_number),
        "short_by": [shortfall_text(lo, hi, known) for lo, hi, known in
                     zip(t["shortfall_min"], t["shortfall"], t["sizes_known"])],
        "verdict": t["verdict"],
        "smlog": t["diagnosis"].fillna(""),
        "_short": t["shortfall"], "_sized": t["verdict"] != "not-sized",
    }).sort_values(["_sized", "_short", "name"], ascending=[False, False, True], kind="stable") \
        .drop(columns=["_short", "_sized"]).reset_index(drop=True)


def shortfall_text(least, most, known: bool) -> str:
    """A shortfall as a fact when every size is known, else as the range it is."""
    if known or least == most:
        return gib(most) if most else "-"
    return f"at least {gib(least)}, at most {gib(most)}"


def coalesce_table(sizing: Sizing) -> pd.DataFrame:
    c = sizing.coalesces
    names = dict(zip(sizing.inventory.vms["uuid"], sizing.inventory.vms["name"]))
    return pd.DataFrame({
        "vdi": c["vdi"].str.slice(0, 8), "sr": c["sr"].str.slice(0, 8), "kind": c["kind"],
        "vm": c["vms"].map(lambda v: ", ".join(names.get(x, x[:8]) for x in v)),
        "virtual_gib": c["virtual_size"].map(gib_number), "needed_gib": c["needed"].map(gib_number),
        "at_least_gib": c["needed_min"].map(gib_number), "size_source": c["size_source"],
        "live_gib": c["needed_live"].map(gib_number), "snapshot_gib": c["needed_snapshot"].map(gib_number),
        "live_ok": c["live_ok"], "fits": c["fits"], "fits_offline": c["fits_offline"],
        "size_known": c["size_known"], "diagnosis": c["diagnosis"],
    })


def upper_bound_note(sizing: Sizing, option: str = "--vhd-size") -> str | None:
    """Why `needed` may be far above the real need, and how to make it exact (None if exact).
    `option`: how the reader passes a measured size (the CLI option or the notebook parameter)."""
    c = sizing.coalesces
    if c.empty or bool(c["size_known"].all()):
        return None
    lines = ["needed_gib is an upper bound: XenAPI shows a running disk on LVM as its fully "
             "inflated LV, not how much of it is written, so the sizing takes it as fully written "
             "(at_least_gib: the least it can need; the real need is in between). To make it exact, "
             f"let the suite ask each host's dom0 over SSH ({'ssh' if option == 'vhd_sizes' else '--ssh'}), "
             f"or measure each VHD on the host that runs its VM and pass its size ({option}), or give "
             "SMlog findings whose printout shows the VHD size:"]
    for row in c[c["size_source"] == "upper-bound"].to_dict("records"):
        from runbook_lib.sizing import exact_size_hint

        lines.append("  " + exact_size_hint(row["vdi"], row["sr"], option))
    return "\n".join(lines)


def remedies_table(remedies) -> pd.DataFrame:
    """Ranked remedies, best first (rank 1)."""
    rows = []
    for i, r in enumerate(remedies, 1):
        rows.append({
            "rank": i, "kind": r.kind, "sr": r.sr[:8], "feasible": r.feasible,
            "vms": ", ".join(f"{v['name']} ({v['mode']})" for v in r.vms),
            "move_gib": gib_number(r.bytes_to_move), "frees_gib": gib_number(r.frees),
            "duration_min": round(r.duration_s / 60, 1), "downtime_min": round(r.downtime_s / 60, 1),
            "reason": r.reason,
        })
    cols = ["rank", "kind", "sr", "feasible", "vms", "move_gib", "frees_gib", "duration_min",
            "downtime_min", "reason"]
    return pd.DataFrame(rows, columns=cols)


def plan_table(plan: dict | None) -> pd.DataFrame:
    """The chosen plan as key / value rows an admin can read before notebook 03 runs it."""
    if not plan:
        return pd.DataFrame([{"item": "plan", "value": "none: no SR needs a remedy"}])
    r = plan["remedy"]
    rows = [("remedy", r["kind"]), ("SR", f"{plan['sr']['name']} ({plan['sr']['uuid']})"),
            ("shortfall", shortfall_text(plan["sr"].get("shortfall_min", plan["sr"]["shortfall"]),
                                         plan["sr"]["shortfall"], plan["sr"].get("sizes_known", True))),
            ("needed by the remedy", gib_or_mib(r.get("needed", 0))),
            ("bytes to move", f"{gib_number(r['bytes_to_move'])} GiB"),
            ("frees", f"{gib_number(r['frees'])} GiB"),
            ("duration", f"{r['duration_s'] / 60:.1f} min"),
            ("downtime", f"{r['downtime_s'] / 60:.1f} min"), ("why", r["reason"])]
    if plan.get("staging_sr"):
        st = plan["staging_sr"]
        rows.append(("staging SR", f"{st['name']} ({st['type']}, {gib_number(st['free'])} GiB free)"))
    for vm in plan.get("vms", []):
        rows.append(("VM", f"{vm['name']} {vm['uuid']} [{vm['power_state']}] mode={vm['mode']}"))
    if plan.get("grow_by"):
        rows.append(("grow by", f"{gib_number(plan['grow_by'])} GiB"))
    for snap in plan.get("snapshots", []):
        rows.append(("delete snapshot", snap))
    return pd.DataFrame(rows, columns=["item", "value"])


def plot_sr_space(sizing: Sizing, ax=None):
    """Per SR a stacked bar: used, needed (inside free), rest of free, shortfall beyond the SR."""
    import matplotlib.pyplot as plt

    t = sizing.srs[sizing.srs["verdict"] != "not-sized"]
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 0.6 * max(len(t), 1) + 1.5))
    labels = [f"{n or s[:8]} ({ty})" for n, s, ty in zip(t["name"], t["sr"], t["type"])]
    used = t["used"] / GIB
    needed_in_free = pd.concat([t["needed"], t["free"] + t["garbage"]], axis=1).min(axis=1) / GIB
    rest = (t["free"] / GIB - needed_in_free).clip(lower=0)
    short = t["shortfall"] / GIB
    y = range(len(t))
    ax.barh(y, used, color="#8c8c8c", label="used")
    ax.barh(y, needed_in_free, left=used, color="#f0a030", label="needed by coalesce")
    ax.barh(y, rest, left=used + needed_in_free, color="#5cb85c", label="free")
    ax.barh(y, short, left=used + needed_in_free + rest, color="#d9534f", hatch="//",
            label="shortfall")
    ax.set_yticks(list(y), labels)
    ax.set_xlabel("GiB")
    ax.set_title("Space per SR: what the pending coalesces need")
    ends = used + needed_in_free + rest + short
    for i, (end, verdict, gap, least, known) in enumerate(zip(ends, t["verdict"], short, t["shortfall_min"],
                                                               t["sizes_known"])):
        if gap > 0:
            note = f" {gap:,.1f} GiB short" if known else f" at least {least / GIB:,.1f}, at most {gap:,.1f} GiB short"
        else:
            note = f" {verdict}"
        ax.text(end, i, note, va="center", fontsize="small")
    ax.set_xlim(0, max(float(ends.max()) if len(t) else 1.0, 1.0) * 1.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False)
    ax.invert_yaxis()
    ax.figure.tight_layout()
    return ax


def chain_trees(sizing: Sizing, *, sr: str | None = None, only_pending: bool = True,
                limit: int = 20) -> str:
    """Each VHD tree as indented text with sizes, VMs, snapshots and pending coalesces."""
    inv = sizing.inventory
    vdis = inv.vdis.set_index("uuid")
    vm_names = dict(zip(inv.vms["uuid"], inv.vms["name"]))
    power = dict(zip(inv.vms["uuid"], inv.vms["power_state"]))
    pending = {c["vdi"]: c for c in sizing.coalesces.to_dict("records")}
    trees = sizing.chains.trees
    if sr:
        trees = trees[trees["sr"] == sr]
    lines: list[str] = []
    shown = 0
    for tree in trees.sort_values("depth", ascending=False).to_dict("records"):
        members = sizing.chains.subtree(tree["root"])
        if only_pending and not any(m in pending for m in members):
            continue
        if shown >= limit:
            lines.append(f"... {len(trees) - shown} more trees")
            break
        shown += 1
        lines.append(f"tree {tree['root'][:8]} on SR {tree['sr'][:8]}: {tree['nodes']} VHDs, "
                     f"depth {tree['depth']}, {gib_number(tree['total_size'])} GiB on disk"
                     + ("  [TOO DEEP]" if tree["too_deep"] else ""))
        depth = dict(zip(sizing.chains.nodes["uuid"], sizing.chains.nodes["depth"]))
        for uuid in members:
            v = vdis.loc[uuid]
            pad = "    " * (depth[uuid] - 1) + ("└─ " if depth[uuid] > 1 else "")
            flags = ["hidden" if v["hidden"] else "", "snapshot" if v["is_a_snapshot"] else ""]
            owners = ", ".join(f"{vm_names.get(vm, vm[:8])} ({power.get(vm, '?')})" for vm in v["vms"])
            text = (f"  {pad}{'*' if v['hidden'] else ''}{uuid[:8]} "
                    f"{gc_gib(v['virtual_size'])} virtual / {gc_gib(v['physical_utilisation'])} on SR")
            extra = " ".join(f for f in flags if f)
            if extra:
                text += f" [{extra}]"
            if owners:
                text += f"  VM {owners}"
            if uuid in pending:
                c = pending[uuid]
                text += (f"  <- {c['kind']} needs {gc_gib(c['needed'])}"
                         f" ({'fits' if c['fits'] else 'does not fit'})")
            lines.append(text)
    return "\n".join(lines) if lines else "no VHD tree with a pending coalesce"
