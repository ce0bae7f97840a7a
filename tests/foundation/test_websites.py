"""The one website cache core (`tinytrail/websites.py`): the negative cache on an injected
clock, its bound, in-flight sharing of re-checks, refresh failures keeping the last copy,
canonical ids only. The unit tests give the core a stand-in pool (they test the cache,
not Postgres); the last test runs the core's SQL against the real Postgres."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest

from tinytrail.db import make_pool, open_pool
from tinytrail.settings import CoreSettings
from tinytrail.websites import MISSES, REFRESH_FAILURES, WebsiteCache


class Down(Exception):
    """The stand-in pool's 'Postgres is unreachable'."""


class Table:
    """A stand-in pool over an in-memory `websites` table. Records the ids each re-check
    asked for (`asked`) and the number of whole refreshes; `gate`, when set, holds every
    query until it is opened; `down` makes every connection fail."""

    def __init__(self, **rows: str) -> None:
        self.rows = dict(rows)  # id -> domain
        self.asked: list[list[str]] = []
        self.refreshes = 0
        self.down = False
        self.gate: asyncio.Event | None = None

    @contextlib.asynccontextmanager
    async def connection(self, timeout: float | None = None) -> AsyncIterator[Table]:
        if self.down:
            raise Down("no server")
        yield self

    async def execute(self, query: Any, params: tuple[Any, ...]) -> Table:
        if self.gate is not None:
            await self.gate.wait()
        if params:
            (ids,) = params
            self.asked.append(list(ids))
            self._result = [{"id": i, "domain": self.rows[i]} for i in ids if i in self.rows]
        else:
            self.refreshes += 1
            self._result = [{"id": i, "domain": d} for i, d in self.rows.items()]
        return self

    async def fetchall(self) -> list[dict[str, Any]]:
        return self._result


def ids(n: int) -> list[str]:
    return [str(uuid.uuid4()) for _ in range(n)]


def cache_over(table: Table, process: str, now: list[float] | None = None,
               **over: Any) -> WebsiteCache[str]:
    clock = (lambda: now[0]) if now is not None else (lambda: 0.0)
    values: dict[str, Any] = {"refresh_seconds": 5.0, "negative_seconds": 1.0, **over}
    return WebsiteCache(table, process=process, columns=("domain",),  # type: ignore[arg-type]
                        build=lambda row: str(row["domain"]), clock=clock, **values)


def misses(process: str, result: str) -> float:
    return float(MISSES.labels(process, result)._value.get())


async def test_negative_cache_expires_on_the_injected_clock() -> None:
    """The module's worked example: absent at t=0, created at t=0.5, still unknown at
    t=0.8 (TTL 1 s, no query), found at t=1.0 (asked again)."""
    (site,) = ids(1)
    table, now = Table(), [0.0]
    cache = cache_over(table, "unit-expiry", now)
    assert await cache.lookup(site) is None
    table.rows[site] = "new.example"
    now[0] = 0.8
    assert await cache.lookup(site) is None
    assert table.asked == [[site]]
    assert misses("unit-expiry", "negative_cached") == 1
    now[0] = 1.0
    assert await cache.lookup(site) == "new.example"
    assert table.asked == [[site], [site]]
    assert cache.get(site) == "new.example"  # it joined the copy
    assert (misses("unit-expiry", "unknown"), misses("unit-expiry", "found")) == (1, 1)


async def test_the_negative_cache_is_bounded_and_forgets_the_oldest_first() -> None:
    table, now = Table(), [0.0]
    cache = cache_over(table, "unit-bound", now, negative_seconds=10.0, negative_max=3)
    ghosts = ids(5)
    for i, ghost in enumerate(ghosts):
        now[0] = float(i)
        assert await cache.lookup(ghost) is None
    assert len(cache._unknown) == 3
    table.asked.clear()
    assert await cache.recheck(ghosts) == {}
    assert table.asked == [ghosts[:2]]  # the two oldest were forgotten, the rest remembered
    assert len(cache._unknown) == 3
    # Expired entries go at the next insert, full or not.
    now[0] = 30.0
    assert await cache.lookup(ids(1)[0]) is None
    assert len(cache._unknown) == 1


