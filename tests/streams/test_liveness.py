"""Liveness from progress (finding 6): the heartbeat file is touched when batches commit or
there is nothing to do, never while a batch is stuck past its limit; every pool has a
`statement_timeout`, so a statement blocked for ever is cancelled (a transient error:
the batch is retried) instead of holding its connection."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import random
import time
from typing import Any

import psycopg
import pytest

from streams.aggregates import ADVISORY_NS
from streams.app import build_app
from streams.consumer import RawRecord
from streams.settings import WorkerSettings
from tests.streams.gen import traffic
from tests.streams.helpers import ChangelogRecorder, make_sites
from tests.streams.test_agent_context import worker_settings
from tinytrail.db import make_pool, open_pool
from tinytrail.settings import CoreSettings


def unit_settings(tmp: str, **over: Any) -> WorkerSettings:
    return WorkerSettings(topic_prefix="unit", worker_metrics_port=0,
                          worker_data_dir=f"{tmp}/data", worker_heartbeat_file=f"{tmp}/hb",
                          **over)


def test_progress_rules_without_services(tmp_path: Any) -> None:
    """Pure: the rules of `Runtime.progressing` on a runtime that never connects."""
    app, rt = build_app(unit_settings(str(tmp_path), worker_batch_stuck_seconds=30))
    now = time.monotonic()
    assert rt.progressing(now)  # not started yet: starting counts as progress
    rt.batch_started = now - 10
    assert rt.progressing(now)  # a batch in flight, younger than the limit
    rt.batch_started = now - 31
    assert not rt.progressing(now)  # stuck past the limit
    assert not rt.beat() and not os.path.exists(tmp_path / "hb")
    rt.batch_started = None
    rt.ready.set()
    rt.committed += 1
    assert rt.progressing(now)  # a commit since the last look
    # Started, nothing committed since, records waiting on a partition: not progressing.
    tp = type("TP", (), {"topic": rt.raw_topic, "partition": 0})()
    rt.raw_tps = lambda tps=None: [tp]  # type: ignore[method-assign]
    app.consumer.highwater = lambda _tp: 50  # type: ignore[method-assign]
    rt.sink.seeked({0: 40})
    assert not rt.progressing(now)
    rt.sink.seeked({0: 50})  # applied up to the high watermark: idle, alive
    assert rt.progressing(now) and rt.beat() and os.path.exists(tmp_path / "hb")


@pytest.mark.postgres
async def test_every_pool_has_its_statement_timeout(core_settings: CoreSettings) -> None:
    for timeout, shown in ((1.5, "1500ms"), (30, "30s"), (0, "0")):
        pool = make_pool(core_settings, name="t", max_size=1, statement_timeout=timeout)
        await open_pool(pool)
        try:
            async with pool.connection() as conn:
                row = await (await conn.execute("SHOW statement_timeout")).fetchone()
        finally:
            await pool.close()
        assert row == {"statement_timeout": shown}
    pool = make_pool(core_settings, name="t", max_size=1)  # the process default: 60 s
    await open_pool(pool)
    try:
        async with pool.connection() as conn:
            row = await (await conn.execute("SHOW statement_timeout")).fetchone()
            with pytest.raises(psycopg.errors.QueryCanceled):
                await conn.execute("SET statement_timeout = 50")
                await conn.execute("SELECT pg_sleep(5)")
    finally:
        await pool.close()
    assert row == {"statement_timeout": "1min"}


@pytest.mark.postgres
@pytest.mark.redis
async def test_a_stuck_batch_stops_the_heartbeat_and_recovers(
    core_settings: CoreSettings, tmp_path: Any
) -> None:
    """A rebuild-like exclusive lock on the batch's day blocks it: the statement times
    out (worker_statement_timeout 0.5 s), is retried as transient, and once the batch is
    older than worker_batch_stuck_seconds (2 s) the heartbeat is withheld. The lock goes,
    the batch commits whole, the heartbeat comes back; nothing is dead-lettered."""
    sites = make_sites(core_settings.database_url, 1)
    now_ms = int(dt.datetime.now(dt.UTC).timestamp() * 1000)
    raws = traffic(random.Random(31), sites, 20, now_ms - 1000, 1000, visitors=3)
    base = worker_settings(core_settings, str(tmp_path), batch=len(raws))
    settings = base.model_copy(update={"worker_statement_timeout": 0.5,
                                       "worker_batch_stuck_seconds": 2.0})
    app, rt = build_app(settings)
    dead: list[Any] = []

    async def send_dead(items: Any) -> None:
        dead.extend(items)

    rt.send_dead = send_dead  # type: ignore[method-assign]
    rt.sessions.producer = ChangelogRecorder()  # type: ignore[assignment]  # no broker
    days = sorted({r.received_at_ms // 86_400_000 for r in raws})
    hb = tmp_path / "hb"
    await rt.start()
    try:
        with psycopg.connect(core_settings.database_url, autocommit=True) as lock:
            for d in days:
                lock.execute("SELECT pg_advisory_lock(%s, %s)", (ADVISORY_NS, d))
            task = asyncio.create_task(rt.handle(
                [RawRecord(0, i, r.key, r.to_bytes()) for i, r in enumerate(raws)]))
            deadline = time.monotonic() + 60
            while rt.progressing():
                assert not task.done(), task
                assert time.monotonic() < deadline, "the batch never counted as stuck"
                await asyncio.sleep(0.2)
            before = hb.stat().st_mtime_ns
            assert not rt.beat() and hb.stat().st_mtime_ns == before
            for d in days:
                lock.execute("SELECT pg_advisory_unlock(%s, %s)", (ADVISORY_NS, d))
        n = await asyncio.wait_for(task, 60)
        assert rt.beat()
    finally:
        await rt.stop()
    assert (n, dead) == (len(raws), [])


@pytest.mark.postgres
async def test_a_pooled_connection_killed_by_postgres_costs_no_failed_query(
    core_settings: CoreSettings,
) -> None:
    """A Postgres restart (here: the pooled connection's backend terminated) used to make
    the next query on that connection fail (`AdminShutdown`: the API answered 500 once
    per stale connection); the pool now checks a connection when it hands it out."""
    pool = make_pool(core_settings, name="t", max_size=1)
    await open_pool(pool)
    try:
        async with pool.connection() as conn:
            pid = (await (await conn.execute("SELECT pg_backend_pid() AS p")).fetchone())["p"]
        with psycopg.connect(core_settings.database_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        async with pool.connection() as conn:
            row = await (await conn.execute("SELECT pg_backend_pid() AS p")).fetchone()
    finally:
        await pool.close()
    assert row is not None and row["p"] != pid
