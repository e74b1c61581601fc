"""The systemd drop-in that turns the HTTP API on: it verifies with the units, lets
the daemon use inet sockets and the host's loopback, and nothing else."""

# STYLE.md wants `assert expected == actual`; ruff's SIM300 reads that as a Yoda condition.

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

UNITS = Path(__file__).resolve().parents[2] / "systemd"
DROPIN = UNITS / "tradelog-http.conf"


def _settings(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def test_dropin_opens_inet_for_loopback_only() -> None:
    """The drop-in allows AF_INET/AF_INET6 (the base unit has AF_UNIX only), leaves the
    private network namespace (a listener inside it would be unreachable), and keeps
    IP traffic to loopback; it sets the address through the environment."""
    settings = _settings(DROPIN)
    assert "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6" in settings
    assert "PrivateNetwork=no" in settings
    assert ["IPAddressDeny=any", "IPAddressAllow=localhost"] == [
        s for s in settings if s.startswith("IPAddress")]
    assert "Environment=TRADELOG_HTTP_LISTEN=127.0.0.1:8787" in settings
    assert "RestrictAddressFamilies=AF_UNIX" in _settings(UNITS / "tradelog.service")


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze not on PATH")
def test_units_with_the_dropin_verify(tmp_path: Path) -> None:
    """`systemd-analyze verify` accepts the service with the drop-in in place."""
    for name in ("tradelog.service", "tradelog.socket"):
        shutil.copyfile(UNITS / name, tmp_path / name)
    dropins = tmp_path / "tradelog.service.d"
    dropins.mkdir()
    shutil.copyfile(DROPIN, dropins / "http.conf")
    if not os.access("/usr/local/bin/tradelog", os.X_OK):
        fake = tmp_path / "tradelog"
        fake.write_text("#!/bin/sh\nexit 0\n")
        fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
        (dropins / "test.conf").write_text(f"[Service]\nExecStart=\nExecStart={fake} serve\n")
    result = subprocess.run(
        ["systemd-analyze", "verify", str(tmp_path / "tradelog.service"),
         str(tmp_path / "tradelog.socket")],
        capture_output=True, text=True, timeout=60, check=False)
    assert (0, "", "") == (result.returncode, result.stdout, result.stderr)
