"""Tests for daemon.systemd and the unit files under systemd/."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from daemon.systemd import listen_sockets, notify, watchdog_interval

REPO = Path(__file__).resolve().parents[2]
UNITS = REPO / "systemd"
SERVICE = UNITS / "tradelog.service"
SOCKET_UNIT = UNITS / "tradelog.socket"
EXEC_START = "/usr/local/bin/tradelog"
MAX_EXPOSURE = 1.5


def _receiver(address: str | bytes) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.settimeout(5)
    return sock


# --- notify ------------------------------------------------------------------


def test_notify_sends_one_datagram_to_path_socket(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """notify() joins its lines with newlines and sends them as exactly one
    datagram to the filesystem socket named by $NOTIFY_SOCKET."""
    path = tmp_path / "notify.sock"
    with _receiver(str(path)) as receiver:
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        assert notify("READY=1", "STATUS=replaying 42 events") is True
        assert receiver.recv(4096) == b"READY=1\nSTATUS=replaying 42 events"
        assert notify("WATCHDOG=1") is True
        assert receiver.recv(4096) == b"WATCHDOG=1"
        receiver.setblocking(False)
        with pytest.raises(BlockingIOError):
            receiver.recv(4096)


def test_notify_supports_abstract_namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    """A $NOTIFY_SOCKET starting with '@' is addressed in the Linux abstract
    namespace (leading NUL byte), like sd_notify(3) does."""
    name = f"tradelog-test-{uuid.uuid4().hex}"
    with _receiver(b"\0" + name.encode()) as receiver:
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert notify("STOPPING=1", f"MAINPID={os.getpid()}") is True
        assert receiver.recv(4096) == f"STOPPING=1\nMAINPID={os.getpid()}".encode()


def test_notify_without_notify_socket_returns_false(monkeypatch: pytest.MonkeyPatch) -> None:
    """With $NOTIFY_SOCKET unset or empty, notify() does nothing and returns False."""
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert notify("READY=1") is False
    monkeypatch.setenv("NOTIFY_SOCKET", "")
    assert notify("READY=1") is False


def test_notify_send_error_returns_false(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A send failure (nobody listening at $NOTIFY_SOCKET) makes notify()
    return False instead of raising; unsupported address kinds do too."""
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "missing.sock"))
    assert notify("READY=1") is False
    monkeypatch.setenv("NOTIFY_SOCKET", "vsock:2:1234")
    assert notify("READY=1") is False


def test_notify_rejects_embedded_newline_and_no_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """notify() raises ValueError for a line containing a newline (it would
    inject extra assignments) or for no lines at all, sending nothing."""
    path = tmp_path / "notify.sock"
    with _receiver(str(path)) as receiver:
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        with pytest.raises(ValueError, match="newline"):
            notify("STATUS=ok\nREADY=1")
        with pytest.raises(ValueError, match="at least one"):
            notify()
        receiver.setblocking(False)
        with pytest.raises(BlockingIOError):
            receiver.recv(4096)


# --- watchdog_interval -------------------------------------------------------


def test_watchdog_interval_parses_usec(monkeypatch: pytest.MonkeyPatch) -> None:
    """$WATCHDOG_USEC is converted to seconds; a $WATCHDOG_PID equal to our
    pid (or unset) keeps the watchdog enabled."""
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    assert watchdog_interval() == 30.0
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert watchdog_interval() == 30.0
    monkeypatch.setenv("WATCHDOG_USEC", "1500")
    assert watchdog_interval() == pytest.approx(0.0015)


