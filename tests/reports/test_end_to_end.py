"""Reports end to end: multi-day traffic through Kafka and a real worker process.

Past days cannot go through the live collector (it stamps `received_at` itself),
so every event is produced as the collector would, a `RawEvent` on the raw topic
with a chosen `received_at_ms` and a fixed visitor id. A real worker subprocess
consumes, enriches, sessionises and aggregates; then each report is compared with
the plain reference of tests/reports/traffic.py. Figures must be equal.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from api.reports import custom_events, flow, funnel, pages, sources, summary, timeseries
from api.reports.params import parse_params
from tests.reports import aggdata as A
from tests.reports import traffic as T
from tests.streams.helpers import make_sites
from tests.streams.workerproc import applied_messages, produce, start_worker, stop, wait_until
from tinytrail.db import make_pool, open_pool
from tinytrail.settings import CoreSettings
from tinytrail.topics import ensure_topics, raw_events_topic

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.kafka, pytest.mark.slow]


async def test_reports_equal_a_plain_reference_over_real_pipeline(
        core_settings: CoreSettings, tmp_path: Any) -> None:
    settings = core_settings.model_copy(
        update={"topic_prefix": f"{core_settings.topic_prefix}-rep{uuid.uuid4().hex[:6]}"})
    await ensure_topics(settings)
    now = dt.datetime.now(dt.UTC)
    today = now.date()
    days = [today - dt.timedelta(days=i) for i in (3, 2, 1, 0)]
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute("SELECT tinytrail_ensure_event_partitions(%s, 5)", (days[0],))
    sites = [s for s, _ in make_sites(settings.database_url, 2, T.GROUPS)]
    events = T.generate(random.Random(11), sites, days, int(now.timestamp() * 1000), 25)
    await produce(settings.kafka_bootstrap, raw_events_topic(settings), [e.raw for e in events])
    proc = start_worker(settings, str(tmp_path), "reports-e2e")
    try:
        wait_until(lambda: applied_messages(settings) >= len(events), 90, [proc])
    finally:
        stop(proc)

    pool = make_pool(settings, name="reports-e2e", max_size=2)
    await open_pool(pool)
    try:
        for site in sites:
            for q in ({"period": "7d"}, {"period": "7d", "include_bots": "true"},
                      {"period": "today"}, {"period": "yesterday"}):
                p = parse_params(lambda n, q=q, site=site: {"website_id": site, **q}.get(n),
                                 today)
                await _compare(pool, events, site, p)
    finally:
        await pool.close()


async def _compare(pool: AsyncConnectionPool, events: list[T.Ev], site: str, p: Any) -> None:
    ref = T.reference(events, site, p.range.start, p.range.end, p.include_bots)
    s = await summary.compute(pool, p)
    assert s["metrics"] == {
        "visits": {"value": ref["visits"]}, "unique_visitors": {"value": ref["visitors"]},
        "pageviews": {"value": ref["pageviews"]},
        "bounce_rate": {"value": A.rate(ref["bounces"], ref["visits"])},
        "avg_session_duration_sec": {"value": A.seconds(ref["duration"], ref["visits"])}}, p
    got_pages = await pages.compute(pool, p)
    assert {(r["path"], r["contentGroup"], r["pageviews"], r["uniquePageviews"])
            for r in got_pages["rows"]} == {
        (k, T.group_of(k), n, ref["upv"][k]) for k, n in ref["pv"].items()}
    f = await flow.compute(pool, p)
    assert {r["path"]: r["entries"] for r in f["landing_pages"]} == dict(ref["entries"])
    assert {r["path"]: r["exits"] for r in f["exit_pages"]} == dict(ref["exits"])
    ch = await sources.compute(pool, p, "channel")
    assert {r["channel"]: r["visits"] for r in ch["rows"]} == dict(ref["channels"])
    utm = await sources.compute(pool, p, "utm")
    assert {(r["utmSource"], r["utmMedium"], r["utmCampaign"]): r["visits"]
            for r in utm["rows"]} == dict(ref["utm"])
    ce = await custom_events.compute(pool, p, None)
    assert {r["name"]: r["count"] for r in ce["rows"]} == dict(ref["customs"])
    ts = await timeseries.compute(pool, p, timeseries.Extra("pageviews", None))
    assert {r["date"]: r["value"] for r in ts["series"]} == {
        d.isoformat(): ref["daily_pv"].get(d, 0) for d in p.range.each_day()}
    steps = ["/", "/pricing", "signup_complete"]
    fu = await funnel.compute(pool, p, [funnel.step_of(x) for x in steps])
    assert [r["sessions"] for r in fu["funnel"]] == T.funnel_counts(ref["visits_list"], steps)
