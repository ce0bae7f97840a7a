"""Issue 12 findings 3 and 8, collector side: a website is collectable from its first
moment (cache misses re-checked in Postgres, short negative cache, 503 when Postgres
cannot say), and the collect limit keys IPv6 clients by their /64 (IPv4-mapped IPv6 as
IPv4). Real Postgres, Redis and Kafka; the collector in-process."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import AsyncIterator

import pytest
from collector_testlib import create_website, event_body, post
from tornado.httpclient import AsyncHTTPClient

from collector.app import RunningCollector
from collector.settings import CollectorSettings
from collector.websites import CollectorWebsites, LookupUnavailable
from tinytrail.db import make_pool
from tinytrail.ratelimit import client_bucket
from tinytrail.settings import CoreSettings
from tinytrail.websites import MISSES

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.kafka]


def settings_for(core: CoreSettings, **over: object) -> CollectorSettings:
    values = core.model_dump()
    # A refresh far in the future: only the miss path can find a new website.
    values.update(collector_host="127.0.0.1", collector_port=0, trusted_proxies="127.0.0.1/32",
                  website_refresh_interval=5, collect_rate_limit=1000, kafka_linger_ms=1,
                  website_negative_ttl=0.5)
    values.update(over)
    return CollectorSettings(**values)


@pytest.fixture
async def http() -> AsyncIterator[AsyncHTTPClient]:
    client = AsyncHTTPClient(force_instance=True)
    yield client
    client.close()


def base(col: RunningCollector) -> str:
    return f"http://127.0.0.1:{col.port}"


def _ip() -> str:
    return "10." + ".".join(str(secrets.randbelow(256)) for _ in range(3))


async def test_a_new_website_is_collectable_at_once(
    core_settings: CoreSettings, http: AsyncHTTPClient, pg_dsn: str,
) -> None:
    """Finding 3: created after the collector's last refresh, collected at once → 202."""
    col = await RunningCollector.start(settings_for(core_settings))
    try:
        site = create_website(pg_dsn, "at-once")
        assert col.deps.websites.get(site) is None  # the cache has not seen it
        found = MISSES.labels("collector", "found")._value.get()
        resp = await post(http, base(col), event_body(site), ip=_ip())
        assert resp.code == 202, resp.body
        assert MISSES.labels("collector", "found")._value.get() == found + 1
        assert col.deps.websites.get(site) is not None  # it joined the cache
    finally:
        await col.stop()


async def test_unknown_ids_are_204_and_negatively_cached(
    core_settings: CoreSettings, http: AsyncHTTPClient, pg_dsn: str,
) -> None:
    col = await RunningCollector.start(settings_for(core_settings))
    try:
        ghost = str(uuid.uuid4())
        unknown = MISSES.labels("collector", "unknown")._value.get()
        cached = MISSES.labels("collector", "negative_cached")._value.get()
        for _ in range(3):
            assert (await post(http, base(col), event_body(ghost), ip=_ip())).code == 204
        # One query; the next two answered from the negative cache.
        assert MISSES.labels("collector", "unknown")._value.get() == unknown + 1
        assert MISSES.labels("collector", "negative_cached")._value.get() == cached + 2
    finally:
        await col.stop()


async def test_concurrent_misses_share_one_query(core_settings: CoreSettings,
                                                 pg_dsn: str) -> None:
    pool = make_pool(core_settings, name="miss-test", max_size=2)
    await pool.open(wait=True)
    cache = CollectorWebsites(pool, refresh_seconds=5, negative_seconds=5)
    try:
        site = create_website(pg_dsn, "shared")
        found = MISSES.labels("collector", "found")._value.get()
        got = await asyncio.gather(*(cache.lookup(site) for _ in range(20)))
        assert all(s is not None and s.id == site for s in got)
        assert MISSES.labels("collector", "found")._value.get() == found + 1
    finally:
        await pool.close()


