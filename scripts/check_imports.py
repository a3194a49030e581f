"""Fail on an import cycle among the Python package's modules; report cycles among the Rust modules.

    python3 scripts/check_imports.py           # exit 1 when python/portwitness has a cycle
    python3 scripts/check_imports.py --rust-strict   # exit 1 on a Rust cycle too

Python: every `import` and `from ... import` of a module of the package counts, at module level
or inside a function (a function-level import is a cycle waiting for its first call), except
those under `if TYPE_CHECKING:`, which never run. An import names the module it loads, not the
packages above it (a package's `__init__` would otherwise join every cycle of its children).

Rust: the crate's top-level modules (`src/flow`, `src/app.rs`...), linked by each `crate::name`
a file of one names of another (in `use` lines and in paths).
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "python" / "portwitness"
CRATE = ROOT / "src"


def python_modules(package: Path) -> dict[str, Path]:
    """Dotted name: file, for every module of the package (stubs name the compiled ones)."""
    found: dict[str, Path] = {}
    for path in sorted(package.rglob("*.py*")):
        if path.suffix not in (".py", ".pyi"):
            continue
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found.setdefault(".".join(parts), path)
    return found


def _type_checking_only(tree: ast.Module) -> set[int]:
    """The ids of the import nodes under `if TYPE_CHECKING:`."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            test = node.test
            name = test.attr if isinstance(test, ast.Attribute) else getattr(test, "id", None)
            if name == "TYPE_CHECKING":
                skip.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return skip


def _imported(module: str, is_package: bool, tree: ast.Module, known: dict[str, Path]) -> Iterator[str]:
    skip = _type_checking_only(tree)
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield _longest_known(alias.name, known)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                here = module.split(".") if is_package else module.split(".")[:-1]
                up = here[: len(here) - (node.level - 1)]
                base = ".".join([*up, base] if base else up)
            for alias in node.names:
                full = f"{base}.{alias.name}"
                yield full if full in known else _longest_known(base, known)


def _longest_known(name: str, known: dict[str, Path]) -> str:
    parts = name.split(".")
    while parts and ".".join(parts) not in known:
        parts.pop()
    return ".".join(parts)


def python_graph(package: Path) -> dict[str, set[str]]:
    known = python_modules(package)
    graph: dict[str, set[str]] = {m: set() for m in known}
    for module, path in known.items():
        if path.suffix != ".py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        is_package = path.name == "__init__.py"
        for target in _imported(module, is_package, tree, known):
            if target and target != module:
                graph[module].add(target)
    return graph


_CRATE_PATH = re.compile(r"\bcrate::(\{[^;]*?\}|\w+)", re.S)


def rust_graph(crate: Path) -> dict[str, set[str]]:
    """Top-level module: the top-level modules it names."""
    graph: dict[str, set[str]] = {}
    for path in sorted(crate.rglob("*.rs")):
        rel = path.relative_to(crate)
        top = rel.parts[0].removesuffix(".rs")
        # A `tests.rs` is a unit-test module in a file of its own (`#[cfg(test)] mod tests;`).
        if top in ("lib", "main") or path.name == "tests.rs":
            continue
        # Unit tests (the `#[cfg(test)]` module closing each file) may reach anywhere.
        text = path.read_text(encoding="utf-8").split("#[cfg(test)]", 1)[0]
        code = "\n".join(line.split("//", 1)[0] for line in text.splitlines())
        named = graph.setdefault(top, set())
        for m in _CRATE_PATH.finditer(code):
            for name in _group_heads(m.group(1)):
                is_module = (crate / name).is_dir() or (crate / f"{name}.rs").is_file()
                if is_module and name != top:
                    named.add(name)
    return graph


def _group_heads(item: str) -> Iterable[str]:
    """The first segment of each path in `{a::b, c, d::{e, f}}` (or the name itself)."""
    if not item.startswith("{"):
        return [item]
    heads, depth, current = [], 0, ""
    for ch in item[1:-1]:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch == "," and depth == 0:
            heads.append(current)
            current = ""
            continue
        current += ch
    heads.append(current)
    return [h.strip().split("::")[0] for h in heads if h.strip()]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(10_000, sys.getrecursionlimit()))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def a_cycle(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """One cycle through the component's first node, to show how it closes."""
    start, members = component[0], set(component)
    path, seen = [start], {start}
    while True:
        nxt = sorted(n for n in graph[path[-1]] if n in members)
        back = [n for n in nxt if n == start]
        if back and len(path) > 1:
            return [*path, start]
        fresh = [n for n in nxt if n not in seen]
        if not fresh:
            return [*path, nxt[0]] if nxt else path
        path.append(fresh[0])
        seen.add(fresh[0])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rust-strict", action="store_true", help="fail on a Rust module cycle too")
    args = parser.parse_args(argv)
    status = 0
    py = python_graph(PACKAGE)
    for component in cycles(py):
        print(f"python import cycle: {' -> '.join(a_cycle(py, component))} ({len(component)} modules)")
        status = 1
    rs = rust_graph(CRATE)
    for component in cycles(rs):
        print(f"rust module cycle: {' -> '.join(a_cycle(rs, component))} ({len(component)} modules)")
        if args.rust_strict:
            status = 1
    if status == 0:
        print(f"no import cycle among {len(py)} Python modules and {len(rs)} Rust top-level modules")
    return status


if __name__ == "__main__":
    sys.exit(main())
