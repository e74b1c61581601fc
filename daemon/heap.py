"""The garbage collector's policy for the daemon and its writer, both long-lived.

Each process builds its state at start (the views' open positions, balances, caches;
the server's modules and tables) and keeps it for its life; each event then allocates
many short-lived objects (the request, its models, results, rows) that reference
counting frees. With the interpreter's default thresholds (700 allocations for a young
collection) the collector runs every few events and, every so often, walks the whole
heap (docs/BENCHMARKS.md, section 15: about a tenth of the writer's CPU per event).

The writer process is a fork of the daemon (``daemon.writer.launch``): what exists at
the fork is collected and frozen once there (``freeze_before_fork``), so that neither
process walks it again, in ``settle`` or later, and the writer's collections do not
write to the pages it shares with the daemon.
"""

from __future__ import annotations

import gc

__all__ = ["YOUNG_THRESHOLD", "freeze_before_fork", "settle"]

YOUNG_THRESHOLD = 10_000
"""Net allocations between two young collections (the interpreter's default: 700).
Only objects in reference cycles wait for a collection; they are rare on the append
path, so this bounds the memory they can hold to a few MB."""


def settle() -> None:
    """Collect once, move what exists now out of every later collection (``gc.freeze``:
    start-up's objects are not walked again by each full collection) and set the young
    threshold to ``YOUNG_THRESHOLD`` (the older generations keep the default ratios).
    Call once the process is ready."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)


def freeze_before_fork() -> None:
    """Collect once and move what exists now out of every later collection, in the
    process about to fork (the ``gc.freeze`` recipe of the Python documentation): both
    processes' ``settle`` then walk only what each made since, and a collection in the
    child does not copy the pages it shares with the parent."""
    gc.collect()
    gc.freeze()
