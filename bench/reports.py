"""Benchmark of the report queries against a plain SQL scan of the raw events.

Loads one website with N events over 90 days into a fresh database through
`streams.bulk.bulk_load` (sessions and aggregates by the workers' own fold, COPY),
compacts the closed days as the workers' retention timer does
(`streams.compaction`), then times every aggregate report and the 3-step funnel
for 7d, 30d, 90d and 12m beside an equivalent plain scan of `events`, in one run.
Prints a table and, last, the smallest speed-up ratio (scan p50 / report p50).

The funnel is timed three ways: `funnel` as a repeated request finds it (the days
before today cached by the first one), `funnel-cold` with its cache emptied before
every request (a funnel nobody asked for yet), and `funnel-before`, the query the
report ran before the per-day cache (chained CTEs over the whole period, JIT left on).

    python bench/reports.py --events 1000000       # ~8 minutes on 2 shared cores
    python bench/reports.py --help

The database is created on the server of TINYTRAIL_DATABASE_URL (or --server) and
dropped at the end unless --keep.

Over 400 lines on purpose: one benchmark run end to end (load, compaction, one timed
query and its plain-scan twin per report, the funnel three ways, the table), each part
used only here; split, the pairs of report and scan would no longer sit side by side.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import hashlib
import os
import random
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from api.reports import (  # noqa: E402
    custom_events,
    devices,
    flow,
    funnel,
    locations,
    pages,
    sources,
    summary,
    timeseries,
)
from api.reports.params import parse_params  # noqa: E402
from tinytrail.db import make_pool, open_pool  # noqa: E402
from tinytrail.migrate import apply_migrations  # noqa: E402
from tinytrail.settings import CoreSettings  # noqa: E402

PERIODS = ("7d", "30d", "90d", "12m")
CHANNELS = [("Direct", None), ("Organic Search", "google.com"), ("Social", "t.co"),
            ("Referral", "news.ycombinator.com"), ("Email", None)]
DEVICES = [("desktop", "Chrome", "Windows", "1441+"), ("mobile", "Safari", "iOS", "320-375"),
           ("desktop", "Firefox", "Linux", "1025-1440"), ("tablet", "Safari", "iOS", "769-1024")]
FUNNEL = ["/pricing", "/signup", "signup_complete"]
# Visitors' countries, Zipf-weighted (None: no country, e.g. a private address); the
# `?country=` reports filter on FILTER_COUNTRY (the 2nd most common: ~17% of visits).
COUNTRIES = ["US", "DE", "GB", "FR", "IN", "BR", "JP", "CA", "NL", None, "ES", "IT", "PL",
             "SE", "AU", "MX", "KR", "CH", "AT", "BE", "TR", "ID", "NG", "ZA", "AR", "NO",
             "DK", "FI", "PT", "CZ"]
COUNTRY_WEIGHTS = [1 / (i + 1) for i in range(len(COUNTRIES))]
FILTER_COUNTRY = "DE"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=10_000_000, help="events to load (10M)")
    ap.add_argument("--days", type=int, default=90, help="days of history ending today (90)")
    ap.add_argument("--runs", type=int, default=30, help="timed runs per report query (30)")
    ap.add_argument("--scan-runs", type=int, default=3, help="timed runs per plain scan (3)")
    ap.add_argument("--server", default=os.environ.get(
        "TINYTRAIL_DATABASE_URL", CoreSettings().database_url), help="Postgres server URL")
    ap.add_argument("--keep", action="store_true", help="keep the benchmark database")
    ap.add_argument("--reuse", metavar="DBNAME", default=None,
                    help="measure on a database kept by an earlier --keep run (no loading;"
                         " it is kept)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--reports", default="", help="comma-separated report names to time"
                    " (default: all, including locations, summary-country, pages-country)")
    return ap.parse_args(argv)


# --- load ---------------------------------------------------------------------------


def generate(site: str, events: int, days: int, today: dt.date, seed: int):  # type: ignore[no-untyped-def]
    """Yield enriched events day by day: visits of 1-9 events, Zipf-ish paths."""
    from streams.models import Enriched

    rnd = random.Random(seed)
    paths = ["/", "/pricing", "/signup", "/docs"] + [f"/blog/post-{i}" for i in range(200)]
    weights = [1 / (i + 1) for i in range(len(paths))]
    per_day = events // days
    offset = 0
    for d in range(days):
        day = today - dt.timedelta(days=days - 1 - d)
        base_ms = int(dt.datetime.combine(day, dt.time(), dt.UTC).timestamp() * 1000)
        made = 0
        while made < per_day:
            visitor = hashlib.sha256(f"{seed}:{d}:{made}".encode()).hexdigest()
            kpart = int(visitor[:4], 16) % 12
            channel, ref = rnd.choice(CHANNELS)
            device, browser, os_, screen = rnd.choice(DEVICES)
            bot = rnd.random() < 0.03
            country = rnd.choices(COUNTRIES, COUNTRY_WEIGHTS)[0]
            t = base_ms + rnd.randint(0, 86_000 - 3000) * 1000
            n = min(rnd.choice((1, 1, 2, 3, 4, 5, 6, 9)), per_day - made)
            for _ in range(n):
                t += rnd.randint(1000, 300_000)
                if t >= base_ms + 86_400_000:
                    break
                r = rnd.random()
                path = rnd.choices(paths, weights)[0]
                etype, name = "page_view", None
                if r > 0.9:
                    etype, name = "custom", rnd.choice(("signup_complete", "video_play"))
                elif r > 0.8:
                    etype = rnd.choice(("scroll_50", "close_tab", "outbound_link"))
                offset += 1
                made += 1
                email = channel == "Email"
                yield Enriched(
                    event_id=str(uuid.UUID(int=rnd.getrandbits(128), version=4)),
                    received_at_ms=t, website_id=site, visitor_id=visitor, event_type=etype,
                    url="https://bench.example" + path, path=path, referrer=None,
                    user_agent="", screen_width=None, screen_height=None, name=name,
                    properties=None, utm_source="news" if email else None,
                    utm_medium="email" if email else None, utm_campaign=None, is_bot=bot,
                    is_excluded=False, kafka_partition=kpart, kafka_offset=offset,
                    browser_family=browser, os_family=os_, device_type=device,
                    referrer_domain=ref, referrer_channel=channel,
                    content_group="Blog" if path.startswith("/blog/") else None,
                    screen_bucket=screen, country=country,
                )


async def load(settings: CoreSettings, events: int, days: int, today: dt.date,
               seed: int) -> str:
    """One website, `events` events over `days` days: bulk load, then compact closed days."""
    from streams.bulk import bulk_load
    from streams.compaction import compact_old_days

    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        acc = conn.execute("INSERT INTO accounts (name) VALUES ('bench') RETURNING id").fetchone()
        site = str(conn.execute(
            "INSERT INTO websites (account_id, domain) VALUES (%s, 'bench.example') RETURNING id",
            (acc[0],)).fetchone()[0])  # type: ignore[index]
    pool = make_pool(settings, name="bench-load", max_size=2)
    await open_pool(pool)
    try:
        loaded = 0

        def progress(day: dt.date, n: int) -> None:  # one line per day: a long job shows life
            nonlocal loaded
            loaded += n
            print(f"  loaded {day} ({n:,} events; {loaded:,} of ~{events:,})", flush=True)

        stats = await bulk_load(pool, generate(site, events, days, today, seed),
                                progress=progress)
        print(f"bulk-loaded {stats.events:,} events, {stats.sessions:,} sessions, "
              f"{stats.rows:,} aggregate rows in {stats.seconds:.0f} s "
              f"({stats.events_per_second:,.0f} events/s)", flush=True)
        t0 = time.perf_counter()
        compacted = await compact_old_days(pool, today)
        print(f"compacted {len(compacted)} closed days in {time.perf_counter() - t0:.1f} s",
              flush=True)
    finally:
        await pool.close()
    return site


# --- plain scans (the baseline) -------------------------------------------------------

_RANGE = ("website_id = %(w)s AND received_at >= %(lo)s AND received_at < %(hi)s"
          " AND NOT is_excluded AND NOT is_bot")
SCANS: dict[str, str] = {
    "summary": f"""
        WITH s AS (SELECT session_id, visitor_id, received_at::date AS day,
                          count(*) FILTER (WHERE event_type = 'page_view') AS pv,
                          bool_or(event_type IN ('custom', 'outbound_link')) AS engaged,
                          extract(epoch FROM max(received_at) - min(received_at))::bigint AS dur
                   FROM events WHERE {_RANGE} GROUP BY 1, 2, 3)
        SELECT count(DISTINCT (visitor_id, day)), count(*) FILTER (WHERE pv > 0), sum(pv),
               count(*) FILTER (WHERE pv = 1 AND NOT engaged),
               sum(dur) FILTER (WHERE pv > 0) FROM s""",
    "pages": f"""
        SELECT path, count(*), count(DISTINCT session_id) FROM events
        WHERE {_RANGE} AND event_type = 'page_view'
        GROUP BY path ORDER BY 2 DESC, 1 LIMIT 50""",
    "sources": f"""
        SELECT referrer_channel, count(*) FROM (
          SELECT DISTINCT ON (session_id) session_id, referrer_channel FROM events
          WHERE {_RANGE} ORDER BY session_id, received_at) f GROUP BY 1 ORDER BY 2 DESC""",
    "devices": f"""
        SELECT device_type, browser_family, os_family, screen_bucket, count(*) FROM (
          SELECT DISTINCT ON (session_id) * FROM events
          WHERE {_RANGE} ORDER BY session_id, received_at) f GROUP BY GROUPING SETS
          ((device_type), (browser_family), (os_family), (screen_bucket))""",
    "flow": f"""
        SELECT path, count(*) FROM (
          SELECT DISTINCT ON (session_id) path FROM events
          WHERE {_RANGE} AND event_type = 'page_view' ORDER BY session_id, received_at) f
        GROUP BY 1 ORDER BY 2 DESC LIMIT 50""",
    "summary-country": f"""
        WITH s AS (SELECT session_id, visitor_id, received_at::date AS day,
                          count(*) FILTER (WHERE event_type = 'page_view') AS pv,
                          bool_or(event_type IN ('custom', 'outbound_link')) AS engaged,
                          extract(epoch FROM max(received_at) - min(received_at))::bigint AS dur
                   FROM events WHERE {_RANGE} AND country = %(c)s GROUP BY 1, 2, 3)
        SELECT count(DISTINCT (visitor_id, day)), count(*) FILTER (WHERE pv > 0), sum(pv),
               count(*) FILTER (WHERE pv = 1 AND NOT engaged),
               sum(dur) FILTER (WHERE pv > 0) FROM s""",
    "pages-country": f"""
        SELECT path, count(*), count(DISTINCT session_id) FROM events
        WHERE {_RANGE} AND event_type = 'page_view' AND country = %(c)s
        GROUP BY path ORDER BY 2 DESC, 1 LIMIT 50""",
    "locations": f"""
        SELECT country, count(*) FROM (
          SELECT DISTINCT ON (session_id) country FROM events
          WHERE {_RANGE} ORDER BY session_id, received_at) f GROUP BY 1 ORDER BY 2 DESC
        LIMIT 50""",
    "custom-events": f"""
        SELECT event_name, count(*) FROM events WHERE {_RANGE} AND event_type = 'custom'
        GROUP BY 1 ORDER BY 2 DESC LIMIT 50""",
    "timeseries": f"""
        SELECT received_at::date, count(*) FROM events
        WHERE {_RANGE} AND event_type = 'page_view' GROUP BY 1""",
    "funnel": f"""
        SELECT session_id, array_agg(CASE WHEN event_type = 'page_view' THEN path
                                          ELSE coalesce(event_name, event_type) END
                                     ORDER BY received_at)
        FROM events WHERE {_RANGE} GROUP BY session_id""",
}


SCAN_OF = {"funnel-cold": "funnel", "funnel-before": "funnel"}


def before_query(steps: list[Any]) -> sql.Composed:
    """The funnel query before the per-day cache: per step, the sessions' earliest match
    after the previous step's, over the whole period, and one count per step."""
    ctes = []
    for k, step in enumerate(steps, start=1):
        match = sql.SQL("e.event_type = {}").format(sql.Literal(step.event_type))
        if step.path is not None:
            match += sql.SQL(" AND e.path = {}").format(sql.Literal(step.path))
        if step.name is not None:
            match += sql.SQL(" AND e.event_name = {}").format(sql.Literal(step.name))
        join = sql.SQL(" JOIN {} p ON p.session_id = e.session_id AND e.received_at > p.t"
                       ).format(sql.Identifier(f"s{k - 1}")) if k > 1 else sql.SQL("")
        ctes.append(sql.SQL(
            "{} AS (SELECT e.session_id, min(e.received_at) AS t FROM events e{}"
            " WHERE e.website_id = %(w)s AND e.received_at >= %(lo)s AND e.received_at < %(hi)s"
            " AND NOT e.is_excluded AND e.is_bot = ANY(%(bots)s) AND {} GROUP BY e.session_id)"
        ).format(sql.Identifier(f"s{k}"), join, match))
    counts = sql.SQL(", ").join(sql.SQL("(SELECT count(*) FROM {}) AS {}").format(
        sql.Identifier(f"s{k}"), sql.Identifier(f"n{k}")) for k in range(1, len(steps) + 1))
    return sql.SQL("WITH {} SELECT {}").format(sql.SQL(", ").join(ctes), counts)


