"""The ASGI app: the API routers, the dashboard page at ``/`` and its assets."""

from __future__ import annotations

from importlib import resources
from typing import Any

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

from daemon.http import routes_dash, routes_ft, routes_views
from daemon.http.auth import NotAuthenticatedError
from daemon.http.common import error_answer
from daemon.http.context import Api
from daemon.logs import get_logger
from daemon.version import VERSION
from daemon.wire.rpc import RpcError
from eventstore.errors import TradelogError

__all__ = ["OPENAPI_URL", "create_app"]

log = get_logger("tradelog.http")

OPENAPI_URL = "/api/v1/openapi.json"
_CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'")


def _assets() -> Any:
    return resources.files("daemon") / "assets"


def create_app(api: Api, cors_origins: list[str] | None = None) -> FastAPI:
    """The app serving ``api``; ``cors_origins``: origins allowed to read it from their
    pages (none by default: a browser then reads it only from the dashboard's origin)."""
    app = FastAPI(
        title="tradelog", version=VERSION, openapi_url=OPENAPI_URL, docs_url=None,
        redoc_url=None,
        description="The read-only HTTP API of the tradelog daemon (docs/HTTP.md): the "
        "views, metrics, the event log and a live stream. Decimals are strings; times "
        "RFC 3339 UTC.")
    app.state.api = api
    for router in (routes_views.router, routes_dash.router, routes_ft.router):
        app.include_router(router)
    if cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=cors_origins, allow_methods=["GET"],
                           allow_headers=["Authorization", "Last-Event-ID"])

    async def failed(request: Request, exc: Exception) -> Response:
        if not isinstance(exc, TradelogError | NotAuthenticatedError | RpcError):
            api.service.throttle("http_request_failed").log(
                log, "error", "http_request_failed", path=request.url.path,
                error=repr(exc)[:300])
        return error_answer(exc)

    for kind in (TradelogError, NotAuthenticatedError, RpcError, Exception):
        app.add_exception_handler(kind, failed)

    page = (_assets() / "dashboard" / "index.html").read_text()

    @app.get("/", include_in_schema=False)
    async def dashboard() -> HTMLResponse:
        return HTMLResponse(page, headers={"Content-Security-Policy": _CSP,
                                           "Cache-Control": "no-cache"})

    app.mount("/assets", StaticFiles(directory=str(_assets())), name="assets")

    @app.middleware("http")
    async def headers(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        return response

    return app
