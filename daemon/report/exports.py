"""The report as a PDF (headless Chromium prints the HTML page) and as an XLSX workbook.

PDF: the page is printed by Chromium's own print-to-PDF (``--headless
--print-to-pdf``), so the PDF shows exactly the charts and tables of the page; no
pure-Python PDF library draws uPlot's canvas charts. Chromium is looked up as
``chromium``, ``chromium-browser``, ``google-chrome`` (or ``$CHROME_PATH``); where
none is installed ``--pdf`` fails with a message saying what to install.

XLSX: a sheet per table (``daemon.report.tables``) and per account, money and percents
as numbers, written with XlsxWriter (the ``xlsx`` extra, as ``tradelog export --xlsx``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from daemon.report.page import render_page
from daemon.report.tables import account_tables, headline
from eventstore.errors import ValidationError

__all__ = ["NO_CHROMIUM", "find_chromium", "write_pdf", "write_xlsx"]

NO_CHROMIUM = ("report --pdf needs a headless Chromium to print the page: install it "
               "(Debian/Ubuntu: apt-get install chromium) or set CHROME_PATH to its "
               "path; report --html FILE writes the same page without it")
_NUMERIC = {"money", "pct", "num", "int", "dur", "days"}


def find_chromium() -> str | None:
    """The Chromium to print with: ``$CHROME_PATH``, else the first on PATH."""
    given = os.environ.get("CHROME_PATH")
    if given:
        return given if Path(given).exists() else None
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def write_pdf(reports: Sequence[dict[str, Any]], target: Path, timeout: float = 120) -> None:
    """Print the report page to ``target`` with headless Chromium.

    Raises:
        ValidationError: no Chromium (``NO_CHROMIUM``), or it failed (its message).
    """
    browser = find_chromium()
    if browser is None:
        raise ValidationError(NO_CHROMIUM)
    with tempfile.TemporaryDirectory(prefix="tradelog-pdf-") as folder:
        page = Path(folder) / "report.html"
        page.write_text(render_page(reports), encoding="utf-8")
        out = Path(folder) / "report.pdf"
        command = [browser, "--headless", "--no-sandbox", "--disable-gpu",
                   "--no-first-run", "--disable-background-networking",
                   "--disable-component-update", "--disable-sync",
                   f"--user-data-dir={Path(folder) / 'profile'}",
                   "--virtual-time-budget=10000", "--no-pdf-header-footer",
                   f"--print-to-pdf={out}", page.as_uri()]
        try:
            done = subprocess.run(command, capture_output=True, timeout=timeout, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ValidationError(f"report --pdf: chromium did not print the page: {exc}"
                                  ) from None
        if done.returncode != 0 or not out.exists() or out.stat().st_size == 0:
            detail = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
            raise ValidationError(f"report --pdf: chromium failed ({done.returncode}): "
                                  f"{detail[0]}")
        shutil.copyfile(out, target)


def _value(kind: str, raw: Any) -> Any:
    if raw is None:
        return None
    if kind in _NUMERIC:
        try:
            return float(Decimal(str(raw)))
        except ArithmeticError:
            return str(raw)
    return str(raw)


def write_xlsx(reports: Sequence[dict[str, Any]], target: Path) -> None:
    """One workbook: per account a ``headline`` sheet and a sheet per table.

    Raises:
        ValidationError: XlsxWriter is not installed (the ``xlsx`` extra).
    """
    try:
        import xlsxwriter
    except ImportError:
        raise ValidationError("report --xlsx needs XlsxWriter: pip install "
                              "'tradelog[xlsx]'") from None
    book = xlsxwriter.Workbook(str(target))
    try:
        bold = book.add_format({"bold": True})
        formats = {"money": book.add_format({"num_format": "#,##0.00"}),
                   "pct": book.add_format({"num_format": '0.00" %"'}),
                   "num": book.add_format({"num_format": "0.00"})}
        used: set[str] = set()
        for number, metrics in enumerate(reports):
            prefix = metrics["account"][:12] if len(reports) > 1 else ""
            sheets: list[tuple[str, list[str], list[list[tuple[str, Any]]]]] = [
                ("headline", [label for label, _ in headline(metrics)],
                 [[(c.kind, c.raw) for _, c in headline(metrics)]])]
            sheets += [(t.key or t.title, t.header, [[(c.kind, c.raw) for c in row]
                                                     for row in t.rows])
                       for t in account_tables(metrics)]
            for name, header, rows in sheets:
                title = (f"{prefix} {name}".strip() if prefix else name)[:31]
                if title in used:
                    title = f"{number}{title}"[:31]
                used.add(title)
                sheet = book.add_worksheet(title)
                sheet.write_row(0, 0, header, bold)
                for y, row in enumerate(rows, 1):
                    for x, (kind, raw) in enumerate(row):
                        sheet.write(y, x, _value(kind, raw), formats.get(kind))
                sheet.set_column(0, max(len(header) - 1, 0), 18)
    finally:
        book.close()