def _walk(rows: list[Any]) -> list[int]:
    """Client side of the funnel scan: walk each session's steps in order."""
    reached = [0] * len(FUNNEL)
    for _sid, steps in rows:
        k = 0
        for s in steps:
            if k < len(FUNNEL) and s == FUNNEL[k]:
                reached[k] += 1
                k += 1
    return reached


# --- timing -------------------------------------------------------------------------


async def timed(fn: Callable[[], Awaitable[Any]], runs: int) -> tuple[float, float]:
    await fn()  # warm-up
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        await fn()
        samples.append((time.perf_counter() - t0) * 1000)
    samples.sort()
    p95 = samples[min(len(samples) - 1, max(0, round(0.95 * len(samples)) - 1))]
    return statistics.median(samples), p95


async def measure(settings: CoreSettings, site: str, today: dt.date, runs: int,
                  scan_runs: int, only: frozenset[str] = frozenset(),
                  ) -> list[tuple[str, str, float, float, float, float]]:
    pool = make_pool(settings, name="bench", max_size=2)
    await open_pool(pool)
    steps = [funnel.step_of(s) for s in FUNNEL]
    before = before_query(steps)

    async def funnel_before(p: Any) -> Any:
        lo = dt.datetime.combine(p.range.start, dt.time(), dt.UTC)
        hi = dt.datetime.combine(p.range.end + dt.timedelta(days=1), dt.time(), dt.UTC)
        async with pool.connection() as conn:
            cur = await conn.execute(before, {"w": site, "lo": lo, "hi": hi,
                                              "bots": p.bot_flags})
            return await cur.fetchone()

    async def funnel_cold(p: Any) -> Any:
        async with pool.connection() as conn:
            await conn.execute("DELETE FROM funnel_cache WHERE website_id = %s", (site,))
        return await funnel.compute(pool, p, steps, today=today)

    reports: dict[str, Callable[[Any], Awaitable[Any]]] = {
        "summary": lambda p: summary.compute(pool, p),
        "pages": lambda p: pages.compute(pool, p),
        "sources": lambda p: sources.compute(pool, p, "channel"),
        "devices": lambda p: devices.compute(pool, p),
        "flow": lambda p: flow.compute(pool, p),
        "custom-events": lambda p: custom_events.compute(pool, p, None),
        "timeseries": lambda p: timeseries.compute(pool, p, timeseries.Extra("pageviews", None)),
        "funnel": lambda p: funnel.compute(pool, p, steps, today=today),
        "funnel-cold": funnel_cold,
        "funnel-before": funnel_before,
        "locations": lambda p: locations.compute(pool, p),
        "summary-country": lambda p: summary.compute(pool, replace(p, country=FILTER_COUNTRY)),
        "pages-country": lambda p: pages.compute(pool, replace(p, country=FILTER_COUNTRY)),
    }
    if only:
        reports = {k: v for k, v in reports.items() if k in only}
    out = []
    scanned: dict[tuple[str, str], tuple[float, float]] = {}
    try:
        for period in PERIODS:
            p = parse_params(lambda n, period=period: {"website_id": site,
                                                       "period": period}.get(n), today)
            lo = dt.datetime.combine(p.range.start, dt.time(), dt.UTC)
            hi = dt.datetime.combine(p.range.end + dt.timedelta(days=1), dt.time(), dt.UTC)
            if {"funnel", "funnel-before"} <= reports.keys():  # the same figures, or stop
                got = await funnel.compute(pool, p, steps, today=today)
                now = [s["sessions"] for s in got["funnel"]]
                was = list((await funnel_before(p)).values())
                print(f"funnel {period}: {now} (before the cache: {was})", flush=True)
                assert now == was, (now, was)
            for name, fn in reports.items():
                r50, r95 = await timed(lambda fn=fn, p=p: fn(p), runs)

                async def scan(name: str = name, lo: dt.datetime = lo,
                               hi: dt.datetime = hi) -> Any:
                    async with pool.connection() as conn:
                        cur = await conn.execute(SCANS[SCAN_OF.get(name, name)],
                                                 {"w": site, "lo": lo, "hi": hi,
                                                  "c": FILTER_COUNTRY})
                        rows = await cur.fetchall()
                    return _walk([(r["session_id"], r["array_agg"]) for r in rows]) \
                        if name.startswith("funnel") else rows

                s50 = s95 = float("nan")  # --scan-runs 0: reports only
                base = SCAN_OF.get(name, name)
                if (base, period) in scanned:  # the three funnels share one scan
                    s50, s95 = scanned[base, period]
                elif scan_runs > 0:
                    s50, s95 = scanned[base, period] = await timed(scan, scan_runs)
                out.append((name, period, r50, r95, s50, s95))
                print(f"{name:14} {period:4} report p50 {r50:8.1f} p95 {r95:8.1f} ms | "
                      f"scan p50 {s50:9.1f} p95 {s95:9.1f} ms | x{s50 / r50:,.0f}", flush=True)
    finally:
        await pool.close()
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    today = dt.datetime.now(dt.UTC).date()
    name = args.reuse or f"tt_bench_{uuid.uuid4().hex[:8]}"
    dsn = args.server.rsplit("/", 1)[0] + "/" + name
    settings = CoreSettings(database_url=dsn)
    only = frozenset(filter(None, args.reports.split(",")))
    if not args.reuse:
        with psycopg.connect(args.server, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        if args.reuse:
            apply_migrations(dsn)  # a database kept before a new migration
            with psycopg.connect(dsn) as conn:
                site = str(conn.execute("SELECT id FROM websites WHERE domain = "
                                        "'bench.example'").fetchone()[0])  # type: ignore[index]
                last = conn.execute("SELECT max(received_at)::date FROM events").fetchone()
            today = last[0]  # type: ignore[index]  # the periods end on the loaded data's last day
            print(f"reusing {name} (data up to {today})", flush=True)
        else:
            apply_migrations(dsn)
            site = asyncio.run(load(settings, args.events, args.days, today, args.seed))
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute("VACUUM ANALYZE events")
                conn.execute("VACUUM ANALYZE agg_site_daily")
                conn.execute("VACUUM ANALYZE agg_dim_daily")
            if args.keep:
                print(f"kept as {name}: measure again with --reuse {name}", flush=True)
        rows = asyncio.run(measure(settings, site, today, args.runs, args.scan_runs, only))
    finally:
        if not args.keep and not args.reuse:
            with psycopg.connect(args.server, autocommit=True) as conn:
                conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                             " WHERE datname = %s", (name,))
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
    print()
    print(f"{'report':14} {'period':6} {'p50 ms':>8} {'p95 ms':>8} {'scan p50':>10} "
          f"{'scan p95':>10} {'speed-up':>9}")
    for name_, period, r50, r95, s50, s95 in rows:
        print(f"{name_:14} {period:6} {r50:8.1f} {r95:8.1f} {s50:10.1f} {s95:10.1f} "
              f"{s50 / r50:9.1f}")
    worst = min(rows, key=lambda r: r[4] / r[2])
    print(f"smallest speed-up: {worst[4] / worst[2]:.1f}x ({worst[0]} {worst[1]})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
