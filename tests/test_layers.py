"""The layers of sync_server/__init__.py hold on every import, including imports inside functions."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOPS = ("sync_server", "schemas", "replication")
# layer -> the layers it may import (its own is always allowed)
ALLOWED = {
    "base": set(),
    "schemas": {"base"},
    "store": {"base"},
    "security": {"base"},
    "replication": {"base", "store"},
    "design": {"base", "store", "security"},
    "handbook": {"base", "schemas", "store", "security", "design"},
    "api": {"base", "store", "security", "design", "handbook"},
    "jobs": {"base", "schemas", "store", "security", "replication", "design", "handbook"},
    "cli": {"base", "schemas", "store", "security", "replication", "design", "handbook", "api", "jobs"},
}
SUBPACKAGES = ("store", "security", "design", "handbook", "api", "jobs", "cli")


def layer(module: str) -> str:
    """The layer a dotted module name belongs to."""
    parts = module.split(".")
    if parts[0] in ("schemas", "replication"):
        return parts[0]
    if len(parts) > 1 and parts[1] in SUBPACKAGES:
        return parts[1]
    return {"app": "api", "__main__": "cli"}.get(parts[-1], "base")


def module_name(path: Path) -> tuple[str, bool]:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


def project_imports(path: Path) -> set[str]:
    """Every project module (or name in one) that ``path`` imports, relative imports resolved."""
    name, is_package = module_name(path)
    package = name.split(".") if is_package else name.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            stem = ".".join(base + ([node.module] if node.module else []))
            found.update(f"{stem}.{alias.name}" for alias in node.names)
    return {m for m in found if m.split(".")[0] in TOPS}


def edges() -> list[tuple[str, str]]:
    out = []
    for top in TOPS:
        for path in sorted((ROOT / top).rglob("*.py")):
            mine = module_name(path)[0]
            out.extend((mine, other) for other in sorted(project_imports(path)))
    return out


def test_no_module_imports_a_layer_it_may_not() -> None:
    wrong = [f"{a} ({layer(a)}) imports {b} ({layer(b)})" for a, b in edges()
             if layer(a) != layer(b) and layer(b) not in ALLOWED[layer(a)]]
    assert not wrong, "\n".join(wrong)


def test_the_rule_catches_an_upward_import() -> None:
    """The checker itself: a store module importing the API would be reported."""
    assert layer("sync_server.store.database") == "store" and layer("sync_server.api.http") == "api"
    assert "api" not in ALLOWED["store"] and "handbook" not in ALLOWED["replication"]
    assert layer("sync_server.app") == "api" and layer("sync_server.errors") == "base"


def test_the_layers_have_no_cycle() -> None:
    graph: dict[str, set[str]] = {}
    for a, b in edges():
        if layer(a) != layer(b):
            graph.setdefault(layer(a), set()).add(layer(b))
    seen: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        if seen.get(node) == 1:
            raise AssertionError("cycle: " + " -> ".join([*trail, node]))
        if seen.get(node) == 2:
            return
        seen[node] = 1
        for nxt in graph.get(node, ()):
            visit(nxt, [*trail, node])
        seen[node] = 2

    for node in list(graph):
        visit(node, [])


def test_importing_a_low_layer_loads_no_web_framework() -> None:
    code = ("import sys, replication.backoff, replication, sync_server.errors, sync_server.store, schemas.hierarchy\n"
            "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('flask', 'werkzeug', 'waitress', 'segno'))\n"
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"importing the store and the replicator loaded {out.stdout.strip()}"
