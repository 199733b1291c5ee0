"""Layering of runbook_lib, read from the source with `ast` (nothing is imported).

1. The simulator stands alone: nothing in runbook_lib/sim/ imports the planner, the transfer
   code or the XenAPI client (nor the sizing), so it can be reasoned about, and replaced,
   on its own. Known exceptions are listed below with the change that removes each.
2. No import cycle between runbook_lib's modules, counting module-level imports (the ones
   that run on import; imports inside functions and under `if TYPE_CHECKING:` are lazy).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "runbook_lib"

SIM_MUST_NOT_IMPORT = ("runbook_lib.plan", "runbook_lib.transfer", "runbook_lib.xapi", "runbook_lib.sizing")
# (importing module, imported module) -> why it is still allowed. Each must still exist: when the
# change lands, the entry goes.
KNOWN_SIM_EXCEPTIONS = {
    ("runbook_lib.sim.snapshot", "runbook_lib.xapi.connect"): "snapshot of a live pool; belongs outside sim/",
    ("runbook_lib.sim.snapshot", "runbook_lib.xapi.inventory"): "snapshot of a live pool; belongs outside sim/",
}


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _resolve(importer: str, node: ast.ImportFrom | ast.Import) -> set[str]:
    """The runbook_lib modules an import statement names (a package means its __init__)."""
    found: set[str] = set()
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        base = node.module or ""
        if node.level:
            is_pkg = MODULES[importer].name == "__init__.py"
            anchor = importer.split(".")[: len(importer.split(".")) - node.level + (1 if is_pkg else 0)]
            base = ".".join(anchor + ([base] if base else []))
        names = [base] + [f"{base}.{a.name}" for a in node.names]
        names = [n for n in names[1:] if n in MODULES] or [base]
    for name in names:
        while name and name not in MODULES:
            name = name.rpartition(".")[0]
        if name.startswith("runbook_lib"):
            found.add(name)
    return found


def _is_type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING" or (
        isinstance(node.test, ast.Attribute) and node.test.attr == "TYPE_CHECKING")


def _imports(module: str, *, lazy: bool) -> set[str]:
    """Module-level imports; with `lazy`, also those inside functions, classes and TYPE_CHECKING."""
    tree = ast.parse(MODULES[module].read_text(), str(MODULES[module]))
    found: set[str] = set()

    def visit(body):
        for node in body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                found.update(_resolve(module, node))
            elif isinstance(node, ast.If):
                if lazy or not _is_type_checking(node):
                    visit(node.body)
                visit(node.orelse)
            elif isinstance(node, (ast.Try,)):
                for part in (node.body, node.orelse, node.finalbody, *[h.body for h in node.handlers]):
                    visit(part)
            elif isinstance(node, (ast.With,)):
                visit(node.body)
            elif lazy:
                for child in ast.walk(node):
                    if isinstance(child, (ast.Import, ast.ImportFrom)):
                        found.update(_resolve(module, child))

    visit(tree.body)
    found.discard(module)
    return found


def test_the_simulator_imports_neither_planner_nor_transfer_nor_xapi():
    seen = set()
    for module in MODULES:
        if not module.startswith("runbook_lib.sim"):
            continue
        for target in _imports(module, lazy=True):
            if target.startswith(SIM_MUST_NOT_IMPORT):
                seen.add((module, target))
    assert seen - set(KNOWN_SIM_EXCEPTIONS) == set(), "the simulator must stand alone"
    assert set(KNOWN_SIM_EXCEPTIONS) - seen == set(), "a fixed exception: remove it from KNOWN_SIM_EXCEPTIONS"


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every cycle a depth-first search meets (one per back edge), as a path."""
    cycles, state, stack = [], {}, []

    def dfs(node: str) -> None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                dfs(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            dfs(node)
    return cycles


def test_no_import_cycle_between_modules():
    graph = {module: _imports(module, lazy=False) for module in MODULES}
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_cycles():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_server_and_transport_share_the_wire_module_not_each_other():
    assert "runbook_lib.sim.server" not in _imports("runbook_lib.sim.transport", lazy=True)
    assert "runbook_lib.sim.wire" in _imports("runbook_lib.sim.transport", lazy=False)
    assert "runbook_lib.sim.wire" in _imports("runbook_lib.sim.server", lazy=False)


def _uses_xenapi(tree: ast.AST) -> bool:
    """An attribute access `.xenapi` (a XenAPI session's call tree) anywhere in the module."""
    return any(isinstance(node, ast.Attribute) and node.attr == "xenapi" for node in ast.walk(tree))


def test_only_xapi_and_the_simulator_call_xenapi():
    """Rule 3: the XenAPI calls live in runbook_lib/xapi/ (the simulator and the CLI's sim commands
    speak for the pool itself); the transfer, the planner and the notebooks' helpers go through it."""
    allowed = ("runbook_lib.xapi", "runbook_lib.sim")
    offenders = [name for name, path in _modules().items()
                 if not name.startswith(allowed) and _uses_xenapi(ast.parse(path.read_text()))]
    assert offenders == []


def test_the_xenapi_rule_can_fail():
    assert _uses_xenapi(ast.parse("session.xenapi.VM.get_all()"))
    assert not _uses_xenapi(ast.parse("ops.vm_record(session, ref)"))
