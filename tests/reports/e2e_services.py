"""Services of the end-to-end report test, all in the test's event loop but the worker.

`running_api` serves the real API (`api.app.make_app`) on a free loopback port with an
injected clock; `running_collector` is the real collector (`RunningCollector`) behind
a trusted 127.0.0.1 "proxy", so each request names its client in X-Forwarded-For;
`Http` is a small async client; `read_raw` reads back everything on the raw topic.
Every context manager stops what it started, also when the test fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import urllib.parse
from collections.abc import AsyncIterator
from typing import Any

import orjson
import redis.asyncio as aioredis
import tornado.httpserver
import tornado.netutil
from aiokafka import AIOKafkaConsumer, TopicPartition
from tornado.httpclient import AsyncHTTPClient, HTTPRequest, HTTPResponse

from api.app import make_app
from api.deps import ApiDeps
from api.settings import ApiSettings
from collector.app import RunningCollector
from collector.settings import CollectorSettings
from tests.api.apisupport import SECRET, MutableClock
from tinytrail.db import make_pool, open_pool
from tinytrail.event import RawEvent
from tinytrail.settings import CoreSettings


def api_settings(core: CoreSettings) -> ApiSettings:
    return ApiSettings(**(core.model_dump() | {"db_pool_min": 1, "db_pool_max": 4}),
                       secret_key=SECRET, api_rate_limit=1_000_000,
                       api_auth_fail_limit=1_000_000)


@contextlib.asynccontextmanager
async def running_api(settings: ApiSettings, clock: MutableClock) -> AsyncIterator[str]:
    """The real API on 127.0.0.1:<free port>; yields its base URL."""
    pool = make_pool(settings, name="e2e-api")
    await open_pool(pool, timeout=10)
    redis = aioredis.Redis.from_url(settings.redis_url, socket_timeout=2,
                                    socket_connect_timeout=2)
    server = tornado.httpserver.HTTPServer(make_app(ApiDeps(settings, pool, redis, clock)))
    try:
        sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
        server.add_sockets(sockets)
        yield f"http://127.0.0.1:{sockets[0].getsockname()[1]}"
    finally:
        server.stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.close_all_connections(), 5)
        await redis.aclose()
        await pool.close()


@contextlib.asynccontextmanager
async def running_collector(core: CoreSettings) -> AsyncIterator[str]:
    """The real collector, trusting X-Forwarded-For from loopback; yields its base URL."""
    settings = CollectorSettings(**core.model_dump(), trusted_proxies="127.0.0.1/32",
                                 collect_rate_limit=1_000_000, collector_host="127.0.0.1")
    running = await RunningCollector.start(settings, host="127.0.0.1", port=0)
    try:
        yield f"http://127.0.0.1:{running.port}"
    finally:
        await running.stop()


class Http:
    """A small async HTTP client (its own Tornado client instance, closed at the end)."""

    def __init__(self, concurrency: int = 12) -> None:
        self.client = AsyncHTTPClient(force_instance=True, max_clients=concurrency)
        self.calls = 0

    def close(self) -> None:
        self.client.close()

    async def fetch(self, url: str, *, method: str = "GET", body: bytes | None = None,
                    headers: dict[str, str] | None = None) -> HTTPResponse:
        self.calls += 1
        return await self.client.fetch(HTTPRequest(
            url, method=method, body=body, headers=headers, request_timeout=30),
            raise_error=False)

    async def collect(self, base: str, body: dict[str, Any], ip: str, ua: str) -> HTTPResponse:
        return await self.fetch(f"{base}/api/v1/collect", method="POST", body=orjson.dumps(body),
                                headers={"Content-Type": "application/json", "User-Agent": ua,
                                         "X-Forwarded-For": ip})

    async def report(self, base: str, key: str, name: str, query: dict[str, Any]) -> Any:
        """GET a report; JSON `data`, or the parsed CSV rows with `format=csv`."""
        q = urllib.parse.urlencode(query, doseq=True)
        resp = await self.fetch(f"{base}/api/v1/reports/{name}?{q}", headers={"X-API-KEY": key})
        assert resp.code == 200, (name, query, resp.code, resp.body[:300])
        if query.get("format") == "csv":
            assert resp.headers["Content-Type"].startswith("text/csv"), resp.headers
            assert resp.headers["Content-Disposition"].startswith("attachment"), resp.headers
            return list(csv.reader(io.StringIO(resp.body.decode("utf-8"), newline="")))
        envelope = orjson.loads(resp.body)
        assert envelope["status"] == "success", envelope
        return envelope["data"]

    async def admin(self, base: str, key: str, method: str, path: str,
                    body: dict[str, Any]) -> Any:
        resp = await self.fetch(f"{base}{path}", method=method, body=orjson.dumps(body),
                                headers={"X-API-KEY": key, "Content-Type": "application/json"})
        assert resp.code in (200, 201), (path, resp.code, resp.body)
        return orjson.loads(resp.body)["data"]


async def read_raw(bootstrap: str, topic: str, want: int, timeout: float = 30.0,
                   settle: float = 1.0) -> list[RawEvent]:
    """Every message of `topic` (a plain consumer, no group, from the beginning) until
    `want` arrived, then `settle` seconds more so that extra messages would show."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                group_id=None, auto_offset_reset="earliest")
    await consumer.start()
    out: list[RawEvent] = []
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        parts = consumer.partitions_for_topic(topic)
        while not parts and loop.time() < deadline:
            await consumer._client.force_metadata_update()
            parts = consumer.partitions_for_topic(topic)
        consumer.assign([TopicPartition(topic, p) for p in sorted(parts or ())])
        await consumer.seek_to_beginning()
        quiet_until = None
        while loop.time() < deadline:
            batch = await consumer.getmany(timeout_ms=300)
            for records in batch.values():
                out.extend(RawEvent.from_bytes(r.value) for r in records)
            if len(out) >= want:
                quiet_until = quiet_until or loop.time() + settle
                if loop.time() >= quiet_until:
                    break
    finally:
        await consumer.stop()
    return out
