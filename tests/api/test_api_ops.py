"""Operations: rate limits (injected clock), fail-open, health 200/503, 503 with
Retry-After while Postgres is unreachable, 500 without internals for anything else
unexpected, the aggregate endpoint, `create-admin`, and `tinytrail api` start/stop."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
import urllib.request
from typing import Any

import psycopg
import pytest
from apisupport import (
    SECRET,
    LiveApi,
    MutableClock,
    World,
    api_settings,
    assert_envelope,
    closed_port,
)

from api.app import log_request
from api.bootstrap import create_admin_command
from api.handlers import DATABASE_UNAVAILABLE
from api.reports import summary

# 2026-03-19 00:00:10 UTC = 1,773,878,410 s = 60 * 29,564,640 + 10: 10 s into a 60-s window.
T0 = dt.datetime(2026, 3, 19, 0, 0, 10, tzinfo=dt.UTC)


@pytest.fixture
def limited(pg_dsn: str, redis_url: str) -> Any:
    clock = MutableClock(T0)
    live = LiveApi(api_settings(pg_dsn, redis_url, api_rate_limit=3, api_rate_window=60),
                   clock).start()
    yield live, clock
    live.stop()


@pytest.mark.postgres
@pytest.mark.redis
def test_rate_limit_per_key_with_retry_after(world: World, limited: Any) -> None:
    live, clock = limited
    key = world.new_user(world.account_a)["apiKey"]
    other = world.new_user(world.account_a)["apiKey"]
    for _ in range(3):
        assert live.request("GET", "/api/v1/websites", key=key).status == 200
    resp = live.request("GET", "/api/v1/websites", key=key)
    assert resp.status == 429 and resp.json["error"]["code"] == "RATE_LIMITED"
    assert_envelope(resp)
    # Window = 60 s; now is 10 s into it, so the next window opens in 50 s.
    assert resp.headers["Retry-After"] == "50"
    # Another key has its own budget.
    assert live.request("GET", "/api/v1/websites", key=other).status == 200
    clock.advance(49)
    assert live.request("GET", "/api/v1/websites", key=key).status == 429
    clock.advance(1)
    assert live.request("GET", "/api/v1/websites", key=key).status == 200


@pytest.mark.postgres
@pytest.mark.redis
def test_unauthenticated_requests_are_not_counted(world: World, limited: Any) -> None:
    live, _ = limited
    key = world.new_user(world.account_a)["apiKey"]
    for _ in range(5):
        assert live.request("GET", "/api/v1/websites", key="tt_" + "z" * 32).status == 401
    assert live.request("GET", "/api/v1/websites", key=key).status == 200


@pytest.mark.postgres
def test_rate_limit_fails_open_when_redis_is_down(pg_dsn: str) -> None:
    from tinytrail.ratelimit import RATE_LIMIT_FAIL_OPEN

    dead_redis = f"redis://127.0.0.1:{closed_port()}/0"
    live = LiveApi(api_settings(pg_dsn, dead_redis, api_rate_limit=1)).start()
    try:
        import asyncio

        from api.bootstrap import create_admin

        made = asyncio.run(create_admin(live.settings, "fail-open", None))
        before = RATE_LIMIT_FAIL_OPEN.labels("api")._value.get()
        for _ in range(3):  # limit is 1: without Redis every request still passes
            assert live.request("GET", "/api/v1/accounts", key=made["api_key"]).status == 200
        assert RATE_LIMIT_FAIL_OPEN.labels("api")._value.get() == before + 3
    finally:
        live.stop()


@pytest.mark.postgres
@pytest.mark.redis
def test_health_ok(world: World) -> None:
    resp = world.api.request("GET", "/health")
    assert resp.status == 200
    assert resp.json == {"status": "ok", "db": "connected", "version": "0.1.0"}


@pytest.fixture
def no_database() -> Any:
    port = closed_port()
    settings = api_settings(f"postgresql://tt:tt@127.0.0.1:{port}/tt",
                            f"redis://127.0.0.1:{closed_port()}/0", db_connect_timeout=1.0,
                            api_retry_after_seconds=9)
    live = LiveApi(settings, wait_for_db=False).start()
    yield live
    live.stop()


def test_health_503_when_the_database_is_unreachable(no_database: LiveApi) -> None:
    resp = no_database.request("GET", "/health")
    assert resp.status == 503
    assert resp.json == {"status": "degraded", "db": "disconnected"}


UNAVAILABLE = {"status": "error", "error": {"code": "SERVICE_UNAVAILABLE",
                                            "message": "database unavailable, retry later"}}


def test_database_unreachable_is_503_with_retry_after(no_database: LiveApi) -> None:
    """Authentication reads the database: a well-formed key while Postgres cannot be
    reached (the pool times out after db_connect_timeout) answers 503 with Retry-After,
    neither 401 (the key may well be valid) nor 500 (nothing is wrong with the API).
    Redis is down too: the failed-auth limit and the rate limit fail open."""
    key = "tt_" + "q" * 32
    site = "0b7e4a52-4a3e-4c57-9f4e-4bd7c1f0a111"
    for method, path, query in (("GET", "/api/v1/websites", None),
                                ("GET", "/api/v1/reports/summary", {"website_id": site})):
        resp = no_database.request(method, path, key=key, query=query)
        assert resp.status == 503, resp.body
        assert_envelope(resp)
        assert resp.json == UNAVAILABLE
        assert resp.headers["Retry-After"] == "9"  # api_retry_after_seconds
        for internal in (b"Traceback", b"SELECT", b"127.0.0.1", b"Pool", b"psycopg"):
            assert internal not in resp.body
    # What needs no database answers as before: no key, a malformed key -> 401.
    assert no_database.request("GET", "/api/v1/websites").status == 401
    assert no_database.request("GET", "/api/v1/websites", key="not-a-key").status == 401


def test_database_unavailable_is_one_warning_without_client_address_or_query(
    no_database: LiveApi, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO")
    key = "tt_" + "e" * 32
    before = DATABASE_UNAVAILABLE.labels("WebsitesHandler")._value.get()
    resp = no_database.request("GET", "/api/v1/websites", key=key, query={"page": "2"})
    assert resp.status == 503
    assert DATABASE_UNAVAILABLE.labels("WebsitesHandler")._value.get() == before + 1
    ours = [r for r in caplog.records if r.name.startswith(("tinytrail", "tornado"))]
    lines = [r for r in ours if r.name == "tinytrail.api"
             and "database unavailable" in r.getMessage()]
    assert len(lines) == 1 and lines[0].levelname == "WARNING", lines
    assert "PoolTimeout" in lines[0].getMessage()
    assert "GET /api/v1/websites" in lines[0].getMessage()
    assert not any(r.exc_info for r in ours)  # an outage, not a bug: no traceback
    text = "".join(r.getMessage() for r in ours)
    assert key not in text and "(127.0.0.1)" not in text and "remote_ip" not in text
    assert "page=2" not in text


@pytest.mark.postgres
@pytest.mark.redis
def test_unexpected_failure_is_500_without_internals(
    world: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Anything else unexpected (here: a report's computation raising RuntimeError) is
    still 500 INTERNAL_ERROR: the traceback is logged (without the client address or
    the key), never sent."""

    async def broken(*_: Any) -> Any:
        raise RuntimeError("SELECT secret FROM internals")

    monkeypatch.setattr(summary, "compute", broken)
    caplog.set_level("INFO")
    resp = world.api.request("GET", "/api/v1/reports/summary", key=world.admin_key,
                             query={"website_id": world.site_a["id"], "period": "7d"})
    assert resp.status == 500
    assert resp.json == {"status": "error",
                         "error": {"code": "INTERNAL_ERROR", "message": "internal server error"}}
    assert "Retry-After" not in resp.headers
    assert b"Traceback" not in resp.body and b"SELECT" not in resp.body
    ours = [r for r in caplog.records if r.name.startswith(("tinytrail", "tornado"))]
    errors = [r for r in ours if r.levelname == "ERROR" and r.exc_info]
    assert len(errors) == 1 and "GET /api/v1/reports/summary" in errors[0].getMessage()
    assert errors[0].exc_info[0] is RuntimeError
    text = "".join(r.getMessage() for r in ours)
    assert world.admin_key not in text and "(127.0.0.1)" not in text
    assert "remote_ip" not in text and world.site_a["id"] not in text


