"""``tradelog serve``: the daemon's lifecycle around the service.

Start: raise the soft open-file limit to the hard one and cap connections below it, open
the log (refusing a second daemon on the same file), bring the views up to date, listen
(socket activation or our own 0660 socket), then READY=1. SIGTERM/SIGINT: stop
accepting, stop reading requests, commit and answer what was accepted, close, exit 0,
all within ``shutdown_timeout_s`` (a repeated signal while exiting is ignored, so it
cannot change that). SIGHUP:
reload the config file. A storage fault that leaves the file in doubt:
log it and exit 70 so systemd restarts the daemon.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from daemon import heap, systemd
from daemon.backup import check_backup_config, run_schedule
from daemon.config import Config, load_config
from daemon.connection import Connection
from daemon.filemodes import make_dirs, prepare_db, secure_db_files, set_umask, share
from daemon.lockfile import acquire
from daemon.logs import Throttle, get_logger
from daemon.service import Service
from daemon.storage import check_tail_before, follow_others, open_storage
from daemon.writer import Writer
from daemon.writer.launch import Launched
from eventstore.errors import DatabaseFileError, TradelogError
from eventstore.store import ViewReader

__all__ = ["EXIT_IN_DOUBT", "serve"]

EXIT_IN_DOUBT = 70
log = get_logger("tradelog.server")


def _listen(path: Path, mode: int, group: int | None) -> socket.socket:
    """Our own listening socket at ``path`` (a stale one is replaced, a live one refused);
    a missing folder is made as ``daemon.filemodes.make_dirs`` says, the socket given to
    ``group``."""
    make_dirs(path.parent, group)
    if path.exists() or path.is_symlink():
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(str(path))
        except OSError:
            path.unlink()
        else:
            raise DatabaseFileError(f"another daemon is listening on {path}")
        finally:
            probe.close()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    os.chmod(path, mode)
    share(path, group)
    sock.listen(512)
    sock.setblocking(False)
    return sock


def check_socket_path(path: Path, group: int | None) -> None:
    """Before anything else is created: fail now if no socket can be made at ``path``
    (a folder that cannot be created, a read-only or foreign place, a name too long),
    by binding one there and removing it again. A path where a socket already is is
    left for ``_listen`` (a stale one is replaced, a live one refused).

    Raises:
        OSError: the system's reason, with ``filename`` the path.
    """
    make_dirs(path.parent, group)
    if path.exists() or path.is_symlink():
        return
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.bind(str(path))
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from None
    finally:
        probe.close()
    with contextlib.suppress(OSError):
        path.unlink()


def raise_open_files() -> int:
    """Raise the soft open-file limit (RLIMIT_NOFILE) to the hard one (to 2**20 where the
    hard one is unlimited); returns the soft limit now in force (unchanged where raising
    is refused)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = 1 << 20 if hard == resource.RLIM_INFINITY else hard
    if soft == resource.RLIM_INFINITY or soft >= target:
        return target if soft == resource.RLIM_INFINITY else int(soft)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError) as exc:
        log.warning("open_files_not_raised", soft=soft, hard=hard, error=str(exc))
        return int(soft)
    return int(target)


def connection_cap(open_files: int, config: Config) -> int:
    """Connections the daemon takes at most: ``limits.max_connections``, kept
    ``limits.reserved_fds`` below the open-file limit (the database, the writer's pipes,
    the inbox and logs need theirs, and a refused client needs one for its answer)."""
    return max(1, min(config.limits.max_connections, open_files - config.limits.reserved_fds))


