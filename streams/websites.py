"""In-memory cache of website settings, refreshed from Postgres every few seconds.

Enrichment looks websites up through it (`get`), so the steps stay pure. A
website missing from the cache is unknown or deleted: its events are dropped.
"""

from __future__ import annotations

import logging
import time

from psycopg_pool import AsyncConnectionPool

from streams.enrich.website import WebsiteInfo

log = logging.getLogger("tinytrail.streams.websites")


class WebsiteCache:
    def __init__(self, pool: AsyncConnectionPool, max_age: float = 5.0) -> None:
        self._pool = pool
        self._max_age = max_age
        self._sites: dict[str, WebsiteInfo] = {}
        self._loaded_at = float("-inf")

    def get(self, website_id: str) -> WebsiteInfo | None:
        return self._sites.get(website_id)

    def __len__(self) -> int:
        return len(self._sites)

    async def refresh(self) -> None:
        async with self._pool.connection() as conn:
            cur = await conn.execute("SELECT id, domain, content_groups FROM websites")
            rows = await cur.fetchall()
        self._sites = {
            str(r["id"]): WebsiteInfo.from_row(str(r["id"]), r["domain"], r["content_groups"])
            for r in rows
        }
        self._loaded_at = time.monotonic()

    async def maybe_refresh(self) -> None:
        """Refresh when older than `max_age` seconds (called once per batch)."""
        if time.monotonic() - self._loaded_at >= self._max_age:
            try:
                await self.refresh()
            except Exception:
                if not self._sites:
                    raise
                log.exception("website refresh failed; keeping the previous settings")
