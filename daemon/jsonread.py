"""Kept for the modules outside the server that read JSON this way (the client, the CLI,
the importers): the strict reader now lives in ``daemon.wire.jsonread``."""

from daemon.wire.jsonread import (
    MAX_DEPTH,
    MAX_NUMBER_CHARS,
    MAX_NUMBER_EXPONENT,
    JSONReadError,
    dumps,
    encode,
    loads,
)

__all__ = ["MAX_DEPTH", "MAX_NUMBER_CHARS", "MAX_NUMBER_EXPONENT", "JSONReadError", "dumps",
           "encode", "loads"]
