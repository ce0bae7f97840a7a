"""The real backing services answer, and the schema and topics come up twice cleanly."""

from __future__ import annotations

import asyncio
import uuid

import psycopg
import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from tinytrail.migrate import apply_migrations, migration_files
from tinytrail.settings import CoreSettings
from tinytrail.topics import declared_topics, ensure_topics


@pytest.mark.postgres
def test_migrations_apply_twice_and_record_versions(pg_server_dsn: str) -> None:
    name = f"tt_mig_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server_dsn, autocommit=True) as conn:
        conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(name)))
    dsn = pg_server_dsn.rsplit("/", 1)[0] + "/" + name
    try:
        first = apply_migrations(dsn)
        second = apply_migrations(dsn)
        assert first == [v for v, _ in migration_files()]
        assert second == []
        with psycopg.connect(dsn) as conn:
            versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations")]
            assert sorted(versions) == sorted(first)
            parts = conn.execute(
                "SELECT count(*) FROM pg_inherits WHERE inhparent = 'events'::regclass"
            ).fetchone()
            assert parts is not None and parts[0] >= 9  # yesterday .. a week ahead
    finally:
        with psycopg.connect(pg_server_dsn, autocommit=True) as conn:
            conn.execute(psycopg.sql.SQL("DROP DATABASE {}").format(psycopg.sql.Identifier(name)))


@pytest.mark.postgres
def test_delete_account_cascades_to_websites_events_and_aggregates(pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        acc = conn.execute("INSERT INTO accounts (name) VALUES ('c') RETURNING id").fetchone()[0]
        site = conn.execute(
            "INSERT INTO websites (account_id, domain) VALUES (%s, 'c.example') RETURNING id",
            (acc,),
        ).fetchone()[0]
        conn.execute(
            "INSERT INTO events (event_id, received_at, website_id, visitor_id, session_id,"
            " event_type, url, path, referrer_channel, screen_bucket, browser_family, os_family,"
            " device_type, is_bot, is_excluded, kafka_partition, kafka_offset)"
            " VALUES (gen_random_uuid(), now(), %s, 'v', gen_random_uuid(), 'page_view',"
            " 'https://c.example/', '/', 'Direct', 'unknown', 'Other', 'Other', 'other',"
            " false, false, 0, 0)",
            (site,),
        )
        conn.execute(
            "INSERT INTO agg_site_daily (website_id, day, is_bot, kpart, pageviews)"
            " VALUES (%s, current_date, false, 0, 1)",
            (site,),
        )
        conn.execute("DELETE FROM accounts WHERE id = %s", (acc,))
        for table in ("websites", "events", "agg_site_daily"):
            col = "id" if table == "websites" else "website_id"
            n = conn.execute(f"SELECT count(*) FROM {table} WHERE {col} = %s", (site,)).fetchone()
            assert n == (0,), table


@pytest.mark.postgres
def test_event_partitions_function_is_idempotent(pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        made = conn.execute(
            "SELECT tinytrail_ensure_event_partitions('2020-01-01', 3)"
        ).fetchone()[0]
        again = conn.execute(
            "SELECT tinytrail_ensure_event_partitions('2020-01-01', 3)"
        ).fetchone()[0]
        assert (made, again) == (3, 0)


@pytest.mark.redis
async def test_redis_round_trip_with_ttl(redis_url: str) -> None:
    r = aioredis.from_url(redis_url)
    try:
        key = f"tt:test:{uuid.uuid4().hex}"
        await r.set(key, b"value", ex=30)
        assert await r.get(key) == b"value"
        ttl = await r.ttl(key)
        assert 0 < ttl <= 30
        await r.delete(key)
        assert await r.get(key) is None
    finally:
        await r.aclose()


@pytest.mark.kafka
async def test_topics_created_once_with_declared_partitions(core_settings: CoreSettings) -> None:
    # A prefix of its own: other tests of the session create the session prefix's topics.
    core_settings = core_settings.model_copy(
        update={"topic_prefix": f"{core_settings.topic_prefix}-{uuid.uuid4().hex[:6]}"}
    )
    created = await ensure_topics(core_settings)
    again = await ensure_topics(core_settings)
    names = {t.name for t in declared_topics(core_settings)}
    assert set(created) == names
    assert again == []
    admin = AIOKafkaAdminClient(bootstrap_servers=core_settings.kafka_bootstrap)
    await admin.start()
    try:
        meta = await admin.describe_topics(sorted(names))
        by_name = {m["topic"]: len(m["partitions"]) for m in meta}
        for t in declared_topics(core_settings):
            assert by_name[t.name] == t.partitions
    finally:
        await admin.close()


@pytest.mark.kafka
async def test_message_round_trip_through_a_consumer_group(kafka_bootstrap: str) -> None:
    topic = f"tt-test-roundtrip-{uuid.uuid4().hex[:8]}"
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        sent = [f"m{i}".encode() for i in range(20)]
        for i, value in enumerate(sent):
            await producer.send_and_wait(topic, value, key=f"k{i % 3}".encode())
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=f"tt-test-group-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    got: list[bytes] = []
    try:
        async with asyncio.timeout(60):
            while len(got) < len(sent):
                batch = await consumer.getmany(timeout_ms=1000)
                for records in batch.values():
                    got.extend(r.value for r in records)
        await consumer.commit()
        committed = {tp: await consumer.committed(tp) for tp in consumer.assignment()}
    finally:
        await consumer.stop()
    assert sorted(got) == sorted(sent)
    assert sum(committed.values()) == len(sent)
