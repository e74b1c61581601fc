"""Helpers for the first-hour tests: the installed ``tradelog`` command in a subprocess,
and a daemon with a few events in it."""

from __future__ import annotations

import os
import subprocess
import sysconfig
from pathlib import Path

from daemon.client import Client
from tests.support import DaemonProcess, fill, wire_event

SCRIPT = Path(sysconfig.get_path("scripts")) / "tradelog"
"""The console script of the environment running the suite (the installed wheel's)."""


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without ``TRADELOG_*`` and ``COLUMNS``, plus ``extra``."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("TRADELOG_") and k != "COLUMNS"}
    env.update(extra)
    return env


def run(*args: str, stdin: bytes | None = None, env: dict[str, str] | None = None,
        timeout_s: float = 60.0) -> subprocess.CompletedProcess[str]:
    """``tradelog ARGS`` through the installed script, output as text; not checked."""
    return subprocess.run([str(SCRIPT), *args], input=None if stdin is None else stdin.decode(),
                          capture_output=True, text=True, timeout=timeout_s, check=False,
                          env=env or clean_env())


def shell(script: str, env: dict[str, str] | None = None,
          timeout_s: float = 60.0) -> subprocess.CompletedProcess[str]:
    """``bash -c script`` with the installed script's folder first on PATH."""
    env = dict(env or clean_env())
    env["PATH"] = f"{SCRIPT.parent}:{env.get('PATH', '')}"
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True,
                          timeout=timeout_s, check=False, env=env)


def seed(proc: DaemonProcess) -> None:
    """Three events in account ``paper-1``: a deposit of 1000.5, a buy and a mark, so
    balances have cash, equity and an unrealized P&L with trailing zeros dropped."""
    with Client(proc.socket) as client:
        client.append([
            wire_event("cash", {"amount": "1000.5", "kind": "deposit"}, account="paper-1"),
            fill("buy", "1000", "1.0712", account="paper-1"),
            wire_event("mark", {"prices": {"EURUSD": "1.0730"}}, account="paper-1")])
