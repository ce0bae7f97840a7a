"""A request whose Postgres connection is ended under it (here `pg_terminate_backend`,
SQLSTATE 57P01 admin_shutdown, as a fast shutdown or a failover does) answers 503
`SERVICE_UNAVAILABLE` with `Retry-After` in the envelope, not 500; the pool drops the
dead connection and the next request is served.

Real Postgres, deterministic: another session holds an ACCESS EXCLUSIVE lock on
`agg_site_daily`, which the summary reads, so the API's query waits on it (after
authentication and the website lookup, which read other tables) until the test ends
that backend, found as the one the lock holder blocks. Postgres stopped outright is
tests/faults/test_api_postgres_down.py."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from apisupport import LiveApi, World, api_settings, assert_envelope

from api.handlers import DATABASE_UNAVAILABLE


@pytest.fixture
def live(pg_dsn: str, redis_url: str) -> Iterator[LiveApi]:
    # An API of its own: only its pooled connection is ended, never the session's.
    api = LiveApi(api_settings(pg_dsn, redis_url, api_retry_after_seconds=3,
                               api_rate_limit=1_000_000)).start()
    yield api
    api.stop()


def _blocked_by(admin: psycopg.Connection, holder: int, timeout: float = 20) -> int:
    """The pid of the backend waiting on `holder`'s lock (bounded wait)."""
    deadline = time.monotonic() + timeout
    while True:
        row = admin.execute("SELECT pid FROM pg_stat_activity"
                            " WHERE %s = ANY(pg_blocking_pids(pid))", (holder,)).fetchone()
        if row:
            return int(row[0])
        assert time.monotonic() < deadline, "the API's query never waited on the lock"
        time.sleep(0.05)


@pytest.mark.postgres
@pytest.mark.redis
def test_a_connection_ended_mid_request_is_503_and_the_next_request_is_served(
    world: World, live: LiveApi, pg_dsn: str, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("INFO")
    path = "/api/v1/reports/summary"
    query = {"website_id": world.site_a["id"], "period": "7d"}
    before = DATABASE_UNAVAILABLE.labels("SummaryHandler")._value.get()
    with psycopg.connect(pg_dsn) as locker, psycopg.connect(pg_dsn, autocommit=True) as admin, \
            ThreadPoolExecutor(1) as pool:
        locker.execute("LOCK TABLE agg_site_daily IN ACCESS EXCLUSIVE MODE")
        answer = pool.submit(live.request, "GET", path, key=world.admin_key, query=query)
        victim = _blocked_by(admin, locker.info.backend_pid)
        admin.execute("SELECT pg_terminate_backend(%s)", (victim,))
        resp = answer.result(timeout=30)
        locker.rollback()
    assert resp.status == 503, resp.body
    assert_envelope(resp)
    assert resp.json["error"] == {"code": "SERVICE_UNAVAILABLE",
                                  "message": "database unavailable, retry later"}
    assert resp.headers["Retry-After"] == "3"
    assert b"terminat" not in resp.body and b"57P01" not in resp.body
    assert DATABASE_UNAVAILABLE.labels("SummaryHandler")._value.get() == before + 1
    lines = [r for r in caplog.records if r.name == "tinytrail.api"
             and "database unavailable" in r.getMessage()]
    assert len(lines) == 1 and lines[0].levelname == "WARNING" and lines[0].exc_info is None
    assert "AdminShutdown 57P01" in lines[0].getMessage()
    assert f"GET {path}" in lines[0].getMessage() and "period=" not in lines[0].getMessage()
    # The ended connection is not handed out again: the same request is served.
    again = live.request("GET", path, key=world.admin_key, query=query)
    assert again.status == 200, again.body
