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

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pandas only when chains are built: ancestry() serves import-light callers too
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


def ancestry(uuid: str | None, parent: Mapping[str, str | None]) -> list[str]:
    """`uuid` and its ancestors, leaf first, by a parent map (uuid -> parent uuid, None at the top).

    The package's one walk up a VHD chain. It stops at the top, at a uuid the map does not
    hold, and where the chain loops back on itself (a damaged vhd-parent), so it always ends.
    """
    chain, seen = [], set()
    while uuid and uuid in parent and uuid not in seen:
        chain.append(uuid)
        seen.add(uuid)
        uuid = parent[uuid]
    return chain


class VhdParents(Mapping):
    """uuid -> `sm_config['vhd-parent']` (None at a chain's top) over XenAPI VDI records keyed
    by uuid, read on demand: `ancestry(uuid, VhdParents(records))` walks a pool's records."""

    def __init__(self, records: Mapping[str, dict]):
        self.records = records

    def __getitem__(self, uuid: str) -> str | None:
        return (self.records[uuid].get("sm_config") or {}).get("vhd-parent") or None

    def __iter__(self):
        return iter(self.records)

    def __len__(self) -> int:
        return len(self.records)


@dataclass
class Chains:
    nodes: pd.DataFrame
    trees: pd.DataFrame
    children: dict[str, list[str]]

    def chain_of(self, uuid: str) -> list[str]:
        """The VDI and its ancestors, leaf first."""
        parent = {u: (p if isinstance(p, str) else None)
                  for u, p in zip(self.nodes["uuid"], self.nodes["parent"])}
        return ancestry(uuid, parent)

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
    import pandas as pd

    cols = ["uuid", "sr", "vhd_parent", "hidden", "is_a_snapshot", "virtual_size",
            "physical_utilisation", "vms"]
    rows = {r[0]: r for r in vdis[cols].itertuples(index=False, name=None)} if len(vdis) else {}
    parent, missing_parent = _parents(rows)
    children: dict[str, list[str]] = {}
    for uuid, p in parent.items():
        if p is not None:
            children.setdefault(p, []).append(uuid)
    for kids in children.values():
        kids.sort()
    depth, root, order, roots = _walk_down(parent, children, missing_parent)

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

    by_root: dict[str, list[dict]] = {}
    for row in node_rows:
        by_root.setdefault(row["root"], []).append(row)
    limits = (max_depth, warn_depth, max_uncoalesced)
    tree_rows = [_tree_row(r, by_root[r], children, rows, limits) for r in roots if by_root.get(r)]
    trees = pd.DataFrame(tree_rows, columns=TREE_COLUMNS)
    return Chains(nodes=nodes, trees=trees, children=children)


def _parents(rows: dict[str, tuple]) -> tuple[dict[str, str | None], set[str]]:
    """uuid -> parent uuid on the same SR (None at a root), and the VDIs whose vhd-parent is
    not in the inventory (or on another SR)."""
    parent: dict[str, str | None] = {}
    missing_parent: set[str] = set()
    for uuid, (_, sr, vp, *_rest) in rows.items():
        if vp and vp in rows and rows[vp][1] == sr and vp != uuid:
            parent[uuid] = vp
        else:
            parent[uuid] = None
            if vp and vp != uuid:
                missing_parent.add(uuid)
    return parent, missing_parent


def _walk_down(parent: dict[str, str | None], children: dict[str, list[str]], missing_parent: set[str]):
    """Depth and root of every node by walking down from the roots (iterative: chains may be
    long), the visiting order, and the roots. Nodes on a parent cycle have no root: the cycle is
    broken at its smallest uuid, which becomes a root with a missing parent."""
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
    return depth, root, order, roots


def _tree_row(r: str, members: list[dict], children: dict[str, list[str]], rows: dict[str, tuple],
              limits: tuple[int, int | None, int]) -> dict[str, Any]:
    max_depth, warn_depth, max_uncoalesced = limits
    uncoalesced = sum(
        1 for m in members
        if m["hidden"] and len(children.get(m["uuid"], [])) == 1
        and rows[children[m["uuid"]][0]][3]
    )
    deepest = max(m["depth"] for m in members)
    vms = sorted({vm for m in members for vm in m["vms"]})
    return {
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
    }
