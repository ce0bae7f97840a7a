"""The one Postgres pool per process (psycopg 3).

Created closed, opened with `wait=True` at start-up so that a bad DSN fails fast,
closed at shutdown.
"""

from __future__ import annotations

from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from tinytrail.settings import CoreSettings


def make_pool(
    settings: CoreSettings, *, name: str, max_size: int | None = None,
    statement_timeout: float | None = None,
) -> AsyncConnectionPool:
    """A closed pool (open it with `open_pool`). Every session gets a `statement_timeout`
    of `statement_timeout` seconds (default `settings.db_statement_timeout`; 0 = none),
    so a hung batch or a runaway query cannot hold a connection for ever; each connection
    is checked when taken from the pool (a Postgres restart costs no failed request)."""
    timeout = settings.db_statement_timeout if statement_timeout is None else statement_timeout
    return AsyncConnectionPool(
        settings.database_url,
        min_size=settings.db_pool_min,
        max_size=max_size or settings.db_pool_max,
        open=False,
        name=name,
        kwargs={
            "autocommit": True,
            "row_factory": dict_row,
            "application_name": f"tinytrail-{name}",
            "options": f"-c statement_timeout={round(timeout * 1000)}",
        },
        timeout=settings.db_connect_timeout,
        # A pooled connection can be dead without knowing it (Postgres restarted): checked
        # on checkout (one empty round trip), it is replaced instead of failing a request.
        check=AsyncConnectionPool.check_connection,
    )


async def open_pool(pool: AsyncConnectionPool, timeout: float = 10.0) -> AsyncConnectionPool:
    """Open and wait for the first connection; raises PoolTimeout on a bad DSN."""
    await pool.open(wait=True, timeout=timeout)
    return pool


async def db_alive(pool: AsyncConnectionPool, timeout: float = 2.0) -> bool:
    """True when a `SELECT 1` answers within `timeout` seconds."""
    try:
        async with pool.connection(timeout=timeout) as conn:
            await conn.execute("SELECT 1")
        return True
    except Exception:
        return False
