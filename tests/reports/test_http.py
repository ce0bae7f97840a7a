"""The report endpoints over HTTP on a live API: auth scoping, 400s, CSV, ETag/304.

The API runs in the test's own event loop on a loopback port with an injected
clock (today = 2026-03-01), on the session's Postgres and Redis.
"""

from __future__ import annotations

import datetime as dt
import urllib.parse
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson
import psycopg
import pytest
import redis.asyncio as aioredis
import tornado.httpclient
import tornado.httpserver
import tornado.netutil

from api.app import make_app
from api.deps import ApiDeps
from api.settings import ApiSettings
from api.userstore import insert_user
from tests.reports import aggdata as A
from tinytrail.db import make_pool, open_pool

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

SECRET = "reports-test-secret-key-of-at-least-32-chars"
NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
DAYS = [dt.date(2026, 3, 1) - dt.timedelta(days=i) for i in range(10)]


@dataclass
class Live:
    base: str
    client: tornado.httpclient.AsyncHTTPClient
    site_a: str
    site_b: str
    user_a: str
    user_b: str
    admin: str
    data_a: A.Dataset
    dsn: str

    async def get(self, report: str, key: str | None, headers: dict[str, str] | None = None,
                  **q: Any) -> tornado.httpclient.HTTPResponse:
        query = urllib.parse.urlencode(q, doseq=True)
        h = dict(headers or {})
        if key:
            h["X-API-KEY"] = key
        return await self.client.fetch(f"{self.base}/api/v1/reports/{report}?{query}",
                                       headers=h, raise_error=False)


@pytest.fixture
async def live(pg_dsn: str, redis_url: str) -> AsyncIterator[Live]:
    settings = ApiSettings(database_url=pg_dsn, redis_url=redis_url, secret_key=SECRET,
                           api_rate_limit=1_000_000, api_auth_fail_limit=1_000_000,
                           log_format="text", db_pool_max=4)
    pool = make_pool(settings, name="reports-http", max_size=4)
    await open_pool(pool)
    redis = aioredis.Redis.from_url(redis_url)
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        site_a, site_b = A.make_site(conn), A.make_site(conn)
        acc = {s: str(conn.execute("SELECT account_id FROM websites WHERE id = %s",
                                   (s,)).fetchone()[0]) for s in (site_a, site_b)}
        data_a = A.generate(site_a, DAYS, seed=3)
        A.insert(conn, data_a)
    async with pool.connection() as conn:
        _, user_a = await insert_user(conn, SECRET, acc[site_a], "user", None)
        _, user_b = await insert_user(conn, SECRET, acc[site_b], "user", None)
        _, admin = await insert_user(conn, SECRET, acc[site_b], "admin", None)
    deps = ApiDeps(settings=settings, pool=pool, redis=redis, clock=lambda: NOW)
    sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
    server = tornado.httpserver.HTTPServer(make_app(deps))
    server.add_sockets(sockets)
    port = sockets[0].getsockname()[1]
    client = tornado.httpclient.AsyncHTTPClient(force_instance=True)
    try:
        yield Live(f"http://127.0.0.1:{port}", client, site_a, site_b, user_a, user_b, admin,
                   data_a, pg_dsn)
    finally:
        client.close()
        server.stop()
        await server.close_all_connections()
        await redis.aclose()
        await pool.close()


def body(resp: tornado.httpclient.HTTPResponse) -> Any:
    return orjson.loads(resp.body)


AGG_REPORTS = ["summary", "pages", "sources", "devices", "flow", "custom-events", "timeseries"]


@pytest.mark.parametrize("report", AGG_REPORTS)
async def test_auth_and_account_scoping(live: Live, report: str) -> None:
    assert (await live.get(report, None, website_id=live.site_a)).code == 401
    assert (await live.get(report, "tt_" + "x" * 32, website_id=live.site_a)).code == 401
    other = await live.get(report, live.user_b, website_id=live.site_a)
    assert other.code == 404 and body(other)["error"]["code"] == "NOT_FOUND"
    own = await live.get(report, live.user_a, website_id=live.site_a)
    assert own.code == 200 and body(own)["status"] == "success"
    assert body(own)["data"]["period"] == {"start": "2026-02-23", "end": "2026-03-01"}
    admin = await live.get(report, live.admin, website_id=live.site_a)
    assert admin.code == 200 and admin.body == own.body


