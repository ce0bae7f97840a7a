"""The collector's website cache: `Website` (id, domain, excluded IPs) over the one core
of `tinytrail/websites.py` (refresh, re-check of a miss, negative cache, metrics with
`process="collector"`).

What the collector adds: a refresh loop every `website_refresh_interval` (≤ 5 s, so a
changed or deleted website takes effect within that time; a failed refresh keeps the
last copy), a `lookup_timeout` on each query, and `LookupUnavailable` when Postgres
cannot say whether a website exists: the handler answers 503 with Retry-After rather
than 204, since the event may belong to a website created a moment ago. An id the copy
lacks is looked up before any 204 (concurrent misses share one query) and, when absent,
remembered as unknown for `negative_seconds` (the core's worked example).
"""

from __future__ import annotations

import contextlib
import ipaddress
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from collector.clientip import Network
from collector.periodic import Periodic
from tinytrail.db import Pool
from tinytrail.netaddr import parse_entry, unmap_address
from tinytrail.websites import WebsiteCache

COLUMNS = ("domain", "excluded_ips")
# Unknown ids remembered at most (the core drops the expired ones, then the oldest).
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


def website_of(row: dict[str, Any]) -> Website:
    """The `Website` of a row of `COLUMNS` (and its text `id`)."""
    return Website(row["id"], row["domain"], parse_excluded(row.get("excluded_ips")))


class CollectorWebsites(WebsiteCache[Website]):
    """The core cache of `Website`s, refreshed by a background loop (`start`/`stop`);
    `lookup` raises `LookupUnavailable` when Postgres does not answer in
    `lookup_timeout` seconds."""

    def __init__(self, pool: Pool, refresh_seconds: float,
                 negative_seconds: float = 1.0, lookup_timeout: float = 2.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(pool, process="collector", columns=COLUMNS, build=website_of,
                         refresh_seconds=refresh_seconds, negative_seconds=negative_seconds,
                         negative_max=MAX_NEGATIVE, query_timeout=lookup_timeout, clock=clock)
        self._loop = Periodic("website-refresh", refresh_seconds, self.refresh_or_keep)

    async def lookup(self, website_id: str) -> Website | None:
        """The website, or None when it does not exist (remembered for
        `negative_seconds`). `website_id`: canonical UUID string. Raises
        `LookupUnavailable` when Postgres does not answer (the core logs and counts it)."""
        try:
            return await super().lookup(website_id)
        except Exception as exc:
            raise LookupUnavailable(type(exc).__name__) from None

    async def start(self) -> None:
        await self.refresh_or_keep()
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()
