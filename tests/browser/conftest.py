"""Fixtures of the browser tests: the real collector, and a local page server that serves
the test's page and the npm packages it loads from `node_modules` (never a CDN)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import tornado.httpserver
import tornado.netutil
import tornado.web

sys.path.insert(0, str(Path(__file__).resolve().parent))
from browserlib import HERE, PageHandler, PageServer  # noqa: E402

from collector.app import RunningCollector  # noqa: E402
from collector.settings import CollectorSettings  # noqa: E402
from tinytrail.settings import CoreSettings  # noqa: E402


@pytest.fixture
async def live_collector(core_settings: CoreSettings) -> AsyncIterator[RunningCollector]:
    """The real collector (Redis, Kafka, Postgres) on a free port, rate limit out of the way."""
    values = core_settings.model_dump()
    values.update(collector_host="127.0.0.1", collector_port=0, collect_rate_limit=1000,
                  kafka_linger_ms=1)
    col = await RunningCollector.start(CollectorSettings(**values))
    yield col
    await col.stop()


@pytest.fixture
async def pages() -> AsyncIterator[PageServer]:
    site = PageServer()
    app = tornado.web.Application([
        (r"/node_modules/(.*)", tornado.web.StaticFileHandler,
         {"path": str(HERE / "node_modules")}),
        (r"/(.*)", PageHandler, {"site": site}),
    ])
    server = tornado.httpserver.HTTPServer(app)
    sockets = tornado.netutil.bind_sockets(0, address="127.0.0.1")
    server.add_sockets(sockets)
    site.port = sockets[0].getsockname()[1]
    yield site
    server.stop()
    await server.close_all_connections()
