"""Fixtures shared by the test modules, and the ``daemon`` marker.

A test that starts a process (the daemon, the writer, the CLI, any subprocess) is
marked ``daemon``, so that ``pytest -m "not daemon"`` runs only the fast unit tests.
The mark is given automatically at collection, from what the test uses: its own code,
its fixtures', and the module-level helpers they call (here or in another ``tests``
module), down to a process starter (``subprocess``, ``multiprocessing``,
``DaemonProcess``, ``ServeProcess``, ``WriterProcess``, ``daemon.writer.launch.launch``).
A module may also say ``pytestmark = pytest.mark.daemon``. A test without the mark that
starts a process anyway fails with ``UnmarkedProcessError``: an unmarked daemon-level
test cannot pass.
"""

from __future__ import annotations

import ast
import contextlib
import inspect
import os
import subprocess
import textwrap
from collections.abc import Callable, Generator, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from tests.support import DaemonProcess, daemon_on

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
HELPER_PACKAGES = frozenset({"tests", "bench"})
PROCESS_MODULES = frozenset({"subprocess", "multiprocessing", "asyncio.subprocess"})
"""Any name imported from these (or the module itself) starts a process."""
PROCESS_NAMES = frozenset({"DaemonProcess", "ServeProcess", "WriterProcess", "launch",
                           "create_subprocess_exec",
                           "create_subprocess_shell"})
"""Names that start a process, whatever module they are imported from."""


@pytest.fixture
def pg() -> Iterator[Any]:
    """A PostgreSQL log in a schema of its own (``PgLog``: ``url``, ``schema``), dropped
    after the test."""
    from tests.eventstore.test_store_contract import PgLog

    log = PgLog()
    try:
        yield log
    finally:
        log.drop()


@pytest.fixture
def named_pg() -> Iterator[Any]:
    """``pg`` whose connections carry an application name of their own
    (``NamedPgLog.name``), so that a test can end exactly its sessions."""
    from tests.eventstore.test_postgres_faults import NamedPgLog

    log = NamedPgLog()
    try:
        yield log
    finally:
        log.drop()


