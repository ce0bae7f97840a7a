"""A session reloaded from Postgres mid-stream keeps counting its visitor where the
rebuild does (the `country` rows' `visitors`).

The bug this pins down: the fold that reloads sessions from the stored events
(streams/session_state.py `fold_sessions`, used by `reload` and `lookup`) gave every
session `first_of_day=False`. The visitor is counted under the country of the key's
first-of-day session (`add_contribution`), and that country is the one of the
session's earliest event by time: a late event stamped earlier, with another country
(or none), moves it. A reloaded session that had lost its flag then neither took the
visitor off the old country nor added it to the new one, while the rebuild counted it
under the new one: country visitors off by 1 between '' and a country (seen in
tests/streams/test_worker_kafka.py's rebalancing test, whose partitions are reloaded
after each rebalance). Browser, channel etc. count visits only, so they never showed it.

Real Postgres and the real `Sink`; `MemorySessions` reloads / looks up every session from
the events table on every batch (as a worker does after a rebalance).
"""

from __future__ import annotations

import datetime as dt
import time
import uuid

import psycopg
import pytest

from streams.enrich import enrich_batch
from streams.models import Enriched
from streams.sink import Sink
from streams.websites import WorkerWebsites
from tests.streams.helpers import (
    MemorySessions,
    assert_equals_rebuild,
    contiguous_offsets,
    make_sites,
)
from tinytrail.db import make_pool, open_pool
from tinytrail.event import RawEvent
from tinytrail.settings import CoreSettings


def raw(site: tuple[str, str], visitor: str, ms: int, country: str | None,
        path: str = "/a") -> RawEvent:
    return RawEvent(event_id=str(uuid.uuid4()), received_at_ms=ms, website_id=site[0],
                    visitor_id=visitor, event_type="page_view",
                    url=f"https://{site[1]}{path}", path=path, user_agent="Mozilla/5.0",
                    country=country)


def country_visitors(dsn: str, site: str) -> dict[str, int]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT key, sum(visitors) FROM agg_dim_daily WHERE"
                            " website_id = %s AND dim = 'country' GROUP BY key",
                            (site,)).fetchall()
    return {k: int(v) for k, v in rows if v}


@pytest.mark.postgres
@pytest.mark.parametrize(("first", "late"), [
    pytest.param("DE", None, id="country-then-earlier-without"),
    pytest.param(None, "DE", id="none-then-earlier-with"),
    pytest.param("DE", "FR", id="country-then-earlier-other"),
])
async def test_reloaded_session_moves_its_visitor_to_the_earlier_events_country(
    core_settings: CoreSettings, first: str | None, late: str | None,
) -> None:
    dsn = core_settings.database_url
    site = make_sites(dsn, 1)[0]
    now = int(time.time() * 1000)
    # Same UTC day, the late one 5 minutes before the first (joins the same visit).
    t = max(now - 3_600_000, now - now % 86_400_000 + 600_000)
    visitor = uuid.uuid4().hex * 2
    msgs = [Enriched.from_raw(raw(site, visitor, t, first), 0, 0),
            Enriched.from_raw(raw(site, visitor, t - 300_000, late, "/b"), 0, 1)]
    pool = make_pool(core_settings, name="t", max_size=2)
    await open_pool(pool)
    try:
        cache = WorkerWebsites(pool)
        await cache.maybe_refresh()
        group = f"g-{uuid.uuid4().hex[:6]}"
        for m in msgs:
            # One batch each, by a new sink (another worker took the partition): the
            # second finds the stored offset moved and reloads the session from Postgres.
            sink = Sink(pool, group=group, topic="raw", store=MemorySessions())
            kept, _ = enrich_batch([m], cache.get)
            marks = {0: m.kafka_offset}
            res = await sink.apply(kept, marks, offsets=contiguous_offsets(kept, marks))
            assert len(res.new_events) == 1
    finally:
        await pool.close()
    # One visitor, one visit; its country is the one of its earliest event.
    assert country_visitors(dsn, site[0]) == {late or "": 1}
    await assert_equals_rebuild(
        core_settings, [site[0]], [dt.datetime.fromtimestamp(t / 1000, dt.UTC).date()])
