"""House rules that CI checks (``make lint``, part of ``make test``):

1. no source file over 800 lines (Python, C, C++ and headers under src/, tests/, benchmarks/,
   examples/): split it by topic instead;
2. no import cycle between learnact's modules, lazy imports inside functions included (only
   ``if TYPE_CHECKING`` blocks are left out); a package importing its own submodules is how a
   package is built, not a cycle.

Exit status 1 with one line per violation. Standard library only.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_LINES = 800
SOURCES = ("src", "tests", "benchmarks", "examples")
SUFFIXES = {".py", ".c", ".cc", ".h"}


def long_files() -> list[str]:
    out = []
    for top in SOURCES:
        for path in sorted((ROOT / top).rglob("*")):
            if path.suffix in SUFFIXES and path.is_file():
                n = sum(1 for _ in path.open(encoding="utf-8", errors="replace"))
                if n > MAX_LINES:
                    out.append(f"{path.relative_to(ROOT)}: {n} lines (at most {MAX_LINES})")
    return out


def _module_name(path: Path, base: Path) -> str:
    parts = list(path.relative_to(base).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(tree: ast.Module) -> list[ast.stmt]:
    """Every import statement, lazy ones inside functions included, except those under
    ``if TYPE_CHECKING`` (never run)."""
    out: list[ast.stmt] = []

    def walk(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                for other in child.orelse:
                    walk(other)
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                out.append(child)
            walk(child)

    walk(tree)
    return out


def import_graph() -> dict[str, set[str]]:
    base = ROOT / "src"
    modules = {_module_name(p, base): p for p in sorted((base / "learnact").rglob("*.py"))}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        is_pkg = path.name == "__init__.py"
        package = name if is_pkg else name.rpartition(".")[0]
        for node in _imports(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                if node.level:
                    anchor = package.split(".")
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    stem = ".".join(anchor + ([node.module] if node.module else []))
                else:
                    stem = node.module or ""
                targets = [stem] + [f"{stem}.{a.name}" for a in node.names]
            for t in targets:
                if t in modules and t != name:
                    graph[name].add(t)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _is_package_edge(a: str, b: str) -> bool:
    """A package's __init__ importing its own submodules (and they importing siblings through
    it) is how a package is built, not a cycle between modules."""
    return b.startswith(a + ".") or a.startswith(b + ".")


def module_cycles() -> list[str]:
    graph = import_graph()
    pruned = {a: {b for b in bs if not _is_package_edge(a, b)} for a, bs in graph.items()}
    return [" <-> ".join(c) for c in cycles(pruned)]


def main() -> int:
    problems = long_files() + [f"import cycle: {c}" for c in module_cycles()]
    for p in problems:
        print(p)
    if not problems:
        print("house rules: ok (files <= 800 lines, no import cycles)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