async def test_summary_over_http_equals_the_reference(live: Live) -> None:
    resp = await live.get("summary", live.user_a, website_id=live.site_a, period="7d")
    s = A.site_sums(live.data_a, DAYS[6], DAYS[0], False)
    assert body(resp)["data"]["metrics"]["visits"] == {"value": s["visits"]}
    assert body(resp)["data"]["metrics"]["pageviews"] == {"value": s["pageviews"]}


@pytest.mark.parametrize(
    ("report", "q", "name"),
    [
        pytest.param("summary", {}, "website_id", id="missing-website"),
        pytest.param("summary", {"website_id": "x"}, "website_id", id="bad-website"),
        pytest.param("summary", {"period": "2w"}, "period", id="period"),
        pytest.param("pages", {"per_page": "501"}, "per_page", id="per-page"),
        pytest.param("pages", {"page": "0"}, "page", id="page"),
        pytest.param("pages", {"start_date": "2026-03-01"}, "end_date", id="end-date"),
        pytest.param("summary", {"compare": "x"}, "compare", id="compare"),
        pytest.param("devices", {"include_bots": "1"}, "include_bots", id="include-bots"),
        pytest.param("flow", {"format": "pdf"}, "format", id="format"),
        pytest.param("sources", {"group_by": "x"}, "group_by", id="group-by"),
        pytest.param("sources", {"content_group": "Blog"}, "content_group", id="cg-sources"),
        pytest.param("devices", {"content_group": "Blog"}, "content_group", id="cg-devices"),
        pytest.param("custom-events", {"content_group": "Blog"}, "content_group", id="cg-ce"),
        pytest.param("timeseries", {"metric": "x"}, "metric", id="metric"),
        pytest.param("timeseries", {"path": "about"}, "path", id="path"),
        pytest.param("funnel", {"steps[]": ["/a"]}, "steps[]", id="one-step"),
        pytest.param("funnel", {}, "steps[]", id="no-steps"),
        pytest.param("summary", {"country": "DE\n"}, "country", id="country-newline"),
        pytest.param("pages", {"country": " DE"}, "country", id="country-space"),
        pytest.param("summary", {"country": ["DE", "GB"]}, "country", id="country-twice"),
    ],
)
async def test_bad_parameters_are_400_naming_them(live: Live, report: str, q: dict[str, Any],
                                                  name: str) -> None:
    if "website_id" not in q and name != "website_id":
        q = {"website_id": live.site_a, **q}
    resp = await live.get(report, live.user_a, **q)
    assert resp.code == 400, resp.body
    err = body(resp)["error"]
    assert err["code"] == "INVALID_PAYLOAD" and err["message"].startswith(name)


async def test_etag_and_304_until_the_data_changes(live: Live) -> None:
    first = await live.get("pages", live.user_a, website_id=live.site_a)
    etag = first.headers["Etag"]
    assert first.code == 200 and etag.startswith('"')
    again = await live.get("pages", live.user_a, {"If-None-Match": etag}, website_id=live.site_a)
    assert again.code == 304 and again.body == b"" and again.headers["Etag"] == etag
    other = await live.get("pages", live.user_a, {"If-None-Match": etag},
                           website_id=live.site_a, period="30d")
    assert other.code == 200 and other.headers["Etag"] != etag
    with psycopg.connect(live.dsn, autocommit=True) as conn:
        conn.execute("UPDATE agg_dim_daily SET pageviews = pageviews + 1000 WHERE website_id = %s"
                     " AND dim = 'page' AND key = '/' AND day = '2026-03-01'", (live.site_a,))
    changed = await live.get("pages", live.user_a, {"If-None-Match": etag},
                             website_id=live.site_a)
    assert changed.code == 200 and changed.headers["Etag"] != etag


