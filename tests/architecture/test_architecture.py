"""The shape of the code: import cycles, layering, pure modules and module size.

The imports of every module of the four packages are read with ``ast`` (nothing is
imported), so these checks run in milliseconds and see imports that never run.

Which imports count: all of them. Module-level imports, imports inside functions and
methods, and imports under ``if TYPE_CHECKING:`` are one dependency each. A function-level
import or a type-only import is the usual way to hide a cycle or an upward dependency
from the interpreter; the design still has it (the two modules cannot be understood or
changed apart), so the cycle and layering checks see through both. What a pure module
loads counts every import that can run, so type-only imports are left out there.
docs/ARCHITECTURE.md lists the rules.

An import names a module: ``from a.b import c`` depends on ``a.b.c`` when that is a
module of the project, else on ``a.b``; ``import a.b.c`` depends on ``a.b.c``. The
packages on the way (``a``, ``a.b``) are run by Python first; they count where what is
loaded matters (the pure modules' closure), not for cycles, where every module would
otherwise form one with its own package's ``__init__``.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

from tests.conftest import (
    UnmarkedProcessError,
    needs_daemon_mark,
    process_guard,
    starts_process,
)

ROOT = Path(importlib.util.find_spec("daemon").origin or "").resolve().parent.parent  # type: ignore[union-attr]
"""Where the four packages are imported from: the source tree, or site-packages when
the suite runs against the installed wheel (``.ci/test``)."""
PACKAGES = ("schemas", "eventstore", "projections", "daemon")
ALLOWED = {
    "schemas": {"schemas"},
    "eventstore": {"schemas", "eventstore"},
    "projections": {"schemas", "eventstore", "projections"},
    "daemon": {"schemas", "eventstore", "projections", "daemon"},
}
"""The project packages each package may import: ``schemas <- eventstore <- projections
<- daemon``; nothing below imports one above, and nothing imports ``daemon``."""

MAX_LINES = 400

IO_LIBRARIES = frozenset({
    "aiofiles", "aiosqlite", "asyncio", "concurrent", "fcntl", "http", "io", "logging",
    "mmap", "multiprocessing", "os", "pathlib", "select", "selectors", "shutil", "signal",
    "socket", "socketserver", "sqlite3", "ssl", "structlog", "subprocess", "tempfile",
    "tenacity", "threading", "urllib",
})
"""Libraries that read or write files, sockets, processes or logs, or run threads or an
event loop. A pure module, and everything loaded when it is imported, uses none."""

PURE = {
    "schemas": ("schemas",),
    "projection folds": (
        "projections.fold", "projections.admit", "projections.state", "projections.calendar",
        "projections.positions", "projections.balances", "projections.daily",
        "projections.orders", "projections.signals", "projections.journal",
        "projections.rowcache", "projections.metrics_series", "projections.metrics_stats",
        "projections.metrics_risk", "projections.metrics_groups", "projections.metrics_bench",
        "projections.metrics_periods", "projections.metrics_analytics",
        "projections.metrics_window",
    ),
    "wire": ("daemon.wire",),
}
"""Pure modules by group; a name covers the module and, for a package, all under it."""


@dataclass(frozen=True)
class Import:
    """One import statement's dependency: ``target`` is a dotted module name (of the
    project, or the top-level name of a library); ``where`` is module, function or
    type-checking; ``line`` is 1-based."""

    target: str
    line: int
    where: str


def module_name(path: Path) -> str:
    """The dotted name of the module at ``path`` (under ROOT)."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def project_modules() -> dict[str, Path]:
    """Every module of the four packages, by dotted name."""
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            found[module_name(path)] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _walk(nodes: Iterable[ast.AST], where: str
          ) -> Iterator[tuple[ast.Import | ast.ImportFrom, str]]:
    """Every import in ``nodes`` and below, with where it sits: ``function`` inside a
    function or method, else ``type-checking`` under ``if TYPE_CHECKING:``, else
    ``module`` (class bodies run at import, so they are module level)."""
    for node in nodes:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node, where
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield from _walk(ast.iter_child_nodes(node), "function")
        elif isinstance(node, ast.If) and _is_type_checking(node.test) and where == "module":
            yield from _walk(node.body, "type-checking")
            yield from _walk(node.orelse, where)
        else:
            yield from _walk(ast.iter_child_nodes(node), where)