# --- admin aggregate ---------------------------------------------------------------


def _event(pg_dsn: str, website_id: str, at: dt.datetime) -> None:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO events (event_id, received_at, website_id, visitor_id, session_id, "
            "event_type, url, path, referrer_channel, screen_bucket, browser_family, os_family, "
            "device_type, is_bot, is_excluded, kafka_partition, kafka_offset) VALUES "
            "(gen_random_uuid(), %s, %s, 'v1', gen_random_uuid(), 'page_view', "
            "'https://x.example/a', '/a', 'Direct', 'unknown', 'Chrome', 'Linux', 'desktop', "
            "false, false, 0, 7)", (at, website_id))


def _pageviews(pg_dsn: str, website_id: str, day: dt.date) -> int:
    with psycopg.connect(pg_dsn) as conn:
        row = conn.execute("SELECT coalesce(sum(pageviews), 0) FROM agg_site_daily "
                           "WHERE website_id = %s AND day = %s", (website_id, day)).fetchone()
    return int(row[0])


@pytest.mark.postgres
@pytest.mark.redis
def test_aggregate_rebuilds_yesterday_by_default_and_is_idempotent(
    world: World, pg_dsn: str
) -> None:
    yesterday = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    site = world.new_site(world.account_a)
    _event(pg_dsn, site["id"], dt.datetime.combine(yesterday, dt.time(12), dt.UTC))
    assert _pageviews(pg_dsn, site["id"], yesterday) == 0
    for body in (None, {}, {"date": yesterday.isoformat()}):
        resp = world.api.request("POST", "/api/v1/admin/aggregate", body, key=world.admin_key)
        assert resp.status == 200, resp.body
        assert resp.json == {"status": "success", "data": {
            "message": f"Aggregation completed for {yesterday.isoformat()}"}}
        assert _pageviews(pg_dsn, site["id"], yesterday) == 1


