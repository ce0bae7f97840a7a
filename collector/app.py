"""The collector process: builds the Tornado app and runs it (`tinytrail collector`).

Start-up: settings → logging → Postgres pool (wait=True: a bad DSN fails fast) →
website cache → Redis client → Kafka topics (retrying while Kafka is slow) →
idempotent producer → HTTP server. SIGTERM/SIGINT (also during start-up): stop
accepting, let the requests in progress finish (each is answered within
`kafka_send_timeout`: 202, or 503 with Retry-After when Kafka cannot ack), flush and
stop the producer, close Redis and the pool. Every step is bounded and a watchdog
(tinytrail/shutdown.py) ends the process within 25 s whatever the services do.
"""

from __future__ import annotations

import asyncio
import logging
import signal

import redis.asyncio as aioredis
import tornado.httpserver
import tornado.netutil
import tornado.web
from aiokafka import AIOKafkaProducer

from collector import logfilter
from collector.country import open_country_db
from collector.deps import CollectorDeps
from collector.handlers import (
    TRACKER_PATH,
    CollectHandler,
    HealthHandler,
    TrackerHandler,
    TrackerScript,
)
from collector.publisher import Publisher, make_producer
from collector.ratelimit import CoalescingLimiter
from collector.salt import DailySalt
from collector.server import ReapingHTTPServer
from collector.settings import CollectorSettings
from collector.websites import CollectorWebsites
from tinytrail.db import make_pool, open_pool
from tinytrail.logs import setup_logging
from tinytrail.metrics import MetricsHandler
from tinytrail.settings import load_settings
from tinytrail.shutdown import arm_watchdog, bounded, first_of
from tinytrail.topics import ensure_topics
from tinytrail.web import NotFoundHandler

log = logging.getLogger("collector")

# Server-wide body limit, for routes other than collect (which streams its body and
# answers 413 in the envelope itself, see handlers.DRAIN_LIMIT).
SERVER_MAX_BODY = 1_048_576


_access_log = logging.getLogger("tornado.access")


def _log_request(handler: tornado.web.RequestHandler) -> None:
    """Access log without the client address (raw IPs are never logged). 2xx lines are
    DEBUG, so at the usual INFO level the hot path pays one level check."""
    status = handler.get_status()
    if status >= 500:
        level = logging.ERROR
    elif status >= 400 and status not in (413, 429):
        level = logging.INFO
    else:
        level = logging.DEBUG
    if _access_log.isEnabledFor(level):
        _access_log.log(level, "%d %s %s %.1fms", status, handler.request.method,
                        handler.request.path, 1000.0 * handler.request.request_time())


def make_app(settings: CollectorSettings, deps: CollectorDeps) -> tornado.web.Application:
    script = TrackerScript(TRACKER_PATH.read_bytes())
    return tornado.web.Application(
        [
            (r"/api/v1/collect/?", CollectHandler, {"deps": deps}),
            (r"/health", HealthHandler, {"deps": deps}),
            (r"/js/tracker\.js", TrackerHandler, {"script": script}),
        ],
        default_handler_class=NotFoundHandler,
        compress_response=False,  # the tracker is served pre-gzipped
        log_function=_log_request,
        xheaders=False,  # X-Forwarded-For is honoured only from trusted proxies (clientip.py)
    )


async def start_deps(settings: CollectorSettings) -> CollectorDeps:
    """Open every backing service; raises if Postgres or Kafka stay unreachable."""
    pool = make_pool(settings, name="collector", max_size=2)
    await open_pool(pool, timeout=settings.db_connect_timeout)
    redis = aioredis.from_url(
        settings.redis_url, socket_timeout=1.0, socket_connect_timeout=1.0,
        health_check_interval=30,
    )
    websites = CollectorWebsites(pool, settings.website_refresh_interval,
                                negative_seconds=settings.website_negative_ttl)
    producer: AIOKafkaProducer | None = None
    try:
        await websites.start()
        await ensure_topics(settings, timeout=settings.kafka_startup_timeout)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + settings.kafka_startup_timeout
        while True:
            producer = make_producer(settings)
            try:
                await producer.start()
                break
            except Exception as exc:
                await producer.stop()
                if loop.time() > deadline:
                    raise
                log.warning("kafka producer not ready (%s); retrying", type(exc).__name__)
                await asyncio.sleep(1.0)
    except BaseException:
        await websites.stop()
        await redis.aclose()
        await pool.close()
        raise
    salts = DailySalt(redis)
    salts.start()
    countries = open_country_db(settings.country_db_path)  # opened by the settings already
    log.info("country database %s (%s, built %s)", countries.info.path,
             countries.info.database_type, countries.info.built.isoformat())
    return CollectorDeps(
        settings=settings,
        pool=pool,
        redis=redis,
        websites=websites,
        salts=salts,
        limiter=CoalescingLimiter(
            redis, "collect", settings.collect_rate_limit, settings.collect_rate_window
        ),
        publisher=Publisher(producer, settings),
        trusted=settings.trusted_networks,
        country_of=countries.lookup,
    )


