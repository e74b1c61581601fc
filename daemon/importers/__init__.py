"""Legacy files to events: the trades CSV, the daily P&L JSON (plain or Kite), CloudEvents
JSONL, and any CSV or JSON records through a ``--map`` mapping.

Each reader streams a file into ``ImportRow`` objects (the wire events a bot would have
sent for that row, ids made from each row's own key or content, never the file's name,
so that a renamed or re-exported file stores nothing twice; the row's line for error
reports; the realized P&L and round trips the file itself states, and its fields with
no place, for the reconciliation line and the warnings) and ``ImportProblem`` objects,
one row at a time, so memory does not grow with the file (``iter_rows``). One module per
format (``trades_csv``, ``daily_pnl_json`` with ``kite``, ``events_jsonl``, ``mapped``
with ``mapping``) over the shared ``rows``, named and detected in ``formats``; ``run``
appends what was read in resumable chunks, ``store`` is where (daemon or file),
``reconcile`` compares the file with the views, ``void`` undoes an import. ``twopass``
imports one open file whole or not at all, ``safedir`` moves files without following
links: both for the inbox (``inbox``, ``inbox_scan``, ``inbox_file``, with per-folder
``folder_settings``).
"""

from daemon.importers.formats import FORMATS, detect_format, format_of, iter_rows, read_file
from daemon.importers.rows import ImportProblem, ImportRow, ReadResult

__all__ = ["FORMATS", "ImportProblem", "ImportRow", "ReadResult", "detect_format", "format_of",
           "iter_rows", "read_file"]
