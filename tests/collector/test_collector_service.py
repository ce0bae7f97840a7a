"""The collector against the real Postgres, Redis and Kafka, in-process on a loopback port."""

from __future__ import annotations

import asyncio
import gzip
import logging
from collections.abc import AsyncIterator

import orjson
import psycopg
import pytest
import redis.asyncio as aioredis
from collector_testlib import CHROME, create_website, event_body, post, read_topic
from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from collector.app import RunningCollector
from collector.settings import CollectorSettings
from tinytrail.settings import CoreSettings
from tinytrail.topics import raw_events_topic

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.kafka]

CLIENT_IP = "198.51.100.23"  # what the "client" sends via our trusted loopback proxy


def collector_settings(core: CoreSettings, **over: object) -> CollectorSettings:
    values = core.model_dump()
    values.update(collector_host="127.0.0.1", collector_port=0, trusted_proxies="127.0.0.1/32",
                  website_refresh_interval=0.2, collect_rate_limit=1000, kafka_linger_ms=1)
    values.update(over)
    return CollectorSettings(**values)


@pytest.fixture
async def running(core_settings: CoreSettings) -> AsyncIterator[RunningCollector]:
    col = await RunningCollector.start(collector_settings(core_settings))
    yield col
    await col.stop()


@pytest.fixture
async def http() -> AsyncIterator[AsyncHTTPClient]:
    client = AsyncHTTPClient(force_instance=True)
    yield client
    client.close()


def base(col: RunningCollector) -> str:
    return f"http://127.0.0.1:{col.port}"


