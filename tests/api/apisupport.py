"""A real API server on a free loopback port, run in a thread with its own event loop.

Tests talk to it over HTTP with `http.client`, so Hypothesis tests stay plain
synchronous functions. The clock is injected (`MutableClock`) so that rate-limit
windows move without sleeping.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import http.client
import socket
import threading
import urllib.parse
import uuid
from dataclasses import dataclass
from typing import Any

import orjson
import redis.asyncio as aioredis
import tornado.httpserver
import tornado.netutil

from api.app import make_api_pool, make_app
from api.deps import ApiDeps
from api.settings import ApiSettings
from tinytrail.db import open_pool

SECRET = "test-secret-key-that-is-at-least-32-characters"


class MutableClock:
    """UTC-aware `now` that only moves when a test says so."""

    def __init__(self, start: dt.datetime) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    @property
    def json(self) -> Any:
        return orjson.loads(self.body)


def closed_port() -> int:
    """A loopback port with nothing listening (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def api_settings(database_url: str, redis_url: str, **extra: Any) -> ApiSettings:
    values: dict[str, Any] = {"database_url": database_url, "redis_url": redis_url,
                              "secret_key": SECRET, "log_format": "text",
                              "db_connect_timeout": 2.0, "db_pool_min": 1, "db_pool_max": 4,
                              # The auth matrix sends many bad keys from 127.0.0.1; the
                              # failed-auth limit has tests of its own that set it low.
                              "api_auth_fail_limit": 1_000_000, "api_metrics_port": 0}
    values.update(extra)
    return ApiSettings(**values)


class LiveApi:
    def __init__(self, settings: ApiSettings, clock: MutableClock | None = None,
                 *, wait_for_db: bool = True) -> None:
        self.settings = settings
        self.clock = clock
        self.wait_for_db = wait_for_db
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: tornado.httpserver.HTTPServer | None = None
        self.deps: ApiDeps | None = None

    def start(self) -> LiveApi:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=30)
        return self

    async def _start(self) -> None:
        pool = make_api_pool(self.settings, name="api-test")  # as `tinytrail api` builds it
        if self.wait_for_db:
            await open_pool(pool, timeout=10)
        else:
            await pool.open(wait=False)
        redis = aioredis.Redis.from_url(self.settings.redis_url, socket_timeout=0.5,
                                        socket_connect_timeout=0.5)
        kwargs: dict[str, Any] = {}
        if self.clock is not None:
            kwargs["clock"] = self.clock
        self.deps = ApiDeps(settings=self.settings, pool=pool, redis=redis, **kwargs)
        sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
        self.port = sockets[0].getsockname()[1]
        # As `tinytrail api` does: X-Forwarded-For only when proxies are trusted.
        self._server = tornado.httpserver.HTTPServer(
            make_app(self.deps), xheaders=bool(self.settings.trusted_proxies.strip()))
        self._server.add_sockets(sockets)

    async def _stop(self) -> None:
        assert self._server is not None and self.deps is not None
        self._server.stop()
        await self._server.close_all_connections()
        await self.deps.redis.aclose()
        await self.deps.pool.close()

    def stop(self) -> None:
        try:
            asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=30)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=30)
            self._loop.close()

    def request(self, method: str, path: str, body: Any = None, *, key: str | None = None,
                raw: bytes | None = None, query: str | dict[str, Any] | None = None,
                headers: dict[str, str] | None = None) -> Response:
        if isinstance(query, dict):
            query = urllib.parse.urlencode(query, doseq=True)
        target = path + (f"?{query}" if query else "")
        payload = raw if raw is not None else (None if body is None else orjson.dumps(body))
        hdrs = {"Content-Type": "application/json", **(headers or {})}
        if key is not None:
            hdrs["X-API-KEY"] = key
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, target, body=payload, headers=hdrs)
            resp = conn.getresponse()
            return Response(resp.status, resp.headers, resp.read())
        finally:
            conn.close()


def assert_envelope(resp: Response) -> None:
    """Every API response (but /health) is the contract's envelope."""
    data = resp.json
    assert isinstance(data, dict)
    if 200 <= resp.status < 300:
        assert data["status"] == "success" and "data" in data, data
    else:
        assert data["status"] == "error", data
        assert set(data["error"]) == {"code", "message"}, data
        assert isinstance(data["error"]["message"], str) and data["error"]["message"]


@dataclass
class World:
    api: LiveApi
    admin_key: str
    account_a: str
    account_b: str
    user_a: dict[str, Any]  # role user in account A (id, apiKey, ...)
    user_b: dict[str, Any]  # role user in account B
    site_a: dict[str, Any]
    site_b: dict[str, Any]

    def new_account(self) -> str:
        resp = self.api.request("POST", "/api/v1/accounts", {"name": f"acct-{uuid.uuid4()}"},
                                key=self.admin_key)
        assert resp.status == 201, resp.body
        return str(resp.json["data"]["id"])

    def new_user(self, account_id: str, role: str = "user") -> dict[str, Any]:
        resp = self.api.request("POST", "/api/v1/users",
                                {"account_id": account_id, "role": role}, key=self.admin_key)
        assert resp.status == 201, resp.body
        return dict(resp.json["data"])

    def new_site(self, account_id: str) -> dict[str, Any]:
        resp = self.api.request("POST", "/api/v1/websites",
                                {"domain": f"s{uuid.uuid4().hex[:12]}.example",
                                 "account_id": account_id}, key=self.admin_key)
        assert resp.status == 201, resp.body
        return dict(resp.json["data"])
