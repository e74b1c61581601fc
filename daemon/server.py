"""``tradelog serve``: the daemon's lifecycle around the service.

Start: open the log (refusing a second daemon on the same file), bring the views up to
date, listen (socket activation or our own 0660 socket), then READY=1. SIGTERM/SIGINT:
stop accepting, stop reading requests, commit and answer what was accepted, close,
exit 0 (a repeated signal while exiting is ignored, so it cannot change that). SIGHUP:
reload the config file. A storage fault that leaves the file in doubt:
log it and exit 70 so systemd restarts the daemon.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path

from daemon import systemd
from daemon.backup import check_backup_config, run_schedule
from daemon.config import Config, load_config
from daemon.connection import Connection
from daemon.inbox import Inbox
from daemon.lockfile import acquire
from daemon.logs import get_logger
from daemon.service import Service
from daemon.writer import LocalWriter, Writer, WriterProcess
from daemon.writer_launch import Launched
from eventstore.errors import DatabaseFileError, TradelogError
from eventstore.recorder import Recorder
from projections.startup import open_views

__all__ = ["EXIT_IN_DOUBT", "serve"]

EXIT_IN_DOUBT = 70
log = get_logger("tradelog.server")


def _listen(path: Path, mode: int) -> socket.socket:
    """Our own listening socket at ``path`` (a stale one is replaced, a live one refused)."""
    path.parent.mkdir(parents=True, exist_ok=True)
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
    sock.listen(512)
    sock.setblocking(False)
    return sock


async def _open_storage(config: Config, launched: Launched | None
                        ) -> tuple[Recorder, Writer, int]:
    """Open the log for reads and its writer (a second process unless
    ``config.writer_process`` is false), the views brought up to date; returns the
    recorder, the writer and the number of events folded to catch up.

    The writer goes first: it creates or migrates the file that the reader then opens.
    With a cap (``max_page_count``), it applies to the writer's connection.
    """
    if config.writer_process:
        process = await WriterProcess.start(
            config.db, max_page_count=config.max_page_count,
            log_format=config.log_format, log_level=config.log_level,
            max_group_events=config.limits.max_group_events,
            defer_view_events=config.views_flush_events, launched=launched)
        try:
            recorder = await Recorder.open(config.db, readonly=True)
        except BaseException:
            await process.close()
            raise
        if process.page_cap is not None:
            log.info("storage_capped", max_page_count=process.page_cap)
        return recorder, process, process.folded
    if launched is not None:
        launched.kill()
    recorder = await Recorder.open(config.db)
    try:
        runner, folded = await open_views(recorder)
        if config.max_page_count is not None:
            log.info("storage_capped",
                     max_page_count=await recorder.cap_pages(config.max_page_count))
    except BaseException:
        await recorder.close()
        raise
    return recorder, LocalWriter(recorder, runner), folded


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

    ``launched``: a writer process started early (``daemon.writer_launch``), used instead
    of starting one here.

    Raises:
        TradelogError: the database or socket cannot be opened (nothing served).
    """
    try:
        check_backup_config(config)
        lock = acquire(config.db)
    except BaseException:
        if launched is not None:
            launched.kill()
        raise
    started = time.perf_counter()
    loop = asyncio.get_running_loop()
    stop = shutdown_trigger or asyncio.Event()
    server: asyncio.Server | None = None
    owned_socket: Path | None = None
    recorder: Recorder | None = None
    writer: Writer | None = None
    # Before anything can connect: a SIGTERM right after start must drain, not kill.
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        systemd.notify("STATUS=opening the event log and bringing the views up to date")
        recorder, writer, folded = await _open_storage(config, launched)
        last_seq = await recorder.last_seq()
        service = Service(config, recorder, writer, last_seq)
        service.start()
        activated = systemd.listen_sockets()
        if activated:
            sock = activated[0]
        else:
            sock = _listen(config.socket, config.socket_mode)
            owned_socket = config.socket
        server = await loop.create_unix_server(lambda: Connection(service), sock=sock)

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
            watcher = Inbox(config.inbox, service.append_internal,
                            settle_s=config.inbox_settle_s, quantity=config.inbox_quantity)
            inbox = asyncio.create_task(watcher.run(inbox_stop), name="inbox")
        backups = asyncio.create_task(run_schedule(service, inbox_stop), name="backups")
        log.info("daemon_ready", db=str(config.db), socket=str(config.socket),
                 socket_activated=bool(activated), last_seq=last_seq,
                 projection_seq=writer.position, caught_up_events=folded,
                 writer_pid=getattr(writer, "pid", os.getpid()),
                 startup_ms=round((time.perf_counter() - started) * 1000, 1), pid=os.getpid())
        systemd.notify("READY=1", f"STATUS=serving; last seq {last_seq}",
                       f"MAINPID={os.getpid()}")
        fatal = asyncio.ensure_future(service.fatal.wait())
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait([fatal, stopping], return_when=asyncio.FIRST_COMPLETED)
        fatal.cancel()
        stopping.cancel()
        if dog is not None:
            dog.cancel()
        inbox_stop.set()
        await asyncio.wait([backups], timeout=config.shutdown_timeout_s)
        if inbox is not None:
            await asyncio.wait([inbox], timeout=config.shutdown_timeout_s)
        if service.fatal.is_set():
            log.critical("daemon_exiting", reason=service.fatal_reason,
                         advice="the database may be in doubt; run `tradelog verify`")
            systemd.notify("STATUS=storage fault; exiting for a restart")
            for conn in list(service.connections):
                if conn.transport is not None:
                    conn.transport.abort()
            return EXIT_IN_DOUBT
        await _drain(service, server, config.shutdown_timeout_s)
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
        if owned_socket is not None:
            with contextlib.suppress(OSError):
                owned_socket.unlink()
        try:
            if recorder is not None:
                await recorder.close()
        finally:
            if writer is not None:
                await writer.close()
            lock.close()


async def _drain(service: Service, server: asyncio.Server, timeout_s: float) -> None:
    systemd.notify("STOPPING=1", "STATUS=draining: committing accepted appends")
    log.info("daemon_draining", connections=len(service.connections))
    server.close()
    for conn in list(service.connections):
        conn.stop_reading()
    for sid in list(service.subscriptions):
        service.drop_subscription(sid)
    await service.stop_writer()
    pending = [t for conn in service.connections for t in conn.tasks]
    if pending:
        await asyncio.wait(pending, timeout=timeout_s)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and any(
            c.transport is not None and not c.transport.is_closing()
            and c.transport.get_write_buffer_size() for c in service.connections):
        await asyncio.sleep(0.01)
    for conn in list(service.connections):
        if conn.transport is not None:
            conn.transport.close()
    await asyncio.sleep(0)
    log.info("daemon_stopped", last_seq=service.last_seq)
