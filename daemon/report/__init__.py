"""``tradelog report``: the performance metrics as text, JSON, an HTML page, PDF or XLSX.

    tradelog report [--account A] [--json] [--html FILE] [--pdf FILE] [--xlsx FILE]
                    [--period day|week|month] [--benchmark CSV] [--now TIME] [--db PATH]

The report reads the database file directly and read-only (``--db``, else the
configured one), so it works with or without a running daemon. Without ``--account``
it reports every account, one section each. "Today" is the wall clock's date in the
account's time zone unless ``--now`` gives a moment (a historical report).

Figures and their definitions: docs/METRICS.md (``projections.metrics``).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from rich.console import Console

from daemon.config import Config
from daemon.report.page import render_page
from daemon.report.text import print_text
from eventstore.errors import ValidationError
from eventstore.store import StoreURL, open_reader
from projections.metrics import compute_metrics
from projections.metrics_window import Window

__all__ = ["collect", "metrics_params", "read_benchmark", "render_html", "render_page",
           "report_command"]

MAX_BENCHMARK_ROWS = 200_000
"""Rows a benchmark file may hold (about 550 years of daily prices)."""


def render_html(metrics: dict[str, Any]) -> str:
    """One account's ``metrics`` answer as a self-contained HTML page."""
    return render_page([metrics])


def read_benchmark(path: Path) -> dict[str, Decimal]:
    """Benchmark prices from a CSV file: a header with a ``date`` column and a ``close``,
    ``adj_close``, ``price`` or ``value`` column (case-insensitive; the first found), then
    one row per day ``YYYY-MM-DD`` (a time after the date is cut off) with a positive
    price. Returns date -> price.

    Raises:
        ValidationError: unreadable file, missing column, bad date or price (with the line).
    """
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise ValidationError(f"--benchmark {path}: {exc.strerror or exc}") from None
    with handle:
        reader = csv.DictReader(handle)
        fields = {(name or "").strip().lower(): name for name in reader.fieldnames or []}
        column = next((fields[n] for n in ("close", "adj_close", "adj close", "price", "value")
                       if n in fields), None)
        if "date" not in fields or column is None:
            raise ValidationError(f"--benchmark {path}: the header needs a date column and a "
                                  "close (or price) column")
        prices: dict[str, Decimal] = {}
        for line, row in enumerate(reader, 2):
            if line > MAX_BENCHMARK_ROWS + 1:
                raise ValidationError(f"--benchmark {path}: more than {MAX_BENCHMARK_ROWS} rows")
            day = (row.get(fields["date"]) or "").strip()[:10]
            try:
                Window.check(day, "date")
                price = Decimal((row.get(column) or "").strip().replace(",", ""))
            except (ValidationError, InvalidOperation):
                raise ValidationError(f"--benchmark {path} line {line}: needs a date "
                                      f"YYYY-MM-DD and a price") from None
            if not price.is_finite() or price <= 0:
                raise ValidationError(f"--benchmark {path} line {line}: the price must be > 0")
            prices[day] = price
    if not prices:
        raise ValidationError(f"--benchmark {path}: no prices")
    return prices


async def collect(db: Path | StoreURL, account: str | None, **params: Any
                  ) -> list[dict[str, Any]]:
    """Metrics of ``account`` (None: every account in the log, by name) from the file at
    ``db`` (or the PostgreSQL log it names), opened read-only. ``params`` go to
    ``compute_metrics``.

    Raises:
        ValidationError: a bad parameter or an account with no events.
        EventStoreError: the file cannot be read.
    """
    recorder = await open_reader(db)
    try:
        if account is None:
            rows = await recorder.fetch("SELECT DISTINCT account FROM events")
            names = sorted(str(row[0]) for row in rows)  # by code point on either store
        else:
            names = [account]
        return [await compute_metrics(recorder, name, **params) for name in names]
    finally:
        await recorder.close()


def metrics_params(args: argparse.Namespace) -> dict[str, Any]:
    """The ``metrics`` params (PROTOCOL.md) that the report's options ask for: those
    given of ``since``/``until``/``symbol``/``strategy``/``annualization``/``period``/
    ``now``, and ``as_of`` (a seq when all digits, else an RFC 3339 time)."""
    params: dict[str, Any] = {}
    for name in ("since", "until", "symbol", "strategy", "annualization", "period", "now"):
        if getattr(args, name, None) is not None:
            params[name] = getattr(args, name)
    as_of = getattr(args, "as_of", None)
    if as_of is not None:
        params["as_of"] = int(as_of) if str(as_of).isdigit() else as_of
    return params


def report_command(args: argparse.Namespace, config: Config,
                   reports: list[dict[str, Any]] | None = None) -> int:
    """``tradelog report``: print the metrics (text, or ``--json``) and write ``--html``,
    ``--pdf``, ``--xlsx`` files. Without ``reports``, reads ``args.db`` or the log
    ``config`` names (a file, or a PostgreSQL log) read-only. Optional ``since``/
    ``until``/``symbol``/``strategy``/``as_of``/``annualization``/``period``/``now``/
    ``benchmark``/``pdf``/``xlsx`` attributes of ``args`` pass on.

    ``reports``: the metrics already fetched (from the daemon, by ``daemon.cli.report``);
    None collects them from the file here.

    Returns 0. Raises ValidationError (bad parameter, unknown account, no Chromium for
    ``--pdf``, a bad benchmark file) and EventStoreError (unreadable file), which the CLI
    turns into exit code 1.
    """
    params = metrics_params(args)
    benchmark = getattr(args, "benchmark", None)
    if benchmark is not None:
        params["benchmark_prices"] = read_benchmark(Path(benchmark))
        params["benchmark_name"] = Path(benchmark).name
    db = args.db if getattr(args, "db", None) is not None else config.store_url()
    if reports is None:
        reports = asyncio.run(collect(db, args.account, **params))
    written: list[str] = []
    if args.html is not None:
        Path(args.html).write_text(render_page(reports), encoding="utf-8")
        written.append(str(args.html))
    if getattr(args, "pdf", None) is not None:
        from daemon.report.exports import write_pdf
        write_pdf(reports, Path(args.pdf))
        written.append(str(args.pdf))
    if getattr(args, "xlsx", None) is not None:
        from daemon.report.exports import write_xlsx
        write_xlsx(reports, Path(args.xlsx))
        written.append(str(args.xlsx))
    if args.json:
        answer: Any = reports[0] if args.account is not None else {"accounts": reports}
        print(json.dumps(answer, indent=2))
    else:
        console = Console()
        if not console.is_terminal:  # a file or a pipe: wide tables stay whole
            console = Console(width=200)
        for metrics in reports:
            print_text(metrics, console)
        if not reports:
            console.print("no accounts in the log")
        for path in written:
            console.print(f"report: wrote {path}")
    return 0
