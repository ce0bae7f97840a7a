"""The one Postgres pool per process (psycopg 3).

Created closed, opened with `wait=True` at start-up so that a bad DSN fails fast,
closed at shutdown. `database_unavailable(exc)` tells an exception that means "Postgres
cannot be reached right now" (retry later) from every other database error.
"""

from __future__ import annotations

from typing import Any, cast

import psycopg
from psycopg import AsyncConnection
from psycopg.errors import ConnectionTimeout
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from tinytrail.settings import CoreSettings

# Every pooled connection returns rows as dicts (`row_factory=dict_row`).
DictConnection = AsyncConnection[dict[str, Any]]
Pool = AsyncConnectionPool[DictConnection]


def make_pool(
    settings: CoreSettings, *, name: str, max_size: int | None = None,
    statement_timeout: float | None = None,
) -> Pool:
    """A closed pool (open it with `open_pool`). Every session gets a `statement_timeout`
    of `statement_timeout` seconds (default `settings.db_statement_timeout`; 0 = none),
    so a hung batch or a runaway query cannot hold a connection for ever; each connection
    is checked when taken from the pool (a Postgres restart costs no failed request)."""
    timeout = settings.db_statement_timeout if statement_timeout is None else statement_timeout
    pool = AsyncConnectionPool(
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
    return cast(Pool, pool)  # the kwargs' row_factory makes every row a dict


async def open_pool(pool: Pool, timeout: float = 10.0) -> Pool:
    """Open and wait for the first connection; raises PoolTimeout on a bad DSN."""
    await pool.open(wait=True, timeout=timeout)
    return pool


async def db_alive(pool: Pool, timeout: float = 2.0) -> bool:
    """True when a `SELECT 1` answers within `timeout` seconds."""
    try:
        async with pool.connection(timeout=timeout) as conn:
            await conn.execute("SELECT 1")
        return True
    except Exception:
        return False


# Server errors that end the session because the server is going away or not ready:
# admin_shutdown (fast/smart shutdown, pg_terminate_backend), crash_shutdown (another
# backend crashed, the postmaster restarts), cannot_connect_now (starting up, shutting
# down, recovery). Not 57P04 database_dropped or 57P05 idle_session_timeout, not 57014.
UNAVAILABLE_SQLSTATES = frozenset({"57P01", "57P02", "57P03"})


def database_unavailable(exc: BaseException | None) -> bool:
    """True when `exc` means Postgres could not be reached or dropped the connection,
    a state that passes (a restart, a failover, a full pool), so that the request may be
    answered "retry later" instead of "internal error":

    - `psycopg_pool.PoolTimeout`: no connection within the pool's timeout (the server is
      down or refuses connections, or every connection is busy);
    - `psycopg.errors.ConnectionTimeout`: a connection attempt ran out of time;
    - SQLSTATE class 08 (connection_exception) and 57P01, 57P02, 57P03 (above);
    - a plain `psycopg.OperationalError` without SQLSTATE: libpq's own report of a failed
      connection or one lost mid-request ("connection failed: ...", "consuming input
      failed: server closed the connection unexpectedly", "the connection is closed").

    Every other error stays what it is: data and constraint errors carry their own
    SQLSTATE, and the pool's other errors (`PoolClosed` at shutdown, `TooManyRequests`)
    and `PipelineAborted` are subclasses, which the plain-class test does not take."""
    if isinstance(exc, (PoolTimeout, ConnectionTimeout)):
        return True
    if not isinstance(exc, psycopg.OperationalError):
        return False
    state = exc.sqlstate
    if state is None:
        return type(exc) is psycopg.OperationalError
    return state.startswith("08") or state in UNAVAILABLE_SQLSTATES
