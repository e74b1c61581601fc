"""daemon.heap: what is collected and what is frozen before the writer's fork."""

from __future__ import annotations

import gc
import weakref

from daemon import heap


class _Node:
    """An object that can hold a reference to itself (a cycle only a collection frees)."""

    def __init__(self) -> None:
        self.me: _Node | None = self


def test_freeze_before_fork_collects_garbage_then_freezes_the_rest() -> None:
    """Cycles that are garbage are freed, not frozen for life; what is alive is frozen,
    so that later collections (``settle``'s included) no longer walk it."""
    garbage = _Node()
    gone = weakref.ref(garbage)
    del garbage
    alive = _Node()
    try:
        heap.freeze_before_fork()
        assert gone() is None
        assert gc.get_freeze_count() > 0
        assert not any(obj is alive for obj in gc.get_objects())
    finally:
        gc.unfreeze()
    assert any(obj is alive for obj in gc.get_objects())
