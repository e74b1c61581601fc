"""Legacy files to events: the trades CSV, the daily P&L JSON, and CloudEvents JSONL.

Each reader streams a file into ``ImportRow`` objects (the wire events a bot would have
sent for that row, ids derived from the file's own keys so that a second import stores
nothing; the row's line for error reports; the realized P&L the file itself states, for
the reconciliation line) and ``ImportProblem`` objects, one row at a time, so memory
does not grow with the file (``iter_rows``). ``twopass`` imports one open file whole or
not at all, ``safedir`` moves files without following links: both for the inbox.
"""

from daemon.importers.formats import (
    FORMATS,
    ImportProblem,
    ImportRow,
    ReadResult,
    detect_format,
    format_of,
    iter_rows,
    read_file,
)

__all__ = ["FORMATS", "ImportProblem", "ImportRow", "ReadResult", "detect_format", "format_of",
           "iter_rows", "read_file"]