@pytest.mark.postgres
@pytest.mark.redis
def test_aggregate_default_day_follows_the_injected_clock(
    limited: Any, world: World, pg_dsn: str
) -> None:
    live, _ = limited
    with psycopg.connect(pg_dsn, autocommit=True) as conn:  # that day's events exist
        conn.execute("SELECT tinytrail_ensure_event_partitions('2026-03-18', 1)")
    resp = live.request("POST", "/api/v1/admin/aggregate", key=world.admin_key)
    assert resp.json["data"]["message"] == "Aggregation completed for 2026-03-18"


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.parametrize("body", [
    pytest.param({"date": "18-03-2026"}, id="order"),
    pytest.param({"date": "2026-02-29"}, id="not-a-leap-year"),
    pytest.param({"date": 20260318}, id="number"),
    pytest.param({"date": "2999-01-01"}, id="future"),
    pytest.param({"day": "2026-03-18"}, id="unknown-field"),
    pytest.param(["2026-03-18"], id="array"),
])
def test_aggregate_bad_date_is_400(world: World, body: Any) -> None:
    resp = world.api.request("POST", "/api/v1/admin/aggregate", body, key=world.admin_key)
    assert resp.status == 400 and resp.json["error"]["code"] == "INVALID_PAYLOAD"


def _site_row(pg_dsn: str, website_id: str, day: dt.date, pageviews: int | None = None) -> Any:
    """Write (pageviews given) or read the website's agg_site_daily row of `day`."""
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        if pageviews is not None:
            conn.execute("INSERT INTO agg_site_daily (website_id, day, is_bot, kpart, visitors,"
                         " visits, pageviews, bounces, duration_sec, events)"
                         " VALUES (%s, %s, false, -1, 5, 6, %s, 1, 30, 9)",
                         (website_id, day, pageviews))
        return conn.execute("SELECT visitors, visits, pageviews, events FROM agg_site_daily"
                            " WHERE website_id = %s AND day = %s", (website_id, day)).fetchall()


@pytest.mark.postgres
@pytest.mark.redis
def test_finding_4_a_day_it_cannot_recompute_is_refused_and_nothing_deleted(
    world: World, pg_dsn: str
) -> None:
    """Finding 4: a rebuild of a day whose events are gone read no events, deleted every
    website's aggregates of that day and answered "completed". Now: 400 in the envelope,
    the figures stay. Two ways a day's events are gone: past retention (400 days by
    default) and a dropped partition (the retention run, or by hand) within it."""
    today = dt.datetime.now(dt.UTC).date()
    site = world.new_site(world.account_a)
    past = today - dt.timedelta(days=401)  # retention 400: the oldest day kept is today - 400
    gone = today - dt.timedelta(days=300)
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        for d in (past, gone):  # a partition that exists must not make the day rebuildable
            conn.execute(f"DROP TABLE IF EXISTS events_{d:%Y%m%d}")
        conn.execute("SELECT tinytrail_ensure_event_partitions(%s, 1)", (past,))
    for day, needle in ((past, "retention"), (gone, f"events_{gone:%Y%m%d}")):
        rows = _site_row(pg_dsn, site["id"], day, pageviews=7)
        resp = world.api.request("POST", "/api/v1/admin/aggregate", {"date": day.isoformat()},
                                 key=world.admin_key)
        assert resp.status == 400, resp.body
        assert_envelope(resp)
        assert resp.json["error"]["code"] == "INVALID_PAYLOAD"
        assert needle in resp.json["error"]["message"]
        assert _site_row(pg_dsn, site["id"], day) == rows == [(5, 6, 7, 9)]


