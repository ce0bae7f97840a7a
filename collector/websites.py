"""In-memory copy of the `websites` table, refreshed by polling, re-checked on a miss.

One query loads every website's id, domain and excluded IPs every
`website_refresh_seconds` (≤ 5 s), so a changed or deleted website takes effect
within that time. If Postgres does not answer, the last good copy keeps serving and
a metric counts the failure.

A website is collectable from the moment its 201 is sent (docs/RULES.md), so an id the
copy does not hold is looked up in Postgres (`lookup`) before the collector answers
204: found, it joins the copy at once; absent, the id is remembered as unknown for
`negative_seconds` (a short negative cache, so that a flood of one unknown id costs
one query per that time). Concurrent misses for one id share one query. When
Postgres cannot answer, `lookup` raises `LookupUnavailable` (the handler answers
503 with Retry-After: the event may belong to a website created a moment ago).
Worked example, negative cache 1 s: an event for id X at t = 0 finds no row → 204,
X unknown until t = 1; the website X is created at t = 0.5 (201); an event at
t = 0.8 still gets 204, one at t = 1.0 or later queries again and gets 202. The
website is thus collectable within `negative_seconds` of its 201 only when someone
sent events for its id before it existed, which a fresh random id never has.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter, Gauge

from collector.clientip import Network
from collector.periodic import Periodic
from tinytrail.db import Pool
from tinytrail.netaddr import parse_entry, unmap_address

log = logging.getLogger("collector.websites")

REFRESH_FAILURES = Counter(
    "tinytrail_collector_website_refresh_failures_total",
    "Website cache refreshes that failed (the last good copy kept serving)",
)
WEBSITES = Gauge("tinytrail_collector_websites", "Websites in the collector's cache")
MISSES = Counter(
    "tinytrail_collector_website_misses_total",
    "Website ids not in the cache, by what the re-check found",
    ["result"],  # found | unknown | negative_cached | unavailable
)

QUERY = "SELECT id::text AS id, domain, excluded_ips FROM websites"
ONE = "SELECT id::text AS id, domain, excluded_ips FROM websites WHERE id = %s"
# Unknown ids remembered at most; past this the expired ones go, then all of them.
MAX_NEGATIVE = 100_000


class LookupUnavailable(Exception):
    """Postgres could not say whether a website exists (answer 503, not 204)."""


@dataclass(frozen=True, slots=True)
class Website:
    id: str
    domain: str
    excluded: tuple[Network, ...] = ()

    def is_excluded(self, ip: str) -> bool:
        """True when `ip` is one of the website's excluded addresses or ranges."""
        if not self.excluded:
            return False
        try:
            addr = unmap_address(ipaddress.ip_address(ip))
        except ValueError:
            return False
        return any(addr.version == net.version and addr in net for net in self.excluded)


def parse_excluded(values: Any) -> tuple[Network, ...]:
    """Excluded IPs/CIDRs from the jsonb column, in canonical form (IPv4-mapped IPv6 as
    IPv4, for rows saved before the API normalised them); entries that do not parse are
    skipped (the API refuses them on save, so only hand-edited rows can hold them)."""
    if not isinstance(values, list):
        return ()
    nets: list[Network] = []
    for item in values:
        if isinstance(item, str):
            with contextlib.suppress(ValueError):
                nets.append(parse_entry(item))
    return tuple(nets)


def build(rows: Iterable[dict[str, Any]]) -> dict[str, Website]:
    return {
        r["id"]: Website(r["id"], r["domain"], parse_excluded(r.get("excluded_ips")))
        for r in rows
    }


class WebsiteCache:
    def __init__(self, pool: Pool, refresh_seconds: float,
                 negative_seconds: float = 1.0, lookup_timeout: float = 2.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.pool, self.refresh_seconds = pool, refresh_seconds
        self.negative_seconds, self.lookup_timeout = negative_seconds, lookup_timeout
        self.clock = clock
        self.sites: dict[str, Website] = {}
        self.loaded = False
        self._unknown: dict[str, float] = {}  # website id -> monotonic time it expires
        self._pending: dict[str, asyncio.Future[Website | None]] = {}
        self._loop = Periodic("website-refresh", refresh_seconds, self.refresh)

    def get(self, website_id: str) -> Website | None:
        """The cached website (no I/O), or None: then call `lookup`."""
        return self.sites.get(website_id)

    async def lookup(self, website_id: str) -> Website | None:
        """The website from Postgres when the copy does not hold it; None when it does
        not exist (remembered for `negative_seconds`). `website_id`: canonical UUID
        string. Raises `LookupUnavailable` when Postgres does not answer in
        `lookup_timeout` seconds."""
        site = self.sites.get(website_id)
        if site is not None:
            return site
        expires = self._unknown.get(website_id)
        if expires is not None:
            if self.clock() < expires:
                MISSES.labels("negative_cached").inc()
                return None
            del self._unknown[website_id]
        pending = self._pending.get(website_id)
        if pending is not None:
            return await asyncio.shield(pending)
        fut: asyncio.Future[Website | None] = asyncio.get_running_loop().create_future()
        self._pending[website_id] = fut
        try:
            site = await self._query(website_id)
        except LookupUnavailable as exc:
            fut.set_exception(exc)
            fut.exception()  # retrieved: no "never retrieved" warning when nobody waits
            raise
        finally:
            self._pending.pop(website_id, None)
        fut.set_result(site)
        return site

    async def _query(self, website_id: str) -> Website | None:
        try:
            async with asyncio.timeout(self.lookup_timeout):
                async with self.pool.connection(timeout=self.lookup_timeout) as conn:
                    cur = await conn.execute(ONE, (website_id,))
                    row = await cur.fetchone()  # a dict: the pool's row factory
        except Exception as exc:
            MISSES.labels("unavailable").inc()
            log.warning("website lookup failed: %s", type(exc).__name__)
            raise LookupUnavailable(type(exc).__name__) from None
        if row is None:
            MISSES.labels("unknown").inc()
            self._remember_unknown(website_id)
            return None
        MISSES.labels("found").inc()
        site = Website(row["id"], row["domain"], parse_excluded(row.get("excluded_ips")))
        # A copy (not in place): a refresh running now replaces the dict wholesale.
        self.sites = {**self.sites, site.id: site}
        WEBSITES.set(len(self.sites))
        return site

    def _remember_unknown(self, website_id: str) -> None:
        now = self.clock()
        if len(self._unknown) >= MAX_NEGATIVE:
            self._unknown = {k: t for k, t in self._unknown.items() if t > now}
            if len(self._unknown) >= MAX_NEGATIVE:
                self._unknown.clear()
        self._unknown[website_id] = now + self.negative_seconds

    async def refresh(self) -> bool:
        try:
            async with self.pool.connection(timeout=self.refresh_seconds) as conn:
                cur = await conn.execute(QUERY)
                rows = await cur.fetchall()
        except Exception as exc:
            REFRESH_FAILURES.inc()
            log.warning("website refresh failed; keeping the last copy: %s", type(exc).__name__)
            return False
        self.sites = build(rows)
        self.loaded = True
        WEBSITES.set(len(self.sites))
        return True

    async def start(self) -> None:
        await self.refresh()
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()
