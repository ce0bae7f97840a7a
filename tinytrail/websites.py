"""The one in-memory copy of the `websites` table, as the collector and the worker hold it.

Each process keeps website id -> its own value (the collector: `collector.websites.Website`,
with the excluded IPs; the worker: `streams.enrich.website.WebsiteInfo`, with the content
groups), built by a `build(row)` function from the columns it selects. This module does the
rest, the same for both:

* **Whole refresh.** `refresh()` replaces the copy with every row (one query); a failure
  keeps the last copy, is counted and raised. `refresh_or_keep()` never raises (the
  collector's loop); `maybe_refresh()` refreshes when the copy is older than
  `refresh_seconds` and raises only while the copy is empty (the worker, once per batch).
* **Re-check of missing ids.** A website is collectable from the moment its 201 is sent
  (docs/RULES.md), so ids the copy lacks are looked up in Postgres before anything is
  refused as unknown: `recheck(ids)` asks for all of them in one query; found, they join
  the copy. `lookup(id)` is the batch of one. Ids already being asked (by any caller) are
  not asked again: callers wait for the query in flight, which runs as its own task, so
  a caller that is cancelled never strands the others. Postgres errors are raised (the
  worker retries the batch; the collector answers 503).
* **Negative cache.** An id Postgres does not know is remembered for `negative_seconds`
  (a flood of one unknown id costs one query per that time), at most `negative_max` of
  them. The TTL is the same for all, so insertion order is expiry order: when full, the
  expired entries go from the front, then the oldest. Worked example, TTL 1 s: an id
  absent at t = 0 is unknown until t = 1; the website is created at t = 0.5; asked at
  t = 0.8 it is still unknown, at t = 1.0 Postgres is asked again and finds it. So the
  cache delays a website only when events came for its id before it existed, which a
  fresh random id never has.
* **Canonical ids only.** Keys are canonical UUIDs (lower case, hyphenated); another
  spelling never matches and is never sent to Postgres (its `::uuid` cast could fail).
* **Metrics** labelled by `process`: cache size, refresh failures and misses by what
  the re-check found (found | unknown | negative_cached | unavailable).
* **Clock** injectable (monotonic seconds): the negative cache and the refresh age.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Generic, TypeVar

from prometheus_client import Counter, Gauge
from psycopg import sql

from tinytrail.db import Pool
from tinytrail.ids import canonical_uuid

log = logging.getLogger("tinytrail.websites")

V = TypeVar("V")

SIZE = Gauge("tinytrail_website_cache_size", "Websites in the process's cache", ["process"])
REFRESH_FAILURES = Counter(
    "tinytrail_website_cache_refresh_failures_total",
    "Website cache refreshes that failed (the last copy kept serving)",
    ["process"],
)
MISSES = Counter(
    "tinytrail_website_cache_misses_total",
    "Website ids not in the cache, by what the re-check found",
    ["process", "result"],  # found | unknown | negative_cached | unavailable
)
RESULTS = ("found", "unknown", "negative_cached", "unavailable")
NEGATIVE_MAX = 10_000  # unknown ids remembered at most, by default


class WebsiteCache(Generic[V]):
    """Website id -> `V` (`build(row)` of the row's `id` and `columns`); see the module doc.
    `query_timeout` (seconds, None: the pool's) bounds each query, pool wait included."""

    def __init__(self, pool: Pool, *, process: str, columns: Sequence[str],
                 build: Callable[[dict[str, Any]], V], refresh_seconds: float,
                 negative_seconds: float, negative_max: int = NEGATIVE_MAX,
                 query_timeout: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.pool, self.process, self.build = pool, process, build
        self.refresh_seconds, self.negative_seconds = refresh_seconds, negative_seconds
        self.negative_max, self.query_timeout, self.clock = negative_max, query_timeout, clock
        select = sql.SQL("SELECT id::text AS id, {} FROM websites").format(
            sql.SQL(", ").join(sql.Identifier(c) for c in columns))
        self._select_all = select
        self._select_some = sql.SQL("{} WHERE id = ANY(%s::uuid[])").format(select)
        self.sites: dict[str, V] = {}
        self.loaded_at = float("-inf")  # clock time of the last successful refresh
        self._unknown: dict[str, float] = {}  # id -> clock time it may be asked again
        self._pending: dict[str, asyncio.Task[dict[str, V]]] = {}  # id -> query in flight
        self._size = SIZE.labels(process)
        self._refresh_failures = REFRESH_FAILURES.labels(process)
        self._misses = {r: MISSES.labels(process, r) for r in RESULTS}

    def get(self, website_id: str) -> V | None:
        """The cached website (no I/O), or None: then `recheck` / `lookup`."""
        return self.sites.get(website_id)

    def __len__(self) -> int:
        return len(self.sites)

    @property
    def loaded(self) -> bool:
        """True once a whole refresh succeeded."""
        return self.loaded_at != float("-inf")

    async def refresh(self) -> None:
        """Replace the copy with every website. Raises what the pool raises (the last copy
        stays, the failure is counted)."""
        try:
            rows = await self._fetch(self._select_all, ())
        except Exception as exc:
            self._refresh_failures.inc()
            log.warning("%s: website refresh failed; keeping the last copy: %s",
                        self.process, type(exc).__name__)
            raise
        self.sites = {row["id"]: self.build(row) for row in rows}
        self.loaded_at = self.clock()
        self._size.set(len(self.sites))

    async def refresh_or_keep(self) -> bool:
        """`refresh`, but a failure only keeps the last copy (logged and counted); returns
        whether it refreshed. For a background loop, which must not die."""
        try:
            await self.refresh()
        except Exception:
            return False
        return True

    async def maybe_refresh(self) -> None:
        """Refresh when the copy is `refresh_seconds` old or more. A failure keeps the last
        copy, unless it is empty: then it raises (nothing could be enriched with it)."""
        if self.clock() - self.loaded_at < self.refresh_seconds:
            return
        try:
            await self.refresh()
        except Exception:
            if not self.sites:
                raise

    async def lookup(self, website_id: str) -> V | None:
        """The website (from the copy, else Postgres), or None when it does not exist:
        `recheck` of one id. Raises what the pool raises."""
        return (await self.recheck((website_id,))).get(website_id)

    async def recheck(self, ids: Iterable[str]) -> dict[str, V]:
        """The websites of `ids` that exist: from the copy, else from Postgres (one query
        for all the ids nobody is asking already), unless an id was found unknown less
        than `negative_seconds` ago. Found websites join the copy. Raises what the pool
        raises: an id must never be called unknown because Postgres could not be asked."""
        known: dict[str, V] = {}
        ask: list[str] = []
        waits: dict[asyncio.Task[dict[str, V]], list[str]] = {}
        now = self.clock()
        for i in dict.fromkeys(ids):  # unique, in order
            site = self.sites.get(i)
            if site is not None:
                known[i] = site
            elif canonical_uuid(i) != i:
                continue  # never a key; its `::uuid` cast could fail the query
            elif self._unknown.get(i, now) > now:
                self._misses["negative_cached"].inc()
            elif (task := self._pending.get(i)) is not None:
                waits.setdefault(task, []).append(i)
            else:
                self._unknown.pop(i, None)
                ask.append(i)
        if ask:
            task = asyncio.create_task(self._query(ask), name="website-recheck")
            task.add_done_callback(functools.partial(self._settled, ask))
            self._pending.update(dict.fromkeys(ask, task))
            waits[task] = ask
        for task, wanted in waits.items():
            found = await asyncio.shield(task)  # our cancellation leaves the query running
            known.update((i, found[i]) for i in wanted if i in found)
        return known

    async def _query(self, ask: list[str]) -> dict[str, V]:
        try:
            rows = await self._fetch(self._select_some, (ask,))
        except Exception as exc:
            self._misses["unavailable"].inc(len(ask))
            log.warning("%s: website re-check failed: %s", self.process, type(exc).__name__)
            raise
        found = {row["id"]: self.build(row) for row in rows}
        self.sites.update(found)
        self._size.set(len(self.sites))
        self._misses["found"].inc(len(found))
        self._misses["unknown"].inc(len(ask) - len(found))
        now = self.clock()
        for i in ask:
            if i not in found:
                self._remember_unknown(i, now)
        return found

    def _settled(self, ask: list[str], task: asyncio.Task[dict[str, V]]) -> None:
        for i in ask:
            if self._pending.get(i) is task:
                del self._pending[i]
        if not task.cancelled():
            task.exception()  # retrieved: no "never retrieved" warning when nobody waits

    def _remember_unknown(self, website_id: str, now: float) -> None:
        unknown = self._unknown
        unknown.pop(website_id, None)  # re-inserted last: insertion order = expiry order
        # The first entries expire first: drop the expired ones, then, if still full,
        # the oldest (amortised O(1) per insert).
        while unknown:
            oldest = next(iter(unknown))
            if unknown[oldest] > now and len(unknown) < self.negative_max:
                break
            del unknown[oldest]
        unknown[website_id] = now + self.negative_seconds

    async def _fetch(self, query: sql.Composed, params: tuple[Any, ...]) -> list[dict[str, Any]]:
        async with asyncio.timeout(self.query_timeout):
            async with self.pool.connection(timeout=self.query_timeout) as conn:
                cur = await conn.execute(query, params)
                return await cur.fetchall()
