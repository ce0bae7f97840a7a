"""Every aggregate report against rows inserted directly into a real Postgres.

Two websites get random daily rows (several partitions, bot and human rows, a
path that changes content group, empty days); each report is compared with a
plain Python recomputation from the same rows (tests/reports/aggdata.py).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from api.reports import custom_events, devices, flow, pages, sources, summary, timeseries
from api.reports.params import ReportParams, parse_params
from api.reports.store import first_day
from tests.reports import aggdata as A

pytestmark = pytest.mark.postgres

TODAY = dt.date(2026, 3, 1)
# 12 recent days with gaps, plus days a year back (yoy) and far back (period=all).
DAYS = [TODAY - dt.timedelta(days=i) for i in range(12) if i not in (3, 4)] + [
    dt.date(2025, 2, 24), dt.date(2025, 2, 27), dt.date(2024, 6, 1)]


@pytest.fixture(scope="module")
def data(_pg_database: str) -> tuple[A.Dataset, A.Dataset]:
    with psycopg.connect(_pg_database, autocommit=True) as conn:
        a = A.generate(A.make_site(conn), DAYS, seed=1)
        b = A.generate(A.make_site(conn), DAYS, seed=2)  # a neighbour that must not leak in
        A.insert(conn, a)
        A.insert(conn, b)
    return a, b


def params(site: str, **q: str) -> ReportParams:
    return parse_params(lambda n: {"website_id": site, **q}.get(n), TODAY, dt.date(2024, 6, 1))


COMMON = [
    pytest.param({}, id="7d"),
    pytest.param({"period": "30d", "include_bots": "true"}, id="30d-bots"),
    pytest.param({"start_date": "2026-02-20", "end_date": "2026-02-27"}, id="custom"),
    pytest.param({"period": "all"}, id="all"),
    pytest.param({"period": "today"}, id="today"),
]


@pytest.mark.parametrize(
    "q",
    [
        *COMMON,
        pytest.param({"compare": "previous_period"}, id="prev"),
        pytest.param({"compare": "yoy", "include_bots": "true"}, id="yoy-bots"),
        pytest.param({"period": "yesterday", "compare": "previous_period"}, id="zero-previous"),
    ],
)
async def test_summary(pool: AsyncConnectionPool, data: Any, q: dict[str, str]) -> None:
    ds = data[0]
    p = params(ds.website_id, **q)

    def figures(start: dt.date, end: dt.date) -> dict[str, Any]:
        s = A.site_sums(ds, start, end, p.include_bots)
        return {"visits": s["visits"], "unique_visitors": s["visitors"],
                "pageviews": s["pageviews"], "bounce_rate": A.rate(s["bounces"], s["visits"]),
                "avg_session_duration_sec": A.seconds(s["duration_sec"], s["visits"])}

    got = await summary.compute(pool, p)
    now = figures(p.range.start, p.range.end)
    assert got["period"] == {"start": p.range.start.isoformat(), "end": p.range.end.isoformat()}
    if p.compare_range is None:
        assert "comparison" not in got
        assert got["metrics"] == {m: {"value": v} for m, v in now.items()}
        return
    c = p.compare_range
    before = figures(c.start, c.end)
    assert got["comparison"] == f"{c.start} to {c.end}"
    assert got["metrics"] == {
        m: {"value": now[m], "previous": before[m], "change_pct": A.change(now[m], before[m])}
        for m in now}


@pytest.mark.parametrize("group", ["Blog", "Docs", "Nobody"])
async def test_summary_for_a_content_group(pool: AsyncConnectionPool, data: Any,
                                           group: str) -> None:
    ds = data[0]
    p = params(ds.website_id, period="30d", content_group=group, compare="previous_period")
    got = await summary.compute(pool, p)
    for rng, field in ((p.range, "value"), (p.compare_range, "previous")):
        assert rng is not None
        pages_ = A.dim_sums(ds, "page", rng.start, rng.end, False, by=("grp",))
        pg = pages_.get((group,), dict.fromkeys(A.DIM_COLS, 0))
        cg = A.dim_sums(ds, "content_group", rng.start, rng.end, False).get(
            (group,), dict.fromkeys(A.DIM_COLS, 0))
        m = got["metrics"]
        assert m["visits"][field] == cg["unique_pageviews"]
        assert m["unique_visitors"][field] is None
        assert m["pageviews"][field] == pg["pageviews"]
        assert m["bounce_rate"][field] == A.rate(pg["bounces"], pg["entries"])
        assert m["avg_session_duration_sec"][field] == A.seconds(pg["duration_sec"], pg["entries"])
    assert got["metrics"]["unique_visitors"]["change_pct"] is None


@pytest.mark.parametrize(
    "q", [*COMMON, pytest.param({"period": "30d", "content_group": "Docs"}, id="group")])
async def test_pages_in_full_and_page_by_page(pool: AsyncConnectionPool, data: Any,
                                             q: dict[str, str]) -> None:
    ds = data[0]
    p = params(ds.website_id, **q)
    where = {"grp": p.content_group} if p.content_group else None
    sums = A.dim_sums(ds, "page", p.range.start, p.range.end, p.include_bots,
                      by=("key", "grp"), where=where)
    expected = [{"path": k, "contentGroup": g or None, "pageviews": n,
                 "uniquePageviews": sums[(k, g)]["unique_pageviews"]}
                for k, g, n in A.ranked(sums, "pageviews")]
    got = await pages.compute(pool, p)
    assert (got["page"], got["per_page"]) == (1, 50)
    assert got["rows"] == expected
    paged: list[dict[str, Any]] = []
    for page in range(1, 10):
        chunk = await pages.compute(pool, params(ds.website_id, **q, page=str(page),
                                                  per_page="2"))
        assert chunk["page"] == page and chunk["per_page"] == 2 and len(chunk["rows"]) <= 2
        paged += chunk["rows"]
    assert paged == expected


async def test_a_path_whose_group_changed_appears_once_per_group(
        pool: AsyncConnectionPool, data: Any) -> None:
    got = await pages.compute(pool, params(data[0].website_id, period="30d"))
    docs = {r["contentGroup"] for r in got["rows"] if r["path"] == "/docs"}
    assert docs == {"Docs", None}


@pytest.mark.parametrize(("group_by", "dim"), [("channel", "channel"), ("domain", "referrer"),
                                               ("utm", "utm")])
@pytest.mark.parametrize("q", COMMON)
async def test_sources(pool: AsyncConnectionPool, data: Any, group_by: str, dim: str,
                       q: dict[str, str]) -> None:
    ds = data[0]
    p = params(ds.website_id, **q)
    sums = A.dim_sums(ds, dim, p.range.start, p.range.end, p.include_bots)
    expected = []
    for key, n in A.ranked(sums, "visits"):
        if group_by == "channel":
            expected.append({"channel": key, "visits": n})
        elif group_by == "domain":
            expected.append({"referrer": key, "visits": n})
        else:
            s, m, c = key.split("\x1f")
            expected.append({"utmSource": s or None, "utmMedium": m or None,
                             "utmCampaign": c or None, "visits": n})
    got = await sources.compute(pool, p, group_by)
    assert got["rows"] == expected
    assert sources.csv_rows(got) == [tuple(r.values()) for r in expected]
    assert expected, "the dataset has rows for every grouping"
    assert list(sources.csv_columns(group_by)) == list(got["rows"][0])


@pytest.mark.parametrize("q", COMMON)
async def test_devices(pool: AsyncConnectionPool, data: Any, q: dict[str, str]) -> None:
    ds = data[0]
    p = params(ds.website_id, **q)
    got = await devices.compute(pool, p)
    for dim, name, field in (("device", "device_types", "deviceType"),
                             ("browser", "browsers", "browserFamily"),
                             ("os", "os_families", "osFamily"),
                             ("screen", "screen_resolutions", "bucket")):
        sums = A.dim_sums(ds, dim, p.range.start, p.range.end, p.include_bots)
        assert got[name] == [{field: k, "visits": n} for k, n in A.ranked(sums, "visits")]
    assert list(got) == ["period", "device_types", "browsers", "os_families",
                         "screen_resolutions"]


@pytest.mark.parametrize(
    "q", [*COMMON, pytest.param({"period": "30d", "content_group": "Blog"}, id="group"),
          pytest.param({"period": "30d", "per_page": "2", "page": "2"}, id="page-2")])
async def test_flow(pool: AsyncConnectionPool, data: Any, q: dict[str, str]) -> None:
    ds = data[0]
    p = params(ds.website_id, **q)
    where = {"grp": p.content_group} if p.content_group else None
    sums = A.dim_sums(ds, "page", p.range.start, p.range.end, p.include_bots, where=where)
    window = slice(p.offset, p.offset + p.per_page)
    got = await flow.compute(pool, p)
    assert got == {
        "period": p.range.label(),
        "landing_pages": [{"path": k, "entries": n} for k, n in A.ranked(sums, "entries")][window],
        "exit_pages": [{"path": k, "exits": n} for k, n in A.ranked(sums, "exits")][window],
    }


@pytest.mark.parametrize("name", [None, "signup", "never-sent"])
@pytest.mark.parametrize("q", COMMON)
async def test_custom_events(pool: AsyncConnectionPool, data: Any, name: str | None,
                             q: dict[str, str]) -> None:
    ds = data[0]
    p = params(ds.website_id, **q)
    where = {"key": name} if name else None
    sums = A.dim_sums(ds, "custom_event", p.range.start, p.range.end, p.include_bots,
                      where=where)
    got = await custom_events.compute(pool, p, name)
    assert got["rows"] == [{"name": k, "count": n} for k, n in A.ranked(sums, "events")]


@pytest.mark.parametrize("metric", timeseries.METRICS)
@pytest.mark.parametrize(
    ("path", "group"),
    [pytest.param(None, None, id="site"), pytest.param("/blog/a", None, id="path"),
     pytest.param(None, "Blog", id="group"), pytest.param("/docs", "Docs", id="path-group"),
     pytest.param("/nowhere", None, id="unknown-path")])
async def test_timeseries(pool: AsyncConnectionPool, data: Any, metric: str,
                          path: str | None, group: str | None) -> None:
    ds = data[0]
    q = {"period": "30d", "include_bots": "true"}
    if group:
        q["content_group"] = group
    p = params(ds.website_id, **q)
    got = await timeseries.compute(pool, p, timeseries.Extra(metric, path))
    assert (got["metric"], got["path"]) == (metric, path or "*")
    assert len(got["series"]) == 30
    for point in got["series"]:
        day = dt.date.fromisoformat(point["date"])
        assert point["value"] == _reference_point(ds, day, metric, path, group), point


def _reference_point(ds: A.Dataset, day: dt.date, metric: str, path: str | None,
                     group: str | None) -> float:
    where: dict[str, Any] = {}
    if path:
        where["key"] = path
    if group:
        where["grp"] = group
    pg = A.dim_sums(ds, "page", day, day, True, by=(), where=where).get(
        (), dict.fromkeys(A.DIM_COLS, 0))
    if not path and not group:
        s = A.site_sums(ds, day, day, True)
        site = {"visits": s["visits"], "pageviews": s["pageviews"],
                "bounce_rate": A.rate(s["bounces"], s["visits"]),
                "avg_session_duration": A.seconds(s["duration_sec"], s["visits"])}
        if metric in site:
            return site[metric]
    if metric == "visits":
        if path:
            return pg["unique_pageviews"]
        cg = A.dim_sums(ds, "content_group", day, day, True).get((group,))
        return cg["unique_pageviews"] if cg else 0
    return {"pageviews": pg["pageviews"], "unique_pageviews": pg["unique_pageviews"],
            "landing_page_entries": pg["entries"], "exit_page_exits": pg["exits"],
            "bounce_rate": A.rate(pg["bounces"], pg["entries"]),
            "avg_session_duration": A.seconds(pg["duration_sec"], pg["entries"])}[metric]


async def test_empty_days_are_zero(pool: AsyncConnectionPool, data: Any) -> None:
    p = params(data[0].website_id, start_date="2026-02-25", end_date="2026-02-26")
    got = await timeseries.compute(pool, p, timeseries.Extra("bounce_rate", None))
    assert got["series"] == [{"date": "2026-02-25", "value": 0},
                             {"date": "2026-02-26", "value": 0}]


async def test_first_day_is_first_data_day_else_creation_day(
        pool: AsyncConnectionPool, data: Any, pg_dsn: str) -> None:
    assert await first_day(pool, data[0].website_id) == dt.date(2024, 6, 1)
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        empty = A.make_site(conn, created=dt.date(2025, 12, 24))
    assert await first_day(pool, empty) == dt.date(2025, 12, 24)
