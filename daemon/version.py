"""The version of tradelog (``tradelog --version``, ``health``, the HTTP API's OpenAPI).

The one place it is written: ``pyproject.toml`` reads it from here when the package is
built (``[tool.setuptools.dynamic]``), so the installed metadata and this constant are
the same, and a start does not scan the installed distributions' metadata for it.
"""

from __future__ import annotations

__all__ = ["VERSION"]

VERSION = "0.1.0"
