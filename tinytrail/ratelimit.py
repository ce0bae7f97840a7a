"""Fixed-window rate limiting in Redis, shared by the collector (per client IP), the API
(per API key) and the API's failed-authentication limit (per client IP).

Clients are keyed by `client_bucket(ip)`: an IPv4 address as is, an IPv6 address by
its /64 (one subscriber usually gets a whole /64, so per-address keys would give one
client 2^64 identities), IPv4-mapped IPv6 (`::ffff:198.51.100.7`) as the IPv4 address.

One pipelined round trip per request: INCR the window's counter and set its TTL.
Worked example, limit 10 per 10 s: at t = 1,234.5 s the window is
floor(1234.5 / 10) = 123, key `tt:rl:<scope>:<id>:123`, which expires 10 s after the
window ends; the 11th request in that window is refused with Retry-After =
ceil(10 * 124 - 1234.5) = 6 s. If Redis cannot answer, the limiter fails open
(the request is allowed) and counts that in a metric: ingestion never stops
because Redis is down.
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

    def key(self, identity: str, window: int) -> str:
        """The Redis counter of `identity` in window number `window` (`now // window`)."""
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
        log.warning("rate limiter failing open: %s", type(exc).__name__)
        return Verdict(True, self.limit, 0, checked=False)

    async def hit(self, identity: str) -> Verdict:
        """Count one request of `identity`; one pipelined round trip (INCR, EXPIRE)."""
        now = self.clock()
        window = int(now // self.window)
        key = self.key(identity, window)
        try:
            pipe = self.redis.pipeline(transaction=False)
            pipe.incr(key)
            pipe.expire(key, self.window * 2)
            count, _ = await pipe.execute()
        except Exception as exc:  # Redis down or slow: fail open
            return self.fail_open(exc)
        return self.verdict(int(count), window, now)