STORES = ("sqlite", "postgresql")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test of a module marked ``both_stores`` that uses the ``daemon`` fixture (of this
    file, or ``store`` itself) runs once per store: its daemon on a SQLite file, then on
    a PostgreSQL schema of its own."""
    if "store" in metafunc.fixturenames and metafunc.definition.get_closest_marker(
            "both_stores") is not None:
        metafunc.parametrize("store", STORES, scope="module")


@pytest.fixture
def store() -> str:
    """The store of the ``daemon`` fixture's log: ``sqlite`` unless the module is marked
    ``both_stores``, which runs each test on both."""
    return "sqlite"


@pytest.fixture
def daemon(tmp_path: Path, store: str) -> Iterator[DaemonProcess]:
    """A running ``tradelog serve`` on a temp socket and, by ``store``, a database file
    in ``tmp_path`` or a PostgreSQL schema of its own (dropped after); killed at the end."""
    with daemon_on(store, tmp_path) as proc:
        yield proc


# ---------------------------------------------------------------------- the daemon marker


def _used_names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


@cache
def _module_summary(path: Path) -> tuple[dict[str, tuple[str, str | None]],
                                         dict[str, frozenset[str]]]:
    """A module's imports (bound name to (module, imported name or None for a module))
    and its module-level functions and classes (name to the names they use)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    imports: dict[str, tuple[str, str | None]] = {}
    defs: dict[str, frozenset[str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                imports[alias.asname or alias.name.split(".")[0]] = (alias.name, None)
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                imports[alias.asname or alias.name] = (node.module, alias.name)
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            defs[node.name] = frozenset(_used_names(node))
    return imports, defs


def _helper_file(dotted: str) -> Path | None:
    """The file of a module of the repository's own helpers (``tests``, ``bench``)."""
    if dotted.split(".", maxsplit=1)[0] not in HELPER_PACKAGES:
        return None
    base = ROOT / dotted.replace(".", "/")
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def starts_process(path: Path, name: str, seen: frozenset[tuple[Path, str]] = frozenset()
                   ) -> bool:
    """Whether ``name``, as bound at module level in the module at ``path``, is or calls
    (through module-level helpers of ``tests`` or ``bench``, at any depth) a process
    starter."""
    if (path, name) in seen:
        return False
    seen = seen | {(path, name)}
    imports, defs = _module_summary(path)
    if name in imports:
        module, original = imports[name]
        if module in PROCESS_MODULES or module.split(".")[0] in PROCESS_MODULES:
            return True
        if (original or "") in PROCESS_NAMES:
            return True
        submodule = _helper_file(f"{module}.{original}" if original else module)
        if submodule is not None:  # a helper module: does anything in it start one
            every = set(_module_summary(submodule)[0]) | set(_module_summary(submodule)[1])
            return any(starts_process(submodule, other, seen) for other in sorted(every))
        target = _helper_file(module)
        return target is not None and original is not None and starts_process(
            target, original, seen)
    if name in PROCESS_NAMES and name in defs:
        return True
    return any(starts_process(path, used, seen) for used in defs.get(name, ()))


@cache
def _starts_process_cached(path: Path, name: str) -> bool:
    return starts_process(path, name)


@cache
def _function_nodes(path: Path) -> dict[int, ast.AST]:
    """The functions of the module at ``path`` (at any depth), by the line they start on
    (their first decorator's, as in ``co_firstlineno``, and their ``def``'s)."""
    nodes: dict[int, ast.AST] = {}
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            nodes.setdefault(node.lineno, node)
            if node.decorator_list:
                nodes.setdefault(node.decorator_list[0].lineno, node)
    return nodes


@cache
def _code_starts_process(path: Path, firstlineno: int) -> bool | None:
    """Whether the function of ``path`` starting on ``firstlineno`` uses a name that starts
    a process; None when no function starts there."""
    node = _function_nodes(path).get(firstlineno)
    if node is None:
        return None
    return any(_starts_process_cached(path, name) for name in _used_names(node))


def _function_starts_process(func: Callable[..., Any]) -> bool:
    """Whether the code of ``func`` (a test or a fixture of ``tests``) uses a name that
    starts a process, resolved in the module it is defined in. Each module is parsed
    once (the collection runs this for every test and fixture, on every xdist worker)."""
    try:
        source_file = inspect.getsourcefile(func)
    except (OSError, TypeError):
        return False
    if source_file is None or TESTS not in Path(source_file).resolve().parents:
        return False
    path = Path(source_file).resolve()
    code = getattr(inspect.unwrap(getattr(func, "__func__", func)), "__code__", None)
    if code is not None:
        found = _code_starts_process(path, code.co_firstlineno)
        if found is not None:
            return found
    try:
        source = textwrap.dedent(inspect.getsource(func))
    except (OSError, TypeError):
        return False
    return any(_starts_process_cached(path, name) for name in _used_names(ast.parse(source)))


def needs_daemon_mark(item: pytest.Item) -> bool:
    """Whether ``item`` starts a process, by its code and its fixtures' (see the module
    docstring)."""
    if not isinstance(item, pytest.Function):
        return False
    if _function_starts_process(item.function):
        return True
    for name in item.fixturenames:
        for definition in item._fixtureinfo.name2fixturedefs.get(name, ()):
            if _function_starts_process(definition.func):
                return True
    return False


DEFAULT_SLOW_SECONDS = 5.0


def _slow_seconds(item: pytest.Item) -> float:
    """``@pytest.mark.slow(seconds=...)``: about what the test takes alone on an idle
    2-core machine; 0 for a test not marked ``slow``."""
    marker = item.get_closest_marker("slow")
    if marker is None:
        return 0.0
    return float(marker.kwargs.get("seconds", DEFAULT_SLOW_SECONDS))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``daemon`` every test that starts a process, and put the ``slow`` ones (the
    fault runs: kill -9 loop, full disk, fuzz, hostile clients) first, longest first.

    The slow runs go first so that, with pytest-xdist, each starts at once on a worker
    of its own and the light tests fill the workers around them, instead of one of them
    starting last and running alone at the end (longest first is the usual greedy
    schedule). They run side by side: they share no database, socket, port or mount,
    and none asserts a time (their bounds, such as a good client answered within 10 s,
    are liveness bounds with room for a loaded machine), so nothing they check depends
    on running alone. The order within the light tests is the collection's.

    No ``xdist_group`` is given: with pytest 9, pytest-xdist 3.8's ``--dist loadgroup``
    ignores the mark (it renames ``item._nodeid``, which pytest 9 no longer reads), so
    each test is its own unit, as with ``--dist load``.
    """
    for item in items:
        if item.get_closest_marker("daemon") is None and needs_daemon_mark(item):
            item.add_marker(pytest.mark.daemon)
    order = {id(item): n for n, item in enumerate(items)}
    items.sort(key=lambda item: (-_slow_seconds(item), order[id(item)]))


class UnmarkedProcessError(BaseException):
    """A test not marked ``daemon`` started a process. A BaseException, so that no
    ``except Exception`` in the code under test hides it."""


def _refuse(what: str) -> Callable[..., Any]:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        del args, kwargs
        raise UnmarkedProcessError(
            f"this test starts a process ({what}) but is not marked daemon: add "
            "`pytestmark = pytest.mark.daemon` to its module, or use a helper the "
            "automatic marking knows (tests/conftest.py), so that `pytest -m \"not daemon\"` "
            "stays a run of fast unit tests")
    return refuse


@contextlib.contextmanager
def process_guard() -> Iterator[None]:
    """Within it, starting a process (``subprocess``, ``os.fork``, ``os.system``,
    ``os.posix_spawn``...) raises ``UnmarkedProcessError``."""
    patch = pytest.MonkeyPatch()
    patch.setattr(subprocess.Popen, "_execute_child", _refuse("subprocess"))
    for name in ("fork", "forkpty", "system", "posix_spawn", "posix_spawnp"):
        if hasattr(os, name):
            patch.setattr(os, name, _refuse(f"os.{name}"))
    try:
        yield
    finally:
        patch.undo()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None
                            ) -> Generator[None, None, None]:
    """A test not marked ``daemon`` runs (with its fixtures of every scope) under
    ``process_guard``."""
    del nextitem
    if item.get_closest_marker("daemon") is not None:
        yield
        return
    with process_guard():
        yield
