"""The `api` process: builds the Tornado application and serves it (`tinytrail api`).

Two listeners: the public routes on `api_port`, and Prometheus `/metrics` alone on
`api_metrics_port` (docs/RULES.md: `/metrics` is never served on a public route; the
Ingress and the local router reach only `api_port`). SIGTERM/SIGINT: stop accepting,
give requests in progress a moment, close Redis and the pool, each step bounded, so
the process is gone within `SHUTDOWN_SECONDS` whatever the backing services do.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Any

import redis.asyncio as aioredis
import tornado.httpserver
import tornado.web

from api.dashboard import dashboard_routes
from api.deps import ApiDeps
from api.health import HealthHandler, OpenApiHandler, encode_document
from api.reports import report_routes
from api.settings import ApiSettings
from tinytrail.db import Pool, make_pool, open_pool
from tinytrail.logs import setup_logging
from tinytrail.metrics import MetricsHandler
from tinytrail.settings import load_settings
from tinytrail.shutdown import arm_watchdog, bounded, first_of
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
        (r"/api/v1/openapi.json", OpenApiHandler, {"document": encode_document(build_document())}),
        *admin_routes(deps),
        *report_routes(deps),
    ]


def make_api_pool(settings: ApiSettings, name: str = "api") -> Pool:
    """The API's pool (closed): its sessions get `api_statement_timeout`."""
    return make_pool(settings, name=name, statement_timeout=settings.api_statement_timeout)


def make_metrics_app() -> tornado.web.Application:
    """`/metrics` only (every other path 404), for the metrics port."""
    return tornado.web.Application([(r"/metrics", MetricsHandler, {})],
                                   default_handler_class=NotFoundHandler)


def log_request(handler: tornado.web.RequestHandler) -> None:
    """Access log without the client address or query string (no raw IPs in logs).

    Levels: ERROR for a 5xx the API did not mean (a bug: 500), WARNING for a 503 (the
    database unavailable or a statement timeout: expected during an outage, already
    explained by its own warning line), INFO for 4xx, DEBUG otherwise."""
    status = handler.get_status()
    level = (logging.WARNING if status == 503 else logging.ERROR if status >= 500
             else logging.INFO if status >= 400 else logging.DEBUG)
    logging.getLogger("tornado.access").log(
        level, "%d %s %s %.1fms", status, handler.request.method, handler.request.path,
        1000.0 * handler.request.request_time(),
    )


def make_app(deps: ApiDeps) -> tornado.web.Application:
    # The dashboard is static files on top of the public API, not part of the API
    # contract (or its OpenAPI document): it is mounted here, beside `all_routes`.
    return tornado.web.Application(
        [*all_routes(deps), *dashboard_routes()],
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
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # First of all, so that SIGTERM during start-up (Postgres slow or away) ends us too.
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    pool = make_api_pool(settings)
    opened, _ = await first_of(open_pool(pool, timeout=settings.db_connect_timeout), stop)
    if not opened:
        log.info("api stopped during start-up")
        await bounded(pool.close(timeout=2.0), 3.0, "closing the pool")
        return
    redis = aioredis.Redis.from_url(
        settings.redis_url, socket_timeout=0.5, socket_connect_timeout=0.5
    )
    deps = ApiDeps(settings=settings, pool=pool, redis=redis)
    # xheaders only behind a configured trusted proxy; otherwise X-Forwarded-* is ignored.
    server = tornado.httpserver.HTTPServer(
        make_app(deps), xheaders=bool(settings.trusted_proxies.strip()),
        idle_connection_timeout=settings.api_idle_timeout, body_timeout=settings.api_body_timeout,
    )
    metrics: tornado.httpserver.HTTPServer | None = None
    try:
        server.listen(port, settings.api_host)
        if settings.api_metrics_port:
            metrics = tornado.httpserver.HTTPServer(make_metrics_app())
            metrics.listen(settings.api_metrics_port, settings.api_host)
    except BaseException:
        server.stop()
        await bounded(redis.aclose(), 2.0, "closing redis")
        await bounded(pool.close(timeout=2.0), 3.0, "closing the pool")
        raise
    log.info("api listening on %s:%d (metrics on %s)", settings.api_host, port,
             settings.api_metrics_port or "no port")
    await stop.wait()
    log.info("api shutting down")
    # Not cancelled: a daemon thread, it also covers asyncio.run's clean-up and the exit.
    arm_watchdog("api")
    server.stop()  # no new connections
    if metrics is not None:
        metrics.stop()
    await bounded(server.close_all_connections(), 8.0, "closing connections")
    await bounded(redis.aclose(), 2.0, "closing redis")
    await bounded(pool.close(timeout=3.0), 5.0, "closing the pool")
