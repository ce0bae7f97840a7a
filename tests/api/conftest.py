"""Fixtures for the API tests: one live API server per session on the test database,
and a small world of two accounts (A, B) with admins, users and websites."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from apisupport import LiveApi, api_settings

from api.bootstrap import create_admin


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


@pytest.fixture(scope="session")
def _world(_pg_database: str, _redis_server: str) -> Iterator[World]:
    settings = api_settings(_pg_database, _redis_server, api_rate_limit=1_000_000)
    made = asyncio.run(create_admin(settings, "Account A", "admin@a.example"))
    live = LiveApi(settings).start()
    try:
        w = World(live, made["api_key"], made["account_id"], "", {}, {}, {}, {})
        w.account_b = w.new_account()
        w.user_a, w.user_b = w.new_user(w.account_a), w.new_user(w.account_b)
        w.site_a, w.site_b = w.new_site(w.account_a), w.new_site(w.account_b)
        yield w
    finally:
        live.stop()


@pytest.fixture
def world(pg_dsn: str, redis_url: str, _world: World) -> World:
    """The session's live API (the test must be marked postgres and redis)."""
    return _world
