"""Day arithmetic, in one place: TinyTrail's days are UTC calendar days.

A "day ordinal" is the number of whole days since 1970-01-01 UTC (`int`); event
times travel as epoch milliseconds (`int`). Sessions, aggregates, event partitions
and advisory locks are all keyed by the day ordinal.
"""

from __future__ import annotations

import datetime as dt

DAY_MS = 86_400_000
EPOCH = dt.date(1970, 1, 1)
EPOCH_UTC = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def day_of(ms: int) -> int:
    """Epoch milliseconds -> day ordinal."""
    return ms // DAY_MS


def day_date(ordinal: int) -> dt.date:
    """Day ordinal -> its date."""
    return EPOCH + dt.timedelta(days=ordinal)


def date_ordinal(day: dt.date) -> int:
    """A date -> its day ordinal (the inverse of `day_date`)."""
    return (day - EPOCH).days


def day_start(ordinal: int) -> dt.datetime:
    """Day ordinal -> its first instant (aware, UTC)."""
    return EPOCH_UTC + dt.timedelta(days=ordinal)


def ms_to_ts(ms: int) -> dt.datetime:
    """Epoch milliseconds -> aware UTC datetime."""
    return EPOCH_UTC + dt.timedelta(milliseconds=ms)
