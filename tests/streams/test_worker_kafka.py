"""The worker process on the real Kafka, Postgres and Redis."""

from __future__ import annotations

import asyncio
import base64
import random
import time
import uuid

import orjson
import psycopg
import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer

from tests.streams.gen import traffic
from tests.streams.helpers import assert_equals_rebuild, days_of, make_sites
from tests.streams.workerproc import (
    applied_messages,
    log_tail,
    produce,
    start_worker,
    stop,
    wait_until,
)
from tinytrail.realtime import read_realtime
from tinytrail.settings import CoreSettings
from tinytrail.topics import deadletter_topic, ensure_topics, raw_events_topic


def fresh(core_settings: CoreSettings) -> CoreSettings:
    """Topics and consumer group of this test alone."""
    return core_settings.model_copy(
        update={"topic_prefix": f"{core_settings.topic_prefix}-{uuid.uuid4().hex[:6]}"}
    )


def stored_offsets(settings: CoreSettings) -> dict[int, int]:
    with psycopg.connect(settings.database_url) as conn:
        return dict(conn.execute(
            "SELECT kpartition, next_offset FROM stream_offsets WHERE consumer_group = %s",
            (f"{settings.topic_prefix}-worker",)).fetchall())


async def kafka_committed(settings: CoreSettings) -> dict[int, int]:
    """The worker group's committed offsets on the raw topic, per partition."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        got = await admin.list_consumer_group_offsets(f"{settings.topic_prefix}-worker")
    finally:
        await admin.close()
    return {tp.partition: meta.offset for tp, meta in got.items()
            if tp.topic == raw_events_topic(settings) and meta.offset >= 0}


async def dead_letters(settings: CoreSettings, want: int) -> list[dict]:
    cons = AIOKafkaConsumer(
        deadletter_topic(settings), bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest", enable_auto_commit=False,
    )
    await cons.start()
    out: list[dict] = []
    try:
        deadline = time.monotonic() + 30
        while len(out) < want and time.monotonic() < deadline:
            batch = await cons.getmany(timeout_ms=1000)
            for msgs in batch.values():
                out.extend(orjson.loads(m.value) for m in msgs)
    finally:
        await cons.stop()
    return out


@pytest.mark.kafka
@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.slow
async def test_events_stored_once_aggregates_equal_rebuild_dlq_and_realtime(
    core_settings: CoreSettings, tmp_path
) -> None:
    settings = fresh(core_settings)
    await ensure_topics(settings)
    sites = make_sites(settings.database_url, 2)
    now_ms = int(time.time() * 1000)
    raws = traffic(random.Random(3), sites, 800, now_ms - 20 * 60 * 1000, 20 * 60 * 1000)
    garbage = (b"x:y", b"{not json")
    items = [*raws[:400], garbage, *raws[400:], *raws[:30]]  # 30 duplicates re-produced
    await produce(settings.kafka_bootstrap, raw_events_topic(settings), items)
    proc = start_worker(settings, str(tmp_path), "w1")
    try:
        wait_until(lambda: applied_messages(settings) >= len(items), 90, [proc])
        # Kafka's group offsets follow what Postgres applied (lag monitoring only).
        stored = stored_offsets(settings)
        for _ in range(100):  # the worker commits every 5 s; bounded wait
            if await kafka_committed(settings) == stored:
                break
            await asyncio.sleep(0.2)
        assert await kafka_committed(settings) == stored
    finally:
        stop(proc)
    with psycopg.connect(settings.database_url) as conn:
        n, distinct = conn.execute("SELECT count(*), count(DISTINCT event_id) FROM events"
                                   " WHERE website_id::text = ANY(%s)",
                                   ([s for s, _ in sites],)).fetchone()
    assert (n, distinct) == (len(raws), len(raws))
    days = days_of(raws)
    await assert_equals_rebuild(settings, [s for s, _ in sites], days)
    dl = await dead_letters(settings, 1)
    assert len(dl) == 1 and base64.b64decode(dl[0]["value_b64"]) == garbage[1]
    assert dl[0]["offset"] >= 0 and dl[0]["partition"] >= 0 and "decode" in dl[0]["error"]
    redis = aioredis.from_url(settings.redis_url)
    try:
        data = await read_realtime(redis, sites[0][0], int(time.time() * 1000))
    finally:
        await redis.aclose()
    human = [r for r in raws if r.website_id == sites[0][0] and not r.is_bot
             and not r.is_excluded]
    assert data["active_visitors"] == len({r.visitor_id for r in human})
    by_type: dict[str, int] = {}
    for r in human:
        by_type[r.event_type] = by_type.get(r.event_type, 0) + 1
    assert {d["eventType"]: d["count"] for d in data["events_by_type"]} == by_type
    assert asyncio.get_running_loop()


@pytest.mark.kafka
@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.slow
async def test_two_workers_rebalancing_mid_stream_lose_nothing(
    core_settings: CoreSettings, tmp_path
) -> None:
    """Fresh group, the whole backlog produced first, then members join and leave while
    batches are in flight: w1 alone fetches ahead, w2 joins (rebalance), w3 joins
    (rebalance), w1 leaves (rebalance). This lost whole fetched batches before the
    Postgres seek on assignment and the sink's gap check (docs/STREAMS.md, "Resuming at
    the right offset"). Every produced (partition, offset) stored exactly once and the
    aggregates equal the rebuild."""
    from tests.streams.test_faults_kafka import missing_report

    settings = fresh(core_settings)
    group = f"{settings.topic_prefix}-worker"
    await ensure_topics(settings)
    sites = make_sites(settings.database_url, 3)
    ids = [s for s, _ in sites]
    now_ms = int(time.time() * 1000)
    raws = traffic(random.Random(17), sites, 24000, now_ms - 3 * 3600 * 1000, 3 * 3600 * 1000,
                   visitors=300)
    produced = await produce(settings.kafka_bootstrap, raw_events_topic(settings), raws)
    tmp = str(tmp_path)
    # Small batches (fetches of 5 records, 20 per transaction) keep the stream going
    # long enough for three rebalances.
    info = {"TINYTRAIL_LOG_LEVEL": "INFO", "TINYTRAIL_BATCH_SIZE": "20"}
    names = ["w1"]
    procs = {"w1": start_worker(settings, tmp, "w1", info)}
    logs = lambda: "\n".join(log_tail(tmp, n) for n in names)  # noqa: E731

    def seeks(name: str) -> int:
        return (tmp_path / f"{name}.log").read_text(errors="replace").count(
            "seeked raw partitions to stored offsets (assigned)")

    seen: dict[str, int] = {}
    try:
        wait_until(lambda: applied_messages(settings) >= 100, 90, list(procs.values()))
        # Joins, each waited for in the logs as the seeks of the members that were
        # assigned again (w3 itself may get no raw partition: the assignor balances the
        # table's changelog too), then w1 leaves: three rebalances.
        for join, want in (("w2", {"w2": 1, "w1": 2}), ("w3", {"w1": 3, "w2": 2})):
            names.append(join)
            procs[join] = start_worker(settings, tmp, join, info)
            wait_until(lambda w=want: all(seeks(n) >= k for n, k in w.items()), 90,
                       list(procs.values()))
            seen[join] = applied_messages(settings)
        stop(procs.pop("w1"))
        try:
            wait_until(lambda: applied_messages(settings) >= len(raws), 150,
                       list(procs.values()))
        except AssertionError as exc:
            raise AssertionError(f"{exc}; applied {applied_messages(settings)} of "
                                 f"{len(raws)}\n{logs()}") from None
    finally:
        for p in procs.values():
            stop(p)
    lost = missing_report(settings.database_url, group, ids, produced)
    assert not lost, f"events lost or doubled:\n{lost}\n{logs()}"
    # Both joins were over before the backlog was done: they happened mid-stream.
    assert all(n < len(raws) for n in seen.values()), (seen, len(raws))
    await assert_equals_rebuild(settings, ids, days_of(raws))
