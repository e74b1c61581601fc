"""The ``tradelog`` command line: the parser and ``main`` (``daemon.cli.main``), one
module per group of subcommands (views and the log in ``commands``, ``imports``,
``backup``, ``restore``, ``export``)."""

from daemon.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
