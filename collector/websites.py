"""In-memory copy of the `websites` table, refreshed by polling.

One query loads every website's id, domain and excluded IPs every
`website_refresh_seconds` (≤ 5 s), so a new, changed or deleted website takes
effect within that time and no request ever queries the database. If Postgres
does not answer, the last good copy keeps serving and a metric counts the
failure.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter, Gauge
from psycopg_pool import AsyncConnectionPool

from collector.clientip import Network
from collector.periodic import Periodic
from tinytrail.netaddr import parse_entry, unmap_address

log = logging.getLogger("collector.websites")

REFRESH_FAILURES = Counter(
    "tinytrail_collector_website_refresh_failures_total",
    "Website cache refreshes that failed (the last good copy kept serving)",
)
WEBSITES = Gauge("tinytrail_collector_websites", "Websites in the collector's cache")

QUERY = "SELECT id::text AS id, domain, excluded_ips FROM websites"


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
    def __init__(self, pool: AsyncConnectionPool, refresh_seconds: float) -> None:
        self.pool, self.refresh_seconds = pool, refresh_seconds
        self.sites: dict[str, Website] = {}
        self.loaded = False
        self._loop = Periodic("website-refresh", refresh_seconds, self.refresh)

    def get(self, website_id: str) -> Website | None:
        return self.sites.get(website_id)

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
