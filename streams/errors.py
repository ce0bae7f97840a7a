"""Which failures of a batch are the infrastructure's (retry) and which are the data's
(isolate the refused events and dead-letter exactly those).

Transient: the connection is gone or could not be had (no SQLSTATE, class 08), the pool
timed out, the server is short of resources or shutting down (classes 53, 57; 57014 is a
`statement_timeout` cancel), serialization failure (40001), deadlock (40P01), lock not
available (55P03), idle-in-transaction timeout (25P03); and the broker or the network
failing (the dead-letter producer: `aiokafka` errors, `OSError`, timeouts). The batch is
retried with backoff; nothing is dead-lettered for them.

Everything else is a data error: any other Postgres error (e.g. 54000 "index row size
exceeds btree maximum", 22xxx data exceptions, 23xxx constraint violations) and any other
Python exception raised while the batch's events are sessionised and written. The sink
then bisects the batch (streams/batch.py) until the refused events are alone.
"""

from __future__ import annotations

import asyncio

import psycopg
from aiokafka.errors import KafkaError
from psycopg_pool import PoolTimeout

TRANSIENT_SQLSTATES = frozenset({"40001", "40P01", "55P03", "25P03"})
TRANSIENT_CLASSES = frozenset({"08", "53", "57"})
BACKOFF_FIRST = 0.2  # seconds
BACKOFF_MAX = 5.0


def is_transient(exc: BaseException) -> bool:
    """True when `exc` says the infrastructure failed (retry the same batch later), False
    when the batch's data is to blame (module doc). Never raises."""
    if isinstance(exc, PoolTimeout | KafkaError | OSError | asyncio.TimeoutError):
        return True
    if isinstance(exc, psycopg.Error):
        state = exc.sqlstate
        if state is None:  # raised by the driver itself: connection lost, or bad data
            return isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)
        return state in TRANSIENT_SQLSTATES or state[:2] in TRANSIENT_CLASSES
    return False


def backoff(attempt: int) -> float:
    """Seconds to wait before retry number `attempt` (1, 2, ...): doubling from 0.2 s,
    at most 5 s. Example: 0.2, 0.4, 0.8, 1.6, 3.2, 5, 5, ..."""
    return float(min(BACKOFF_FIRST * 2 ** (max(attempt, 1) - 1), BACKOFF_MAX))


def reason(exc: BaseException) -> str:
    """A dead letter's reason for a refused event: `sink: <Class> [<SQLSTATE>]: <message>`
    (first line, at most 300 characters)."""
    state = getattr(exc, "sqlstate", None)
    first = (str(exc).splitlines() or [""])[0][:300]
    return f"sink: {type(exc).__name__}{f' [{state}]' if state else ''}: {first}"
