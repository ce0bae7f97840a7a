"""Kill -9 mid-stream and two workers sharing partitions: figures still equal the rebuild."""

from __future__ import annotations

import datetime as dt
import random
import time

import psycopg
import pytest

from tests.streams.gen import traffic
from tests.streams.helpers import make_sites
from tests.streams.test_worker_kafka import assert_equals_rebuild, fresh
from tests.streams.workerproc import applied_messages, produce, start_worker, stop, wait_until
from tinytrail.settings import CoreSettings
from tinytrail.topics import ensure_topics, raw_events_topic


def stored(dsn: str, sites: list[str]) -> tuple[int, int]:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT count(*), count(DISTINCT event_id) FROM events"
            " WHERE website_id::text = ANY(%s)",
            (sites,),
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


async def run_scenario(core_settings: CoreSettings, tmp: str, workers: int, kill: bool) -> None:
    settings = fresh(core_settings)
    await ensure_topics(settings)
    sites = make_sites(settings.database_url, 3)
    ids = [s for s, _ in sites]
    now_ms = int(time.time() * 1000)
    raws = traffic(random.Random(11), sites, 6000, now_ms - 3 * 3600 * 1000, 3 * 3600 * 1000,
                   visitors=300)
    topic = raw_events_topic(settings)
    procs = [start_worker(settings, tmp, f"w{i}") for i in range(workers)]
    try:
        await produce(settings.kafka_bootstrap, topic, raws[:3000])
        if kill:
            # Kill -9 while batches are being applied, then produce more and restart.
            wait_until(lambda: applied_messages(settings) > 500, 60, procs)
            stop(procs[0], hard=True)
            await produce(settings.kafka_bootstrap, topic, raws[3000:])
            procs[0] = start_worker(settings, tmp, "w0-restarted")
        else:
            await produce(settings.kafka_bootstrap, topic, raws[3000:])
        wait_until(lambda: applied_messages(settings) >= len(raws), 120, procs)
    finally:
        for p in procs:
            stop(p)
    assert stored(settings.database_url, ids) == (len(raws), len(raws))
    days = sorted({dt.datetime.fromtimestamp(r.received_at_ms / 1000, dt.UTC).date()
                   for r in raws})
    await assert_equals_rebuild(settings, ids, days)


@pytest.mark.kafka
@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.slow
async def test_kill_minus_nine_then_restart_equals_rebuild(core_settings: CoreSettings,
                                                           tmp_path) -> None:
    await run_scenario(core_settings, str(tmp_path), workers=1, kill=True)


@pytest.mark.kafka
@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.slow
async def test_two_workers_share_partitions_and_equal_rebuild(core_settings: CoreSettings,
                                                              tmp_path) -> None:
    await run_scenario(core_settings, str(tmp_path), workers=2, kill=False)
