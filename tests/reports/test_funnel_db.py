"""The funnel over stored events in a real Postgres, against the plain reference of
tests/reports/funnel_reference.py."""

from __future__ import annotations

import datetime as dt
import random
import uuid
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from api.reports import funnel
from api.reports.params import parse_params
from tests.reports import aggdata as A
from tests.reports.funnel_reference import reference
from tinytrail.envelope import ApiError

pytestmark = pytest.mark.postgres

TODAY = dt.date(2026, 3, 1)
PATHS = ["/", "/pricing", "/signup", "/onboarding", "/blog/x"]
GROUPS = {"/blog/x": "Blog", "/pricing": "Money", "/signup": "Money"}
OTHER = [("outbound_link", None), ("custom", "signup_complete"), ("custom", "video"),
         ("scroll_50", None)]


@pytest.fixture(scope="module")
def events(_pg_database: str) -> tuple[str, list[dict[str, Any]]]:
    rnd = random.Random(7)
    rows: list[dict[str, Any]] = []
    with psycopg.connect(_pg_database, autocommit=True) as conn:
        site = A.make_site(conn)
        conn.execute("SELECT tinytrail_ensure_event_partitions(%s, 5)",
                     (TODAY - dt.timedelta(days=3),))
        for n in range(300):
            day = TODAY - dt.timedelta(days=rnd.randint(0, 3))  # day -3 is outside the 3 days
            sid, bot = str(uuid.uuid4()), rnd.random() < 0.1
            t = dt.datetime.combine(day, dt.time(), dt.UTC) + dt.timedelta(
                seconds=rnd.randint(0, 80000))
            for _ in range(rnd.randint(1, 8)):
                t += dt.timedelta(seconds=rnd.randint(1, 300))
                if rnd.random() < 0.7:
                    path = rnd.choice(PATHS)
                    etype, name = "page_view", None
                else:
                    path = rnd.choice(PATHS)
                    etype, name = rnd.choice(OTHER)
                rows.append({"session_id": sid, "received_at": t, "event_type": etype,
                             "event_name": name, "path": path,
                             "content_group": GROUPS.get(path), "is_bot": bot,
                             "is_excluded": rnd.random() < 0.05, "visitor": f"v{n}"})
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO events (event_id, received_at, website_id, visitor_id, session_id,"
                " event_type, event_name, url, path, referrer_channel, screen_bucket,"
                " browser_family, os_family, device_type, content_group, is_bot, is_excluded,"
                " kafka_partition, kafka_offset) VALUES (gen_random_uuid(), %s, %s, %s, %s, %s,"
                " %s, 'https://x.example' || %s, %s, 'Direct', 'unknown', 'Other', 'Other',"
                " 'desktop', %s, %s, %s, 0, 0)",
                [(r["received_at"], site, r["visitor"], r["session_id"], r["event_type"],
                  r["event_name"], r["path"], r["path"], r["content_group"], r["is_bot"],
                  r["is_excluded"]) for r in rows])
    return site, rows


@pytest.mark.parametrize(
    ("steps", "q"),
    [
        pytest.param(["/pricing", "/signup", "/onboarding"], {"period": "today"}, id="today"),
        pytest.param(["/pricing", "/signup", "/onboarding"], {"start_date": "2026-02-27",
                     "end_date": "2026-03-01"}, id="three-paths"),
        pytest.param(["page_view", "signup_complete"], {"period": "7d"}, id="type-then-name"),
        pytest.param(["/", "outbound_link", "custom", "/"], {"period": "7d",
                     "include_bots": "true"}, id="bots-repeat-step"),
        pytest.param(["/pricing", "/signup"], {"period": "7d", "content_group": "Money"},
                     id="content-group"),
        pytest.param(["/signup", "/pricing"], {"period": "yesterday"}, id="reverse-order"),
    ],
)
async def test_funnel_matches_plain_in_order_walk(pool: AsyncConnectionPool, events: Any,
                                                  steps: list[str], q: dict[str, str]) -> None:
    site, rows = events
    p = parse_params(lambda n: {"website_id": site, **q}.get(n), TODAY)
    got = await funnel.compute(pool, p, funnel.parse_extra(lambda n: steps if n == "steps[]"
                                                           else []))
    want = reference(rows, steps, p.range.start, p.range.end, p.include_bots, p.content_group)
    assert [s["sessions"] for s in got["funnel"]] == want
    assert want[0] > 0, "the data set reaches the first step"
    assert [s["step"] for s in got["funnel"]] == steps
    assert got["funnel"][0]["conversion_rate"] == 100
    for prev, cur in zip(got["funnel"], got["funnel"][1:], strict=False):
        assert cur["conversion_rate"] == A.rate(cur["sessions"], prev["sessions"])


@pytest.mark.parametrize("steps", [[], ["/one"], [f"/{i}" for i in range(11)], ["", "/a"]])
def test_funnel_step_validation(steps: list[str]) -> None:
    with pytest.raises(ApiError) as exc:
        funnel.parse_extra(lambda n: steps if n == "steps[]" else [])
    assert exc.value.status == 400 and exc.value.message.startswith("steps[]")


async def test_funnel_refuses_more_than_three_years(pool: AsyncConnectionPool,
                                                    events: Any) -> None:
    p = parse_params(lambda n: {"website_id": events[0], "period": "all"}.get(n), TODAY,
                     dt.date(2020, 1, 1))
    with pytest.raises(ApiError) as exc:
        await funnel.compute(pool, p, [funnel.step_of("/a"), funnel.step_of("/b")])
    assert exc.value.status == 400 and exc.value.message.startswith("period")
