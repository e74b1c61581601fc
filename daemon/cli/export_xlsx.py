"""Every view as one XLSX workbook (``tradelog export DIR --xlsx``), with XlsxWriter.

One sheet per view, named after it: a header row of the view's fields, then its rows as
``query`` answers them. Cells:

- a decimal with at most 15 significant digits is a **number**: the double nearest to
  it reads back as exactly that decimal (15 digits is what a double always keeps, and
  what a spreadsheet shows), so sums and charts work and nothing is damaged; a decimal
  with more digits is written as **text**, exactly, because as a number it would be
  rounded;
- integers are numbers, booleans are booleans, ``attrs``/``tags`` JSON text, times their
  RFC 3339 text (a spreadsheet date has no time zone), null an empty cell.

XlsxWriter is an optional extra (``pip install 'tradelog[xlsx]'``).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from daemon.cli.cells import csv_cell
from eventstore.backup import private_file, publish
from eventstore.errors import ValidationError
from projections import tables as t

__all__ = ["MAX_NUMBER_DIGITS", "cell_value", "write_workbook"]

MAX_NUMBER_DIGITS = 15
"""Significant digits a double always keeps: decimals with more stay text."""


def cell_value(kind: str, value: Any) -> Any:
    """One view value as written to a cell, by its column ``kind`` (text/dec/int/bool/json):
    a float or text for a decimal (module docstring), the int, the bool, or text."""
    if value is None:
        return None
    if kind == "dec":
        number = Decimal(str(value))
        digits = len(number.normalize().as_tuple().digits)
        if number.is_finite() and digits <= MAX_NUMBER_DIGITS:
            return float(number)
        return str(value)
    if kind == "int" and not isinstance(value, bool):
        return int(value)
    if kind == "bool":
        return bool(value)
    return csv_cell(value)


def write_workbook(directory: Path, views: Mapping[str, list[dict[str, Any]]],
                   name: str = "views.xlsx") -> Path:
    """Write ``views`` (view name -> rows) as ``directory/name``, 0600, atomically.

    Raises:
        ValidationError: XlsxWriter is not installed (says how to install it).
        StorageUnavailableError: the file cannot be written, or exists already.
    """
    try:
        import xlsxwriter
    except ImportError:
        raise ValidationError(
            "--xlsx needs XlsxWriter: pip install 'tradelog[xlsx]' (or xlsxwriter)") from None
    temp = private_file(directory, name)
    try:
        workbook = xlsxwriter.Workbook(str(temp), {"constant_memory": True,
                                                   "strings_to_numbers": False,
                                                   "strings_to_formulas": False,
                                                   "strings_to_urls": False})
        for view, rows in views.items():
            table = t.VIEWS[view]
            kinds = dict(table.columns)
            sheet = workbook.add_worksheet(view[:31])
            sheet.write_row(0, 0, table.fields)
            for number, row in enumerate(rows, 1):
                for column, field in enumerate(table.fields):
                    value = cell_value(kinds[field], row.get(field))
                    if value is None:
                        continue
                    if isinstance(value, str):
                        sheet.write_string(number, column, value)
                    elif isinstance(value, bool):
                        sheet.write_boolean(number, column, value)
                    else:
                        sheet.write_number(number, column, value)
        workbook.close()
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    publish(temp, directory / name)
    return directory / name
