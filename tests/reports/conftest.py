"""Fixtures shared by the reports tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from psycopg_pool import AsyncConnectionPool

from tinytrail.db import make_pool, open_pool
from tinytrail.settings import CoreSettings


@pytest.fixture
async def pool(pg_dsn: str) -> AsyncIterator[AsyncConnectionPool]:
    """A small pool on this session's database (the test must be marked `postgres`)."""
    p = make_pool(CoreSettings(database_url=pg_dsn), name="reports-test", max_size=2)
    await open_pool(p)
    try:
        yield p
    finally:
        await p.close()
