"""Legacy files to events: the trades CSV, the daily P&L JSON, and CloudEvents JSONL.

Each reader streams a file into ``ImportRow`` objects (the wire events a bot would have
sent for that row, ids derived from the file's own keys so that a second import stores
nothing; the row's line for error reports; the realized P&L the file itself states, for
the reconciliation line) and ``ImportProblem`` objects, one row at a time, so memory
does not grow with the file (``iter_rows``). One module per format (``trades_csv``,
``daily_pnl_json``, ``events_jsonl``) over the shared ``rows``, named and detected in
``formats``; ``run`` appends what was read in resumable chunks. ``twopass`` imports one
open file whole or not at all, ``safedir`` moves files without following links: both
for the inbox (``inbox``, ``inbox_scan``, ``inbox_file``).
"""

from daemon.importers.formats import FORMATS, detect_format, format_of, iter_rows, read_file
from daemon.importers.rows import ImportProblem, ImportRow, ReadResult

__all__ = ["FORMATS", "ImportProblem", "ImportRow", "ReadResult", "detect_format", "format_of",
           "iter_rows", "read_file"]
