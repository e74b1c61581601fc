"""The report as text on a terminal (rich tables), headline first."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table as RichTable

from daemon.report.tables import account_tables, cell_text, headline

__all__ = ["print_text"]


def print_text(metrics: dict[str, Any], console: Console) -> None:
    """One account's report: the headline line, then every table with its note."""
    line = "   ".join(f"{label}: {cell_text(cell)}" for label, cell in headline(metrics))
    console.print(f"[bold]{metrics['account']}[/bold]  (as of seq {metrics['as_of_seq']}, "
                  f"today {metrics['today']} {metrics['timezone']})")
    console.print(line, highlight=False)
    if metrics["headline"]["reason"]:
        console.print(f"note: {metrics['headline']['reason']}", highlight=False)
    for table in account_tables(metrics):
        shown = RichTable(title=table.title, title_justify="left")
        for index, column in enumerate(table.header):
            shown.add_column(column, justify="left" if index == 0 else "right")
        for row in table.rows:
            shown.add_row(*(cell_text(cell) for cell in row))
        if not table.rows:
            shown.add_row("none", *([""] * (len(table.header) - 1)))
        console.print(shown)
        if table.note:
            console.print(f"  {table.title}: {table.note}", highlight=False)