def imports_of(source: str, name: str, is_package: bool,
               modules: Iterable[str]) -> list[Import]:
    """The dependencies of module ``name`` whose text is ``source``, resolved against the
    project's ``modules`` (relative imports included)."""
    known = set(modules)
    found: list[Import] = []
    for node, where in _walk(ast.parse(source).body, "module"):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.append(Import(_resolve(alias.name, known), node.lineno, where))
            continue
        base = node.module or ""
        if node.level:
            anchor = name.split(".") if is_package else name.split(".")[:-1]
            anchor = anchor[:len(anchor) - (node.level - 1)]
            base = ".".join([*anchor, *([base] if base else [])])
        for alias in node.names:
            full = f"{base}.{alias.name}"
            target = full if full in known else _resolve(base, known)
            found.append(Import(target, node.lineno, where))
    return found


def _resolve(dotted: str, known: set[str]) -> str:
    """The nearest project module at or above ``dotted``; a library by its top-level name."""
    parts = dotted.split(".")
    if parts[0] not in known:
        return parts[0]
    while len(parts) > 1 and ".".join(parts) not in known:
        parts.pop()
    return ".".join(parts)


@cache
def graph() -> dict[str, tuple[Import, ...]]:
    """Each project module's dependencies."""
    modules = project_modules()
    return {name: tuple(imports_of(path.read_text(encoding="utf-8"), name,
                                   path.name == "__init__.py", modules))
            for name, path in modules.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module, or of one module that
    imports itself (Tarjan's algorithm), each sorted; sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component: list[str] = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1 or node in edges.get(node, ()):
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return sorted(found)


def _project_edges() -> dict[str, set[str]]:
    modules = project_modules()
    return {name: {i.target for i in deps if i.target in modules}
            for name, deps in graph().items()}


def _ancestors(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:n]) for n in range(1, len(parts))]


def loaded_by(name: str) -> set[str]:
    """The project modules run when ``name`` is imported (and its imports, at any depth,
    counting every import that can run as run -- function-level ones included, type-only
    ones under ``TYPE_CHECKING`` not, since they never run): its packages' ``__init__``
    and what they import too."""
    modules = project_modules()
    seen: set[str] = set()
    todo = [name]
    while todo:
        current = todo.pop()
        if current in seen or current not in modules:
            continue
        seen.add(current)
        todo.extend(_ancestors(current))
        todo.extend(i.target for i in graph()[current]
                    if i.target in modules and i.where != "type-checking")
    return seen


def _covered(prefixes: Iterable[str]) -> list[str]:
    return sorted(m for m in project_modules()
                  if any(m == p or m.startswith(p + ".") for p in prefixes))


# ---------------------------------------------------------------------- the reader itself


def test_the_reader_sees_every_kind_of_import() -> None:
    """Module-level, function-level, TYPE_CHECKING and relative imports are all found,
    each with where it sits, resolved to the module it names."""
    source = (
        "import os.path\n"
        "from typing import TYPE_CHECKING\n"
        "from . import b\n"
        "from .b import thing\n"
        "if TYPE_CHECKING:\n"
        "    from pkg.c import Kind\n"
        "def f():\n"
        "    import sqlite3\n"
        "    from pkg import c\n"
    )
    modules = ["pkg", "pkg.a", "pkg.b", "pkg.c"]

    found = imports_of(source, "pkg.a", False, modules)

    assert [
        Import("os", 1, "module"), Import("typing", 2, "module"),
        Import("pkg.b", 3, "module"), Import("pkg.b", 4, "module"),
        Import("pkg.c", 6, "type-checking"), Import("sqlite3", 8, "function"),
        Import("pkg.c", 9, "function"),
    ] == found


def test_the_cycle_finder_finds_a_cycle_through_three_modules() -> None:
    """A cycle a -> b -> c -> a is reported once, a self-import too, a chain is not."""
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e"}, "f": {"d"}}

    assert [["a", "b", "c"], ["e"]] == cycles(edges)


def test_the_project_is_read() -> None:
    """The scan finds the packages' modules and a known import between two of them."""
    modules = project_modules()
    inbox_deps = {i.target for i in graph()["daemon.importers.inbox"]}

    assert {"schemas", "eventstore", "projections", "daemon"} <= set(modules)
    assert "daemon.importers.safedir" in inbox_deps


# ---------------------------------------------------------------------- the rules


