"""The worker's session table on the real Kafka and Postgres (streams/session_state.py).

Restart and a lost tail: one visitor population over 40 minutes, in three phases, so
that phase-2 and phase-3 events continue the sessions of earlier phases:
1. worker w1 applies phase 1 and stops (SIGTERM);
2. w2 starts: Faust recovers the table from its changelog, the marks equal Postgres'
   offsets, so w2 reloads none of the partitions w1 wrote, and applies phase 2;
3. the changelog "loses its tail" for partition p: every session of p is deleted
   (tombstones) and p's mark is put back to offset 0, as after a kill -9 between a
   COMMIT and the changelog write. w3 must see the mark is behind Postgres, reload p's
   sessions from the stored events, and continue them. Trusting the gutted table would
   start new visits for returning visitors (visits and visitors counted twice), which
   the rebuild comparison would show.

Partition mismatch: a sessions changelog created with another partition count than the
raw topic's is never written; the worker goes on from Postgres.
"""

from __future__ import annotations

import random
import re
import time

import orjson
import psycopg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streams.session_state import mark_key, table_key
from tests.streams.gen import traffic
from tests.streams.helpers import assert_equals_rebuild, days_of, make_sites
from tests.streams.test_worker_kafka import fresh
from tests.streams.workerproc import (
    applied_messages,
    log_tail,
    produce,
    start_worker,
    stop,
    wait_until,
)
from tinytrail.settings import CoreSettings
from tinytrail.topics import ensure_topics, raw_events_topic

RELOAD = re.compile(r"sessions of partition (\d+) reloaded")


def reloaded(tmp: str, name: str) -> set[int]:
    with open(f"{tmp}/{name}.log", errors="replace") as f:
        return {int(m.group(1)) for m in RELOAD.finditer(f.read())}


def run_phase(settings: CoreSettings, tmp: str, name: str, want: int) -> None:
    proc = start_worker(settings, tmp, name, {"TINYTRAIL_LOG_LEVEL": "INFO"})
    try:
        try:
            wait_until(lambda: applied_messages(settings) >= want, 120, [proc])
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{log_tail(tmp, name)}") from None
    finally:
        stop(proc)


async def lose_changelog_tail(settings: CoreSettings, kpart: int, floor: int) -> int:
    """Tombstone every stored session of raw partition `kpart` in the changelog and put
    its mark back to offset 0; returns how many sessions were deleted."""
    with psycopg.connect(settings.database_url) as conn:
        keys = conn.execute(
            "SELECT DISTINCT website_id::text, visitor_id, (extract(epoch FROM received_at)"
            " * 1000)::bigint / 86400000, is_bot FROM events WHERE kafka_partition = %s"
            " AND NOT is_excluded", (kpart,),
        ).fetchall()
    topic = f"{settings.topic_prefix}-worker-sessions-changelog"
    prod = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await prod.start()
    try:
        for w, v, day, bot in keys:
            await prod.send_and_wait(topic, partition=kpart, value=None,
                                     key=orjson.dumps(table_key((w, v, int(day), bot, kpart))))
        await prod.send_and_wait(topic, partition=kpart, key=orjson.dumps(mark_key(kpart)),
                                 value=orjson.dumps({"next": 0, "floor": floor}))
    finally:
        await prod.stop()
    return len(keys)


