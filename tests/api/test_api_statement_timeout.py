"""A report query cancelled by the API's `statement_timeout` (SQLSTATE 57014) answers 503
`SERVICE_UNAVAILABLE` with `Retry-After` in the envelope, logged as one line naming the
route without the query string; the pooled connection serves the next request.

Real Postgres: the API's pool is built as `tinytrail api` builds it (`make_api_pool`) with
`api_statement_timeout` 0.5 s. The report is made slow deterministically, without data
or `pg_sleep`: another session holds an ACCESS EXCLUSIVE lock on `agg_site_daily`, which
the summary reads, so its query waits until Postgres cancels it (authentication and the
website lookup read other tables and answer at once)."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from apisupport import LiveApi, World, api_settings, assert_envelope

from api.handlers import QUERIES_CANCELLED


@pytest.fixture
def impatient(pg_dsn: str, redis_url: str) -> Iterator[LiveApi]:
    live = LiveApi(api_settings(pg_dsn, redis_url, api_statement_timeout=0.5,
                                api_retry_after_seconds=7, api_rate_limit=1_000_000)).start()
    yield live
    live.stop()


@pytest.mark.postgres
@pytest.mark.redis
def test_a_query_cancelled_by_statement_timeout_is_503_with_retry_after(
    world: World, impatient: LiveApi, pg_dsn: str, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("INFO")
    site = world.site_a["id"]
    query = {"website_id": site, "period": "7d"}
    path = "/api/v1/reports/summary"
    before = QUERIES_CANCELLED.labels("SummaryHandler")._value.get()
    with psycopg.connect(pg_dsn) as locker:  # a transaction: the lock lasts until rollback
        locker.execute("LOCK TABLE agg_site_daily IN ACCESS EXCLUSIVE MODE")
        resp = impatient.request("GET", path, key=world.admin_key, query=query)
        locker.rollback()
    assert resp.status == 503, resp.body
    assert_envelope(resp)
    assert resp.json["error"]["code"] == "SERVICE_UNAVAILABLE"
    assert resp.headers["Retry-After"] == "7"
    assert b"statement" not in resp.body and b"SELECT" not in resp.body
    assert QUERIES_CANCELLED.labels("SummaryHandler")._value.get() == before + 1
    lines = [r for r in caplog.records if r.name == "tinytrail.api"
             and "query cancelled" in r.getMessage()]
    assert len(lines) == 1 and lines[0].levelname == "WARNING" and lines[0].exc_info is None
    assert f"GET {path}" in lines[0].getMessage()
    logged = caplog.text + "".join(str(r.__dict__) for r in caplog.records)
    assert site not in logged and "period=" not in logged  # never the query's values
    # The lock is gone and the cancelled statement left the connection usable.
    again = impatient.request("GET", path, key=world.admin_key, query=query)
    assert again.status == 200, again.body
