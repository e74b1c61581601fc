"""The OpenAPI document against the live server, property-based (schemathesis): for
generated requests to every operation, no answer is a server error, and every answer's
status, content type and body match what the document says."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, note, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.http_support import HttpDaemon, http_daemon, seed


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpDaemon]:
    """A daemon with HTTP holding the demo bot's first 150 bars."""
    with http_daemon(tmp_path_factory.mktemp("http-openapi")) as daemon:
        seed(daemon.proc.socket, bars=150)
        yield daemon


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


@pytest.mark.slow(seconds=6)
def test_every_answer_matches_the_document(served: HttpDaemon) -> None:
    """For 15 generated requests per operation (the endless stream left out: tested on
    its own): no 5xx; status, content type and body as documented."""
    schema = schemathesis.openapi.from_url(served.base + "/api/v1/openapi.json")
    operations = []
    for result in schema.exclude(path="/api/v1/stream").get_all_operations():
        assert isinstance(result, Ok), result
        operations.append(result.ok())
    assert len(operations) > 25
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=15, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def run(case: schemathesis.Case[Any]) -> None:
            note(f"{case.method} {case.formatted_path} {case.query}")
            case.call_and_validate(base_url=served.base, checks=CHECKS)

        run()


def test_the_document_covers_the_api(served: HttpDaemon) -> None:
    """Every endpoint of docs/HTTP.md is in the document, versioned under /api/v1."""
    paths = set(served.json("/api/v1/openapi.json")["paths"])
    wanted = {"/api/v1/views/trades", "/api/v1/metrics", "/api/v1/trades",
              "/api/v1/cumulative-pnl", "/api/v1/daily-stats", "/api/v1/pnl-calendar",
              "/api/v1/daily-loss", "/api/v1/profit", "/api/v1/daily", "/api/v1/weekly",
              "/api/v1/monthly", "/api/v1/performance", "/api/v1/balance", "/api/v1/events",
              "/api/v1/health", "/api/v1/verify", "/api/v1/stream", "/api/v1/equity-curve"}
    assert wanted <= paths
    assert all(p.startswith("/api/v1/") for p in paths)