@pytest.mark.kafka
@pytest.mark.postgres
@pytest.mark.redis
async def test_restart_recovers_the_table_and_a_lost_tail_is_reloaded_from_postgres(
    core_settings: CoreSettings, tmp_path
) -> None:
    settings = fresh(core_settings)
    await ensure_topics(settings)
    tmp = str(tmp_path)
    sites = make_sites(settings.database_url, 2)
    ids = [s for s, _ in sites]
    now_ms = int(time.time() * 1000)
    raws = traffic(random.Random(23), sites, 2400, now_ms - 40 * 60_000, 40 * 60_000,
                   visitors=40)
    raws.sort(key=lambda r: r.received_at_ms)  # later phases continue earlier visits
    topic = raw_events_topic(settings)

    first = await produce(settings.kafka_bootstrap, topic, raws[:800])
    run_phase(settings, tmp, "w1", 800)
    written = {p for p, _ in first}
    assert reloaded(tmp, "w1") == written  # no marks yet: each partition loaded once

    second = await produce(settings.kafka_bootstrap, topic, raws[800:1600])
    run_phase(settings, tmp, "w2", 1600)
    assert not reloaded(tmp, "w2") & written, log_tail(tmp, "w2")  # recovered, no reload

    kpart = max(written, key=lambda p: sum(1 for q, _ in first + second if q == p))
    today = now_ms // 86_400_000
    assert await lose_changelog_tail(settings, kpart, today - 1) > 0
    await produce(settings.kafka_bootstrap, topic, raws[1600:])
    run_phase(settings, tmp, "w3", len(raws))
    days = days_of(raws)
    await assert_equals_rebuild(settings, ids, days)
    assert kpart in reloaded(tmp, "w3"), log_tail(tmp, "w3")


async def end_offsets(settings: CoreSettings, topic: str, partitions: int) -> dict[int, int]:
    """Partition -> end offset of `topic` (records ever written)."""
    cons = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap,
                            enable_auto_commit=False)
    await cons.start()
    try:
        ends = await cons.end_offsets([TopicPartition(topic, p) for p in range(partitions)])
    finally:
        await cons.stop()
    return {tp.partition: off for tp, off in ends.items()}


@pytest.mark.kafka
@pytest.mark.postgres
@pytest.mark.redis
async def test_a_changelog_with_other_partitions_than_the_raw_topic_is_never_written(
    core_settings: CoreSettings, tmp_path
) -> None:
    """The sessions changelog exists already with 2 partitions, the raw topic has 4 (as
    after a change of EVENTS_PARTITIONS without recreating the changelog): a session's
    changelog partition would not be its raw partition. The worker refuses to write the
    changelog (`PartitionsMismatch`, naming both topics, in its log) and goes on from
    Postgres: every event stored once, figures equal to the rebuild."""
    settings = fresh(core_settings)
    await ensure_topics(settings)
    changelog = f"{settings.topic_prefix}-worker-sessions-changelog"
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(changelog, 2, settings.topic_replication)])
    finally:
        await admin.close()
    tmp = str(tmp_path)
    sites = make_sites(settings.database_url, 2)
    ids = [s for s, _ in sites]
    now_ms = int(time.time() * 1000)
    raws = traffic(random.Random(31), sites, 600, now_ms - 20 * 60_000, 20 * 60_000,
                   visitors=30)
    raws.sort(key=lambda r: r.received_at_ms)
    topic = raw_events_topic(settings)
    produced = await produce(settings.kafka_bootstrap, topic, raws[:300])
    assert len({p for p, _ in produced}) > 2  # some raw partition has no changelog twin
    run_phase(settings, tmp, "w1", 300)
    await produce(settings.kafka_bootstrap, topic, raws[300:])  # sessions continue
    run_phase(settings, tmp, "w2", len(raws))
    logs = log_tail(tmp, "w1", 400) + log_tail(tmp, "w2", 400)
    assert "PartitionsMismatch" in logs, logs[-6000:]
    assert f"changelog {changelog!r} has 2 partitions" in logs, logs[-6000:]
    assert f"source topic {topic!r} has 4" in logs, logs[-6000:]
    assert await end_offsets(settings, changelog, 2) == {0: 0, 1: 0}  # nothing written
    await assert_equals_rebuild(settings, ids, days_of(raws))
    with psycopg.connect(settings.database_url) as conn:
        n, distinct = conn.execute(
            "SELECT count(*), count(DISTINCT event_id) FROM events"
            " WHERE website_id::text = ANY(%s)", (ids,)).fetchone()
    assert (n, distinct) == (len(raws), len(raws))
