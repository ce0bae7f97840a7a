"""Retention drops a day's event partition under the day's exclusive lock, the lock a
rebuild of that day holds while it checks that the partition exists and reads it
(streams/retention.py, streams/rebuild.py); real Postgres.

The day is far in the past (2001) and `today` is passed explicitly, so only the partition
made here is old enough to be dropped: other tests' partitions are never touched."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import psycopg
import pytest

from streams.aggregates import ADVISORY_NS
from streams.rebuild import partition_name
from streams.retention import run_retention
from tinytrail.days import date_ordinal
from tinytrail.db import make_pool, open_pool
from tinytrail.settings import CoreSettings

OLD_DAY = dt.date(2001, 3, 1)
TODAY = OLD_DAY + dt.timedelta(days=2)  # with 1 day of retention, OLD_DAY is past it


def exists(conn: psycopg.Connection[Any], name: str) -> bool:
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone()
    return bool(row and row[0])


@pytest.mark.postgres
async def test_retention_waits_for_the_day_lock_before_dropping_a_partition(
    core_settings: CoreSettings,
) -> None:
    dsn = core_settings.database_url
    part = partition_name(OLD_DAY)
    pool = make_pool(core_settings, name="retention-test", max_size=2)
    await open_pool(pool)
    try:
        with psycopg.connect(dsn, autocommit=True) as lock:
            lock.execute("SELECT tinytrail_ensure_event_partitions(%s, 1)", (OLD_DAY,))
            assert exists(lock, part)
            # A rebuild of OLD_DAY in progress: the day's exclusive lock is held.
            lock.execute("SELECT pg_advisory_lock(%s, %s)",
                         (ADVISORY_NS, date_ordinal(OLD_DAY)))
            task = asyncio.create_task(run_retention(pool, 1, 0, today=TODAY))
            await asyncio.sleep(1.0)
            assert not task.done(), task
            assert exists(lock, part), "dropped while a rebuild of its day held the lock"
            lock.execute("SELECT pg_advisory_unlock(%s, %s)",
                         (ADVISORY_NS, date_ordinal(OLD_DAY)))
            dropped = await asyncio.wait_for(task, 30)
            assert part in dropped
            assert not exists(lock, part)
    finally:
        await pool.close()
        with psycopg.connect(dsn, autocommit=True) as conn:  # the days run_retention made
            for day in (OLD_DAY + dt.timedelta(days=i) for i in range(4)):
                conn.execute(f"DROP TABLE IF EXISTS {partition_name(day)}")
