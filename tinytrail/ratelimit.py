"""Fixed-window rate limiting in Redis, shared by the collector (per client IP), the API
(per API key) and the API's failed-authentication limit (per client IP).

Clients are keyed by `client_bucket(ip)`: an IPv4 address as is, an IPv6 address by
its /64 (one subscriber usually gets a whole /64, so per-address keys would give one
client 2^64 identities), IPv4-mapped IPv6 (`::ffff:198.51.100.7`) as the IPv4 address.

One pipelined round trip per request: INCR the window's counter and set its TTL to
two windows. Worked example, limit 10 per 10 s: at t = 1,234.5 s the window is
floor(1234.5 / 10) = 123 (t in [1230, 1240)), key `tt:rl:<scope>:<id>:123`; this hit
sets its TTL to 20 s (expiry at 1,254.5 s), and every later hit in the window pushes
that on, so the key is gone at most 20 s after the window ends (by 1,260 s). The 11th
request in that window is refused with Retry-After = ceil(10 * 124 - 1234.5) = 6 s.
If Redis cannot answer, the limiter fails open (the request is allowed) and counts
that in a metric: ingestion never stops because Redis is down.

`FixedWindowLimiter` is the one core: window number, key, INCR + EXPIRE, Retry-After
and fail-open. `hit` counts a request; `peek` reads the counter and says what the next
hit would get without counting it (api/authlimit.py counts failures with `hit` and
checks with `peek`); collector/ratelimit.py batches the round trips of `hit`.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import redis.asyncio as aioredis
from prometheus_client import Counter

log = logging.getLogger("tinytrail.ratelimit")

RATE_LIMIT_FAIL_OPEN = Counter(
    "tinytrail_ratelimit_fail_open_total",
    "Requests allowed without a rate-limit check because Redis did not answer",
    ["scope"],
)


@lru_cache(maxsize=65536)
def client_bucket(ip: str) -> str:
    """The rate-limit identity of a client address (a string from `client_ip` or
    Tornado's `remote_ip`): `"203.0.113.9"` → itself, `"2001:db8:1:2:3:4:5:6"` →
    `"2001:db8:1:2::/64"`, `"::ffff:203.0.113.9"` → `"203.0.113.9"`. Anything that is
    not an address comes back unchanged. Never raises."""
    if ":" not in ip:  # IPv4 (the common case): no parsing
        return ip
    try:
        addr = ipaddress.IPv6Address(ip.strip("[]").split("%", 1)[0])
    except ValueError:
        return ip
    if addr.ipv4_mapped is not None:
        return str(addr.ipv4_mapped)
    return str(ipaddress.IPv6Network((addr, 64), strict=False))


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    remaining: int
    retry_after: int  # seconds; 0 when allowed
    checked: bool = True  # False when Redis failed and we failed open


class FixedWindowLimiter:
    """At most `limit` hits per identity in each fixed window of `window_seconds`."""

    def __init__(
        self,
        redis: aioredis.Redis,
        scope: str,
        limit: int,
        window_seconds: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis, self.scope, self.limit, self.window = redis, scope, limit, window_seconds
        self.clock = clock

    def window_at(self, now: float) -> int:
        """The number of the window holding `now`: `floor(now / window_seconds)`."""
        return int(now // self.window)

    def key(self, identity: str, window: int) -> str:
        """The Redis counter of `identity` in window number `window` (`window_at`)."""
        return f"tt:rl:{self.scope}:{identity}:{window}"

    def verdict(self, count: int, window: int, now: float) -> Verdict:
        """The answer for the `count`-th request of window number `window` at `now`."""
        if count > self.limit:
            retry = max(1, math.ceil(self.window * (window + 1) - now))
            return Verdict(False, 0, retry)
        return Verdict(True, self.limit - count, 0)

    def fail_open(self, exc: BaseException) -> Verdict:
        """Redis down or slow: allow, count and log it."""
        RATE_LIMIT_FAIL_OPEN.labels(self.scope).inc()
        log.warning("rate limiter %s failing open: %s", self.scope, type(exc).__name__)
        return Verdict(True, self.limit, 0, checked=False)

    async def hit(self, identity: str) -> Verdict:
        """Count one request of `identity`; one pipelined round trip (INCR, EXPIRE of two
        windows)."""
        now = self.clock()
        window = self.window_at(now)
        key = self.key(identity, window)
        try:
            pipe = self.redis.pipeline(transaction=False)
            pipe.incr(key)
            pipe.expire(key, self.window * 2)
            count, _ = await pipe.execute()
        except Exception as exc:  # Redis down or slow: fail open
            return self.fail_open(exc)
        return self.verdict(int(count), window, now)

    async def peek(self, identity: str) -> Verdict:
        """The verdict `identity`'s next hit would get, without counting it: refused once
        the window already holds `limit` hits. One GET; fails open like `hit`."""
        now = self.clock()
        window = self.window_at(now)
        try:
            count = await self.redis.get(self.key(identity, window))
        except Exception as exc:  # Redis down or slow: fail open
            return self.fail_open(exc)
        return self.verdict(int(count or 0) + 1, window, now)
