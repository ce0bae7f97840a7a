"""The collect rate limit: `tinytrail.ratelimit.FixedWindowLimiter`, coalesced.

Same keys, windows, Retry-After and fail-open rule as the shared limiter (see its
docstring for the worked example), but requests share Redis round trips:

- At most one round trip is in flight. Requests that arrive meanwhile queue, and
  the next round trip carries all of them (up to `MAX_BATCH`), so under load the
  batches grow by themselves and with one request at a time nothing waits extra.
- A round trip is one `EVALSHA` of a small Lua script that does INCR + EXPIRE for
  every key of the batch and returns the counts: one command to encode and parse
  instead of two per request, and atomic per key as the pipeline was.

If Redis fails, the batch in flight and everything queued behind it fail open at
once (counted), so an outage costs each request at most one socket timeout.
The script's keys may hash to different slots: this needs a single Redis (or a
primary with replicas), not Redis Cluster.
"""

from __future__ import annotations

import asyncio
import logging

import redis.asyncio as aioredis

from tinytrail.ratelimit import FixedWindowLimiter, Verdict

log = logging.getLogger("collector.ratelimit")

MAX_BATCH = 512

# KEYS: the window counters; ARGV[1]: their TTL. Returns the counts in KEYS order.
INCR_ALL = """
local out = {}
for i, key in ipairs(KEYS) do
  out[i] = redis.call('INCR', key)
  redis.call('EXPIRE', key, ARGV[1])
end
return out
"""


class CoalescingLimiter(FixedWindowLimiter):
    def __init__(self, redis: aioredis.Redis, scope: str, limit: int, window_seconds: int,
                 **kwargs: object) -> None:
        super().__init__(redis, scope, limit, window_seconds, **kwargs)  # type: ignore[arg-type]
        self._pending: list[tuple[str, asyncio.Future[int]]] = []
        self._busy = False
        self._script = redis.register_script(INCR_ALL)

    async def hit(self, identity: str) -> Verdict:
        now = self.clock()
        window = self.window_at(now)
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._pending.append((self.key(identity, window), fut))
        if not self._busy:
            self._busy = True
            asyncio.ensure_future(self._drain())
        try:
            count = await fut
        except Exception as exc:  # Redis down or slow: fail open
            return self.fail_open(exc)
        return self.verdict(count, window, now)

    async def _drain(self) -> None:
        """Round trips, one at a time, until no request is waiting."""
        try:
            await asyncio.sleep(0)  # let this loop turn's other requests join the first batch
            while self._pending:
                batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
                try:
                    counts = await self._script(keys=[k for k, _ in batch],
                                                args=[self.window * 2])
                    if not isinstance(counts, list) or len(counts) != len(batch):
                        raise RuntimeError("unexpected reply from the rate-limit script")
                except Exception as exc:
                    batch, self._pending = batch + self._pending, []
                    for _, fut in batch:
                        if not fut.done():
                            fut.set_exception(exc)
                    continue
                for (_, fut), count in zip(batch, counts, strict=True):
                    if not fut.done():
                        fut.set_result(int(count))
        finally:
            self._busy = False
