"""Legacy files to events: the trades CSV, the daily P&L JSON, and CloudEvents JSONL.

Each reader turns a file into ``Row`` objects: the wire events a bot would have sent for
that row (ids derived from the file's own keys, so a second import stores nothing), the
row's line number for error reports, and the realized P&L the file itself states, for
the reconciliation line.
"""

from daemon.importers.formats import (
    FORMATS,
    ImportProblem,
    ImportRow,
    ReadResult,
    detect_format,
    read_file,
)

__all__ = ["FORMATS", "ImportProblem", "ImportRow", "ReadResult", "detect_format", "read_file"]