async def test_accepted_events_reach_kafka_without_the_ip(
    running: RunningCollector, http: AsyncHTTPClient, pg_dsn: str, core_settings: CoreSettings,
    redis_url: str, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    site = create_website(pg_dsn, "accepted")
    await running.deps.websites.refresh()
    b = base(running)
    r1 = await post(http, b, event_body(site), ip=CLIENT_IP)
    assert (r1.code, orjson.loads(r1.body)) == (202, {"status": "accepted"})
    r2 = await post(http, b, event_body(site, event_type="custom", utm_source="body",
                                        properties={"name": "signup", "plan": "pro"}), ip=CLIENT_IP)
    assert r2.code == 202
    bad = await post(http, b, b"{not json", ip=CLIENT_IP)  # a 400 path logs too
    assert bad.code == 400

    msgs = await read_topic(core_settings.kafka_bootstrap, raw_events_topic(core_settings),
                            lambda v: v["website_id"] == site, want=2)
    assert len(msgs) == 2
    events = sorted((orjson.loads(v) for _, v in msgs), key=lambda e: e["event_type"])
    custom, view = events
    assert view["event_type"] == "page_view" and view["path"] == "/p"
    assert view["url"] == "https://example.com/p?utm_source=news"
    assert (view["screen_width"], view["screen_height"], view["referrer"]) == (
        1280, 800, "https://t.co/x")
    assert view["user_agent"] == CHROME and not view["is_bot"] and not view["is_excluded"]
    assert custom["name"] == "signup" and custom["properties"]["plan"] == "pro"
    assert custom["utm_source"] == "body"
    assert view["visitor_id"] == custom["visitor_id"] and len(view["visitor_id"]) == 64
    assert view["event_id"] != custom["event_id"]
    for key, value in msgs:
        ev = orjson.loads(value)
        assert key == f"{site}:{ev['visitor_id']}".encode()
        assert abs(ev["received_at_ms"] - running.deps.salts.clock() * 1000) < 60_000
        assert CLIENT_IP.encode() not in value and CLIENT_IP.encode() not in key

    # No raw IP in any Redis key or value of this test session's Redis database.
    client = aioredis.from_url(redis_url)
    try:
        keys = [k async for k in client.scan_iter(count=1000)]
        assert keys, "expected rate-limit and salt keys"
        for k in keys:
            assert CLIENT_IP.encode() not in k and b"127.0.0.1" not in k
            if await client.type(k) == b"string":
                assert CLIENT_IP.encode() not in (await client.get(k) or b"")
    finally:
        await client.aclose()
    # ... nor in any log line the process wrote during the test.
    for rec in caplog.records:
        assert CLIENT_IP not in rec.getMessage()
        assert CLIENT_IP not in str(rec.__dict__)


async def test_bots_and_excluded_are_204_but_published(
    running: RunningCollector, http: AsyncHTTPClient, pg_dsn: str, core_settings: CoreSettings,
) -> None:
    site = create_website(pg_dsn, "flags", excluded=["203.0.113.0/24"])
    await running.deps.websites.refresh()
    b = base(running)
    bot = await post(http, b, event_body(site, path="/bot"), ip=CLIENT_IP,
                     ua="Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)")
    excl = await post(http, b, event_body(site, path="/excluded"), ip="203.0.113.77")
    unknown = await post(http, b, event_body("00000000-0000-4000-8000-000000000000"),
                         ip=CLIENT_IP)
    assert (bot.code, excl.code, unknown.code) == (204, 204, 204)
    assert bot.body == b"" and excl.body == b""
    msgs = await read_topic(core_settings.kafka_bootstrap, raw_events_topic(core_settings),
                            lambda v: v["website_id"] == site, want=2)
    by_path = {orjson.loads(v)["path"]: orjson.loads(v) for _, v in msgs}
    assert by_path["/bot"]["is_bot"] and not by_path["/bot"]["is_excluded"]
    assert by_path["/excluded"]["is_excluded"] and not by_path["/excluded"]["is_bot"]
    # The unknown website published nothing at all.
    none = await read_topic(core_settings.kafka_bootstrap, raw_events_topic(core_settings),
                            lambda v: v["website_id"].startswith("00000000"), want=1, timeout=2)
    assert none == []


async def test_rate_limit_429_with_retry_after(
    core_settings: CoreSettings, http: AsyncHTTPClient, pg_dsn: str,
) -> None:
    col = await RunningCollector.start(collector_settings(core_settings, collect_rate_limit=3,
                                                          collect_rate_window=60))
    try:
        site = create_website(pg_dsn, "ratelimit")
        await col.deps.websites.refresh()
        codes = [(await post(http, base(col), event_body(site), ip="198.51.100.99")).code
                 for _ in range(4)]
        assert codes == [202, 202, 202, 429]
        over = await post(http, base(col), event_body(site), ip="198.51.100.99")
        assert over.code == 429
        assert 1 <= int(over.headers["Retry-After"]) <= 60
        assert orjson.loads(over.body)["error"]["code"] == "RATE_LIMITED"
        other = await post(http, base(col), event_body(site), ip="198.51.100.100")
        assert other.code == 202  # the limit is per client IP
    finally:
        await col.stop()


async def test_new_website_takes_effect_within_refresh(
    running: RunningCollector, http: AsyncHTTPClient, pg_dsn: str,
) -> None:
    site = create_website(pg_dsn, "fresh")
    codes = []
    for _ in range(50):  # bounded: 50 × 0.1 s; refresh is every 0.2 s here
        resp = await post(http, base(running), event_body(site), ip=CLIENT_IP)
        codes.append(resp.code)
        if resp.code == 202:
            break
        await asyncio.sleep(0.1)
    assert codes[-1] == 202
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("DELETE FROM websites WHERE id = %s", (site,))
    for _ in range(50):
        resp = await post(http, base(running), event_body(site), ip=CLIENT_IP)
        if resp.code == 204:
            break
        await asyncio.sleep(0.1)
    assert resp.code == 204


async def test_http_surface(running: RunningCollector, http: AsyncHTTPClient) -> None:
    b = base(running)
    pre = await http.fetch(HTTPRequest(f"{b}/api/v1/collect", method="OPTIONS",
                                       headers={"Origin": "https://shop.example"}),
                           raise_error=False)
    assert pre.code == 204
    assert pre.headers["Access-Control-Allow-Origin"] == "https://shop.example"
    assert pre.headers["Access-Control-Allow-Methods"] == "POST, OPTIONS"
    assert pre.headers["Access-Control-Allow-Headers"] == "Content-Type"
    assert pre.headers["Access-Control-Allow-Credentials"] == "true"
    assert "Origin" in pre.headers["Vary"]

    big = await post(http, b, b"{" + b" " * 40_000 + b"}", ip=CLIENT_IP,
                     headers={"Origin": "https://shop.example"})
    assert big.code == 413
    assert orjson.loads(big.body)["status"] == "error"
    assert big.headers["Access-Control-Allow-Origin"] == "https://shop.example"

    health = await http.fetch(f"{b}/health", raise_error=False)
    assert health.code == 200
    assert orjson.loads(health.body) == {"status": "ok", "db": "connected", "version": "0.1.0",
                                         "kafka": "connected", "redis": "connected"}
    # /metrics is never on the public port (issue 12): it has a port of its own.
    metrics = await http.fetch(f"{b}/metrics", raise_error=False)
    assert metrics.code == 404

    js = await http.fetch(f"{b}/js/tracker.js", decompress_response=False,
                          headers={"Accept-Encoding": "gzip"})
    assert js.headers["Content-Type"].startswith("application/javascript")
    assert js.headers["Cache-Control"] == "public, max-age=86400"
    assert js.headers.get("Content-Encoding") == "gzip"
    assert len(js.body) <= 1536  # the served, gzipped script
    assert b"analytics" in gzip.decompress(js.body)
    again = await http.fetch(f"{b}/js/tracker.js", raise_error=False,
                             headers={"If-None-Match": js.headers["ETag"]})
    assert again.code == 304

    missing = await http.fetch(f"{b}/nope", raise_error=False)
    assert missing.code == 404 and orjson.loads(missing.body)["error"]["code"] == "NOT_FOUND"
