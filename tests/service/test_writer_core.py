"""The writer package without the daemon: its typed messages, the pipe's two ends,
``WriterCore`` on one connection, the writer process behind ``WriterProcess`` and the
one-process ``LocalWriter``."""

from __future__ import annotations

import asyncio
import pickle
import socket
from pathlib import Path

import pytest

from daemon.writer.core import WriterCore
from daemon.writer.local import LocalWriter
from daemon.writer.messages import Append, Done, Failed, Flush, Ready, Settings
from daemon.writer.pipe import BlockingPipe, Pipe
from daemon.writer.process import WriterProcess
from eventstore.errors import VersionConflictError
from eventstore.record import AppendRequest
from eventstore.recorder import Recorder
from tests.fold_support import fold_rows, new_event, view_rows
from tests.projections.test_views_runner import checkpoint, sample


def _request(account: str = "acct-1", start: int = 0) -> AppendRequest:
    return AppendRequest([new_event(w) for w in sample(account=account, start=start)])


def test_messages_pickle_to_their_own_class_and_fields() -> None:
    """Each message comes back from a pickle as the same class with the same fields, an
    error inside ``Failed`` included."""
    settings = Settings("/x.db", 5.0, None, "json", "info", 4096, 0.05)
    assert settings == pickle.loads(pickle.dumps(settings))
    done = pickle.loads(pickle.dumps(Done([], 7, 5)))
    assert (Done, 7, 5) == (type(done), done.checkpoint, done.flushed)
    failed = pickle.loads(pickle.dumps(Failed(VersionConflictError("acct-1", 3, 5))))
    assert isinstance(failed.error, VersionConflictError)
    assert ("acct-1", 3, 5) == (failed.error.account, failed.error.expected,
                                failed.error.version)
    assert Flush() == pickle.loads(pickle.dumps(Flush()))


async def test_the_two_pipe_ends_carry_messages_in_order() -> None:
    """What the daemon's end sends, the writer's end receives whole and in order (two
    messages sent together: the second is waiting once the first is read), and back;
    ``wait`` says False when nothing comes within its timeout."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    daemon_end = await Pipe.open(ours)
    writer_end = BlockingPipe(theirs)
    try:
        request = _request()
        await daemon_end.send(Append([request]))
        await daemon_end.send(Flush())
        first = await asyncio.to_thread(writer_end.recv)
        assert Append([request]) == first
        assert writer_end.wait(0.0)
        assert Flush() == writer_end.recv()
        assert not writer_end.wait(0.01)
        writer_end.send(Done([], 7, 7))
        assert Done([], 7, 7) == await daemon_end.recv()
    finally:
        daemon_end.close()
        writer_end.close()


def test_the_writer_end_reports_the_end_of_the_pipe() -> None:
    """The daemon's end closing, even mid-message, is ``EOFError`` at the writer's end."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    writer_end = BlockingPipe(theirs)
    ours.sendall(b"\x00\x00\x00\x00\x00\x00\x00\x10abc")
    ours.close()
    with pytest.raises(EOFError):
        writer_end.recv()
    writer_end.close()


async def test_the_core_commits_folds_and_holds_rows_back_until_flushed(tmp_path: Path
                                                                       ) -> None:
    """``WriterCore`` with ``defer_view_events``: commits fold at once (the checkpoint
    moves) while the tables wait for ``flush``; then they equal a fold of the log."""
    path = tmp_path / "t.db"
    core, ready = WriterCore.open(path, defer_view_events=1000)
    try:
        assert Ready(0, 0, 0, None) == ready
        [outcome] = core.commit([_request()])
        assert (7, None) == (outcome.last_seq, outcome.error)
        assert (7, 0) == (core.checkpoint, core.flushed)
        core.flush()
        assert (7, 7) == (core.checkpoint, core.flushed)
        assert 7 == checkpoint(path)[0]
    finally:
        core.close()
    recorder = await Recorder.open(path, readonly=True)
    try:
        assert fold_rows(await recorder.read()) == await view_rows(recorder)
    finally:
        await recorder.close()


def test_the_core_writes_held_back_rows_when_it_closes(tmp_path: Path) -> None:
    """Rows held back are written by ``close``; a reopened core folds nothing again and
    finds the log's end and the page cap it asked for."""
    path = tmp_path / "t.db"
    core, _ = WriterCore.open(path, defer_view_events=1000)
    core.commit([_request(), _request(account="acct-2", start=10)])
    core.close()
    assert 14 == checkpoint(path)[0]
    again, ready = WriterCore.open(path, max_page_count=100_000)
    again.close()
    assert Ready(14, 14, 0, 100_000) == ready


async def test_the_writer_process_commits_and_answers_in_order(tmp_path: Path) -> None:
    """Through a real writer process: groups sent ahead of the answers are answered in
    order (a version conflict in its own outcome), ``flush_views`` writes the tables,
    and ``close`` ends the process with the checkpoint at the log's end."""
    path = tmp_path / "t.db"
    writer = await WriterProcess.start(path, defer_view_events=1000)
    try:
        assert Ready(0, 0, 0, None) == writer.ready
        stale = AppendRequest([new_event(w) for w in sample(account="acct-3")],
                              expected_account="acct-3", expected_version=5)
        first, second = await asyncio.gather(
            writer.append_groups([_request()]),
            writer.append_groups([_request(account="acct-2", start=10), stale]))
        assert [7] == [o.last_seq for o in first]
        assert isinstance(second[1].error, VersionConflictError)
        assert (14, 0) == (writer.checkpoint, writer.flushed)
        await writer.flush_views()
        assert 14 == writer.flushed
    finally:
        await writer.close()
    assert 14 == checkpoint(path)[0]


async def test_the_local_writer_writes_the_views_with_every_commit(tmp_path: Path) -> None:
    """``LocalWriter`` (one process): each commit writes the tables and the checkpoint."""
    path = tmp_path / "t.db"
    writer = await LocalWriter.start(path)
    try:
        await writer.append_groups([_request()])
        assert (7, 7) == (writer.checkpoint, writer.flushed)
        assert 7 == checkpoint(path)[0]
    finally:
        await writer.close()
