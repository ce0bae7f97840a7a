"""The failed-authentication limit on the shared rate-limit core, with an in-memory
Redis (no network): the worked example of api/authlimit.py, the key shape and the
fail-open rule."""

from __future__ import annotations

import asyncio
from typing import Any

from api.authlimit import AuthFailureLimit
from tinytrail.ratelimit import RATE_LIMIT_FAIL_OPEN


class FakeRedis:
    """GET, and a pipeline of INCR + EXPIRE, over a dict (TTLs recorded, not applied)."""

    def __init__(self, broken: bool = False) -> None:
        self.data: dict[str, int] = {}
        self.ttl: dict[str, int] = {}
        self.broken = broken

    async def get(self, key: str) -> bytes | None:
        if self.broken:
            raise ConnectionError("down")
        return None if key not in self.data else str(self.data[key]).encode()

    def pipeline(self, transaction: bool = False) -> Any:
        return _Pipe(self)


class _Pipe:
    def __init__(self, redis: FakeRedis) -> None:
        self.redis, self.ops = redis, []  # type: ignore[var-annotated]

    def incr(self, key: str) -> None:
        self.ops.append(("incr", key))

    def expire(self, key: str, seconds: int) -> None:
        self.ops.append(("expire", key, seconds))

    async def execute(self) -> list[Any]:
        if self.redis.broken:
            raise ConnectionError("down")
        out: list[Any] = []
        for op in self.ops:
            if op[0] == "incr":
                self.redis.data[op[1]] = self.redis.data.get(op[1], 0) + 1
                out.append(self.redis.data[op[1]])
            else:
                self.redis.ttl[op[1]] = op[2]
                out.append(True)
        return out


def _limit(redis: FakeRedis, now: list[float]) -> AuthFailureLimit:
    return AuthFailureLimit(redis, "unit-test-secret-key-of-at-least-32-chars", 20, 60,
                            clock=lambda: now[0])


def test_worked_example_limit_20_per_60_s() -> None:
    redis, now = FakeRedis(), [0.0]
    limit = _limit(redis, now)

    async def run() -> None:
        for t in range(20):  # failures at t = 0..19 s fill window 0
            now[0] = float(t)
            assert await limit.retry_after("203.0.113.9") is None
            await limit.failed("203.0.113.9")
        now[0] = 25.0
        assert await limit.retry_after("203.0.113.9") == 35
        assert await limit.retry_after("203.0.113.10") is None  # another client
        now[0] = 59.5
        assert await limit.retry_after("203.0.113.9") == 1  # never 0
        now[0] = 60.0  # a new window
        assert await limit.retry_after("203.0.113.9") is None

    asyncio.run(run())
    [(key, count)] = redis.data.items()
    assert count == 20 and key.startswith("tt:rl:authfail:") and key.endswith(":0")
    assert "203.0.113.9" not in key and len(key.split(":")[3]) == 32
    assert redis.ttl[key] == 120  # two windows


def test_an_ipv6_client_is_counted_by_its_64() -> None:
    limit = _limit(FakeRedis(), [0.0])
    assert limit.key("2001:db8:1:2::1", 0) == limit.key("2001:db8:1:2:ffff::9", 0)
    assert limit.key("2001:db8:1:2::1", 0) != limit.key("2001:db8:1:3::1", 0)


def test_without_redis_the_check_fails_open_and_is_counted() -> None:
    limit = _limit(FakeRedis(broken=True), [0.0])
    before = RATE_LIMIT_FAIL_OPEN.labels("auth")._value.get()

    async def run() -> None:
        await limit.failed("203.0.113.9")
        assert await limit.retry_after("203.0.113.9") is None

    asyncio.run(run())
    assert RATE_LIMIT_FAIL_OPEN.labels("auth")._value.get() == before + 2