async def test_csv_export_headers_columns_and_formula_guard(live: Live) -> None:
    resp = await live.get("pages", live.user_a, website_id=live.site_a, format="csv",
                          period="30d")
    assert resp.code == 200
    assert resp.headers["Content-Type"].startswith("text/csv")
    assert resp.headers["Content-Disposition"] == (
        'attachment; filename="pages-2026-01-31-2026-03-01.csv"')
    lines = resp.body.decode("utf-8").split("\r\n")
    assert lines[0] == "path,contentGroup,pageviews,uniquePageviews"
    assert any(line.startswith("'=cmd()") for line in lines)
    summary = await live.get("summary", live.user_a, website_id=live.site_a, format="csv",
                             compare="previous_period")
    rows = summary.body.decode().split("\r\n")
    assert rows[0] == "metric,value,previous,change_pct"
    assert [r.split(",")[0] for r in rows[1:6]] == [
        "visits", "unique_visitors", "pageviews", "bounce_rate", "avg_session_duration_sec"]


@pytest.mark.parametrize(
    ("report", "extra", "header"),
    [
        pytest.param("sources", {"group_by": "utm"}, "utmSource,utmMedium,utmCampaign,visits",
                     id="sources-utm"),
        pytest.param("devices", {}, "deviceType,visits", id="devices"),
        pytest.param("flow", {}, "path,entries", id="flow"),
        pytest.param("custom-events", {}, "name,count", id="custom-events"),
        pytest.param("timeseries", {}, "date,value", id="timeseries"),
        pytest.param("funnel", {"steps[]": ["/", "/pricing"]}, "step,sessions,conversion_rate",
                     id="funnel"),
    ],
)
async def test_csv_columns(live: Live, report: str, extra: dict[str, Any], header: str) -> None:
    resp = await live.get(report, live.user_a, website_id=live.site_a, format="csv", **extra)
    assert resp.code == 200, resp.body
    assert resp.body.decode().split("\r\n")[0] == header
    assert f'filename="{report}-2026-02-23-2026-03-01.csv"' in resp.headers[
        "Content-Disposition"]


async def test_funnel_route_answers_in_the_envelope(live: Live) -> None:
    resp = await live.get("funnel", live.user_a, website_id=live.site_a,
                          **{"steps[]": ["/", "/pricing", "/signup"]})
    assert resp.code == 200
    assert body(resp)["data"] == {
        "period": {"start": "2026-02-23", "end": "2026-03-01"},
        "funnel": [{"step": "/", "sessions": 0, "conversion_rate": 100},
                   {"step": "/pricing", "sessions": 0, "conversion_rate": 0},
                   {"step": "/signup", "sessions": 0, "conversion_rate": 0}]}


async def test_realtime_reads_the_workers_redis_state(live: Live, redis_url: str) -> None:
    from tinytrail.realtime import read_realtime, write_realtime

    now_ms = int(NOW.timestamp() * 1000)
    client = aioredis.Redis.from_url(redis_url)
    try:
        site = live.site_a
        await write_realtime(
            client,
            {site: {"a" * 64: now_ms - 1000, "b" * 64: now_ms - 5000, "c" * 64: now_ms - 10**8}},
            {site: {"/\x1f" + "a" * 64: now_ms - 1000, "=x\x1f" + "b" * 64: now_ms - 5000}},
            {(site, now_ms // 60_000): {"0|page_view": 3, "1|scroll_50": 1}},
            now_ms,
        )
        want = await read_realtime(client, site, now_ms)
    finally:
        await client.aclose()
    resp = await live.get("realtime", live.user_a, website_id=site)
    assert resp.code == 200 and body(resp)["data"] == want
    assert want["active_visitors"] == 2  # the third visitor is older than 30 minutes
    assert (await live.get("realtime", live.user_b, website_id=site)).code == 404
    csv_resp = await live.get("realtime", live.user_a, website_id=site, format="csv")
    lines = csv_resp.body.decode().split("\r\n")
    assert lines[0] == "path,visitors" and "'=x,1" in lines
    assert 'filename="realtime-2026-03-01-2026-03-01.csv"' in csv_resp.headers[
        "Content-Disposition"]
