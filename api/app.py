"""The `api` process: builds the Tornado application and serves it (`tinytrail api`)."""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Any

import redis.asyncio as aioredis
import tornado.httpserver
import tornado.web

from api.deps import ApiDeps
from api.health import HealthHandler, OpenApiHandler, encode_document
from api.reports import report_routes
from api.settings import ApiSettings
from tinytrail.db import make_pool, open_pool
from tinytrail.logs import setup_logging
from tinytrail.metrics import MetricsHandler
from tinytrail.settings import load_settings
from tinytrail.web import NotFoundHandler

log = logging.getLogger("tinytrail.api")

Route = tuple[str, type, dict[str, Any]]


def admin_routes(deps: ApiDeps) -> list[Route]:
    """Accounts, users, websites and admin routes (the reports come from api.reports)."""
    from api import accounts, admin, users, websites

    d = {"deps": deps}
    return [
        (r"/api/v1/accounts", accounts.AccountsHandler, d),
        (r"/api/v1/accounts/([^/]+)", accounts.AccountHandler, d),
        (r"/api/v1/users", users.UsersHandler, d),
        (r"/api/v1/users/([^/]+)/api-key", users.UserApiKeyHandler, d),
        (r"/api/v1/users/([^/]+)", users.UserHandler, d),
        (r"/api/v1/websites", websites.WebsitesHandler, d),
        (r"/api/v1/websites/([^/]+)", websites.WebsiteHandler, d),
        (r"/api/v1/admin/aggregate", admin.AggregateHandler, d),
    ]


def all_routes(deps: ApiDeps) -> list[Route]:
    from api.openapi import build_document

    return [
        (r"/health", HealthHandler, {"deps": deps}),
        (r"/metrics", MetricsHandler, {}),
        (r"/api/v1/openapi.json", OpenApiHandler, {"document": encode_document(build_document())}),
        *admin_routes(deps),
        *report_routes(deps),
    ]


def log_request(handler: tornado.web.RequestHandler) -> None:
    """Access log without the client address or query string (no raw IPs in logs)."""
    status = handler.get_status()
    level = logging.ERROR if status >= 500 else logging.INFO if status >= 400 else logging.DEBUG
    logging.getLogger("tornado.access").log(
        level, "%d %s %s %.1fms", status, handler.request.method, handler.request.path,
        1000.0 * handler.request.request_time(),
    )


def make_app(deps: ApiDeps) -> tornado.web.Application:
    return tornado.web.Application(
        all_routes(deps),
        default_handler_class=NotFoundHandler,
        compress_response=True,
        log_function=log_request,
    )


def main(port: int | None = None) -> int:
    """Entry point of `tinytrail api`: serve until SIGTERM/SIGINT, then close cleanly."""
    settings = load_settings(ApiSettings)
    setup_logging(settings.log_format, settings.log_level, process="api")
    try:
        asyncio.run(_serve(settings, port or settings.api_port))
    except Exception as exc:  # one clear line for operators, e.g. a bad DSN
        log.error("api stopped: %s: %s", type(exc).__name__, exc)
        return 1
    return 0


async def _serve(settings: ApiSettings, port: int) -> None:
    pool = make_pool(settings, name="api", statement_timeout=settings.api_statement_timeout)
    await open_pool(pool, timeout=settings.db_connect_timeout)
    redis = aioredis.Redis.from_url(
        settings.redis_url, socket_timeout=0.5, socket_connect_timeout=0.5
    )
    deps = ApiDeps(settings=settings, pool=pool, redis=redis)
    # xheaders only behind a configured trusted proxy; otherwise X-Forwarded-* is ignored.
    server = tornado.httpserver.HTTPServer(
        make_app(deps), xheaders=bool(settings.trusted_proxies.strip()),
        idle_connection_timeout=settings.api_idle_timeout, body_timeout=settings.api_body_timeout,
    )
    server.listen(port, settings.api_host)
    log.info("api listening on %s:%d", settings.api_host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
        log.info("api shutting down")
    finally:
        server.stop()
        await server.close_all_connections()
        await redis.aclose()
        await pool.close()
