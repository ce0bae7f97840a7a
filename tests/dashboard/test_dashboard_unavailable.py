"""The dashboard when the API answers 503 with `Retry-After` (its database restarting or
away, or a query cancelled): like a 429, one shared pause for the whole page, a calm
banner, no request before `Retry-After` has passed, GETs retried; a panel whose retries
did not outlast the outage says it is waiting (not an error) and asks again by itself
after `Retry-After` (doubled each time it is refused again), so it shows its figures
once the API answers again.

Light: an in-process API (`LiveApi`, as `tinytrail api` builds it) serving the built
dashboard on the session's Postgres and Redis, no collector, worker or Kafka. The 503s
are the API's own: another session holds an ACCESS EXCLUSIVE lock on `agg_site_daily`
(which the summary reads) and the API's 0.5 s `statement_timeout` cancels the waiting
query, a real 503 with `Retry-After` in the envelope, the same answer the dashboard gets
while Postgres is unreachable (tests/api, tests/faults). Releasing the lock is the
database coming back.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest

from api.bootstrap import create_admin
from tests.api.apisupport import LiveApi, api_settings
from tests.dashboard.browser import Chromium
from tests.dashboard.checks import SHOTS
from tests.dashboard.conftest import DIST
from tests.dashboard.ui import open_dashboard

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.browser]

RETRY_AFTER = 2
SUMMARY = '[data-panel="summary"]'


@dataclass
class Api:
    live: LiveApi
    base: str
    key: str
    site: str
    dsn: str


@pytest.fixture
def api(pg_dsn: str, redis_url: str) -> Iterator[Api]:
    assert (DIST / "index.html").is_file(), "cd dashboard && npm ci && npm run build"
    settings = api_settings(pg_dsn, redis_url, api_statement_timeout=0.5,
                            api_retry_after_seconds=RETRY_AFTER, api_rate_limit=1_000_000)
    made = asyncio.run(create_admin(settings, f"dash-503-{uuid.uuid4().hex[:6]}", None))
    live = LiveApi(settings).start()
    try:
        site = live.request("POST", "/api/v1/websites",
                            {"domain": f"d{uuid.uuid4().hex[:10]}.example",
                             "account_id": made["account_id"]}, key=made["api_key"])
        assert site.status == 201, site.body
        yield Api(live, f"http://127.0.0.1:{live.port}", made["api_key"],
                  site.json["data"]["id"], pg_dsn)
    finally:
        live.stop()


async def test_503_with_retry_after_pauses_waits_calmly_and_recovers(
    api: Api, browser: Chromium
) -> None:
    b = browser
    with psycopg.connect(api.dsn) as locker:  # a transaction: the lock lasts until rollback
        locker.execute("LOCK TABLE agg_site_daily IN ACCESS EXCLUSIVE MODE")
        await open_dashboard(b, api.base, api.key, query=f"?site={api.site}")
        await b("wait", sel=".banner", timeout=20000)
        banner = await b("eval", expr="document.querySelector('.banner').textContent")
        assert banner == f"TinyTrail is unavailable for a moment (503): asking again in " \
                         f"{RETRY_AFTER} s.", banner
        # Four answers of 503 (the first and three retries, 2.5 s each): the panel waits,
        # Retry-After the first time, twice that the next (a heavy report is not re-run
        # every few seconds for ever).
        for wait in (RETRY_AFTER, 2 * RETRY_AFTER):
            text = f"Unavailable for a moment (503): asking again in {wait} s."
            await b("waitFn", timeout=40000, expr=(
                f"document.querySelector('{SUMMARY}').dataset.state === 'waiting' && "
                f"document.querySelector('{SUMMARY} .panel-status').textContent === {text!r}"))
            states = await b("eval", expr="[...document.querySelectorAll('[data-panel]')]"
                                          ".map((p) => p.dataset.state)")
            assert "error" not in states, states
            assert await b("eval", expr="document.querySelectorAll('.view-error').length") == 0
        SHOTS.mkdir(parents=True, exist_ok=True)  # for a person to look at the calm state
        await b("screenshot", path=str(SHOTS / "dashboard-503-1440.png"))
        locker.rollback()  # the database is back
    # The panel asks again by itself (after 4 s) and shows its figures.
    await b("wait", sel=f"{SUMMARY}[data-state=ready]", timeout=30000)
    assert await b("eval", expr=f"document.querySelector('{SUMMARY} .panel-status')"
                                ".textContent") == ""
    log = await b("log")
    refused = [r for r in log["responses"] if r["status"] == 503]
    assert len(refused) >= 8 and all(r["retryAfter"] == str(RETRY_AFTER) for r in refused)
    for r in refused:  # waiting, not hammering: no request until Retry-After has passed
        until = r["t"] + 1000 * RETRY_AFTER
        # Slack as in the 429 test: a request sent with the refused one can reach the
        # driver's log a little after its answer; page and driver clocks differ a little.
        early = [x for x in log["requests"] if r["t"] + 300 < x["t"] < until - 500]
        assert early == [], (r, early)
    summaries = [r for r in log["responses"] if "/reports/summary" in r["url"]]
    assert summaries[-1]["status"] == 200
    # Nothing failed loudly: Chromium logs each 503 as a console error, nothing else.
    assert all("status of 503" in e for e in log["errors"]), log["errors"]
    assert await b("eval", expr="window.__ttCsp") == []
