"""One view value as the text of a cell, shared by the CSV and the xlsx export."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["csv_cell"]


def csv_cell(value: Any) -> str:
    """One view value as CSV text: exact decimal text as is, ``true``/``false``,
    JSON text for objects and lists, ``""`` for null."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return str(value)