async def stop_deps(deps: CollectorDeps, grace: float | None = None) -> None:
    """Close every backing service, each step bounded: at most ~`grace` + 9 s.

    First the requests in progress are given `grace` seconds (default: the send
    timeout + 1 s, at most 10 s) to be answered; every one of them is, because a
    request waits at most `kafka_send_timeout` for its ack (then 503)."""
    settings = deps.settings
    if grace is None:
        grace = min(10.0, settings.kafka_send_timeout + 1.0)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace
    while deps.active > 0 and loop.time() < deadline:
        await asyncio.sleep(0.05)
    # Flushes what the producer still holds (deliverable if Kafka is up); bounded.
    await bounded(deps.publisher.producer.stop(), 3.0, "stopping the Kafka producer")
    await bounded(deps.publisher.close(), 2.0, "stopping the publisher")
    await bounded(deps.websites.stop(), 1.0, "stopping the website refresh")
    await bounded(deps.salts.stop(), 1.0, "stopping the salt re-assert")
    await bounded(deps.redis.aclose(), 1.0, "closing redis")
    await bounded(deps.pool.close(timeout=1.0), 2.0, "closing the pool")


def make_metrics_app() -> tornado.web.Application:
    """`/metrics` only (every other path 404), for the metrics port: docs/RULES.md says
    `/metrics` is never served on a public route, and the collector's port is public."""
    return tornado.web.Application([(r"/metrics", MetricsHandler)],
                                   default_handler_class=NotFoundHandler)


class RunningCollector:
    """A collector serving on a bound socket; used by `main`, the tests and the bench."""

    def __init__(self, deps: CollectorDeps, server: tornado.httpserver.HTTPServer,
                 port: int) -> None:
        self.deps, self.server, self.port = deps, server, port
        self.metrics: tornado.httpserver.HTTPServer | None = None
        self.metrics_port = 0

    @classmethod
    async def start(cls, settings: CollectorSettings, *, host: str | None = None,
                    port: int | None = None, metrics_port: int | None = None
                    ) -> RunningCollector:
        """Open the services and listen. `metrics_port`: where to serve `/metrics` (0 =
        an ephemeral port); None (the default, for in-process tests) = no metrics
        listener. `tinytrail collector` passes `collector_metrics_port` unless it is 0."""
        deps = await start_deps(settings)
        try:
            app = make_app(settings, deps)
            server = ReapingHTTPServer(app, max_body_size=SERVER_MAX_BODY,
                                       reap_after=settings.connection_timeout,
                                       sweep_seconds=min(5.0, settings.connection_timeout))
            sockets = tornado.netutil.bind_sockets(
                settings.collector_port if port is None else port,
                address=host or settings.collector_host, reuse_port=False)
            server.add_sockets(sockets)
        except BaseException:
            await stop_deps(deps)
            raise
        running = cls(deps, server, sockets[0].getsockname()[1])
        if metrics_port is not None:
            try:
                msocks = tornado.netutil.bind_sockets(
                    metrics_port, address=host or settings.collector_host, reuse_port=False)
            except BaseException:
                await running.stop()
                raise
            running.metrics = tornado.httpserver.HTTPServer(make_metrics_app())
            running.metrics.add_sockets(msocks)
            running.metrics_port = msocks[0].getsockname()[1]
        return running

    async def stop(self) -> None:
        """Stop accepting, answer the requests in progress, close the services and the
        remaining (idle) connections; bounded (see `stop_deps`)."""
        self.server.stop()  # stop accepting
        if self.metrics is not None:
            self.metrics.stop()
        await stop_deps(self.deps)
        await bounded(self.server.close_all_connections(), 2.0, "closing connections")


async def _serve(settings: CollectorSettings, port: int | None) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        # Start-up can wait for Kafka (kafka_startup_timeout): SIGTERM cuts it short.
        started, running = await first_of(RunningCollector.start(
            settings, port=port, metrics_port=settings.collector_metrics_port or None), stop)
    except Exception as exc:
        log.error("collector could not start: %s", exc)
        return 1
    if not started or running is None:
        log.info("collector stopped during start-up")
        return 0
    log.info("collector listening", extra={"port": running.port,
                                           "metrics_port": running.metrics_port})
    await stop.wait()
    log.info("collector stopping")
    # Not cancelled: it is a daemon thread, and it also covers asyncio.run's own clean-up
    # and the interpreter's exit after this returns.
    arm_watchdog("collector")
    await running.stop()
    log.info("collector stopped")
    return 0


def main(port: int | None = None) -> int:
    settings = load_settings(CollectorSettings)
    setup_logging(settings.log_format, settings.log_level, process="collector")
    logfilter.install()
    return asyncio.run(_serve(settings, port))
