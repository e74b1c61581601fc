"""Opening the daemon's log: the reader it serves reads and queries from, and its
writer, on the store ``config.store_url()`` names (a SQLite file or a PostgreSQL URI);
and the check of the log's tail before serving."""

from __future__ import annotations

import asyncio

from daemon.config import Config
from daemon.logs import get_logger
from daemon.service import Service
from daemon.writer import Writer
from daemon.writer.launch import Launched
from daemon.writer.local import LocalWriter
from daemon.writer.process import WriterProcess
from eventstore.errors import StorageDamagedError, StorageUnavailableError
from eventstore.recorder import TAIL_CHECK_EVENTS, Recorder, check_tail
from eventstore.store import ViewReader

__all__ = ["check_tail_before", "follow_others", "open_storage"]

log = get_logger("tradelog.server")


async def open_storage(config: Config, launched: Launched | None
                       ) -> tuple[ViewReader, Writer, int]:
    """Open the log for reads and its writer (a second process unless
    ``config.writer_process`` is false), the views brought up to date; returns the
    reader, the writer and the number of events folded to catch up.

    The writer goes first: it creates or migrates the log that the reader then opens.
    With a cap (``max_page_count``), it applies to the writer's connection. On
    PostgreSQL the views' rows are written with every commit (the tables are shared by
    every daemon on the log) and the reader is a read-only ``PgRecorder``.
    """
    store = config.store_url()
    target = config.db if store.kind == "sqlite" else str(store.conninfo)
    writer: Writer
    if config.writer_process:
        writer = process = await WriterProcess.start(
            target, max_page_count=config.max_page_count,
            log_format=config.log_format, log_level=config.log_level,
            defer_view_events=config.views_flush_events if store.kind == "sqlite" else 0,
            launched=launched)
        ready = process.ready
    else:
        if launched is not None:
            launched.kill()
        writer = local = await LocalWriter.start(target, max_page_count=config.max_page_count)
        ready = local.ready
    try:
        recorder: ViewReader
        if store.kind == "sqlite":
            recorder = await Recorder.open(config.db, readonly=True)
        else:
            from eventstore.postgres.recorder import PgRecorder

            recorder = await PgRecorder.open(str(target), readonly=True)
            recorder.own_origin = ready.origin  # its own commits come from its writer
    except BaseException:
        await writer.close()
        raise
    if ready.page_cap is not None:
        log.info("storage_capped", max_page_count=ready.page_cap)
    return recorder, writer, ready.folded


async def check_tail_before(config: Config, recorder: ViewReader | None = None) -> int:
    """Re-hash the last ``TAIL_CHECK_EVENTS`` events before serving (of the SQLite file
    ``config.db``, or through ``recorder``); returns how many.

    Raises:
        StorageDamagedError: logged (``storage_corrupt``) with the seq and advice first.
    """
    try:
        if recorder is None:
            return await check_tail(config.db, TAIL_CHECK_EVENTS)
        report = await recorder.verify_tail(TAIL_CHECK_EVENTS)
        damage = None if report.ok else StorageDamagedError(report.bad_seq, report.reason)
    except StorageDamagedError as exc:
        damage = exc
    if damage is None:
        return report.checked
    where = (f"--db {config.db}" if recorder is None
             else f"--store '{config.store_url().redacted()}'")
    log.critical("storage_corrupt", seq=damage.seq, error=str(damage),
                 advice=f"run `tradelog verify {where}`; the daemon does not start on a "
                 "damaged log")
    raise damage


async def follow_others(service: Service, poll_s: float = 1.0) -> None:
    """On a PostgreSQL log, keep ``service.last_seq`` up with what every daemon stores
    and wake the subscriptions when it moves: woken by the log's notifications
    (``PgRecorder.wait_past``), whose seq is taken as it is (sent at commit), the last
    seq read at least every ``poll_s`` seconds without one (a lost notification costs
    that much delay). A no-op on SQLite (one writer: the
    service's own commits wake its subscribers). Runs until cancelled."""
    if isinstance(service.recorder, Recorder):
        return  # SQLite, without loading the PostgreSQL driver into the daemon
    from eventstore.postgres.recorder import PgRecorder

    recorder = service.recorder
    if not isinstance(recorder, PgRecorder):
        return
    seen = service.last_seq
    while True:
        await recorder.wait_past(seen, poll_s)
        if recorder.notified > seen:
            last = recorder.notified  # a commit's notification names it: no read needed
        else:  # a poll, or the listening session made again: read it
            try:
                last = await recorder.last_seq()
            except StorageUnavailableError:
                await asyncio.sleep(poll_s)
                continue
        # A notification names a seq committed before this read: past it now.
        seen = max(seen, last)
        if last > service.commits.last_seq:
            service.commits.last_seq = last
            service.subscriptions.wake_all()
