"""Kill -9 mid-stream and two workers sharing partitions: figures still equal the rebuild.

Deterministic in its set-up: traffic is produced only once the consumer group is settled
(no rebalance while a worker holds fetched, unprocessed messages), the kill waits until some
batches are COMMITTED (stored offsets) and the restart until the dead member has left
the group, traffic is fixed by a seed, the producer is idempotent (a retried send cannot
duplicate a message) and every check reads Postgres only after every worker stopped.
The fence never moves over an offset hole and partitions resume at Postgres' stored
offsets (docs/STREAMS.md, "Resuming at the right offset"; unit-tested without a broker in
tests/streams/test_offset_gap.py), so a failure naming lost offset ranges is a worker bug,
not test noise.
On failure the messages say exactly what differs: which (partition, offset) ranges were
never stored, Postgres' next offsets beside them, the aggregate rows that differ from the
rebuild, and the tail of every worker's log.
"""

from __future__ import annotations

import random
import time

import psycopg
import pytest

from tests.streams.gen import traffic
from tests.streams.helpers import assert_equals_rebuild, days_of, make_sites
from tests.streams.test_worker_kafka import fresh
from tests.streams.workerproc import (
    applied_messages,
    log_tail,
    produce,
    start_worker,
    stop,
    wait_group,
    wait_until,
)
from tinytrail.settings import CoreSettings
from tinytrail.topics import ensure_topics, raw_events_topic


def ranges(offsets: list[int]) -> str:
    """[3, 4, 5, 9] -> '3-5, 9' (what is missing, readable)."""
    out: list[str] = []
    for o in sorted(offsets):
        if out and int(out[-1].split("-")[-1]) == o - 1:
            out[-1] = f"{out[-1].split('-')[0]}-{o}"
        else:
            out.append(str(o))
    return ", ".join(out)


def missing_report(dsn: str, group: str, sites: list[str],
                   produced: list[tuple[int, int]]) -> str:
    """'' when every produced (partition, offset) is stored exactly once, else a report."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT kafka_partition, kafka_offset, count(*) FROM events"
            " WHERE website_id::text = ANY(%s) GROUP BY 1, 2", (sites,),
        ).fetchall()
        fence = dict(conn.execute(
            "SELECT kpartition, next_offset FROM stream_offsets WHERE consumer_group = %s",
            (group,),
        ).fetchall())
    stored = {(p, o): n for p, o, n in rows}
    twice = sorted(k for k, n in stored.items() if n > 1)
    lines = []
    for p in sorted({p for p, _ in produced}):
        want = [o for q, o in produced if q == p]
        lost = [o for o in want if (p, o) not in stored]
        if lost:
            lines.append(f"partition {p}: {len(lost)} of {len(want)} never stored, offsets "
                         f"{ranges(lost)}; stored next_offset {fence.get(p)}")
    if twice:
        lines.append(f"stored twice: {twice[:20]}")
    return "\n".join(lines)


async def run_scenario(core_settings: CoreSettings, tmp: str, workers: int, kill: bool) -> None:
    settings = fresh(core_settings)
    group = f"{settings.topic_prefix}-worker"
    await ensure_topics(settings)
    sites = make_sites(settings.database_url, 3)
    ids = [s for s, _ in sites]
    now_ms = int(time.time() * 1000)
    raws = traffic(random.Random(11), sites, 6000, now_ms - 3 * 3600 * 1000, 3 * 3600 * 1000,
                   visitors=300)
    topic = raw_events_topic(settings)
    names = [f"w{i}" for i in range(workers)]
    info = {"TINYTRAIL_LOG_LEVEL": "INFO"}  # rebalances and assignments in the logs
    procs = [start_worker(settings, tmp, n, info) for n in names]
    logs = lambda: "\n".join(log_tail(tmp, n) for n in names)  # noqa: E731
    try:
        await wait_group(settings.kafka_bootstrap, group, workers)
        produced = await produce(settings.kafka_bootstrap, topic, raws[:3000])
        if kill:
            # Kill -9 once batches are committed, then produce more and restart once the
            # dead member has left the group (so the restarted worker joins alone).
            wait_until(lambda: applied_messages(settings) > 500, 60, procs)
            stop(procs[0], hard=True)
            produced += await produce(settings.kafka_bootstrap, topic, raws[3000:])
            await wait_group(settings.kafka_bootstrap, group, 0)
            names.append("w0-restarted")
            procs[0] = start_worker(settings, tmp, "w0-restarted", info)
        else:
            produced += await produce(settings.kafka_bootstrap, topic, raws[3000:])
        try:
            wait_until(lambda: applied_messages(settings) >= len(raws), 120, procs)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; applied {applied_messages(settings)} of "
                                 f"{len(raws)}\n{logs()}") from None
    finally:
        for p in procs:
            stop(p)
    lost = missing_report(settings.database_url, group, ids, produced)
    assert not lost, f"events lost or doubled:\n{lost}\n{logs()}"
    await assert_equals_rebuild(settings, ids, days_of(raws))


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
