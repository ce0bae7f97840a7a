"""Fixtures for the API tests: one live API server per session on the test database,
and a small world of two accounts (A, B) with admins, users and websites."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from apisupport import LiveApi, World, api_settings

from api.bootstrap import create_admin


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
