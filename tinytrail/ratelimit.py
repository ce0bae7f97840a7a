"""Fixed-window rate limiting in Redis, shared by the collector (per client IP) and
the API (per API key).

One pipelined round trip per request: INCR the window's counter and set its TTL.
Worked example, limit 10 per 10 s: at t = 1,234.5 s the window is
floor(1234.5 / 10) = 123, key `tt:rl:<scope>:<id>:123`, which expires 10 s after the
window ends; the 11th request in that window is refused with Retry-After =
ceil(10 * 124 - 1234.5) = 6 s. If Redis cannot answer, the limiter fails open
(the request is allowed) and counts that in a metric: ingestion never stops
because Redis is down.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis.asyncio as aioredis
from prometheus_client import Counter

log = logging.getLogger("tinytrail.ratelimit")

RATE_LIMIT_FAIL_OPEN = Counter(
    "tinytrail_ratelimit_fail_open_total",
    "Requests allowed without a rate-limit check because Redis did not answer",
    ["scope"],
)


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

    async def hit(self, identity: str) -> Verdict:
        now = self.clock()
        window = int(now // self.window)
        key = f"tt:rl:{self.scope}:{identity}:{window}"
        try:
            pipe = self.redis.pipeline(transaction=False)
            pipe.incr(key)
            pipe.expire(key, self.window * 2)
            count, _ = await pipe.execute()
        except Exception as exc:  # Redis down or slow: fail open
            RATE_LIMIT_FAIL_OPEN.labels(self.scope).inc()
            log.warning("rate limiter failing open: %s", type(exc).__name__)
            return Verdict(True, self.limit, 0, checked=False)
        count = int(count)
        if count > self.limit:
            retry = max(1, math.ceil(self.window * (window + 1) - now))
            return Verdict(False, 0, retry)
        return Verdict(True, self.limit - count, 0)
