"""One line naming the machine a bench or fault run ran on, printed before its figures."""

from __future__ import annotations

import contextlib
import os
import platform
import sqlite3
from pathlib import Path

__all__ = ["machine"]


def machine() -> str:
    """Kernel, CPU model and count, Python, SQLite and the 1-minute load average."""
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return (f"{platform.system()} {platform.release()}, {cpu}, {os.cpu_count()} cores, "
            f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
            f"load {os.getloadavg()[0]:.2f}")
