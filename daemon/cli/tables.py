"""A view's answer printed as a table, tab-separated text, CSV or JSON.

- ``table`` (the default on a terminal): rich's table, numbers right-aligned and never
  split across lines, money columns (``MONEY_COLUMNS``) to 2 decimals unless ``exact``,
  booleans as ``yes``/``no``, nothing as blank. A table wider than the terminal is
  printed one record per block (``field  value`` lines) instead of folding its cells.
- ``tsv`` (the default in a pipe): a header line, then one line per row, exact values
  (decimals as stored, ``true``/``false``, JSON for objects, blank for nothing); control
  characters, tab and newline included, written as visible escapes (``\\x09``).
- ``csv``: RFC 4180 CSV with the same exact values (``daemon.cli.cells.csv_cell``).
- ``json``: the answer as the daemon gives it; decimals stay the exact strings.
"""

from __future__ import annotations

import csv
import json
import sys
import unicodedata
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, TextIO

from daemon.cli.cells import csv_cell
from projections.tables import VIEWS

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["FORMATS", "MONEY_COLUMNS", "default_format", "print_answer", "print_view",
           "table_cell", "terminal_safe", "tsv_cell"]

FORMATS = ("table", "tsv", "csv", "json")
MONEY_COLUMNS = frozenset({
    "balance", "cash", "cash_flow", "daily_loss_limit", "equity", "fees", "gross_loss",
    "gross_pnl", "gross_profit", "loss_used", "net_pnl", "realized_pnl", "unrealized_pnl"})
"""Columns holding an amount of the account's currency: shown to 2 decimals in tables."""
_CENT = Decimal("0.01")
_NUMERIC = frozenset({"dec", "int"})
_BIDI = frozenset("\u061c\u200e\u200f\u2028\u2029\u202a\u202b\u202c\u202d\u202e"
                  "\u2066\u2067\u2068\u2069")
"""Characters that reorder or break the lines around them on a terminal."""


def _visible(char: str) -> str:
    if unicodedata.category(char) == "Cc" or char in _BIDI:
        code = ord(char)
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
    return char


def _plain(text: str) -> str:
    return "".join(_visible(c) for c in text)


def terminal_safe(text: str) -> str:
    """``text`` fit for a terminal through rich: control characters (C0, DEL, C1, tab
    and newline included) and bidirectional controls written as visible escapes
    (ESC as ``\\x1b``, U+202E as ``\\u202e``), then rich markup escaped."""
    from rich.markup import escape  # rich loads for tables only, not for tsv, csv, json

    return escape(_plain(text))


def default_format(stream: TextIO | None = None) -> str:
    """``table`` when ``stream`` (stdout) is a terminal, else ``tsv``."""
    stream = stream or sys.stdout
    return "table" if stream.isatty() else "tsv"


def _kinds(view: str) -> dict[str, str]:
    table = VIEWS.get(view)
    return dict(table.columns) if table is not None else {}


def table_cell(value: Any, column: str, kind: str, exact: bool = False) -> str:
    """One value as a table shows it (plain text, not yet ``terminal_safe``): blank for
    None, ``yes``/``no``, money to 2 decimals (half up) unless ``exact``, JSON compact."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    if kind == "dec" and column in MONEY_COLUMNS and not exact:
        try:
            return str(Decimal(str(value)).quantize(_CENT, rounding=ROUND_HALF_UP))
        except InvalidOperation:
            return str(value)
    return str(value)


def tsv_cell(value: Any) -> str:
    """One value as a TSV field: the exact ``csv_cell`` text, control characters as
    visible escapes (so a field never holds a tab or a newline)."""
    return _plain(csv_cell(value))


def _columns(answer: dict[str, Any], columns: list[str] | None) -> list[str]:
    if columns is not None:
        return columns
    rows = answer["rows"]
    if rows:
        return list(rows[0])
    table = VIEWS.get(str(answer.get("view")))
    return table.fields if table is not None else []


def _title(answer: dict[str, Any]) -> str:
    rows = answer["rows"]
    title = f"{answer['view']} (as of seq {answer['as_of_seq']}"
    if "total" in answer and answer["total"] != len(rows):
        title += f"; {len(rows)} of {answer['total']} rows"
    return title + ")"


def print_view(answer: dict[str, Any], console: Console | None = None,
               columns: list[str] | None = None, exact: bool = False) -> None:
    """A view answer as a readable table (all fields, or ``columns``), see the module
    docstring. Every text goes through ``terminal_safe``: a stored text's control
    characters and rich markup are printed visibly, never acted on."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    rows = answer["rows"]
    names = _columns(answer, columns)
    kinds = _kinds(str(answer["view"]))
    cells = [[table_cell(row.get(c), c, kinds.get(c, "text"), exact) for c in names]
             for row in rows]
    title = terminal_safe(_title(answer))
    if not rows:
        console.print(f"{title}: no rows")
        return
    numeric = [kinds.get(c) in _NUMERIC for c in names]
    widths = [max([len(n)] + [len(r[i]) for r in cells]) for i, n in enumerate(names)]
    if sum(widths) + 3 * len(names) + 1 > console.width:
        _print_records(console, title, names, cells, numeric)
        return
    table = Table(title=title)
    for name, is_number in zip(names, numeric, strict=True):
        table.add_column(terminal_safe(name), justify="right" if is_number else "left",
                         no_wrap=is_number, overflow="fold")
    for row_cells in cells:
        table.add_row(*(terminal_safe(c) for c in row_cells))
    console.print(table)


def _print_records(console: Console, title: str, names: list[str], cells: list[list[str]],
                   numeric: list[bool]) -> None:
    """Rows too wide for the terminal: one block per row, a field and its value a line."""
    from rich.table import Table

    console.print(title)
    label = max(len(n) for n in names)
    # Numbers right-aligned to the widest number of the whole answer, texts left.
    right = max([len(r[i]) for r in cells for i in range(len(names)) if numeric[i]] + [0])
    for number, row_cells in enumerate(cells, 1):
        grid = Table.grid(padding=(0, 2))
        grid.add_column(no_wrap=True, style="bold")
        grid.add_column(overflow="fold")
        for i, name in enumerate(names):
            shown = row_cells[i].rjust(right) if numeric[i] else row_cells[i]
            grid.add_row(terminal_safe(name.ljust(label)), terminal_safe(shown))
        console.rule(f"row {number}", align="left", characters="-")
        console.print(grid)


def print_answer(answer: dict[str, Any], fmt: str, exact: bool = False,
                 out: TextIO | None = None) -> None:
    """``answer`` (a ``query`` result) on ``out`` (stdout) in ``fmt``, one of ``FORMATS``."""
    out = out or sys.stdout
    if fmt == "json":
        out.write(json.dumps(answer, indent=2, ensure_ascii=False) + "\n")
        return
    if fmt == "table":
        from rich.console import Console

        print_view(answer, Console(file=out), exact=exact)
        return
    names = _columns(answer, None)
    rows = answer["rows"]
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(names)
        writer.writerows([csv_cell(row.get(c)) for c in names] for row in rows)
        return
    out.write("\t".join(names) + "\n")
    for row in rows:
        out.write("\t".join(tsv_cell(row.get(c)) for c in names) + "\n")
