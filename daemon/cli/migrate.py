"""``tradelog migrate --from URL --to URL [--to-seq SEQ]``: copy a log between stores
(SQLite and PostgreSQL, either way) with its seqs, times and hashes, the whole log or up
to a seq, then verify both.

Exit codes: 0 copied and both logs verify; 1 the copy was refused or a verify failed.
"""

from __future__ import annotations

import argparse
import asyncio

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from eventstore.migrate import migrate, stores
from eventstore.store import open_store

__all__ = ["migrate_command"]


async def _verify(url: str) -> tuple[bool, str]:
    store = await open_store(url, readonly=True)
    try:
        report = await store.verify()
    finally:
        await store.close()
    if report.ok:
        return True, f"ok, {report.checked} events, last hash {report.last_hash[:16]}…"
    where = f"at seq {report.bad_seq}: " if report.bad_seq is not None else ""
    return False, f"FAILED {where}{report.reason}"


def migrate_command(args: argparse.Namespace) -> int:
    """Copy with a progress bar, then verify both logs; print what was done."""
    source, target = stores(args.source, args.target)
    console = Console(stderr=True)
    with Progress(TextColumn("copying events"), BarColumn(), TextColumn("{task.completed}"),
                  TimeElapsedColumn(), console=console) as progress:
        task = progress.add_task("migrate", total=None)
        report = migrate(args.source, args.target, batch=max(1, args.batch),
                         progress=lambda n: progress.advance(task, n), to_seq=args.to_seq)
    print(f"migrate: {report.copied} events copied, {report.kept} already there; last seq "
          f"{report.last_seq}, last hash {report.last_hash[:16]}… "
          f"({source.redacted()} -> {target.redacted()})")
    code = 0
    for name, url in (("source", args.source), ("target", args.target)):
        ok, text = asyncio.run(_verify(url))
        print(f"verify {name}: {text}")
        code = code if ok else 1
    return code
