"""Client address -> ISO 3166-1 alpha-2 country code, in the collector, before hashing.

The only place a client address meets the country database. Only the two-letter code
goes on (`RawEvent.country`); the address itself is hashed into the visitor id and
forgotten, as before (docs/RULES.md).

Data source: an offline MaxMind DB file (`collector/data/dbip-country.mmdb`, DB-IP's
"IP to Country Lite", CC BY 4.0, see `collector/data/README.md` and docs/COUNTRIES.md),
read with `maxminddb` (its C extension, memory-mapped). `TINYTRAIL_COUNTRY_DB` points at
a newer file; two record shapes are read: `{"country_code": "DE"}` (the bundled file)
and `{"country": {"iso_code": "DE"}}` (MaxMind GeoIP2/GeoLite2 and DB-IP's own
`dbip-country-lite-*.mmdb`).

Rules (tested in tests/collector/test_country.py):
  * the answer is a code of two upper-case ASCII letters, or None;
  * None for addresses that are not globally routable (private, loopback, link-local,
    documentation, reserved, shared 100.64/10, multicast, unspecified), for addresses
    the database does not list, and for anything that is not an address;
  * an IPv4-mapped IPv6 address (`::ffff:81.2.69.160`) is looked up as its IPv4 address;
  * `ZZ` (the "unknown" some databases use) counts as None.
Example: "81.2.69.160" -> "GB"; "2a00:1450:4001:80b::200e" -> "DE"; "10.0.0.1" -> None.

Lookups are cached (LRU, `CACHE_SIZE` addresses, in this process's memory only; never
written anywhere): measured on the shared 2-core machine, a hit costs ~0.25 us, a miss
~15 us (mostly `ipaddress`'s is_global check; the mmdb read is ~1 us), ~5 us for a private one.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import maxminddb

BUNDLED_DB = Path(__file__).parent / "data" / "dbip-country.mmdb"
CACHE_SIZE = 65_536
_CODE = re.compile(r"[A-Z]{2}")
# Public addresses the bundled database lists; a database that knows none of them is
# not an IP-to-country database (start-up refuses it).
_PROBES = ("8.8.8.8", "81.2.69.160", "193.99.144.80", "2a00:1450:4001:80b::200e")


class CountryDbError(ValueError):
    """The country database file is missing, unreadable or not a country database.
    Its message is one line naming the path and the reason."""


@dataclass(frozen=True)
class DbInfo:
    """What docs and logs say about the loaded database."""

    path: str
    database_type: str
    built: dt.date
    ip_version: int


def _code_of(record: object) -> str | None:
    """A database record -> its country code, for both record shapes (module doc)."""
    if not isinstance(record, dict):
        return None
    code = record.get("country_code")
    if code is None:
        country = record.get("country")
        if isinstance(country, dict):
            code = country.get("iso_code")
    if isinstance(code, str) and _CODE.fullmatch(code) and code != "ZZ":
        return code
    return None


_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


def _routable(ip: str) -> str | None:
    """The address to look up, or None when it is not a globally routable address (or not
    an address at all).

    IPv6 forms that carry an IPv4 address are looked up as that IPv4 address:
    IPv4-mapped (`::ffff:a.b.c.d`) and 6to4 (`2002:AABB:CCDD::/48`, RFC 3056; DB-IP lists
    the whole of 2002::/16 under one country, which would report every 6to4 visitor there).
    The deprecated IPv4-compatible form (`::a.b.c.d`, RFC 4291 section 2.5.5.1) is not
    routable on the Internet: None. Teredo and NAT64 addresses are not `is_global`: None.
    """
    try:
        addr: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(ip)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        elif addr.sixtofour is not None:
            addr = addr.sixtofour
        elif addr in _IPV4_COMPATIBLE:
            return None
    if not addr.is_global or addr.is_multicast:
        return None
    return str(addr)


class CountryLookup:
    """`lookup(ip) -> "DE" | None` over one open database, cached (module doc)."""

    def __init__(self, path: Path | str, cache_size: int = CACHE_SIZE) -> None:
        """Opens and checks the file; raises CountryDbError (one line) when it is missing,
        not a MaxMind DB, or lists none of the probe addresses."""
        self.path = str(path)
        try:
            self._reader = maxminddb.open_database(self.path)
        except FileNotFoundError:
            raise CountryDbError(f"country database not found: {self.path}") from None
        except (OSError, ValueError, maxminddb.InvalidDatabaseError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise CountryDbError(
                f"not a readable MaxMind DB country database: {self.path} ({reason})"
            ) from None
        meta = self._reader.metadata()
        self.info = DbInfo(self.path, str(meta.database_type),
                           dt.datetime.fromtimestamp(meta.build_epoch, dt.UTC).date(),
                           int(meta.ip_version))
        probes = _PROBES if meta.ip_version == 6 else _PROBES[:3]
        if not any(self._uncached(ip) for ip in probes):
            self._reader.close()
            raise CountryDbError(
                f"not an IP-to-country database (no country for any of {', '.join(probes)}):"
                f" {self.path}")
        self.lookup: Callable[[str], str | None] = lru_cache(maxsize=cache_size)(
            self._uncached)

    def _uncached(self, ip: str) -> str | None:
        target = _routable(ip)
        if target is None:
            return None
        try:
            return _code_of(self._reader.get(target))
        except ValueError:  # an IPv6 address in an IPv4-only database
            return None

    def close(self) -> None:
        self._reader.close()


@lru_cache(maxsize=4)
def open_country_db(path: str) -> CountryLookup:
    """One `CountryLookup` per path and process (settings validation and start-up share
    it). Raises CountryDbError."""
    return CountryLookup(path)
