"""Shared helpers of the stream tests: websites, aggregate snapshots, the rebuild check,
a stand-in for the session changelog producer where no broker runs."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

import psycopg

from streams.enrich import PIPELINE, EnrichContext
from streams.models import Drop, Enriched
from streams.rebuild import rebuild_days
from streams.session_state import NO_FLOOR
from streams.sessions import Session, SessionKey
from tinytrail.db import make_pool, open_pool
from tinytrail.settings import CoreSettings

SITE_SQL = (
    "SELECT website_id::text, day, is_bot, kpart, visitors, visits, pageviews, bounces,"
    " duration_sec, events FROM agg_site_daily {where} ORDER BY 1, 2, 3, 4"
)
DIM_SQL = (
    "SELECT website_id::text, day, is_bot, dim, key, grp, kpart, visits, pageviews,"
    " unique_pageviews, entries, exits, bounces, duration_sec, events, visitors"
    " FROM agg_dim_daily {where} ORDER BY 1, 2, 3, 4, 5, 6, 7"
)
# Page-by-country rows, shaped like dim rows (dim "page:CC") so one diff covers both.
PAGE_COUNTRY_SQL = (
    "SELECT website_id::text, day, is_bot, 'page:' || country, path, grp, kpart, 0::bigint,"
    " pageviews, unique_pageviews, 0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint,"
    " 0::bigint FROM agg_page_country_daily {where} ORDER BY 1, 2, 3, 4, 5, 6, 7"
)


class _RecordedBatch:
    """aiokafka's record batch, as far as the session store uses it; never full."""

    def __init__(self) -> None:
        self.items: list[tuple[bytes | None, bytes | None]] = []

    def append(self, *, key: bytes | None, value: bytes | None, timestamp: Any) -> object:
        self.items.append((key, value))
        return object()  # metadata: appended


class ChangelogRecorder:
    """Stands in for the session store's changelog producer (`SessionTable.producer`: the
    part of aiokafka's producer it uses) in tests without a broker, as a list stands in
    for the dead-letter producer: the store writes its records as in production, and
    they are kept here, in order, as (topic, partition, key, value)."""

    def __init__(self) -> None:
        self.records: list[tuple[str, int, bytes | None, bytes | None]] = []

    def create_batch(self) -> _RecordedBatch:
        return _RecordedBatch()

    async def send_batch(self, batch: _RecordedBatch, topic: str, *,
                         partition: int) -> asyncio.Future[None]:
        self.records.extend((topic, partition, k, v) for k, v in batch.items)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    async def stop(self) -> None:
        pass


def enrich_one(ev: Enriched, ctx: EnrichContext) -> Enriched | Drop:
    """Every step of `streams.enrich.PIPELINE` on one event, in order, without the
    metrics and the per-event catch of `enrich_batch` (a step's exception is raised)."""
    for _, step in PIPELINE:
        out = step(ev, ctx)
        if isinstance(out, Drop):
            return out
        ev = out
    return ev


def make_sites(
    dsn: str, n: int, groups: list[dict[str, str]] | None = None
) -> list[tuple[str, str]]:
    """Create an account with `n` websites; returns [(website_id, domain)]."""
    import uuid

    import orjson

    out = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        acc = conn.execute("INSERT INTO accounts (name) VALUES ('s') RETURNING id").fetchone()
        assert acc is not None
        for i in range(n):
            domain = f"site{i}-{uuid.uuid4().hex[:6]}.example"
            row = conn.execute(
                "INSERT INTO websites (account_id, domain, content_groups) VALUES (%s, %s, %s)"
                " RETURNING id::text",
                (acc[0], domain, orjson.dumps(groups or [
                    {"name": "Blog", "pattern": "/blog/*"}, {"name": "Docs", "pattern": "/docs/*"}
                ]).decode()),
            ).fetchone()
            assert row is not None
            out.append((row[0], domain))
    return out


