"""Issue 12 finding 8, API side: `/metrics` only on its own port, failed authentication
limited per client IP (IPv6 by /64), and the limit failing open without Redis."""

from __future__ import annotations

import datetime as dt
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
import redis
from apisupport import (
    SECRET,
    LiveApi,
    MutableClock,
    World,
    api_settings,
    assert_envelope,
    closed_port,
)

from tinytrail.ratelimit import RATE_LIMIT_FAIL_OPEN

# 10 s into a 60-s window (see test_api_ops.T0).
T0 = dt.datetime(2026, 3, 19, 0, 0, 10, tzinfo=dt.UTC)
WRONG = "tt_" + "q" * 32


@pytest.fixture
def guarded(pg_dsn: str, redis_url: str) -> Any:
    """An API whose failed-auth limit is 3 per 60 s, on an injected clock, trusting
    127.0.0.1 as a proxy so that each test can speak from addresses of its own."""
    clock = MutableClock(T0)
    live = LiveApi(api_settings(pg_dsn, redis_url, api_auth_fail_limit=3,
                                api_auth_fail_window=60, trusted_proxies="127.0.0.1/32"),
                   clock).start()
    yield live, clock
    live.stop()


def _as(ip: str) -> dict[str, str]:
    return {"X-Forwarded-For": ip}


def _v4() -> str:
    """A fresh client address per test run (failure counters outlive a run by 2 windows)."""
    return "10." + ".".join(str(secrets.randbelow(256)) for _ in range(3))


def _v6_64() -> str:
    """A fresh /64 prefix, e.g. `2001:db8:1a2b:3c4d`."""
    return "2001:db8:" + ":".join(f"{secrets.randbelow(65536):x}" for _ in range(2))


@pytest.mark.postgres
@pytest.mark.redis
def test_failed_authentication_is_limited_per_client_ip(world: World, guarded: Any) -> None:
    live, clock = guarded
    me, other = _v4(), _v4()
    for _ in range(3):
        assert live.request("GET", "/api/v1/websites", key=WRONG, headers=_as(me)).status == 401
    # The 4th attempt is refused before any lookup, even with a valid key.
    for key in (WRONG, world.admin_key):
        resp = live.request("GET", "/api/v1/websites", key=key, headers=_as(me))
        assert resp.status == 429, resp.body
        assert resp.json["error"]["code"] == "RATE_LIMITED"
        assert resp.headers["Retry-After"] == "50"  # 10 s into the window: 50 s to go
        assert_envelope(resp)
    # Another client is not affected, and a malformed key counts as a failure too.
    assert live.request("GET", "/api/v1/websites", key=world.admin_key,
                        headers=_as(other)).status == 200
    for _ in range(3):
        assert live.request("GET", "/api/v1/websites", key="nope",
                            headers=_as(other)).status == 401
    assert live.request("GET", "/api/v1/websites", key="nope", headers=_as(other)).status == 429
    # A missing key is not a guess and is not counted (nor limited).
    assert live.request("GET", "/api/v1/websites", headers=_as(me)).status == 401
    clock.advance(50)  # the next window
    assert live.request("GET", "/api/v1/websites", key=world.admin_key,
                        headers=_as(me)).status == 200


@pytest.mark.postgres
@pytest.mark.redis
def test_failed_authentication_keys_ipv6_by_its_64(world: World, guarded: Any) -> None:
    live, _ = guarded
    net, neighbour = _v6_64(), _v6_64()
    # Three failures from three addresses of one /64 exhaust the /64.
    for host in ("::1", "::2", ":ffff:ffff:ffff:ffff"):
        resp = live.request("GET", "/api/v1/websites", key=WRONG, headers=_as(net + host))
        assert resp.status == 401
    resp = live.request("GET", "/api/v1/websites", key=world.admin_key,
                        headers=_as(net + "::99"))
    assert resp.status == 429
    # Another /64 is someone else.
    resp = live.request("GET", "/api/v1/websites", key=world.admin_key,
                        headers=_as(neighbour + "::1"))
    assert resp.status == 200


@pytest.mark.postgres
@pytest.mark.redis
def test_failed_authentication_stores_no_address_in_redis(
    world: World, guarded: Any, redis_url: str
) -> None:
    live, _ = guarded
    ip = _v4()
    assert live.request("GET", "/api/v1/websites", key=WRONG, headers=_as(ip)).status == 401
    client = redis.Redis.from_url(redis_url)
    try:
        keys = [k.decode() for k in client.scan_iter("tt:rl:authfail:*")]
        assert keys and not any(ip in k for k in keys)
    finally:
        client.close()


@pytest.mark.postgres
@pytest.mark.redis  # the session's `world` (its admin) lives on the real Redis-backed API
def test_failed_authentication_limit_fails_open_without_redis(world: World, pg_dsn: str) -> None:
    dead = f"redis://127.0.0.1:{closed_port()}/0"
    live = LiveApi(api_settings(pg_dsn, dead, api_auth_fail_limit=1)).start()
    try:
        before = RATE_LIMIT_FAIL_OPEN.labels("auth")._value.get()
        for _ in range(3):  # limit 1, but Redis cannot count: every attempt is judged
            assert live.request("GET", "/api/v1/websites", key=WRONG).status == 401
        assert live.request("GET", "/api/v1/websites", key=world.admin_key).status == 200
        assert RATE_LIMIT_FAIL_OPEN.labels("auth")._value.get() > before
    finally:
        live.stop()


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=3) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.mark.postgres
@pytest.mark.redis
def test_metrics_are_served_on_their_own_port_only(pg_dsn: str, redis_url: str) -> None:
    """The real `tinytrail api` process: `/metrics` 404s on the public port and answers
    on the metrics port, which serves nothing else."""
    port, mport = closed_port(), closed_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TINYTRAIL_")}
    env.update({"TINYTRAIL_SECRET_KEY": SECRET, "TINYTRAIL_LOG_FORMAT": "json",
                "TINYTRAIL_DATABASE_URL": pg_dsn, "TINYTRAIL_REDIS_URL": redis_url,
                "TINYTRAIL_API_HOST": "127.0.0.1", "TINYTRAIL_API_METRICS_PORT": str(mport)})
    proc = subprocess.Popen([sys.executable, "-m", "cli", "api", "--port", str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while _get_or_none(f"http://127.0.0.1:{port}/health") is None:
            assert time.monotonic() < deadline and proc.poll() is None, "the API did not start"
            time.sleep(0.2)
        status, body = _get(f"http://127.0.0.1:{port}/metrics")
        assert status == 404 and b"NOT_FOUND" in body
        status, body = _get(f"http://127.0.0.1:{mport}/metrics")
        assert status == 200 and b"tinytrail_ratelimit_fail_open_total" in body
        assert _get(f"http://127.0.0.1:{mport}/health")[0] == 404
        assert _get(f"http://127.0.0.1:{mport}/api/v1/websites")[0] == 404
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def _get_or_none(url: str) -> int | None:
    try:
        return _get(url)[0]
    except OSError:
        return None
