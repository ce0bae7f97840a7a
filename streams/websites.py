"""In-memory cache of website settings, refreshed from Postgres every few seconds.

Enrichment looks websites up through it (`get`), so the steps stay pure. Before a
batch is enriched, the website ids the cache does not know are looked up in Postgres
(`recheck`, one query per batch), so a website is collectable from the moment its 201
is sent (docs/RULES.md: "A website is collectable from the moment its 201 is sent"). An id
Postgres does not know either is remembered for `negative_ttl` seconds (a bounded
negative cache: a stream of events for an unknown id costs one query per `negative_ttl`,
not one per batch); only then are its events dropped as `unknown_website`.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable

from prometheus_client import Counter

from streams.enrich.website import WebsiteInfo
from tinytrail.db import Pool

log = logging.getLogger("tinytrail.streams.websites")


_CANONICAL = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
NEGATIVE_MAX = 10_000  # unknown ids remembered at most (cleared when full)
RECHECKS = Counter("tinytrail_worker_website_rechecks_total",
                   "Website ids missing from the cache looked up in Postgres", ["found"])


class WebsiteCache:
    """Website id -> `WebsiteInfo`, refreshed whole every `max_age` seconds; misses are
    re-checked in Postgres (`recheck`) with a negative cache of `negative_ttl` seconds."""

    def __init__(self, pool: Pool, max_age: float = 5.0,
                 negative_ttl: float = 2.0) -> None:
        self._pool = pool
        self._max_age = max_age
        self._negative_ttl = negative_ttl
        self._sites: dict[str, WebsiteInfo] = {}
        self._unknown: dict[str, float] = {}  # id -> monotonic time it may be asked again
        self._loaded_at = float("-inf")

    def get(self, website_id: str) -> WebsiteInfo | None:
        return self._sites.get(website_id)

    def __len__(self) -> int:
        return len(self._sites)

    async def refresh(self) -> None:
        """Reload every website (raises what the pool raises)."""
        async with self._pool.connection() as conn:
            cur = await conn.execute("SELECT id, domain, content_groups FROM websites")
            rows = await cur.fetchall()
        self._sites = {
            str(r["id"]): WebsiteInfo.from_row(str(r["id"]), r["domain"], r["content_groups"])
            for r in rows
        }
        self._loaded_at = time.monotonic()

    async def recheck(self, ids: Iterable[str]) -> None:
        """Look the ids of `ids` that the cache lacks up in Postgres (one query), unless
        one was found unknown less than `negative_ttl` seconds ago; found websites join
        the cache. Raises what the pool raises (the caller retries transient errors: an
        event is never dropped as unknown because Postgres could not be asked)."""
        now = time.monotonic()
        # Cache keys are canonical (lower-case, hyphenated): any other spelling never matches.
        missing = [i for i in ids if i not in self._sites and self._unknown.get(i, 0.0) <= now
                   and _CANONICAL.fullmatch(i)]
        if not missing:
            return
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "SELECT id, domain, content_groups FROM websites WHERE id = ANY(%s::uuid[])",
                (missing,),
            )
            rows = await cur.fetchall()
        for r in rows:
            sid = str(r["id"])
            self._sites[sid] = WebsiteInfo.from_row(sid, r["domain"], r["content_groups"])
        found = {str(r["id"]) for r in rows}
        RECHECKS.labels("yes").inc(len(found))
        RECHECKS.labels("no").inc(len(missing) - len(found))
        if len(self._unknown) >= NEGATIVE_MAX:
            self._unknown.clear()
        for i in missing:
            if i not in found:
                self._unknown[i] = now + self._negative_ttl

    async def maybe_refresh(self) -> None:
        """Refresh when older than `max_age` seconds (called once per batch)."""
        if time.monotonic() - self._loaded_at >= self._max_age:
            try:
                await self.refresh()
            except Exception:
                if not self._sites:
                    raise
                log.exception("website refresh failed; keeping the previous settings")
