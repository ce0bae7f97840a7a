"""What every collector handler receives through `initialize(deps=...)` (like
api/deps.py); built by `collector.app.start_deps`."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

import redis.asyncio as aioredis

from collector.clientip import Network
from collector.publisher import Publisher
from collector.salt import DailySalt
from collector.settings import CollectorSettings
from collector.websites import CollectorWebsites
from tinytrail.db import Pool, db_alive
from tinytrail.ratelimit import FixedWindowLimiter


@dataclass
class CollectorDeps:
    """What every collector handler receives through `initialize(deps=...)`: settings,
    Postgres pool, Redis, website cache, daily salt, rate limiter, the Kafka publisher,
    trusted proxy networks, the country lookup and the count of requests in flight."""

    settings: CollectorSettings
    pool: Pool
    redis: aioredis.Redis
    websites: CollectorWebsites
    salts: DailySalt
    limiter: FixedWindowLimiter
    publisher: Publisher
    trusted: tuple[Network, ...] = field(default=())
    active: int = 0  # collect requests being handled (shutdown waits for them)
    # client address -> ISO 3166-1 alpha-2 code or None (collector/country.py, cached)
    country_of: Callable[[str], str | None] = field(default=lambda ip: None)

    async def probe(self) -> tuple[bool, bool, bool]:
        """(db, kafka, redis) reachability for /health, each bounded by a timeout."""

        async def kafka() -> bool:
            try:
                # The publisher's producer: it replaces a broken one (publisher.py).
                producer = self.publisher.producer
                await asyncio.wait_for(producer.client.fetch_all_metadata(), 2.0)
                return True
            except Exception:
                return False

        async def redis() -> bool:
            try:
                return bool(await asyncio.wait_for(self.redis.ping(), 1.0))
            except Exception:
                return False

        db, k, r = await asyncio.gather(db_alive(self.pool, 2.0), kafka(), redis())
        return db, k, r
