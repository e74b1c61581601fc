"""Fixtures shared by the test modules."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import DaemonProcess


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[DaemonProcess]:
    """A running ``tradelog serve`` on a temp socket and database; killed at the end."""
    with DaemonProcess(tmp_path) as proc:
        yield proc
