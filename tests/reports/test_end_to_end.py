"""Reports end to end: real collector, Kafka, a real worker process and the real API.

Nine past days for three websites are produced to the raw topic as the collector
would produce them (it stamps `received_at` itself, so history cannot go through
it), with chosen times and a new visitor id every day. Today's traffic goes through
the real collector over HTTP: distinct client addresses in X-Forwarded-For, real
browser and crawler user agents, excluded addresses, referrers, UTM in URL and
body, SPA navigation, scrolls, outbound links, custom events; every answer is
checked (202, or 204 for bots, excluded and unknown websites, 400 for a bad body).
The test reads the raw topic back, checks each collected message against its
request, and takes the collector's receive times and visitor ids from it. One
worker subprocess consumes everything; then every report is requested over HTTP
from the real API (periods today, yesterday, 7d and a custom range; with and
without bots; comparisons; paths; a content group; pagination; CSV) and must equal
the plain reference of `e2e_reference.py`, figure for figure.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import time
import uuid
from collections import defaultdict
from typing import Any

import psycopg
import pytest

from api.bootstrap import create_admin
from tests.api.apisupport import MutableClock
from tests.reports import traffic as T
from tests.reports.e2e_reference import EVENT_TYPES, Reference, Visit, realtime, visits_of
from tests.reports.e2e_services import Http, api_settings, read_raw, running_api, running_collector
from tests.streams.workerproc import (
    applied_messages,
    log_tail,
    produce,
    start_worker,
    stop,
    wait_group,
)
from tinytrail.event import RawEvent
from tinytrail.settings import CoreSettings
from tinytrail.topics import ensure_topics, raw_events_topic

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.kafka, pytest.mark.slow]

WORKER = "reports-e2e"
ROUND_PAUSE = 0.8  # seconds between a visitor's requests today: visits last a few seconds
PATH_OF_SITE = ["/pricing", "/blog/launch", "/"]  # timeseries `path` per website
FUNNELS = [["/", "/pricing", "signup_complete"], ["/pricing", "outbound_link"]]
METRICS = ["visits", "pageviews", "unique_pageviews", "bounce_rate", "avg_session_duration",
           "landing_page_entries", "exit_page_exits"]


async def send_today(http: Http, base: str, plan: list[list[T.Planned]]
                     ) -> dict[str, tuple[int, int, int]]:
    """Each visitor's requests in order, one per round; tag -> (status, sent ms, done ms)."""
    out: dict[str, tuple[int, int, int]] = {}

    async def one(p: T.Planned) -> None:
        sent = int(time.time() * 1000)
        resp = await http.collect(base, p.hit.body, p.hit.ip, p.hit.user_agent)
        out[p.hit.tag] = (resp.code, sent, int(time.time() * 1000))

    for r in range(max(len(seq) for seq in plan)):
        if r:
            await asyncio.sleep(ROUND_PAUSE)  # spreads visits over time (not a wait)
        await asyncio.gather(*(one(seq[r]) for seq in plan if len(seq) > r))
    return out