def snapshot(dsn: str, sites: list[str]) -> tuple[list[Any], list[Any]]:
    """All aggregate rows of these websites (zero rows dropped: a delta may leave zeros)."""
    where = "WHERE website_id::text = ANY(%s)"
    with psycopg.connect(dsn) as conn:
        site = [r for r in conn.execute(SITE_SQL.format(where=where), (sites,)) if any(r[4:])]
        dim = [r for r in conn.execute(DIM_SQL.format(where=where), (sites,)) if any(r[7:])]
        dim += [r for r in conn.execute(PAGE_COUNTRY_SQL.format(where=where), (sites,))
                if any(r[7:])]
    return site, dim


def days_of(raws: Iterable[Any]) -> list[dt.date]:
    """The UTC days of these events' `received_at_ms`, sorted."""
    return sorted({dt.datetime.fromtimestamp(r.received_at_ms / 1000, dt.UTC).date()
                   for r in raws})


def aggregate_diff(before: tuple[list[Any], list[Any]],
                   after: tuple[list[Any], list[Any]]) -> str:
    """The aggregate rows (key -> counters) that the stream and the rebuild disagree on."""
    lines = []
    for name, cut, a_rows, b_rows in (("agg_site_daily", 4, before[0], after[0]),
                                      ("agg_dim_daily", 7, before[1], after[1])):
        a = {tuple(r[:cut]): tuple(r[cut:]) for r in a_rows}
        b = {tuple(r[:cut]): tuple(r[cut:]) for r in b_rows}
        for k in sorted(set(a) | set(b), key=str):
            if a.get(k) != b.get(k):
                lines.append(f"{name} {k}: stream {a.get(k)} rebuild {b.get(k)}")
    return f"{len(lines)} rows differ:\n" + "\n".join(lines[:30])


async def assert_equals_rebuild(
    settings: CoreSettings, sites: list[str], days: list[dt.date]
) -> None:
    """The stream's aggregate rows of `sites` (not empty) equal the rebuild of `days`;
    on failure the message lists the rows that differ."""
    stream = snapshot(settings.database_url, sites)
    assert stream[0] and stream[1]
    pool = make_pool(settings, name="t", max_size=1)
    await open_pool(pool)
    try:
        await rebuild_days(pool, min(days), max(days))
    finally:
        await pool.close()
    rebuilt = snapshot(settings.database_url, sites)
    assert rebuilt == stream, aggregate_diff(stream, rebuilt)


class MemorySessions:
    """A `SessionStore` that knows only what this process committed: every miss is
    looked up in Postgres (the sink's `lookup`). For tests that drive a `Sink` alone."""

    def __init__(self) -> None:
        self._data: dict[SessionKey, Session] = {}

    def get(self, key: SessionKey) -> Session | None:
        return self._data.get(key)

    def floor(self, kpart: int) -> int:
        return NO_FLOOR

    def current(self, kpart: int, next_offset: int) -> bool:
        return False

    async def reload(self, cur: Any, kpart: int, next_offset: int, why: str) -> None:
        self.invalidate([kpart])  # misses are looked up anyway

    async def publish(self, sessions: Iterable[Session], ends: Mapping[int, int]) -> None:
        for s in sessions:
            self._data[s.key] = s

    def invalidate(self, kparts: Iterable[int]) -> None:
        drop = set(kparts)
        for k in [k for k in self._data if k[4] in drop]:
            del self._data[k]


def contiguous_offsets(
    events: Iterable[Enriched], watermarks: Mapping[int, int], dead: Iterable[Any] = (),
) -> dict[int, list[int]]:
    """Every offset of a batch whose caller vouches it is contiguous per partition: from
    the lowest offset of its events and dead letters (none: the watermark) up to the
    watermark. What `Sink.apply` did itself before it required `offsets`."""
    lows: dict[int, int] = {}
    for p, o in [(e.kafka_partition, e.kafka_offset) for e in events] + [
        (d.partition, d.offset) for d in dead
    ]:
        if o < lows.get(p, o + 1):
            lows[p] = o
    return {p: list(range(lows.get(p, w), w + 1)) for p, w in watermarks.items()}
