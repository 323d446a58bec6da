"""Print the package's own import graph, lazy imports (inside functions) included, and
any import circle in it; exit 1 when there is a circle.

    python tools/import_graph.py [src/dynamodb_session_flask]

Read from the source with ``ast``: nothing is imported or run.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path


def module_imports(path: Path, package: str) -> set[str]:
    """The sibling modules ``path`` imports, at the top or inside a function; imports
    under ``if TYPE_CHECKING:`` are left out (they never run)."""
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    type_checking: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            type_checking.update(id(child) for body in node.body for child in ast.walk(body))
    for node in ast.walk(tree):
        if id(node) in type_checking or not isinstance(node, ast.ImportFrom):
            continue
        if node.level == 1:
            if node.module:
                found.add(node.module.split(".")[0])
            else:
                found.update(alias.name for alias in node.names)
        elif node.module and node.module.startswith(package + "."):
            found.add(node.module.split(".")[1])
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every elementary circle, each once, starting at its smallest module name."""
    found: list[list[str]] = []

    def walk(start: str, node: str, path: list[str]) -> None:
        for nxt in sorted(graph.get(node, ())):
            if nxt == start:
                found.append([*path, start])
            elif nxt > start and nxt not in path:
                walk(start, nxt, [*path, nxt])

    for start in sorted(graph):
        walk(start, start, [start])
    return found


def main() -> int:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "src/dynamodb_session_flask")
    modules = {path.stem: path for path in sorted(root.glob("*.py"))}
    graph = {
        name: {m for m in module_imports(path, root.name) if m in modules and m != name}
        for name, path in modules.items()
    }
    for name in sorted(graph):
        lines = sum(1 for _ in modules[name].open())
        print(f"{name:<12} {lines:>4} lines  -> {', '.join(sorted(graph[name])) or '-'}")
    circles = cycles(graph)
    for circle in circles:
        print("circle: " + " -> ".join(circle))
    above = sorted(name for name, deps in graph.items() if "interface" in deps)
    print("imports interface: " + (", ".join(above) or "none"))
    return 1 if circles else 0


if __name__ == "__main__":
    sys.exit(main())
