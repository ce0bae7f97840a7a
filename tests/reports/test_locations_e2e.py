"""Countries end to end: real collector, Kafka, a real worker process and the real API.

Visitors from Germany (IPv4 and IPv6), the United Kingdom (IPv4 and IPv4-mapped IPv6),
Japan and a private address reach the real collector through its trusted proxy's
X-Forwarded-For, with a German crawler and an excluded Russian address besides. The raw
topic must carry only the country codes (no address), the stored events their codes,
and the locations report (JSON, pages of it, CSV, with and without bots), the summary
and the pages report filtered by country must show exactly the planned figures.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import urllib.parse
import uuid
from collections import Counter
from typing import Any

import orjson
import psycopg
import pytest

from api.bootstrap import create_admin
from tests.api.apisupport import MutableClock
from tests.reports.e2e_services import Http, api_settings, read_raw, running_api, running_collector
from tests.streams.workerproc import applied_messages, log_tail, start_worker, stop, wait_group
from tinytrail.settings import CoreSettings
from tinytrail.topics import ensure_topics, raw_events_topic

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.kafka, pytest.mark.slow]

WORKER = "locations-e2e"
CHROME = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/126.0.0.0 Safari/537.36")
BOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
# (X-Forwarded-For, user agent, paths viewed in one visit, country the database lists)
VISITORS = [
    ("193.99.144.80", CHROME, ["/a", "/b"], "DE"),
    ("2a00:1450:4001:80b::200e", CHROME, ["/a"], "DE"),
    ("81.2.69.160", CHROME, ["/a"], "GB"),
    ("::ffff:81.2.69.161", CHROME, ["/c"], "GB"),  # IPv4-mapped: looked up as IPv4
    ("202.12.27.33", CHROME, ["/b"], "JP"),
    ("10.1.2.3", CHROME, ["/a"], None),  # private: no country
    ("193.99.144.81", BOT, ["/a"], "DE"),  # a crawler: only with include_bots
    ("77.88.8.8", CHROME, ["/a"], "RU"),  # excluded address: never counted
]
EXCLUDED = "77.88.8.0/24"


async def wait_applied(settings: CoreSettings, count: int, proc: Any, tmp: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 90
    while (applied := await asyncio.to_thread(applied_messages, settings)) < count:
        assert proc.poll() is None, log_tail(tmp, WORKER)
        assert loop.time() < deadline, f"{applied} of {count} applied\n" + log_tail(tmp, WORKER)
        await asyncio.sleep(0.3)


async def status(http: Http, api: str, key: str, name: str, query: dict[str, str]) -> int:
    q = urllib.parse.urlencode(query)
    resp = await http.fetch(f"{api}/api/v1/reports/{name}?{q}", headers={"X-API-KEY": key})
    return resp.code


async def test_countries_from_collector_to_reports(core_settings: CoreSettings,
                                                   tmp_path: Any) -> None:
    settings = core_settings.model_copy(
        update={"topic_prefix": f"{core_settings.topic_prefix}-geo{uuid.uuid4().hex[:6]}"})
    await ensure_topics(settings)
    start = dt.datetime.now(dt.UTC)
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute("SELECT tinytrail_ensure_event_partitions(%s, 3)",
                     (start.date() - dt.timedelta(days=1),))
    cfg = api_settings(settings)
    key = (await create_admin(cfg, "locations e2e", None))["api_key"]
    clock = MutableClock(start)
    http = Http()
    tmp = str(tmp_path)
    proc = None
    try:
        async with running_api(cfg, clock) as api:
            site = await http.admin(api, key, "POST", "/api/v1/websites", {
                "domain": f"geo-{uuid.uuid4().hex[:6]}.example", "excluded_ips": [EXCLUDED]})
            proc = start_worker(settings, tmp, WORKER, {"TINYTRAIL_LOG_LEVEL": "INFO"})
            await wait_group(settings.kafka_bootstrap, f"{settings.topic_prefix}-worker", 1,
                             timeout=90)
            sent = 0
            async with running_collector(settings) as collector:
                for ip, ua, paths, _ in VISITORS:
                    for path in paths:
                        resp = await http.collect(collector, {
                            "website_id": site["id"], "event_type": "page_view",
                            "url": f"https://{site['domain']}{path}", "path": path}, ip, ua)
                        bot_or_excluded = ua == BOT or ip.startswith("77.88.8.")
                        assert resp.code == (204 if bot_or_excluded else 202), (ip, resp.code)
                        sent += 1

            msgs = await read_raw(settings.kafka_bootstrap, raw_events_topic(settings), sent)
            assert len(msgs) == sent
            assert Counter(m.country for m in msgs) == Counter(
                c for _, _, paths, c in VISITORS for _ in paths)
            for m in msgs:  # only the code travels: no address in any message
                wire = m.to_bytes()
                for ip, *_ in VISITORS:
                    assert ip.encode() not in wire and ip.split(":")[-1].encode() not in wire

            await wait_applied(settings, len(msgs), proc, tmp)
            with psycopg.connect(settings.database_url) as conn:
                stored = conn.execute(
                    "SELECT country, count(*) FROM events WHERE website_id = %s GROUP BY 1",
                    (site["id"],)).fetchall()
            assert dict(stored) == {"DE": 4, "GB": 2, "JP": 1, None: 1, "RU": 1}

            q = {"website_id": site["id"], "period": "today"}
            loc = await http.report(api, key, "locations", q)
            assert loc["rows"] == [
                {"country": "DE", "countryName": "Germany", "visits": 2},
                {"country": "GB", "countryName": "United Kingdom", "visits": 2},
                {"country": "JP", "countryName": "Japan", "visits": 1},
                {"country": None, "countryName": None, "visits": 1},
            ]
            assert (loc["page"], loc["per_page"]) == (1, 50)
            page2 = await http.report(api, key, "locations", {**q, "per_page": "2", "page": "2"})
            assert [r["country"] for r in page2["rows"]] == ["JP", None]
            bots = await http.report(api, key, "locations", {**q, "include_bots": "true"})
            assert bots["rows"][0] == {"country": "DE", "countryName": "Germany", "visits": 3}
            csv_rows = await http.report(api, key, "locations", {**q, "format": "csv"})
            assert csv_rows == [["country", "countryName", "visits"], ["DE", "Germany", "2"],
                                ["GB", "United Kingdom", "2"], ["JP", "Japan", "1"],
                                ["", "", "1"]]

            whole = await http.report(api, key, "summary", q)
            de = await http.report(api, key, "summary", {**q, "country": "DE"})
            m = {k: v["value"] for k, v in de["metrics"].items()}
            assert m == {"visits": 2, "unique_visitors": 2, "pageviews": 3, "bounce_rate": 50,
                         "avg_session_duration_sec": m["avg_session_duration_sec"]}
            assert whole["metrics"]["visits"]["value"] == sum(r["visits"] for r in loc["rows"])
            nowhere = await http.report(api, key, "summary", {**q, "country": "FR"})
            assert nowhere["metrics"]["visits"]["value"] == 0
            cmp = await http.report(api, key, "summary",
                                    {**q, "country": "JP", "compare": "previous_period"})
            assert cmp["metrics"]["visits"] == {"value": 1, "previous": 0, "change_pct": None}
            csv_summary = await http.report(api, key, "summary",
                                            {**q, "country": "GB", "format": "csv"})
            assert ["visits", "2", "", ""] in csv_summary

            pages_de = await http.report(api, key, "pages", {**q, "country": "DE"})
            assert pages_de["rows"] == [
                {"path": "/a", "contentGroup": None, "pageviews": 2, "uniquePageviews": 2},
                {"path": "/b", "contentGroup": None, "pageviews": 1, "uniquePageviews": 1},
            ]
            pages_gb = await http.report(api, key, "pages", {**q, "country": "GB",
                                                             "format": "csv"})
            assert pages_gb == [["path", "contentGroup", "pageviews", "uniquePageviews"],
                                ["/a", "", "1", "1"], ["/c", "", "1", "1"]]

            for name, bad in [("summary", {"country": "de"}), ("pages", {"country": "DEU"}),
                              ("pages", {"country": ""}), ("devices", {"country": "DE"}),
                              ("locations", {"country": "DE"}),
                              ("locations", {"content_group": "G"}),
                              ("summary", {"country": "DE", "content_group": "G"})]:
                assert await status(http, api, key, name, {**q, **bad}) == 400, (name, bad)
            body = orjson.loads((await http.fetch(f"{api}/api/v1/openapi.json")).body)
            assert "DB-IP" in body["paths"]["/api/v1/reports/locations"]["get"]["description"]
    finally:
        if proc is not None:
            stop(proc)
        http.close()
