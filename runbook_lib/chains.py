"""VHD chains (trees) rebuilt from `sm_config['vhd-parent']`, hidden base copies included.

The storage manager refuses chains longer than 30 VHDs; Xen Orchestra refuses to snapshot a
VM whose chain holds more un-coalesced base copies than its `maxUncoalescedVdis` setting
allows (an unmanaged VDI whose only child is also unmanaged: a coalesce that has not
happened). Both are flagged here so an admin sees trouble before the tools refuse.

`build_chains(vdis)` takes the `Inventory.vdis` DataFrame and returns `Chains`:

nodes   one row per VDI: uuid, sr, parent (uuid or None), root (uuid), depth (1 = root),
        height (longest path to a leaf below it, 1 for a leaf), children (count), is_leaf,
        hidden, is_a_snapshot, virtual_size, physical_utilisation, vms (tuple),
        missing_parent (vhd-parent names a VDI absent from the inventory)
trees   one row per root: root, sr, nodes, depth (longest chain, in VHDs), leaves, hidden,
        total_size (sum of physical_utilisation), virtual_size (largest), vms (tuple),
        snapshots (tuple of snapshot VDI uuids), uncoalesced (count of hidden nodes with a
        single hidden child), too_deep (depth > max_depth), near_limit (depth >= warn_depth),
        xo_unhealthy (uncoalesced > max_uncoalesced)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

MAX_CHAIN_DEPTH = 30  # the storage manager's limit (VHD chain length)
# Xen Orchestra's tolerance for un-coalesced links before it refuses a backup snapshot with
# "unhealthy VDI chain": xo-server's `[xapiOptions] maxUncoalescedVdis`, 1 in its shipped
# configuration (it refuses once a chain holds more than that); a parameter, as sites change it.
XO_MAX_UNCOALESCED = 1

NODE_COLUMNS = ["uuid", "sr", "parent", "root", "depth", "height", "children", "is_leaf",
                "hidden", "is_a_snapshot", "virtual_size", "physical_utilisation", "vms",
                "missing_parent"]
TREE_COLUMNS = ["root", "sr", "nodes", "depth", "leaves", "hidden", "total_size",
                "virtual_size", "vms", "snapshots", "uncoalesced", "too_deep", "near_limit",
                "xo_unhealthy"]


@dataclass
class Chains:
    nodes: pd.DataFrame
    trees: pd.DataFrame
    children: dict[str, list[str]]

    def chain_of(self, uuid: str) -> list[str]:
        """The VDI and its ancestors, leaf first."""
        parent = {u: (p if isinstance(p, str) else None)
                  for u, p in zip(self.nodes["uuid"], self.nodes["parent"])}
        chain, seen = [], set()
        while uuid is not None and uuid not in seen and uuid in parent:
            chain.append(uuid)
            seen.add(uuid)
            uuid = parent[uuid]
        return chain

    def subtree(self, uuid: str) -> list[str]:
        """The VDI and everything below it, parents before children."""
        out, stack = [], [uuid]
        while stack:
            node = stack.pop()
            out.append(node)
            stack.extend(reversed(self.children.get(node, [])))
        return out

    def tree_of(self, uuid: str) -> dict[str, Any] | None:
        match = self.nodes.loc[self.nodes["uuid"] == uuid, "root"]
        if match.empty:
            return None
        rows = self.trees[self.trees["root"] == match.iloc[0]]
        return rows.iloc[0].to_dict() if not rows.empty else None


def build_chains(vdis: pd.DataFrame, *, max_depth: int = MAX_CHAIN_DEPTH,
                 warn_depth: int | None = None,
                 max_uncoalesced: int = XO_MAX_UNCOALESCED) -> Chains:
    """Rebuild every VHD tree; `warn_depth` (e.g. 25) flags chains getting close to the limit."""
    cols = ["uuid", "sr", "vhd_parent", "hidden", "is_a_snapshot", "virtual_size",
            "physical_utilisation", "vms"]
    rows = {r[0]: r for r in vdis[cols].itertuples(index=False, name=None)} if len(vdis) else {}
    parent: dict[str, str | None] = {}
    missing_parent: set[str] = set()
    for uuid, (_, sr, vp, *_rest) in rows.items():
        if vp and vp in rows and rows[vp][1] == sr and vp != uuid:
            parent[uuid] = vp
        else:
            parent[uuid] = None
            if vp and vp != uuid:
                missing_parent.add(uuid)
    children: dict[str, list[str]] = {}
    for uuid, p in parent.items():
        if p is not None:
            children.setdefault(p, []).append(uuid)
    for kids in children.values():
        kids.sort()

    # depth and root by walking down from the roots (iterative: chains may be long)
    depth: dict[str, int] = {}
    root: dict[str, str] = {}
    order: list[str] = []

    def walk(top: str) -> None:
        stack = [(top, 1)]
        while stack:
            node, d = stack.pop()
            if node in depth:
                continue
            depth[node], root[node] = d, top
            order.append(node)
            stack.extend((c, d + 1) for c in children.get(node, []))

    roots = sorted(u for u, p in parent.items() if p is None)
    for r in roots:
        walk(r)
    # nodes on a parent cycle have no root: break the cycle at the smallest uuid
    for uuid in sorted(set(parent) - set(depth)):
        if uuid in depth:
            continue
        parent[uuid] = None
        missing_parent.add(uuid)
        for kids in children.values():
            if uuid in kids:
                kids.remove(uuid)
        walk(uuid)
        roots.append(uuid)

    height: dict[str, int] = {}
    for node in reversed(order):
        height[node] = 1 + max((height[c] for c in children.get(node, [])), default=0)

    node_rows = []
    for uuid in order:
        _, sr, _vp, hidden, snap, vsize, phys, vms = rows[uuid]
        node_rows.append({
            "uuid": uuid, "sr": sr, "parent": parent[uuid], "root": root[uuid],
            "depth": depth[uuid], "height": height[uuid],
            "children": len(children.get(uuid, [])), "is_leaf": not children.get(uuid),
            "hidden": bool(hidden), "is_a_snapshot": bool(snap), "virtual_size": int(vsize),
            "physical_utilisation": int(phys), "vms": tuple(vms) if vms else (),
            "missing_parent": uuid in missing_parent,
        })
    nodes = pd.DataFrame(node_rows, columns=NODE_COLUMNS)
    nodes["parent"] = nodes["parent"].astype(object).where(nodes["parent"].notna(), None)

    tree_rows = []
    by_root: dict[str, list[dict]] = {}
    for row in node_rows:
        by_root.setdefault(row["root"], []).append(row)
    for r in roots:
        members = by_root.get(r, [])
        if not members:
            continue
        uncoalesced = sum(
            1 for m in members
            if m["hidden"] and len(children.get(m["uuid"], [])) == 1
            and rows[children[m["uuid"]][0]][3]
        )
        deepest = max(m["depth"] for m in members)
        vms = sorted({vm for m in members for vm in m["vms"]})
        tree_rows.append({
            "root": r, "sr": members[0]["sr"], "nodes": len(members), "depth": deepest,
            "leaves": sum(1 for m in members if m["is_leaf"]),
            "hidden": sum(1 for m in members if m["hidden"]),
            "total_size": sum(m["physical_utilisation"] for m in members),
            "virtual_size": max(m["virtual_size"] for m in members),
            "vms": tuple(vms),
            "snapshots": tuple(m["uuid"] for m in members if m["is_a_snapshot"]),
            "uncoalesced": uncoalesced,
            "too_deep": deepest > max_depth,
            "near_limit": warn_depth is not None and deepest >= warn_depth,
            "xo_unhealthy": uncoalesced > max_uncoalesced,
        })
    trees = pd.DataFrame(tree_rows, columns=TREE_COLUMNS)
    return Chains(nodes=nodes, trees=trees, children=children)