async def test_negative_cache_expires_on_its_clock(core_settings: CoreSettings,
                                                   pg_dsn: str) -> None:
    """The worked example of tinytrail/websites.py: absent at t=0, created at t=0.5,
    still unknown at t=0.8 (negative cache 1 s), found at t=1.0."""
    now = [0.0]
    pool = make_pool(core_settings, name="miss-clock", max_size=2)
    await pool.open(wait=True)
    cache = CollectorWebsites(pool, refresh_seconds=5, negative_seconds=1.0, clock=lambda: now[0])
    try:
        site_id = str(uuid.uuid4())
        assert await cache.lookup(site_id) is None
        import psycopg

        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            acc = conn.execute("INSERT INTO accounts (name) VALUES ('neg') RETURNING id"
                               ).fetchone()[0]  # type: ignore[index]
            conn.execute("INSERT INTO websites (id, account_id, domain) VALUES (%s, %s, %s)",
                         (site_id, acc, f"neg-{site_id[:8]}.example"))
        now[0] = 0.8
        assert await cache.lookup(site_id) is None
        now[0] = 1.0
        found = await cache.lookup(site_id)
        assert found is not None and found.id == site_id
    finally:
        await pool.close()


async def test_postgres_unreachable_on_a_miss_is_503_not_204(
    core_settings: CoreSettings, http: AsyncHTTPClient,
) -> None:
    """Postgres cannot say whether the website exists: the event may be a new website's,
    so the client is told to retry (503 + Retry-After) instead of losing it to a 204."""
    col = await RunningCollector.start(settings_for(core_settings))
    try:
        known = next(iter(col.deps.websites.sites), None)
        await col.deps.pool.close()  # as if Postgres had gone away
        resp = await post(http, base(col), event_body(str(uuid.uuid4())), ip=_ip())
        assert resp.code == 503 and int(resp.headers["Retry-After"]) >= 1
        if known is not None:  # websites already cached keep being collected
            assert (await post(http, base(col), event_body(known), ip=_ip())).code == 202
        with pytest.raises(LookupUnavailable):
            await col.deps.websites.lookup(str(uuid.uuid4()))
    finally:
        await col.stop()


@pytest.mark.parametrize(
    "ip,bucket",
    [
        pytest.param("203.0.113.9", "203.0.113.9", id="ipv4"),
        pytest.param("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64", id="ipv6"),
        pytest.param("2001:db8:1:2::", "2001:db8:1:2::/64", id="ipv6-network-address"),
        pytest.param("2001:DB8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64", id="ipv6-upper"),
        pytest.param("::ffff:203.0.113.9", "203.0.113.9", id="ipv4-mapped"),
        pytest.param("::1", "::/64", id="loopback"),
        pytest.param("not an ip", "not an ip", id="garbage"),
    ],
)
def test_client_bucket(ip: str, bucket: str) -> None:
    assert client_bucket(ip) == bucket


async def test_collect_limit_keys_ipv6_by_its_64(
    core_settings: CoreSettings, http: AsyncHTTPClient, pg_dsn: str,
) -> None:
    col = await RunningCollector.start(settings_for(core_settings, collect_rate_limit=3,
                                                    collect_rate_window=60))
    try:
        site = create_website(pg_dsn, "slash64")
        net = "2001:db8:" + ":".join(f"{secrets.randbelow(65536):x}" for _ in range(2))
        # Four addresses of one /64 share one budget of 3.
        codes = [(await post(http, base(col), event_body(site), ip=f"{net}::{i:x}")).code
                 for i in range(1, 5)]
        assert codes == [202, 202, 202, 429]
        other = "2001:db8:" + ":".join(f"{secrets.randbelow(65536):x}" for _ in range(2))
        assert (await post(http, base(col), event_body(site), ip=f"{other}::1")).code == 202
        # IPv4-mapped IPv6 is the IPv4 client: one budget for both spellings.
        v4 = _ip()
        spelled = [v4, f"::ffff:{v4}", v4, f"::ffff:{v4}"]
        codes = [(await post(http, base(col), event_body(site), ip=a)).code for a in spelled]
        assert codes == [202, 202, 202, 429]
    finally:
        await col.stop()


async def test_metrics_only_on_their_own_port(
    core_settings: CoreSettings, http: AsyncHTTPClient,
) -> None:
    """Finding 8: `/metrics` is a 404 on the public port and served on the metrics port,
    which serves nothing else."""
    col = await RunningCollector.start(settings_for(core_settings), metrics_port=0)
    try:
        assert col.metrics_port and col.metrics_port != col.port
        public = await http.fetch(f"{base(col)}/metrics", raise_error=False)
        assert public.code == 404
        private = f"http://127.0.0.1:{col.metrics_port}"
        metrics = await http.fetch(f"{private}/metrics")
        assert b"tinytrail_collector_requests_total" in metrics.body
        for path in ("/health", "/api/v1/collect", "/js/tracker.js"):
            assert (await http.fetch(private + path, raise_error=False)).code == 404
    finally:
        await col.stop()
