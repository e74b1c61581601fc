"""The rooms of the server side (docs/ARCHITECTURE.md): the wire layer imports no
I/O, the service knows nothing of the server, and no import cycle runs through them."""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
from pathlib import Path

from daemon.service.handlers import Handlers
from daemon.wire.methods import METHODS

ROOT = Path(importlib.util.find_spec("daemon").origin or "").resolve().parent.parent  # type: ignore[union-attr]
"""Where the four packages are imported from: the source tree, or site-packages when
the suite runs against the installed wheel (``.ci/test``)."""
PACKAGES = ("schemas", "eventstore", "projections", "daemon")
SERVER_ROOMS = ("daemon.wire", "daemon.service", "daemon.calls", "daemon.connection",
                "daemon.server", "daemon.sockets", "daemon.errormap", "daemon.backup")
IO_MODULES = {"asyncio", "socket", "select", "selectors", "sqlite3", "aiosqlite", "threading",
              "subprocess", "eventstore", "projections", "structlog", "tenacity"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports() -> dict[str, set[str]]:
    """Each project module and the project modules it imports (at run time or for type
    checking alike), resolved to modules that exist."""
    files = {_module_name(p): p for package in PACKAGES for p in (ROOT / package).rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            for written in targets:
                target = written
                while target and target not in files:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    found.add(target)
        graph[name] = found
    return graph


def _in_rooms(name: str) -> bool:
    return any(name == room or name.startswith(room + ".") for room in SERVER_ROOMS)


def test_the_wire_layer_loads_no_io_module() -> None:
    """Importing every module of daemon.wire in a fresh interpreter loads no event loop,
    socket, database, logging or storage module."""
    code = ("import sys, daemon.wire.protocol, daemon.wire.methods, daemon.wire.framing, "
            "daemon.wire.rpc, daemon.wire.jsonread; print(' '.join(sorted(sys.modules)))")
    loaded = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                            text=True, cwd=ROOT).stdout.split()
    assert [] == [m for m in loaded if m.partition(".")[0] in IO_MODULES]


def test_the_service_knows_nothing_of_the_server() -> None:
    """No module of daemon.service imports the connection, the calls, the sockets or the
    server (subscriptions reach a client through the Outbox interface)."""
    graph = _imports()
    server_side = {"daemon.connection", "daemon.calls", "daemon.sockets", "daemon.server"}
    reaching = {name: sorted(graph[name] & server_side) for name in graph
                if name.startswith("daemon.service")}
    assert {name: [] for name in reaching} == reaching


def test_no_import_cycle_runs_through_the_server_rooms() -> None:
    """No chain of imports (type-checking ones included) leads from a module of the
    wire, service, calls, connection or server back to itself."""
    graph = _imports()
    cycles = []
    for start in sorted(n for n in graph if _in_rooms(n)):
        seen: set[str] = set()
        stack = list(graph[start])
        while stack:
            name = stack.pop()
            if name == start:
                cycles.append(start)
                break
            if name in seen:
                continue
            seen.add(name)
            stack.extend(graph.get(name, ()))
    assert [] == cycles


def test_every_method_of_the_table_has_a_handler_and_no_other() -> None:
    """The service's handlers name exactly the methods of daemon.wire.methods.METHODS."""
    handlers = Handlers(None)  # type: ignore[arg-type]  # the table needs no service
    assert sorted(METHODS) == sorted(handlers.table)
