"""The version of the installed ``tradelog`` distribution (``tradelog --version``, ``health``)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

__all__ = ["VERSION"]


def _installed_version() -> str:
    """The distribution's version from its metadata; ``"0+unknown"`` when the packages
    are imported from a source tree that was never installed."""
    try:
        return version("tradelog")
    except PackageNotFoundError:
        return "0+unknown"


VERSION = _installed_version()
