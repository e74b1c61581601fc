"""Faults, in short: kill -9 under load, a full disk, and fuzzed bad input.

Each test runs a short version of a ``bench.faults`` script against a real daemon and
expects no problems; the long runs and their recorded results are in docs/FAULTS.md.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.faults import diskfull, fuzz, killloop
from tests.eventstore.test_store_contract import PG_URL


@pytest.mark.slow(seconds=12)
def test_kill_9_loop_loses_nothing_acknowledged(tmp_path: Path) -> None:
    """Five cycles of load from three bots, kill -9 at a random moment, restart: every
    acknowledged event is stored exactly once, seqs are 1..N, no batch is partly stored,
    batches in doubt come back all duplicates or all new, verify passes and every view
    equals a rebuild."""
    report = killloop.run(5, tmp_path, clients=3, seed=7, max_load_s=0.3,
                          say=lambda _: None)
    assert [] == report.problems
    assert [-9] * 5 == [c.exit_code for c in report.cycles]
    assert 0 == report.final_exit_code
    assert report.events > 0


@pytest.mark.slow(seconds=10)
def test_full_database_refuses_whole_batches_and_recovers(tmp_path: Path) -> None:
    """With the database capped (TRADELOG_MAX_PAGE_COUNT) under load from three bots,
    appends that do not fit get -32001 and store nothing, the rest are stored whole, the
    daemon keeps serving, and after a restart without the cap the refused batches are
    stored, verify passes and every view equals a rebuild."""
    report = diskfull.run_pagecap(tmp_path, clients=3, refusals=3, say=lambda _: None)
    assert [] == report.problems
    assert report.refused_batches > 0
    assert {"result", "-32001"} == set(report.answer_codes)


@pytest.mark.slow(seconds=10)
@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_full_filesystem_refuses_whole_batches_and_recovers(tmp_path: Path) -> None:
    """On a 2 MiB tmpfs that fills up under load, appends get -32001 and store nothing,
    the daemon keeps serving, and once a ballast file is deleted the refused batches are
    stored without a restart."""
    report = diskfull.run_tmpfs(tmp_path, clients=3, say=lambda _: None)
    if report.skipped:
        pytest.skip(report.skipped)
    assert [] == report.problems
    assert report.refused_batches > 0
    assert report.recovered_without_restart is True


@pytest.mark.slow(seconds=12)
def test_fuzzed_bad_input_is_answered_and_harmless(tmp_path: Path) -> None:
    """150 hypothesis-generated bad inputs (JSON values, mutated requests, mixed batches,
    raw bytes): the daemon stays up, answers each with valid JSON-RPC and a contract
    error code (never a traceback), stores no partial batch, and a bystander bot is
    answered throughout."""
    report = fuzz.run(150, tmp_path, seed=3, say=lambda _: None)
    assert [] == report.problems
    assert 150 == report.cases
    assert report.bystander_appends > 0


@pytest.mark.slow(seconds=4)
def test_fuzzed_bad_input_is_answered_and_harmless_on_postgresql(tmp_path: Path) -> None:
    """The same 150 inputs against a daemon on a PostgreSQL schema of its own (made for
    the run and dropped after): the same answers and checks, the log and the views read
    in the database, the copy for the rebuild made by ``migrate``. (The kill -9 loop on
    PostgreSQL is not in the suite: two cycles take about 10 s, a copy, a rebuild and a
    restart each; docs/FAULTS.md has its long runs.)"""
    report = fuzz.run(150, tmp_path, seed=3, say=lambda _: None, store=PG_URL)
    assert [] == report.problems
    assert 150 == report.cases
    assert report.bystander_appends > 0