async def test_concurrent_re_checks_share_the_query_in_flight() -> None:
    site, other, ghost = ids(3)
    table = Table(**{site: "a.example", other: "b.example"})
    table.gate = asyncio.Event()
    cache = cache_over(table, "unit-shared")
    first = asyncio.create_task(cache.lookup(site))
    await asyncio.sleep(0)  # its query is in flight
    rest = [asyncio.create_task(cache.lookup(site)) for _ in range(20)]
    batch = asyncio.create_task(cache.recheck([site, other, ghost]))
    await asyncio.sleep(0)
    first.cancel()  # the caller that started the query goes away: the others still get it
    table.gate.set()
    got = await asyncio.gather(*rest)
    assert got == ["a.example"] * 20
    assert await batch == {site: "a.example", other: "b.example"}
    assert sorted(map(sorted, table.asked)) == sorted([[site], sorted([other, ghost])])
    assert misses("unit-shared", "found") == 2 and misses("unit-shared", "unknown") == 1
    assert cache._pending == {}


async def test_a_failed_re_check_raises_for_every_waiter_and_is_not_remembered() -> None:
    (site,) = ids(1)
    table = Table(**{site: "a.example"})
    table.down = True
    cache = cache_over(table, "unit-down")
    results = await asyncio.gather(*(cache.lookup(site) for _ in range(3)),
                                   return_exceptions=True)
    assert all(isinstance(r, Down) for r in results)
    assert misses("unit-down", "unavailable") == 1  # one query failed
    table.down = False  # not remembered as unknown: asked again at once
    assert await cache.lookup(site) == "a.example"


async def test_a_failed_refresh_keeps_the_last_copy() -> None:
    site, added = ids(2)
    table, now = Table(**{site: "a.example"}), [0.0]
    cache = cache_over(table, "unit-refresh", now)
    await cache.refresh()
    assert cache.loaded and len(cache) == 1
    table.rows[added] = "b.example"
    table.down = True
    failures = REFRESH_FAILURES.labels("unit-refresh")._value.get()
    with pytest.raises(Down):
        await cache.refresh()
    assert await cache.refresh_or_keep() is False
    now[0] = 10.0
    await cache.maybe_refresh()  # due, fails, keeps the copy: no exception
    assert cache.get(site) == "a.example" and cache.get(added) is None
    assert REFRESH_FAILURES.labels("unit-refresh")._value.get() == failures + 3
    table.down = False
    await cache.maybe_refresh()
    assert cache.get(added) == "b.example" and table.refreshes == 2
    await cache.maybe_refresh()  # not due again before refresh_seconds
    assert table.refreshes == 2


async def test_maybe_refresh_raises_while_the_copy_is_empty() -> None:
    table = Table()
    table.down = True
    cache = cache_over(table, "unit-empty")
    with pytest.raises(Down):
        await cache.maybe_refresh()
    assert not cache.loaded


async def test_only_canonical_ids_are_asked() -> None:
    (site,) = ids(1)
    table = Table(**{site: "a.example"})
    cache = cache_over(table, "unit-canonical")
    assert await cache.recheck([site.upper(), "{" + site + "}", "not-a-uuid", ""]) == {}
    assert await cache.lookup(site.upper()) is None
    assert table.asked == [] and len(cache._unknown) == 0


@pytest.mark.postgres
async def test_the_core_sql_on_the_real_postgres(core_settings: CoreSettings,
                                                 pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        acc = conn.execute("INSERT INTO accounts (name) VALUES ('core cache') RETURNING id"
                           ).fetchone()[0]  # type: ignore[index]
        made = {}
        for n in range(2):
            domain = f"core-{n}-{uuid.uuid4().hex[:6]}.example"
            row = conn.execute("INSERT INTO websites (account_id, domain) VALUES (%s, %s)"
                               " RETURNING id::text", (acc, domain)).fetchone()
            made[row[0]] = domain  # type: ignore[index]
    pool = make_pool(core_settings, name="core-cache", max_size=1)
    await open_pool(pool)
    try:
        cache = WebsiteCache(pool, process="unit-pg", columns=("domain", "content_groups"),
                             build=lambda row: (row["domain"], row["content_groups"]),
                             refresh_seconds=5.0, negative_seconds=1.0, query_timeout=5.0)
        ghost = str(uuid.uuid4())
        found = await cache.recheck([*made, ghost, "NOT-CANONICAL"])
        assert found == {i: (d, []) for i, d in made.items()}
        assert misses("unit-pg", "found") == 2 and misses("unit-pg", "unknown") == 1
        await cache.refresh()
        assert set(made) <= set(cache.sites) and ghost not in cache.sites
    finally:
        await pool.close()
