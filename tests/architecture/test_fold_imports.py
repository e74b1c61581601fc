"""The folds are pure: importing them loads no module that does I/O, and the writer's
launcher stays standard library only."""

from __future__ import annotations

import subprocess
import sys

import pytest

IO_MODULES = ("aiosqlite", "sqlite3", "_sqlite3", "tenacity", "asyncio", "socket", "structlog")
FOLDS = ("projections.fold", "projections.positions", "projections.balances",
         "projections.daily", "projections.signals", "projections.orders",
         "projections.journal", "projections.state", "projections.tables",
         "projections.admit", "projections.calendar", "projections.rowcache",
         "projections.snapshots", "eventstore.record", "eventstore.canonical")


def _loaded_after(module: str, watched: tuple[str, ...]) -> list[str]:
    probe = subprocess.run(
        [sys.executable, "-c",
         f"import sys, {module}; print(' '.join(sorted(m for m in {watched!r} "
         "if m in sys.modules)))"],
        capture_output=True, text=True, check=True)
    return probe.stdout.split()


@pytest.mark.parametrize("module", FOLDS)
def test_a_fold_module_imports_nothing_that_does_io(module: str) -> None:
    """Importing ``module`` (a fold, or what the folds read) in a fresh interpreter
    loads none of SQLite, aiosqlite, tenacity, asyncio, sockets or the logger."""
    assert [] == _loaded_after(module, IO_MODULES)


def test_the_writer_launcher_loads_no_project_code() -> None:
    """``daemon.writer.launch`` (imported before the rest of ``tradelog serve``) loads
    neither the event store nor the views nor SQLite."""
    assert [] == _loaded_after("daemon.writer.launch",
                               ("eventstore", "projections", "sqlite3", "asyncio"))


def test_the_daemon_loads_none_of_structlogs_optional_integrations() -> None:
    """The daemon's modules (the server and the writer) load structlog without rich,
    pygments or greenlet, which structlog would import for features tradelog does not
    use (``daemon.logs``): about 40 ms of each start. rich still imports afterwards."""
    assert [] == _loaded_after("daemon.server, daemon.writer.child",
                               ("rich", "pygments", "greenlet"))
    assert ["rich"] == _loaded_after("daemon.server, rich.table", ("rich",))
