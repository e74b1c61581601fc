"""``eventstore.migrate`` with a last seq to stop at (what ``restore --store --to-seq``
copies with): the target holds the source's first events exactly as stored, a copy
to a later seq goes on after them, and a target already past the seq is refused."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from eventstore.errors import DatabaseFileError, ValidationError
from eventstore.migrate import migrate
from tests.ops_support import every_type_log, make_log, stored_rows


def test_a_copy_stops_at_its_seq_and_goes_on_after_it(tmp_path: Path) -> None:
    """To seq 5 (in batches of 2), then to 12 after them; 9 is refused once 12 are
    there; a seq past the source's end copies the rest."""
    source, target = tmp_path / "source.db", tmp_path / "target.db"
    asyncio.run(make_log(source, [[e] for e in every_type_log()]))
    first = migrate(f"sqlite:///{source}", f"sqlite:///{target}", to_seq=5, batch=2)
    assert (5, 0, 5) == (first.copied, first.kept, first.last_seq)
    assert stored_rows(source)[:5] == stored_rows(target)
    more = migrate(f"sqlite:///{source}", f"sqlite:///{target}", to_seq=12)
    assert (7, 5, 12) == (more.copied, more.kept, more.last_seq)
    assert stored_rows(source)[:12] == stored_rows(target)
    with pytest.raises(DatabaseFileError, match="holds 12 events, more than the 9"):
        migrate(f"sqlite:///{source}", f"sqlite:///{target}", to_seq=9)
    with pytest.raises(ValidationError, match="give 0 or more"):
        migrate(f"sqlite:///{source}", f"sqlite:///{target}", to_seq=-1)
    whole = migrate(f"sqlite:///{source}", f"sqlite:///{target}", to_seq=10_000)
    assert stored_rows(source) == stored_rows(target)
    assert len(every_type_log()) == whole.last_seq