# --- command line ----------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.redis
def test_create_admin_prints_a_working_key_once(
    world: World, pg_dsn: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TINYTRAIL_DATABASE_URL", pg_dsn)
    monkeypatch.setenv("TINYTRAIL_SECRET_KEY", SECRET)
    assert create_admin_command("Bootstrap Co", "root@example.com") == 0
    out = capsys.readouterr().out
    key = next(line.rsplit(" ", 1)[1] for line in out.splitlines() if "API key" in line)
    user_id = next(line.rsplit(" ", 1)[1] for line in out.splitlines() if "user id" in line)
    resp = world.api.request("GET", "/api/v1/users", key=key)
    assert resp.status == 200
    me = [u for u in resp.json["data"] if u["id"] == user_id]
    assert me and me[0]["role"] == "admin" and me[0]["email"] == "root@example.com"


def test_create_admin_refuses_a_bad_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert create_admin_command("  ", None) == 2
    assert "account-name" in capsys.readouterr().err


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TINYTRAIL_")}
    env.update({"TINYTRAIL_SECRET_KEY": SECRET, "TINYTRAIL_LOG_FORMAT": "json",
                "TINYTRAIL_API_METRICS_PORT": str(closed_port()), **extra})
    return env


def test_api_exits_fast_on_an_unreachable_database() -> None:
    env = _env(TINYTRAIL_DATABASE_URL=f"postgresql://a:b@127.0.0.1:{closed_port()}/x",
               TINYTRAIL_DB_CONNECT_TIMEOUT="1")
    proc = subprocess.run([sys.executable, "-m", "cli", "api", "--port",
                           str(closed_port())], env=env, capture_output=True, timeout=60)
    assert proc.returncode == 1
    assert b"api stopped" in proc.stderr


def test_api_refuses_to_start_without_a_secret() -> None:
    env = _env()
    del env["TINYTRAIL_SECRET_KEY"]
    proc = subprocess.run([sys.executable, "-m", "cli", "api"], env=env,
                          capture_output=True, timeout=60)
    assert proc.returncode == 2 and b"TINYTRAIL_SECRET_KEY" in proc.stderr


@pytest.mark.postgres
@pytest.mark.redis
def test_api_serves_and_stops_cleanly_on_sigterm(pg_dsn: str, redis_url: str) -> None:
    port = closed_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", "api", "--port", str(port)],
        env=_env(TINYTRAIL_DATABASE_URL=pg_dsn, TINYTRAIL_REDIS_URL=redis_url,
                 TINYTRAIL_API_HOST="127.0.0.1"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        status = None
        for _ in range(100):  # bounded: up to ~20 s for the process to come up
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    status = r.status
                    break
            except OSError:
                time.sleep(0.2)
        assert status == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()  # type: ignore[union-attr]
        proc.stderr.close()  # type: ignore[union-attr]



@pytest.mark.postgres
@pytest.mark.redis
def test_logs_hold_neither_keys_nor_client_addresses(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    wrong = "tt_" + "w" * 32
    for key in (world.admin_key, wrong, world.user_a["apiKey"]):
        world.api.request("GET", "/api/v1/accounts", key=key)
    world.api.request("GET", "/nowhere")
    text = caplog.text + "".join(str(r.__dict__) for r in caplog.records)
    assert "GET /api/v1/accounts" in text  # the access log did run
    for secret in (world.admin_key, wrong, world.user_a["apiKey"], "127.0.0.1"):
        assert secret not in text


@pytest.mark.parametrize(("status", "level"), [
    (200, "DEBUG"), (404, "INFO"), (429, "INFO"), (500, "ERROR"), (502, "ERROR"),
    (503, "WARNING"),  # an outage answered as designed, explained by its own warning
])
def test_access_log_level_by_status(status: int, level: str,
                                    caplog: pytest.LogCaptureFixture) -> None:
    class Request:
        method, path = "GET", "/api/v1/websites"

        def request_time(self) -> float:
            return 0.002

    class Handler:
        request = Request()

        def get_status(self) -> int:
            return status

    caplog.set_level("DEBUG", logger="tornado.access")
    log_request(Handler())  # type: ignore[arg-type]
    [record] = [r for r in caplog.records if r.name == "tornado.access"]
    assert record.levelname == level
    assert record.getMessage() == f"{status} GET /api/v1/websites 2.0ms"