def check_collected(plan: list[list[T.Planned]], answers: dict[str, tuple[int, int, int]],
                    messages: dict[str, RawEvent]) -> list[T.Ev]:
    """Every answer as expected, every stored request on the topic once and intact;
    returns today's events with the collector's receive times and visitor ids."""
    out = []
    ids: dict[tuple[str, str, str, int], set[str]] = defaultdict(set)
    for seq in plan:
        for p in seq:
            h, (status, sent, done) = p.hit, answers[p.hit.tag]
            assert status == p.status, (h.tag, h.agent, h.ip, status)
            m = messages.get(h.tag)
            assert (m is not None) == p.stored, (h.tag, m)
            if m is None:
                continue
            b = h.body
            assert (m.website_id, m.event_type, m.url, m.path, m.referrer, m.user_agent) == (
                h.site.id, b["event_type"], b["url"], b["path"], b.get("referrer"),
                h.user_agent), h.tag
            assert (m.screen_width, m.screen_height, m.properties, m.name) == (
                b.get("screen_width"), b.get("screen_height"), b.get("properties"),
                b["properties"]["name"] if b["event_type"] == "custom" else None), h.tag
            assert (m.utm_source, m.utm_medium, m.utm_campaign) == tuple(
                b.get(f) for f in ("utm_source", "utm_medium", "utm_campaign")), h.tag
            assert (m.is_bot, m.is_excluded) == (
                T.AGENTS[h.agent].bot, h.site.is_excluded(h.ip)), h.tag
            assert sent <= m.received_at_ms <= done, (h.tag, sent, m.received_at_ms, done)
            ids[(h.site.id, h.ip, h.agent, m.received_at_ms // T.DAY_MS)].add(m.visitor_id)
            out.append(T.expect(h, m.received_at_ms, m.visitor_id, m.event_id))
    # One visitor id per client, site and day (the daily salt), distinct between clients.
    assert all(len(v) == 1 for v in ids.values()), ids
    assert len({next(iter(v)) for v in ids.values()}) == len(ids)
    return out


async def wait_applied(settings: CoreSettings, count: int, proc: Any, tmp: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 90
    while (applied := await asyncio.to_thread(applied_messages, settings)) < count:
        assert proc.poll() is None, log_tail(tmp, WORKER)
        assert loop.time() < deadline, f"{applied} of {count} applied\n" + log_tail(tmp, WORKER)
        await asyncio.sleep(0.3)


def cell(v: Any) -> str:
    """A CSV cell as the contract wants it (formula guard on text only)."""
    if v is None:
        return ""
    if isinstance(v, str):
        return "'" + v if v and v[0] in "=+-@\t\r" else v
    return str(v)


def csv_of(columns: list[str], rows: list[list[Any]]) -> list[list[str]]:
    return [columns] + [[cell(v) for v in row] for row in rows]


async def test_every_report_equals_a_plain_reference(core_settings: CoreSettings,
                                                     tmp_path: Any) -> None:
    settings = core_settings.model_copy(
        update={"topic_prefix": f"{core_settings.topic_prefix}-e2e{uuid.uuid4().hex[:6]}"})
    await ensure_topics(settings)
    start = dt.datetime.now(dt.UTC)
    today = start.date()
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute("SELECT tinytrail_ensure_event_partitions(%s, 14)",
                     (today - dt.timedelta(days=11),))
    cfg = api_settings(settings)
    key = (await create_admin(cfg, "reports e2e", None))["api_key"]
    clock = MutableClock(start)
    http = Http()
    tmp = str(tmp_path)
    proc = None
    try:
        async with running_api(cfg, clock) as api:
            sites = []
            for i, site_cfg in enumerate(T.SITE_CONFIGS):
                w = await http.admin(api, key, "POST", "/api/v1/websites", {
                    "domain": f"shop{i}-{uuid.uuid4().hex[:6]}.example", **site_cfg})
                sites.append(T.Site(w["id"], w["domain"], tuple(
                    (g["name"], g["pattern"]) for g in w["contentGroups"]),
                    tuple(w["excludedIps"])))

            # The worker first, settled, so that no rebalance meets fetched messages.
            proc = start_worker(settings, tmp, WORKER, {"TINYTRAIL_LOG_LEVEL": "INFO"})
            await wait_group(settings.kafka_bootstrap, f"{settings.topic_prefix}-worker", 1,
                             timeout=90)

            rnd = random.Random(20240607)
            days = [today - dt.timedelta(days=i) for i in range(9, 0, -1)]
            until = min(int(dt.datetime.combine(today, dt.time(), dt.UTC).timestamp() * 1000),
                        int(start.timestamp() * 1000) - 45 * 60_000)
            hist = T.history(rnd, sites, days, until, visitors_per_day=14)
            hist_raw = [T.raw_of(h, str(uuid.UUID(int=rnd.getrandbits(128), version=4)))
                        for h in hist]
            topic = raw_events_topic(settings)
            await produce(settings.kafka_bootstrap, topic, hist_raw)

            plan = T.today_plan(rnd, sites, visitors=16)
            async with running_collector(settings) as collector:
                answers = await send_today(http, collector, plan)
            stored = sum(p.stored for seq in plan for p in seq)
            msgs = await read_raw(settings.kafka_bootstrap, topic, len(hist) + stored)
            by_tag = {T.tag_of(m.url): m for m in msgs}
            assert len(by_tag) == len(msgs) == len(hist) + stored
            assert {t for t in by_tag if t.startswith("h")} == {h.tag for h in hist}
            today_evs = check_collected(plan, answers, {
                t: m for t, m in by_tag.items() if t.startswith("t")})
            events = [T.expect(h, r.received_at_ms, r.visitor_id, r.event_id)
                      for h, r in zip(hist, hist_raw, strict=True)] + today_evs

            await wait_applied(settings, len(msgs), proc, tmp)
            with psycopg.connect(settings.database_url) as conn:
                n = conn.execute("SELECT count(*) FROM events WHERE website_id = ANY(%s)",
                                 ([s.id for s in sites],)).fetchone()
            assert n is not None and n[0] == len(msgs)  # every event stored once

            clock.now = dt.datetime.now(dt.UTC)
            await compare_all(http, api, key, sites, events, clock.now)
    finally:
        if proc is not None:
            stop(proc)
        http.close()


async def compare_all(http: Http, api: str, key: str, sites: list[T.Site],
                      events: list[T.Ev], now: dt.datetime) -> None:
    today = now.date()
    day = dt.timedelta(days=1)
    visits = visits_of(events)
    checks: list[tuple[str, dict[str, Any], Any]] = []

    def ref(site: T.Site, first: dt.date, last: dt.date, bots: bool = False,
            group: str | None = None) -> Reference:
        return Reference(visits, site.id, first, last, bots, group)

    periods = {"today": (today, today), "yesterday": (today - day, today - day),
               "7d": (today - 6 * day, today), None: (today - 8 * day, today - 2 * day)}
    for si, site in enumerate(sites):
        for period, (first, last) in periods.items():
            for bots in (False, True):
                base: dict[str, Any] = {"website_id": site.id, "include_bots": str(bots).lower()}
                if period:
                    base["period"] = period
                else:
                    base |= {"start_date": first.isoformat(), "end_date": last.isoformat()}
                r = ref(site, first, last, bots)
                length = (last - first).days + 1
                prev = ref(site, first - length * day, first - day, bots)
                checks += [
                    ("summary", base, r.summary()),
                    ("summary", base | {"compare": "previous_period"}, r.summary(prev)),
                    ("pages", base, r.pages()),
                    ("devices", base, r.devices()),
                    ("flow", base, r.flow()),
                    ("custom-events", base, r.custom_events()),
                    ("custom-events", base | {"event_name": "signup_complete"},
                     r.custom_events("signup_complete")),
                ]
                checks += [("sources", base | {"group_by": g}, r.sources(g))
                           for g in ("channel", "domain", "utm")]
                checks += [("funnel", base | {"steps[]": s}, r.funnel(s)) for s in FUNNELS]
                for metric in METRICS:
                    checks.append(("timeseries", base | {"metric": metric},
                                   r.timeseries(metric)))
                    checks.append(("timeseries", base | {"metric": metric,
                                                         "path": PATH_OF_SITE[si]},
                                   r.timeseries(metric, PATH_OF_SITE[si])))

    site = sites[0]
    week = {"website_id": site.id, "period": "7d"}
    r7 = ref(site, today - 6 * day, today)
    # One content group: pages, flow, summary (compared), timeseries.
    g = ref(site, today - 6 * day, today, group="Blog")
    g_prev = ref(site, today - 13 * day, today - 7 * day, group="Blog")
    grp = week | {"content_group": "Blog"}
    checks += [("pages", grp, g.pages()), ("flow", grp, g.flow()),
               ("summary", grp | {"compare": "previous_period"}, g.summary(g_prev))]
    checks += [("timeseries", grp | {"metric": m}, g.timeseries(m)) for m in METRICS]
    # Pagination: small pages, page 2.
    checks += [
        ("pages", week | {"per_page": "3", "page": "2"}, r7.pages(2, 3)),
        ("sources", week | {"group_by": "channel", "per_page": "2", "page": "2"},
         r7.sources("channel", 2, 2)),
        ("custom-events", week | {"per_page": "1", "page": "2"}, r7.custom_events(None, 2, 1)),
        ("flow", week | {"per_page": "2", "page": "2"}, r7.flow(2, 2)),
    ]
    # CSV exports, parsed and compared cell by cell.
    csv_q = week | {"format": "csv"}
    s = r7.summary(ref(site, today - 13 * day, today - 7 * day))
    checks += [
        ("summary", csv_q | {"compare": "previous_period"}, csv_of(
            ["metric", "value", "previous", "change_pct"],
            [[m, v["value"], v["previous"], v["change_pct"]] for m, v in s["metrics"].items()])),
        ("pages", csv_q, csv_of(["path", "contentGroup", "pageviews", "uniquePageviews"],
                                [list(x.values()) for x in r7.pages()["rows"]])),
        ("sources", csv_q | {"group_by": "utm"}, csv_of(
            ["utmSource", "utmMedium", "utmCampaign", "visits"],
            [list(x.values()) for x in r7.sources("utm")["rows"]])),
        ("devices", csv_q, csv_of(["deviceType", "visits"], [
            [x["deviceType"], x["visits"]] for x in r7.devices()["device_types"]])),
        ("flow", csv_q, csv_of(["path", "entries"], [
            [x["path"], x["entries"]] for x in r7.flow()["landing_pages"]])),
        ("custom-events", csv_q, csv_of(["name", "count"], [
            [x["name"], x["count"]] for x in r7.custom_events()["rows"]])),
        ("timeseries", csv_q | {"metric": "bounce_rate"}, csv_of(["date", "value"], [
            [x["date"], x["value"]] for x in r7.timeseries("bounce_rate")["series"]])),
        ("funnel", csv_q | {"steps[]": FUNNELS[0]}, csv_of(
            ["step", "sessions", "conversion_rate"],
            [list(x.values()) for x in r7.funnel(FUNNELS[0])["funnel"]])),
    ]
    assert_coverage(events, visits, now)
    assert r7.sources("utm")["rows"] and g.page_rows() and r7.funnel(FUNNELS[0])[
        "funnel"][2]["sessions"] > 0

    sem = asyncio.Semaphore(10)

    async def run(name: str, query: dict[str, Any], want: Any) -> None:
        async with sem:
            got = await http.report(api, key, name, query)
        assert got == want, f"{name} {query}:\n got {got}\nwant {want}"

    await asyncio.gather(*(run(*c) for c in checks))
    await check_realtime(http, api, key, sites, events, now)


def assert_coverage(events: list[T.Ev], visits: list[Visit], now: dt.datetime) -> None:
    """The comparisons prove something only if the traffic has every case in it."""
    today = [e for e in events if e.day == now.date()]
    assert any(e.bot for e in today) and any(e.excluded for e in today)
    assert any(e.bot and e.excluded for e in today)
    assert {e.etype for e in today} == set(EVENT_TYPES)
    counted = [v for v in visits if v.views]
    firsts = [v.events[0] for v in counted]
    assert {e.channel for e in firsts} == {"Direct", "Organic Search", "Paid Search", "Social",
                                           "Email", "Referral"}
    assert {e.device for e in firsts} == {"desktop", "mobile", "tablet", "bot"}
    assert {e.screen for e in firsts} == {"320-375", "376-768", "769-1024", "1025-1440",
                                          "1441+", "unknown"}
    assert {e.group for e in events} == {None, "Guides", "Docs", "Blog", "Product"}
    assert any(not v.views for v in visits)  # a visitor without a visit
    assert any(v.bounced and len(v.events) > 1 for v in counted)  # scroll / close_tab
    assert any(len(v.views) == 1 and not v.bounced for v in counted)  # engaged single page
    assert any(b.ms - a.ms == T.GAP_MS for v in visits
               for a, b in zip(v.events, v.events[1:], strict=False))  # exactly 30 min
    # Midnight: one client's visit ends on one day, its next starts on the next day
    # under another visitor id.
    late = {(v.site, v.events[-1].ms // 1000) for v in visits
            if v.events[-1].ms % T.DAY_MS >= T.DAY_MS - 60_000}
    assert late and any(v.events[0].ms % T.DAY_MS < 600_000 for v in visits)


async def check_realtime(http: Http, api: str, key: str, sites: list[T.Site],
                         events: list[T.Ev], now: dt.datetime) -> None:
    """Realtime (humans, last 30 minutes, from Redis), JSON and CSV. The worker mirrors
    to Redis just after its COMMIT, so a few polls may precede the last batch's write."""
    now_ms = int(now.timestamp() * 1000)
    for site in sites:
        want = realtime(events, site.id, now_ms)
        assert want["active_visitors"] > 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while True:
            got = await http.report(api, key, "realtime", {"website_id": site.id})
            if got == want or loop.time() > deadline:
                break
            await asyncio.sleep(0.3)
        assert got == want, f"realtime {site.id}:\n got {got}\nwant {want}"
    got_csv = await http.report(api, key, "realtime", {"website_id": sites[0].id,
                                                       "format": "csv"})
    want = realtime(events, sites[0].id, now_ms)
    assert got_csv == csv_of(["path", "visitors"],
                             [[x["path"], x["visitors"]] for x in want["top_pages"]])
