"""The shape of the package: no import cycle among its modules, no module too long to read."""

from __future__ import annotations

import ast
from pathlib import Path

import modelstore

PACKAGE = Path(modelstore.__file__).resolve().parent
MAX_LINES = 500


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, modules: set[str]) -> set[str]:
    """Modules of the package imported anywhere (functions included), except for type checking."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in modules)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # ``from pkg import sub`` depends on pkg.sub; ``from pkg import name`` on pkg itself
            # (a parent package's own __init__ is not an edge, as for every other import)
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                if sub in modules:
                    found.add(sub)
                elif node.module in modules:
                    found.add(node.module)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def import_graph() -> dict[str, set[str]]:
    paths = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    modules = set(paths)
    return {
        name: _imports(ast.parse(path.read_text(encoding="utf-8")), modules) - {name}
        for name, path in paths.items()
    }


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first == last), or None."""
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_import_cycle() -> None:
    graph = import_graph()
    assert "modelstore.registry.core" in graph  # the graph sees the whole package
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_finder_finds_cycles() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_type_checking_imports_are_not_edges() -> None:
    tree = ast.parse(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    import m.a\n"
        "def f():\n    from m import b\n"
    )
    assert _imports(tree, {"m.a", "m.b", "m"}) == {"m.b"}


def test_no_module_over_500_lines() -> None:
    long = {
        str(p.relative_to(PACKAGE)): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}


REPOSITORY = PACKAGE.parent.parent


def test_the_specified_top_level_layout() -> None:
    """The layout the project was specified with: the C fast path at ``src/modelstore/_native/``."""
    if not (REPOSITORY / "pyproject.toml").is_file():  # an installed copy, not the checkout
        return
    for path in ("pyproject.toml", "README.md", ".ci/run", "registry", "manifests", "tests"):
        assert (REPOSITORY / path).exists(), path
    native = PACKAGE / "_native"
    assert {p.stem for p in native.glob("*.py")} >= {"codegen", "compiler", "build", "evaluator"}
    # backends/ holds the thin evaluator adapters only: no subpackage, no C generation
    folders = [p.name for p in (PACKAGE / "backends").iterdir() if p.is_dir()]
    assert [name for name in folders if name != "__pycache__"] == []


def test_readme_package_table_names_every_subpackage() -> None:
    if not (REPOSITORY / "README.md").is_file():
        return
    readme = (REPOSITORY / "README.md").read_text(encoding="utf-8")
    table = {
        line.split("|")[1].strip().strip("`").rstrip("/")
        for line in readme.splitlines()
        if line.startswith("| `")
    }
    subpackages = {
        p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file() and p.name != "testing"
    }
    missing = {name for name in subpackages if not any(name in row for row in table)}
    assert missing == set(), f"README's package table lacks {sorted(missing)}"