def test_watchdog_interval_unset_or_invalid_is_none(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unset, empty, zero, negative or non-numeric $WATCHDOG_USEC means no
    watchdog: None."""
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    assert watchdog_interval() is None
    for value in ("", "0", "-5", "thirty", "1.5"):
        monkeypatch.setenv("WATCHDOG_USEC", value)
        assert watchdog_interval() is None, value


def test_watchdog_interval_other_pid_is_none(monkeypatch: pytest.MonkeyPatch) -> None:
    """A $WATCHDOG_PID naming another process (inherited variables) means the
    watchdog is not ours: None."""
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))
    assert watchdog_interval() is None
    monkeypatch.setenv("WATCHDOG_PID", "garbage")
    assert watchdog_interval() is None


# --- listen_sockets ----------------------------------------------------------

# Emulates what systemd does before exec'ing a socket-activated service: the
# wrapper moves the passed socket onto fd 3, sets LISTEN_PID to its own pid
# and exec()s the real child, which therefore runs with that same pid.
_ACTIVATION_WRAPPER = """
import os, sys
fd = int(sys.argv[1])
if fd != 3:
    os.dup2(fd, 3)
    os.close(fd)
os.environ["LISTEN_PID"] = str(os.getpid())
os.execv(sys.executable, [sys.executable, "-c", sys.argv[2]])
"""

_ACTIVATED_SERVER = """
import json, os, socket, sys
from daemon.systemd import listen_sockets
socks = listen_sockets()
info = {
    "count": len(socks),
    "fileno": socks[0].fileno(),
    "family": int(socks[0].family),
    "type": int(socks[0].type),
    "blocking": socks[0].getblocking(),
    "inheritable": os.get_inheritable(3),
    "env": sorted(k for k in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES") if k in os.environ),
    "again": len(listen_sockets()),
}
server = socks[0]
server.settimeout(20)
conn, _ = server.accept()
with conn:
    data = conn.recv(1024)
    conn.sendall(b"pong:" + data)
server.close()
print(json.dumps(info))
"""

_ACTIVATED_NOT_A_SOCKET = """
from daemon.systemd import listen_sockets
try:
    listen_sockets()
except OSError as exc:
    print("OSError", exc.errno)
"""


def _activated(fd: int, code: str, fds: int = 1) -> subprocess.Popen[str]:
    env = dict(os.environ)
    env.pop("LISTEN_PID", None)
    env["LISTEN_FDS"] = str(fds)
    env["LISTEN_FDNAMES"] = "tradelog.socket"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return subprocess.Popen(
        [sys.executable, "-c", _ACTIVATION_WRAPPER, str(fd), code],
        pass_fds=(fd,),
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_listen_sockets_accepts_on_passed_fd(tmp_path: Path) -> None:
    """A socket-activated child finds the passed listening AF_UNIX socket on
    fd 3, non-blocking and close-on-exec, can accept a connection on it, and
    LISTEN_PID/LISTEN_FDS/LISTEN_FDNAMES are gone from its environment
    (so a second call returns [])."""
    path = tmp_path / "t.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(str(path))
        listener.listen(4)
        child = _activated(listener.fileno(), _ACTIVATED_SERVER)
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
                client.settimeout(20)
                client.connect(str(path))
                client.sendall(b"ping")
                reply = b""
                while chunk := client.recv(1024):
                    reply += chunk
            out, err = child.communicate(timeout=30)
        finally:
            if child.poll() is None:
                child.kill()
                child.communicate()
    assert child.returncode == 0, err
    assert reply == b"pong:ping"
    info = json.loads(out)
    assert info == {
        "count": 1,
        "fileno": 3,
        "family": int(socket.AF_UNIX),
        "type": int(socket.SOCK_STREAM),
        "blocking": False,
        "inheritable": False,
        "env": [],
        "again": 0,
    }


def test_listen_sockets_rejects_non_socket_fd() -> None:
    """If fd 3 is not a socket, listen_sockets() raises OSError (ENOTSOCK)."""
    read_end, write_end = os.pipe()
    try:
        child = _activated(read_end, _ACTIVATED_NOT_A_SOCKET)
        out, err = child.communicate(timeout=30)
    finally:
        os.close(read_end)
        os.close(write_end)
    assert child.returncode == 0, err
    assert out.split() == ["OSError", str(88)]  # errno.ENOTSOCK on Linux


def test_listen_sockets_not_activated(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without LISTEN_PID/LISTEN_FDS, with LISTEN_PID naming another process,
    or with LISTEN_FDS=0, listen_sockets() returns [] and still clears the
    variables."""
    monkeypatch.delenv("LISTEN_PID", raising=False)
    monkeypatch.delenv("LISTEN_FDS", raising=False)
    assert listen_sockets() == []

    monkeypatch.setenv("LISTEN_PID", str(os.getpid() + 1))
    monkeypatch.setenv("LISTEN_FDS", "1")
    monkeypatch.setenv("LISTEN_FDNAMES", "tradelog.socket")
    assert listen_sockets() == []
    assert not {"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"} & os.environ.keys()

    monkeypatch.setenv("LISTEN_PID", str(os.getpid()))
    monkeypatch.setenv("LISTEN_FDS", "0")
    assert listen_sockets() == []
    assert "LISTEN_PID" not in os.environ


def test_listen_sockets_malformed_env_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    """Non-integer or negative LISTEN_PID/LISTEN_FDS raise ValueError (like
    sd_listen_fds(3) returning -EINVAL), after clearing the variables."""
    for pid, fds in (("abc", "1"), (str(os.getpid()), "x"), (str(os.getpid()), "-1")):
        monkeypatch.setenv("LISTEN_PID", pid)
        monkeypatch.setenv("LISTEN_FDS", fds)
        with pytest.raises(ValueError, match="LISTEN_PID"):
            listen_sockets()
        assert "LISTEN_FDS" not in os.environ


# --- unit files --------------------------------------------------------------

needs_systemd_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze not on PATH"
)


def _units_for_verify(tmp_path: Path) -> list[Path]:
    """Copy the units to tmp_path, ready for `systemd-analyze verify`.

    verify fails if ExecStart='s binary does not exist.  On a machine where
    /usr/local/bin/tradelog is not installed, a drop-in
    (tradelog.service.d/test.conf next to the copy, which verify loads because
    it adds the files' directory to the unit search path) resets ExecStart=
    to a fake executable in tmp_path.  The unit files themselves are verified
    byte for byte; only that one line is overridden.
    """
    service = tmp_path / SERVICE.name
    socket_unit = tmp_path / SOCKET_UNIT.name
    shutil.copyfile(SERVICE, service)
    shutil.copyfile(SOCKET_UNIT, socket_unit)
    if not os.access(EXEC_START, os.X_OK):
        fake = tmp_path / "tradelog"
        fake.write_text("#!/bin/sh\nexit 0\n")
        fake.chmod(fake.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        dropin = tmp_path / f"{SERVICE.name}.d"
        dropin.mkdir()
        (dropin / "test.conf").write_text(f"[Service]\nExecStart=\nExecStart={fake} serve\n")
    return [service, socket_unit]


@needs_systemd_analyze
def test_units_verify_cleanly(tmp_path: Path) -> None:
    """`systemd-analyze verify tradelog.service tradelog.socket` exits 0 and
    prints nothing (no unknown keys, bad values or missing dependencies)."""
    result = subprocess.run(
        ["systemd-analyze", "verify", *map(str, _units_for_verify(tmp_path))],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


@needs_systemd_analyze
def test_service_security_exposure() -> None:
    """`systemd-analyze security --offline=yes` rates the service's overall
    exposure at most 1.5 ("SAFE")."""
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", "--no-pager", str(SERVICE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    match = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", result.stdout)
    assert match is not None, result.stdout + result.stderr
    assert float(match.group(1)) <= MAX_EXPOSURE, result.stdout


def test_service_keeps_required_settings() -> None:
    """The service keeps the settings the daemon and its clients depend on,
    and never enables PrivateUsers= (it would hide peers' real uids from
    SO_PEERCRED)."""
    text = SERVICE.read_text()
    settings = {
        line.strip()
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    }
    for required in (
        "Type=notify",
        "NotifyAccess=main",
        "User=tradelog",
        "Group=tradelog",
        "StateDirectory=tradelog",
        "RuntimeDirectory=tradelog",
        "RuntimeDirectoryPreserve=yes",
        f"ExecStart={EXEC_START} serve",
        "WatchdogSec=30",
        "UMask=0077",
        "LimitNOFILE=8192",
    ):
        assert required in settings, required
    assert not any(s.startswith("PrivateUsers=") for s in settings)
    socket_settings = SOCKET_UNIT.read_text().splitlines()
    for required in (
        "ListenStream=/run/tradelog/tradelog.sock",
        "SocketMode=0660",
        "SocketUser=tradelog",
        "SocketGroup=tradelog",
        "Service=tradelog.service",
    ):
        assert required in socket_settings, required


@pytest.mark.skipif(shutil.which("systemd-sysusers") is None, reason="no systemd-sysusers")
def test_sysusers_creates_tradelog_user(tmp_path: Path) -> None:
    """The sysusers.d snippet creates a system user and same-named group
    `tradelog` (applied to an empty --root, not the host)."""
    (tmp_path / "etc").mkdir()
    conf = (UNITS / "tradelog.sysusers.conf").read_text()
    subprocess.run(
        ["systemd-sysusers", f"--root={tmp_path}", "-"],
        input=conf,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    passwd = (tmp_path / "etc/passwd").read_text().splitlines()
    group = (tmp_path / "etc/group").read_text().splitlines()
    user = next(line.split(":") for line in passwd if line.startswith("tradelog:"))
    grp = next(line.split(":") for line in group if line.startswith("tradelog:"))
    assert user[3] == grp[2]  # primary group is "tradelog"
    assert int(user[2]) < 1000  # system range
    assert user[6] == "/usr/sbin/nologin"


@pytest.mark.skipif(
    shutil.which("systemd-sysusers") is None
    or shutil.which("systemd-tmpfiles") is None
    or os.geteuid() != 0,
    reason="needs systemd-sysusers, systemd-tmpfiles and root (chown)",
)
def test_tmpfiles_creates_runtime_dir(tmp_path: Path) -> None:
    """The tmpfiles.d snippet creates /run/tradelog as tradelog:tradelog 0750
    (applied to a scratch --root, not the host)."""
    (tmp_path / "etc").mkdir()
    for tool, conf in (
        ("systemd-sysusers", "tradelog.sysusers.conf"),
        ("systemd-tmpfiles", "tradelog.tmpfiles.conf"),
    ):
        args = [tool, f"--root={tmp_path}", *(["--create"] if tool.endswith("tmpfiles") else [])]
        subprocess.run(
            [*args, "-"],
            input=(UNITS / conf).read_text(),
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
    info = (tmp_path / "run/tradelog").stat()
    assert stat.S_ISDIR(info.st_mode)
    assert stat.S_IMODE(info.st_mode) == 0o750
    passwd = (tmp_path / "etc/passwd").read_text()
    uid = next(int(f.split(":")[2]) for f in passwd.splitlines() if f.startswith("tradelog:"))
    assert info.st_uid == uid
