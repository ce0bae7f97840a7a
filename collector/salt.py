"""The daily salt behind visitor ids, shared by every collector replica through Redis.

One salt per UTC day: 32 random bytes under `tt:salt:YYYY-MM-DD`, created with
`SET NX EX 172800` (whoever comes first wins; everyone then reads the winner's
value), so the key disappears 48 h after creation and yesterday's visitor ids
can never be recomputed. Worked example: the first request at 2026-03-01T00:00:03Z
creates `tt:salt:2026-03-01`, which Redis deletes at 2026-03-03T00:00:03Z.

Each process caches the salt of the day. When Redis is down the cached salt keeps
serving; when no salt could ever be fetched for the current day (Redis down at
midnight or at start-up), the process falls back to a salt of its own for that
day, counts it in `tinytrail_collector_salt_fallback_total`, and tries Redis again
at most every `retry_seconds`. Visitor ids made with a fallback salt do not match
other replicas' ids (a visitor can be counted twice that day); that is the price
of never stopping ingestion.

Redis runs without persistence, so a Redis restart loses the key while every
replica still holds the day's salt in memory. Each process therefore re-asserts
its salt every `reassert_seconds` (`SET NX` with the key's original expiry, 48 h
after the start of the day), so a replica started after the restart reads the
same salt instead of creating a new one. If another process won the race with a
new salt, this one adopts it (counted in `tinytrail_collector_salt_replaced_total`):
replicas converge on one visitor id per visitor, at the cost of a split for the
traffic that came in between.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import secrets
import time
from collections.abc import Callable

import redis.asyncio as aioredis
from prometheus_client import Counter

from collector.periodic import Periodic
from tinytrail.days import date_ordinal, day_start

log = logging.getLogger("collector.salt")

SALT_BYTES = 32
SALT_TTL_SECONDS = 48 * 3600

SALT_FALLBACK = Counter(
    "tinytrail_collector_salt_fallback_total",
    "Times a process-local salt was used because Redis had no answer for the day",
)


SALT_REPLACED = Counter(
    "tinytrail_collector_salt_replaced_total",
    "Times Redis held a different salt for today than this process (after a Redis restart)",
)


def salt_key(day: dt.date) -> str:
    return f"tt:salt:{day.isoformat()}"


def utc_day(epoch_seconds: float) -> dt.date:
    return dt.datetime.fromtimestamp(epoch_seconds, dt.UTC).date()


def day_span(day: dt.date) -> tuple[float, float]:
    """(first second of the UTC `day`, first second of the next day), epoch seconds:
    2026-03-01 -> (1772323200.0, 1772409600.0)."""
    ordinal = date_ordinal(day)
    return day_start(ordinal).timestamp(), day_start(ordinal + 1).timestamp()


class DailySalt:
    def __init__(
        self,
        redis: aioredis.Redis,
        clock: Callable[[], float] = time.time,
        retry_seconds: float = 5.0,
        reassert_seconds: float = 10.0,
    ) -> None:
        self.redis, self.clock, self.retry_seconds = redis, clock, retry_seconds
        self._reasserter = Periodic("salt-reassert", reassert_seconds, self.reassert)
        self._shared: dict[dt.date, bytes] = {}
        self._local: dict[dt.date, bytes] = {}
        self._next_try = 0.0
        self._lock = asyncio.Lock()
        # (salt, first second of its UTC day, first second of the next): the request
        # path's check is one clock read and two comparisons, no date arithmetic.
        self._today: tuple[bytes, float, float] | None = None

    def cached(self) -> bytes | None:
        """Today's shared salt if this process already has it (no await), else None."""
        today = self._today
        if today is not None:
            now = self.clock()
            if today[1] <= now < today[2]:
                return today[0]
        return None

    def start(self) -> None:
        """Re-assert the cached salt in the background (see the module docstring)."""
        self._reasserter.start()

    async def stop(self) -> None:
        await self._reasserter.stop()

    async def reassert(self) -> None:
        """Put today's cached salt back if Redis lost it; adopt Redis's if it differs."""
        day = utc_day(self.clock())
        mine = self._shared.get(day)
        if mine is None:
            return
        start, end = day_span(day)
        key = salt_key(day)
        try:
            pipe = self.redis.pipeline(transaction=True)
            # Keep the original expiry: 48 h after the day began (relative to our clock).
            ttl = max(1, int(start + SALT_TTL_SECONDS - self.clock()))
            pipe.set(key, mine, nx=True, ex=ttl)
            pipe.get(key)
            _, value = await pipe.execute()
        except Exception as exc:
            log.debug("salt re-assert skipped: %s", type(exc).__name__)
            return
        if isinstance(value, bytes) and len(value) == SALT_BYTES and value != mine:
            SALT_REPLACED.inc()
            log.warning("redis holds another salt for today; adopting it")
            self._shared = {day: value}
            self._today = (value, start, end)

    def is_fallback(self) -> bool:
        return utc_day(self.clock()) not in self._shared

    async def get(self) -> bytes:
        """Today's salt: cached, else fetched or created in Redis, else process-local."""
        day = utc_day(self.clock())
        salt = self._shared.get(day)
        if salt is not None:
            return salt
        async with self._lock:  # one fetch for a burst of first requests
            salt = self._shared.get(day)
            if salt is not None:
                return salt
            if self.clock() >= self._next_try:
                salt = await self._fetch(day)
                if salt is not None:
                    self._shared = {day: salt}  # older days are no longer needed
                    self._local.pop(day, None)
                    self._today = (salt, *day_span(day))
                    return salt
                self._next_try = self.clock() + self.retry_seconds
            SALT_FALLBACK.inc()
            local = self._local.get(day)
            if local is None:
                self._local = {day: secrets.token_bytes(SALT_BYTES)}
                local = self._local[day]
            return local

    async def _fetch(self, day: dt.date) -> bytes | None:
        key = salt_key(day)
        try:
            pipe = self.redis.pipeline(transaction=True)
            pipe.set(key, secrets.token_bytes(SALT_BYTES), nx=True, ex=SALT_TTL_SECONDS)
            pipe.get(key)
            _, value = await pipe.execute()
        except Exception as exc:
            log.warning("cannot fetch the daily salt from redis: %s", type(exc).__name__)
            return None
        if not isinstance(value, bytes) or len(value) != SALT_BYTES:
            log.warning("daily salt in redis has an unexpected shape; ignoring it")
            return None
        return value
