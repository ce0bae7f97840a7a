"""Country dimensions of the daily aggregates (streams/sessions.py, 0007_countries.sql):
a worked example, and on generated traffic: the `country` rows add up to the site rows,
and the `page:CC` rows to the page rows of events with a country."""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections import defaultdict

import psycopg
import pytest

from streams.enrich import EnrichContext
from streams.enrich.website import WebsiteInfo
from streams.models import Enriched
from streams.rebuild import SessionFolder
from streams.sessions import (
    BOUNCES,
    DURATION,
    EVENTS,
    PAGE_IN,
    PAGEVIEWS,
    UNIQUE,
    VISITORS,
    VISITS,
)
from tests.streams.gen import traffic
from tests.streams.helpers import enrich_one, make_sites
from tests.streams.test_sessions import mk


def fold(events: list[Enriched]) -> dict[tuple, list[int]]:  # type: ignore[type-arg]
    """Rebuild-style fold; events of one session must be adjacent (sorted by session)."""
    folder = SessionFolder()
    for e in sorted(events, key=lambda e: (e.session_id, e.received_at_ms)):
        folder.add(e)
    folder.flush()
    return folder.deltas.nonzero()


def test_worked_example() -> None:
    # Visitor 3 (country DE, "DE" for i % 7 != 0): /a then /b then /a, one visit.
    # Visitor 5 (country None): one page view: a bounce.
    evs = [mk(1, 3, 0, "page_view", "/a"), mk(2, 3, 60_000, "page_view", "/b"),
           mk(3, 3, 90_000, "page_view", "/a"), mk(4, 5, 0, "page_view", "/a")]
    assert [e.country for e in evs] == ["DE", "DE", "DE", None]
    for e in evs[:3]:
        e.session_id = str(uuid.UUID(int=1))
    evs[3].session_id = str(uuid.UUID(int=2))
    rows = fold(evs)
    by = {(k[4], k[5], k[6]): v for k, v in rows.items()}
    de, unknown = by[("country", "DE", "")], by[("country", "", "")]
    assert (de[VISITORS], de[VISITS], de[PAGEVIEWS], de[EVENTS], de[BOUNCES], de[DURATION]) == (
        1, 1, 3, 3, 0, 90)
    assert (unknown[VISITORS], unknown[VISITS], unknown[PAGEVIEWS], unknown[BOUNCES]) == (
        1, 1, 1, 1)
    assert by[("page:DE", "/a", "")][PAGEVIEWS] == 2
    assert by[("page:DE", "/a", "")][UNIQUE] == 1
    assert by[("page:DE", "/b", "")][PAGEVIEWS] == 1
    assert not any(k[0].startswith(PAGE_IN) and k[0] != "page:DE" for k in by)


def test_country_rows_add_up_to_the_site_and_page_rows() -> None:
    rng = random.Random(16)
    site = str(uuid.UUID(int=7))
    raws = traffic(rng, [(site, "shop.example")], 3000, 1_700_000_000_000, 20 * 3600 * 1000)
    info = WebsiteInfo.from_row(site, "shop.example", [])
    events = []
    for n, raw in enumerate(raws):
        e = enrich_one(Enriched.from_raw(raw, n % 4, n), EnrichContext(info))
        assert isinstance(e, Enriched)
        if not e.is_excluded:
            events.append(e)
    # Sessions as the stream cuts them: the bulk loader's in-order sessioniser.
    from streams.bulk import sessionise
    from streams.sessions import Deltas

    sessionise(sorted(events, key=lambda e: e.received_at_ms), Deltas())
    rows = fold(events)
    sums: dict[tuple, list[int]] = defaultdict(lambda: [0] * 9)  # type: ignore[type-arg]
    pages: dict[tuple, list[int]] = defaultdict(lambda: [0] * 9)  # type: ignore[type-arg]
    countries: set[str] = set()
    for k, v in rows.items():
        if k[4] == "country":
            countries.add(k[5])
            for i in (VISITORS, VISITS, PAGEVIEWS, EVENTS, BOUNCES, DURATION):
                sums[k[:4]][i] += v[i]
        elif k[4].startswith(PAGE_IN):
            pages[(k[:4], k[5], k[6])][PAGEVIEWS] += v[PAGEVIEWS]
    assert {"DE", "US", ""} <= countries
    for k, v in rows.items():
        if k[4] == "":
            for i in (VISITORS, VISITS, PAGEVIEWS, EVENTS, BOUNCES, DURATION):
                assert sums[k[:4]][i] == v[i], (k, i)
    # page:CC page views = page views of the events that have a country
    want: dict[tuple, int] = defaultdict(int)  # type: ignore[type-arg]
    for e in events:
        if e.event_type == "page_view" and e.country:
            key = (e.website_id, e.received_at_ms // 86_400_000, e.is_bot, e.kafka_partition)
            want[(key, e.path, e.content_group or "")] += 1
    assert {k: v[PAGEVIEWS] for k, v in pages.items() if v[PAGEVIEWS]} == dict(want)


def test_rebuild_counts_the_visitor_where_the_stream_did() -> None:
    """One visitor, two visits on one day, in two countries (the collector's database
    changed in between). The stream counts the visitor with its first visit (the one its
    first message, lowest offset, created); the rebuild must too, whatever the session
    ids' order (they are random)."""
    from tests.streams.test_sessions import stream_fold

    first = mk(1, 3, 0, "page_view", "/a")  # visitor 3: DE
    second = mk(14, 3, 45 * 60_000, "page_view", "/b")  # i % 7 == 0, i even: "US"
    assert (first.country, second.country) == ("DE", "US")
    first.kafka_offset, second.kafka_offset = 0, 1
    stream = stream_fold([first, second], [])
    for sids in (("a", "b"), ("b", "a")):  # the second visit's id sorts first, then last
        first.session_id, second.session_id = sids
        rows = fold([first, second])
        assert rows == stream.nonzero(), sids
        by = {k[5]: v[VISITORS] for k, v in rows.items() if k[4] == "country"}
        assert by == {"DE": 1, "US": 0}


@pytest.mark.postgres
def test_a_worker_of_the_previous_release_can_still_write(pg_dsn: str) -> None:
    """During an upgrade the migration runs before the old workers stop: their write path
    (scratch table `LIKE agg_dim_daily`, COPY of the old columns, INSERT SELECT *) must
    still work on the new schema (0007_countries.sql keeps `visitors` nullable)."""
    site = make_sites(pg_dsn, 1)[0][0]
    old = ("website_id", "day", "is_bot", "dim", "key", "grp", "kpart", "visits", "pageviews",
           "unique_pageviews", "entries", "exits", "bounces", "duration_sec", "events")
    with psycopg.connect(pg_dsn) as conn:
        conn.execute("CREATE TEMP TABLE tmp_agg_dim_daily (LIKE agg_dim_daily)"
                     " ON COMMIT DELETE ROWS")
        with conn.cursor().copy(f"COPY tmp_agg_dim_daily ({', '.join(old)}) FROM STDIN") as cp:
            cp.write_row((site, dt.date(2026, 3, 1), False, "device", "desktop", "", 0, 1, 0, 0,
                          0, 0, 0, 0, 0))
        conn.execute("INSERT INTO agg_dim_daily SELECT * FROM tmp_agg_dim_daily ON CONFLICT"
                     " (website_id, day, is_bot, dim, key, grp, kpart) DO UPDATE SET"
                     " visits = agg_dim_daily.visits + EXCLUDED.visits")
        row = conn.execute("SELECT visits, visitors FROM agg_dim_daily WHERE website_id = %s",
                           (site,)).fetchone()
    assert row == (1, None)