def _quiet_loop_errors(loop: asyncio.AbstractEventLoop, interval_s: float) -> None:
    """Log the event loop's own errors (e.g. accept failing for want of file descriptors)
    at most once per ``interval_s`` per kind, with a count, never a flood of tracebacks."""
    throttles: dict[str, Throttle] = {}

    def handle(_: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        message = str(context.get("message", "event loop error"))
        throttle = throttles.setdefault(message[:80], Throttle(interval_s))
        exc = context.get("exception")
        throttle.log(log, "error", "event_loop_error", message=message[:200],
                     error=repr(exc)[:300] if exc is not None else None)

    loop.set_exception_handler(handle)


async def _watchdog(interval: float, service: Service) -> None:
    while True:
        await asyncio.sleep(interval / 2)
        if not service.fatal.is_set():
            systemd.notify("WATCHDOG=1")


async def serve(config: Config, config_file: Path | None = None,
                shutdown_trigger: asyncio.Event | None = None,
                reload: Callable[[], Config] | None = None,
                launched: Launched | None = None) -> int:
    """Run the daemon until SIGTERM/SIGINT (or ``shutdown_trigger``); return the exit code.

    ``launched``: a writer process started early (``daemon.writer.launch``), used instead
    of starting one here.

    Raises:
        TradelogError: the database or socket cannot be opened (nothing served).
    """
    # Before anything is created: files 0600 / folders 0700 (0640 / 0750 with a group).
    set_umask(config.group)
    try:
        check_backup_config(config)
        if os.environ.get("LISTEN_PID") != str(os.getpid()):
            check_socket_path(config.socket, config.group)
        on_file = config.store_url().kind == "sqlite"
        lock = acquire(config.db, config.group) if on_file else None
        narrowed = prepare_db(config.db, config.group) if on_file else []
        checked = await check_tail_before(config) if on_file else 0
    except BaseException:
        if launched is not None:
            launched.kill()
        raise
    started = time.perf_counter()
    open_files = raise_open_files()
    loop = asyncio.get_running_loop()
    stop = shutdown_trigger or asyncio.Event()
    server: asyncio.Server | None = None
    owned_socket: Path | None = None
    recorder: ViewReader | None = None
    writer: Writer | None = None
    http: Any = None
    # Before anything can connect: a SIGTERM right after start must drain, not kill.
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        systemd.notify("STATUS=opening the event log and bringing the views up to date")
        recorder, writer, folded = await open_storage(config, launched)
        if on_file:
            narrowed += secure_db_files(config.db, config.group)
        else:
            checked = await check_tail_before(config, recorder)
        last_seq = await recorder.last_seq()
        service = Service(config, recorder, writer, last_seq)
        service.connection_cap = connection_cap(open_files, config)
        if service.connection_cap < config.limits.max_connections:
            log.warning("connections_capped", open_files=open_files,
                        cap=service.connection_cap,
                        advice="raise the hard open-file limit (LimitNOFILE=) to allow "
                        "limits.max_connections")
        _quiet_loop_errors(loop, config.limits.refusals_log_interval_s)
        service.start()
        activated = systemd.listen_sockets()
        if activated:
            sock = activated[0]
        else:
            sock = _listen(config.socket, config.socket_mode, config.group)
            owned_socket = config.socket
        server = await loop.create_unix_server(lambda: Connection(service), sock=sock)
        if config.http_listen is not None:
            from daemon import http as http_api

            http = await http_api.start(service)

        def on_hup() -> None:
            try:
                fresh = reload() if reload else load_config(config_file)
            except TradelogError as exc:
                log.error("config_reload_failed", error=str(exc))
                return
            service.reload(fresh)
            log.info("config_reloaded", file=str(config_file) if config_file else None)

        loop.add_signal_handler(signal.SIGHUP, on_hup)
        watchdog = systemd.watchdog_interval()
        dog = asyncio.create_task(_watchdog(watchdog, service)) if watchdog else None
        inbox_stop = asyncio.Event()
        inbox = None
        if config.inbox is not None:
            from daemon.importers.inbox import Inbox  # the importers load only with an inbox

            watcher = Inbox(config.inbox, service)
            inbox = asyncio.create_task(watcher.run(inbox_stop), name="inbox")
        backups = asyncio.create_task(run_schedule(service, inbox_stop), name="backups")
        others = asyncio.create_task(follow_others(service), name="others")
        log.info("daemon_ready",
                 db=str(config.db) if on_file else config.store_url().redacted(),
                 socket=str(config.socket),
                 socket_activated=bool(activated), last_seq=last_seq,
                 projection_seq=writer.checkpoint, caught_up_events=folded,
                 tail_checked_events=checked, file_modes_changed=narrowed,
                 http=http.url if http is not None else None,
                 writer_pid=getattr(writer, "pid", os.getpid()),
                 startup_ms=round((time.perf_counter() - started) * 1000, 1), pid=os.getpid())
        # What start-up built lives as long as the daemon: kept out of every later
        # collection, it is not walked again by each full one (docs/BENCHMARKS.md, 13).
        heap.settle()
        systemd.notify("READY=1", f"STATUS=serving; last seq {last_seq}",
                       f"MAINPID={os.getpid()}")
        fatal = asyncio.ensure_future(service.fatal.wait())
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait([fatal, stopping], return_when=asyncio.FIRST_COMPLETED)
        # The whole stop fits in shutdown_timeout_s: most of it for draining, the rest
        # for closing the log and the writer.
        deadline = time.monotonic() + config.shutdown_timeout_s * 0.8
        fatal.cancel()
        stopping.cancel()
        if dog is not None:
            dog.cancel()
        server.close()
        if http is not None:
            await http.stop(min(2.0, _left(deadline) / 4))
        inbox_stop.set()
        others.cancel()
        helpers = [task for task in (inbox, backups) if task is not None]
        await asyncio.wait(helpers, timeout=_left(deadline) / 2)
        for task in helpers:
            task.cancel()
        if service.fatal.is_set():
            log.critical("daemon_exiting", reason=service.fatal_reason,
                         advice="the database may be in doubt; run `tradelog verify`")
            systemd.notify("STATUS=storage fault; exiting for a restart")
            for conn in _connections(service):
                conn.abort()
            return EXIT_IN_DOUBT
        await _drain(service, server, deadline)
        return 0
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(signum)
            if shutdown_trigger is None:
                # The process is exiting: a repeated signal (a supervisor insisting) must
                # not turn a clean exit into death by signal now that the loop's handler
                # is gone (any thread, e.g. the database's, could take it).
                signal.signal(signum, signal.SIG_IGN)
        if server is not None:
            server.close()
        if http is not None:
            await http.stop(0.5)
        if owned_socket is not None:
            with contextlib.suppress(OSError):
                owned_socket.unlink()
        try:
            if recorder is not None:
                await recorder.close()
        finally:
            if writer is not None:
                await writer.close()
            if lock is not None:
                lock.close()


def _connections(service: Service) -> list[Connection]:
    """The open connections (a copy: closing one changes the set)."""
    return [c for c in service.connections.open if isinstance(c, Connection)]


def _left(deadline: float) -> float:
    return max(deadline - time.monotonic(), 0.0)


async def _flush(service: Service, deadline: float, stall_s: float = 1.0) -> None:
    """Wait until every answer written is taken, the deadline, or ``stall_s`` in which
    no client took anything (those left are not reading: waiting longer helps no one)."""
    progress = time.monotonic()
    taken = 0
    while _left(deadline):
        if not any(c.unsent() for c in _connections(service)):
            return
        now_taken = sum(c.taken() for c in _connections(service))
        if now_taken != taken:
            taken, progress = now_taken, time.monotonic()
        elif time.monotonic() - progress > stall_s:
            return
        await asyncio.sleep(0.01)


async def _drain(service: Service, server: asyncio.Server, deadline: float) -> None:
    """Stop by ``deadline`` (monotonic): take no more requests, end subscriptions (their
    clients resubscribe from the last event they got), cancel reads, commit and answer
    the appends accepted, flush answers to clients that read them; then cut off whoever
    is left."""
    systemd.notify("STOPPING=1", "STATUS=draining: committing accepted appends")
    log.info("daemon_draining", connections=len(service.connections))
    server.close()
    for conn in _connections(service):
        conn.stop_reading()
        conn.cancel_reads()
    service.subscriptions.drop_all()
    commits = asyncio.ensure_future(service.stop_commits())
    await asyncio.wait([commits], timeout=_left(deadline))
    if not commits.done():
        log.warning("drain_timed_out", stage="commit",
                    advice="appends not answered were not acknowledged; clients resend them")
    pending = [t for conn in _connections(service) for t in conn.pending_answers()]
    if pending and _left(deadline):
        await asyncio.wait(pending, timeout=_left(deadline))
    await _flush(service, deadline)
    for conn in _connections(service):
        conn.finish()
    await asyncio.sleep(0)
    log.info("daemon_stopped", last_seq=service.last_seq)
