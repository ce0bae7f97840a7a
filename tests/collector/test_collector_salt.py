"""The daily salt's lifecycle with an injected clock, against the real Redis."""

from __future__ import annotations

import datetime as dt

import pytest
import redis.asyncio as aioredis

from collector.salt import SALT_FALLBACK, SALT_TTL_SECONDS, DailySalt, salt_key

DAY1 = dt.datetime(2026, 3, 1, 23, 59, 50, tzinfo=dt.UTC).timestamp()


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
async def redis_client(redis_url: str):
    client = aioredis.from_url(redis_url, socket_timeout=2)
    await client.delete(salt_key(dt.date(2026, 3, 1)), salt_key(dt.date(2026, 3, 2)))
    yield client
    await client.delete(salt_key(dt.date(2026, 3, 1)), salt_key(dt.date(2026, 3, 2)))
    await client.aclose()


@pytest.mark.redis
async def test_one_salt_per_day_shared_by_replicas(redis_client: aioredis.Redis) -> None:
    clock = Clock(DAY1)
    a, b = DailySalt(redis_client, clock), DailySalt(redis_client, clock)
    salt_a = await a.get()
    assert len(salt_a) == 32
    assert await b.get() == salt_a  # the second replica reads the first one's salt (SET NX)
    key = salt_key(dt.date(2026, 3, 1))
    assert await redis_client.get(key) == salt_a
    ttl = await redis_client.ttl(key)
    assert SALT_TTL_SECONDS - 5 <= ttl <= SALT_TTL_SECONDS  # gone for good after 48 h

    clock.t += 20  # 00:00:10 next UTC day: a new salt
    salt_next = await a.get()
    assert salt_next != salt_a and await b.get() == salt_next
    assert await redis_client.get(salt_key(dt.date(2026, 3, 2))) == salt_next


@pytest.mark.redis
async def test_cached_salt_survives_redis_outage(redis_url: str) -> None:
    clock = Clock(DAY1 - 3600)
    live = aioredis.from_url(redis_url, socket_timeout=2)
    salts = DailySalt(live, clock)
    first = await salts.get()
    await live.delete(salt_key(dt.date(2026, 3, 1)))
    await live.aclose()
    # Same day, Redis now unreachable: the process keeps its cached salt.
    salts.redis = aioredis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    before = SALT_FALLBACK._value.get()
    assert await salts.get() == first
    assert SALT_FALLBACK._value.get() == before
    await salts.redis.aclose()


async def test_fallback_salt_when_redis_never_answered() -> None:
    """Unit: an unreachable Redis (port 1 on loopback refuses at once) → a local salt,
    counted; stable within the day; retried only after `retry_seconds`."""
    clock = Clock(DAY1)
    dead = aioredis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    salts = DailySalt(dead, clock, retry_seconds=5)
    before = SALT_FALLBACK._value.get()
    s1 = await salts.get()
    s2 = await salts.get()
    assert len(s1) == 32 and s1 == s2 and salts.is_fallback()
    assert SALT_FALLBACK._value.get() == before + 2
    clock.t += 20  # next day: a new local salt
    assert await salts.get() != s1
    await dead.aclose()


@pytest.mark.redis
async def test_salt_survives_a_redis_restart_through_reassert(
        redis_client: aioredis.Redis) -> None:
    """Redis has no persistence: after a restart the key is gone. The replicas that hold
    the day's salt put it back, so a replica started later reads the same salt."""
    clock = Clock(DAY1 - 3600)  # 22:59:50 on day 1
    old = DailySalt(redis_client, clock)
    salt = await old.get()
    key = salt_key(dt.date(2026, 3, 1))
    await redis_client.delete(key)  # what a Redis restart does to the key
    await old.reassert()
    assert await redis_client.get(key) == salt
    ttl = await redis_client.ttl(key)
    remaining = 48 * 3600 - (23 * 3600 - 10)  # 48 h after day 1 began, seen at 22:59:50
    assert remaining - 5 <= ttl <= remaining  # the original expiry is kept
    late = DailySalt(redis_client, clock)
    assert await late.get() == salt


@pytest.mark.redis
async def test_replica_adopts_the_salt_that_won_after_a_restart(
        redis_client: aioredis.Redis) -> None:
    clock = Clock(DAY1 - 3600)
    old = DailySalt(redis_client, clock)
    salt = await old.get()
    await redis_client.delete(salt_key(dt.date(2026, 3, 1)))
    new = DailySalt(redis_client, clock)
    newer = await new.get()  # started before anyone re-asserted: a fresh salt wins
    assert newer != salt
    await old.reassert()
    assert await old.get() == newer  # the replicas converge on one salt
    assert old.cached() == newer