def test_no_import_cycle() -> None:
    """No group of modules imports each other, through any chain and any kind of import.
    A failure lists each cycle's modules and the imports that close it."""
    edges = _project_edges()
    found = cycles(edges)
    detail = []
    for component in found:
        members = set(component)
        links = sorted(f"{name}:{i.line} ({i.where}) -> {i.target}"
                       for name in component for i in graph()[name] if i.target in members)
        detail.append(links)

    assert [] == detail, "\n\n".join("\n".join(links) for links in detail)


@pytest.mark.parametrize("package", PACKAGES)
def test_each_package_imports_only_the_layers_below(package: str) -> None:
    """``schemas <- eventstore <- projections <- daemon``: a module imports only its own
    package and those below it; nothing imports ``daemon``."""
    wrong = sorted(
        f"{name}:{i.line} ({i.where}) imports {i.target}"
        for name, deps in graph().items() if name.split(".")[0] == package
        for i in deps
        if i.target.split(".")[0] in PACKAGES
        and i.target.split(".")[0] not in ALLOWED[package])

    assert [] == wrong, "\n".join(wrong)


@pytest.mark.parametrize("group", sorted(PURE))
def test_pure_modules_load_no_io_library(group: str) -> None:
    """A pure module, and every project module loaded when it is imported (its packages'
    ``__init__`` included), imports no library that does I/O, runs a thread or an event
    loop, or logs. A failure names the module that imports it and the pure one that
    loads it."""
    prefixes = PURE[group]
    pure = _covered(prefixes)
    missing = [p for p in prefixes if not _covered([p])]
    wrong: dict[str, set[str]] = {}
    for name in pure:
        for loaded in loaded_by(name):
            for i in graph()[loaded]:
                if i.target in IO_LIBRARIES and i.where != "type-checking":
                    key = f"{loaded}:{i.line} ({i.where}) imports {i.target}"
                    wrong.setdefault(key, set()).add(name)
    report = sorted(f"{key}, loaded by {len(users)} pure module(s) e.g. {min(users)}"
                    for key, users in wrong.items())

    assert ([], []) == (missing, report), "\n".join(
        [*(f"{p}: no such module" for p in missing), *report])


@pytest.mark.parametrize("package", PACKAGES)
def test_no_module_over_400_lines(package: str) -> None:
    """Every module of the package has at most 400 lines."""
    long = sorted(
        f"{name}: {count} lines"
        for name, path in project_modules().items() if name.split(".")[0] == package
        if (count := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES)

    assert [] == long, "\n".join(long)


# ---------------------------------------------------------------------- the daemon marker


def test_the_guard_refuses_every_way_to_start_a_process() -> None:
    """Under ``process_guard`` a subprocess and ``os.system`` raise
    ``UnmarkedProcessError`` naming the marker to add; after it, processes start again.
    (``os.fork`` is guarded the same way; it is not tried here, where a broken guard
    would fork the test run.)"""
    refused = []
    with process_guard():
        for start in (lambda: subprocess.run(["true"], check=False),
                      lambda: os.system("true")):
            with pytest.raises(UnmarkedProcessError) as caught:
                start()
            refused.append("pytest.mark.daemon" in str(caught.value))

    assert ([True, True], 0) == (refused, subprocess.run(["true"], check=False).returncode)


def test_the_marker_follows_helpers_to_a_process(tmp_path: Path) -> None:
    """A function is found to start a process directly, through a helper of its module,
    through a helper of ``tests`` (``daemon_support.running``) or not at all."""
    module = tmp_path / "sample.py"
    module.write_text(
        "import subprocess\n"
        "from tests.daemon_support import running, request\n"
        "def helper():\n    return subprocess.run(['true'])\n"
        "def indirect():\n    return helper()\n"
        "def through_support(path):\n    with running(path):\n        pass\n"
        "def only_a_request():\n    return request('health')\n"
        "def pure():\n    return 1\n",
        encoding="utf-8")

    found = {name: starts_process(module, name)
             for name in ("helper", "indirect", "through_support", "only_a_request", "pure")}

    assert {"helper": True, "indirect": True, "through_support": True,
            "only_a_request": False, "pure": False} == found


def test_a_unit_test_is_unmarked_and_runs_under_the_guard(
        request: pytest.FixtureRequest) -> None:
    """A test that starts nothing and uses no process fixture is left unmarked, and runs
    with the guard in place (``os.system`` is the guard's)."""
    assert isinstance(request.node, pytest.Item)
    assert (False, None, "refuse") == (needs_daemon_mark(request.node),
                                       request.node.get_closest_marker("daemon"),
                                       os.system.__name__)
