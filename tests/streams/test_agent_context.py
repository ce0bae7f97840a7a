"""The worker's Faust agent under `agent.test_context()`: no broker, real Postgres.

`build_app` gives the real app (store `memory://`) and its one agent; the test
context feeds it through an in-memory channel instead of Kafka (the network guard
of tests/conftest.py refuses the Kafka port, as this test is not marked `kafka`).
The agent's batch body is the production `Runtime.handle`: decode, enrichment,
and the Postgres sink, on the session's real database. Only the two producers are
replaced (their topics need a broker): the dead letters go to a list, the session
changelog records to a `ChangelogRecorder`; that both reach Kafka is tested in
test_worker_kafka.py.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import random
import uuid
from typing import Any

import orjson
import psycopg
import pytest

from streams.app import build_app
from streams.consumer import RawBatch, RawRecord
from streams.session_state import load_value, mark_key
from streams.settings import WorkerSettings
from tests.streams.gen import traffic
from tests.streams.helpers import ChangelogRecorder, assert_equals_rebuild, make_sites
from tinytrail.settings import CoreSettings


def days_around(now_ms: int) -> list[dt.date]:
    """Yesterday and today (UTC): the days traffic of the last minutes can fall on."""
    day = dt.datetime.fromtimestamp(now_ms / 1000, dt.UTC).date()
    return [day - dt.timedelta(days=1), day]


def worker_settings(core: CoreSettings, tmp: str, batch: int) -> WorkerSettings:
    return WorkerSettings(
        **core.model_dump(exclude={"topic_prefix"}),
        topic_prefix=f"{core.topic_prefix}-{uuid.uuid4().hex[:6]}",
        worker_metrics_port=0, worker_data_dir=f"{tmp}/data",
        worker_heartbeat_file=f"{tmp}/hb", batch_size=batch, batch_window=0.2,
    )


@pytest.mark.postgres
@pytest.mark.redis
async def test_agent_decodes_enriches_stores_and_dead_letters(
    core_settings: CoreSettings, tmp_path: Any
) -> None:
    sites = make_sites(core_settings.database_url, 2)
    ids = [s for s, _ in sites]
    now_ms = int(dt.datetime.now(dt.UTC).timestamp() * 1000)
    raws = traffic(random.Random(5), sites, 120, now_ms - 600_000, 600_000, visitors=20)
    unknown = dataclasses.replace(raws[0], event_id=str(uuid.uuid4()),
                                  website_id=str(uuid.uuid4()))
    # (key, value) per message, in the order the agent sees them (all on partition 0).
    msgs: list[tuple[bytes | None, bytes]] = [(r.key, r.to_bytes()) for r in raws[:60]]
    msgs += [(b"k", b"{not json"), (unknown.key, unknown.to_bytes())]
    msgs += [(r.key, r.to_bytes()) for r in raws[60:]]
    msgs += [(raws[3].key, raws[3].to_bytes())]  # the same event produced twice
    settings = worker_settings(core_settings, str(tmp_path), batch=len(msgs))
    app, rt = build_app(settings)
    dead: list[Any] = []
    handled: list[int] = []

    async def send_dead(items: Any) -> None:  # the DLQ producer needs a broker
        dead.extend(items)

    real_handle = rt.handle

    async def handle(batch: Any) -> int:  # observe each batch the agent hands over
        n = await real_handle(batch)
        handled.append(len(batch))
        return n

    rt.send_dead = send_dead  # type: ignore[method-assign]
    rt.handle = handle  # type: ignore[method-assign]
    changelog = rt.sessions.producer = ChangelogRecorder()  # type: ignore[assignment]
    await rt.start()
    try:
        async with app.tt_agent.test_context() as agent:  # type: ignore[attr-defined]
            records = [RawRecord(0, i, key, value) for i, (key, value) in enumerate(msgs)]
            await agent.put(RawBatch(records[:50]), wait=False)
            await agent.put(RawBatch(records[50:]), wait=False)
            for _ in range(200):  # bounded: the batch is full, so it goes at once
                if sum(handled) >= len(msgs):
                    break
                await asyncio.sleep(0.05)
    finally:
        await rt.stop()
    assert sum(handled) == len(msgs)
    # Garbage -> one dead letter with its partition and offset; unknown site dropped.
    assert [(d.partition, d.offset, d.value) for d in dead] == [(0, 60, b"{not json")]
    assert dead[0].error.startswith("decode")
    with psycopg.connect(core_settings.database_url) as conn:
        stored = conn.execute(
            "SELECT event_id::text, session_id::text, kafka_partition, kafka_offset FROM events"
            " WHERE website_id::text = ANY(%s)", (ids,),
        ).fetchall()
        next_offset = conn.execute(
            "SELECT next_offset FROM stream_offsets WHERE consumer_group = %s",
            (str(app.conf.id),),
        ).fetchone()
        unknown_rows = conn.execute(
            "SELECT count(*) FROM events WHERE event_id = %s", (unknown.event_id,)
        ).fetchone()
    assert sorted(r[0] for r in stored) == sorted(r.event_id for r in raws)  # once each
    assert next_offset == (len(msgs),)  # garbage, dropped and duplicate messages included
    assert unknown_rows == (0,)
    offsets = {r[0]: r[3] for r in stored}
    assert offsets[raws[0].event_id] == 0 and offsets[raws[60].event_id] == 62
    # The session changelog got the sessions, then partition 0's mark at the stored offset.
    table = rt.sessions.table.changelog_topic.get_topic_name()
    assert {(t, p) for t, p, _, _ in changelog.records} == {(table, 0)}
    _, _, key, value = changelog.records[-1]
    assert key == orjson.dumps(mark_key(0)) and value is not None
    assert load_value(value)["next"] == len(msgs)
    nil = "00000000-0000-0000-0000-000000000000"
    by_id = {r.event_id: r for r in raws}
    assert all((s == nil) == by_id[e].is_excluded for e, s, _, _ in stored)
    # The agent's aggregates equal the rebuild from the stored events.
    await assert_equals_rebuild(core_settings, ids, days_around(now_ms))


@pytest.mark.postgres
@pytest.mark.redis
async def test_a_transient_postgres_error_is_retried_and_nothing_is_dead_lettered(
    core_settings: CoreSettings, tmp_path: Any
) -> None:
    """Transient errors (here a lost connection, then a serialization failure, injected
    into the first two sink calls) are retried with backoff: the batch is then stored
    whole, nothing is dead-lettered (data errors: tests/streams/test_poison.py)."""
    sites = make_sites(core_settings.database_url, 1)
    now_ms = int(dt.datetime.now(dt.UTC).timestamp() * 1000)
    raws = traffic(random.Random(9), sites, 20, now_ms - 60_000, 60_000, visitors=5)
    settings = worker_settings(core_settings, str(tmp_path), batch=len(raws))
    app, rt = build_app(settings)
    dead: list[Any] = []

    async def send_dead(items: Any) -> None:
        dead.extend(items)

    real_apply = rt.sink.apply
    calls = 0

    async def apply(events: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        if calls == 2:
            raise psycopg.errors.SerializationFailure("could not serialize access")
        return await real_apply(events, *args, **kwargs)

    rt.send_dead = send_dead  # type: ignore[method-assign]
    rt.sink.apply = apply  # type: ignore[method-assign]
    rt.sessions.producer = ChangelogRecorder()  # type: ignore[assignment]  # no broker
    await rt.start()
    try:
        n = await rt.handle([RawRecord(0, i, r.key, r.to_bytes()) for i, r in enumerate(raws)])
    finally:
        await rt.stop()
    assert (n, calls, dead) == (len(raws), 3, [])
    with psycopg.connect(core_settings.database_url) as conn:
        stored = {r[0] for r in conn.execute(
            "SELECT event_id::text FROM events WHERE website_id::text = %s", (sites[0][0],))}
        next_offset = conn.execute(
            "SELECT next_offset FROM stream_offsets WHERE consumer_group = %s",
            (str(app.conf.id),)).fetchone()
    assert stored == {r.event_id for r in raws}
    assert next_offset == (len(raws),)


@pytest.mark.postgres
@pytest.mark.redis
async def test_a_website_created_just_now_is_not_dropped(
    core_settings: CoreSettings, tmp_path: Any
) -> None:
    """Finding 3, worker side: the website cache was loaded before the website existed;
    its first event is looked up in Postgres and stored, not dropped as unknown. An id
    Postgres does not know is dropped (and remembered briefly)."""
    settings = worker_settings(core_settings, str(tmp_path), batch=10)
    app, rt = build_app(settings)
    rt.send_dead = lambda items: asyncio.sleep(0)  # type: ignore[method-assign,assignment,return-value]
    rt.sessions.producer = ChangelogRecorder()  # type: ignore[assignment]  # no broker
    await rt.start()  # loads the cache: the website below does not exist yet
    try:
        sites = make_sites(core_settings.database_url, 1)
        assert rt.websites.get(sites[0][0]) is None
        now_ms = int(dt.datetime.now(dt.UTC).timestamp() * 1000)
        raws = traffic(random.Random(21), sites, 5, now_ms - 1000, 1000, visitors=2)
        ghost = dataclasses.replace(raws[0], event_id=str(uuid.uuid4()),
                                    website_id=str(uuid.uuid4()))
        msgs = [*raws, ghost]
        n = await rt.handle([RawRecord(0, i, r.key, r.to_bytes()) for i, r in enumerate(msgs)])
        assert n == len(raws)
        assert rt.websites.get(sites[0][0]) is not None
        assert rt.websites.get(ghost.website_id) is None
    finally:
        await rt.stop()
    with psycopg.connect(core_settings.database_url) as conn:
        stored = {r[0] for r in conn.execute(
            "SELECT event_id::text FROM events WHERE event_id = ANY(%s::uuid[])",
            ([r.event_id for r in msgs],))}
    assert stored == {r.event_id for r in raws}


@pytest.mark.postgres
@pytest.mark.redis
async def test_a_failed_session_changelog_write_makes_the_next_batch_reload_the_partition(
    core_settings: CoreSettings, tmp_path: Any
) -> None:
    """Postgres committed a batch but its session changelog write failed: the partition's
    mark must stop vouching for the table, so the next batch reloads the partition from the
    stored events (rewriting it whole) before it uses any session; figures == rebuild."""
    sites = make_sites(core_settings.database_url, 1)
    now_ms = int(dt.datetime.now(dt.UTC).timestamp() * 1000)
    raws = traffic(random.Random(4), sites, 60, now_ms - 600_000, 600_000, visitors=6)
    raws.sort(key=lambda r: r.received_at_ms)  # the second batch continues the visits
    settings = worker_settings(core_settings, str(tmp_path), batch=30)
    app, rt = build_app(settings)
    writes: list[int] = []
    reloads: list[str] = []
    real_write, real_reload = rt.sessions._write, rt.sessions.reload

    async def flaky_write(records: Any) -> None:
        writes.append(len(records))
        if len(writes) == 2:  # 1: the first load of partition 0; 2: batch 1's sessions
            raise OSError("broker unreachable")
        await real_write(records)

    async def spy_reload(cur: Any, kpart: int, next_offset: int, why: str) -> None:
        reloads.append(f"{kpart}@{next_offset}:{why}")
        await real_reload(cur, kpart, next_offset, why)

    rt.sessions._write = flaky_write  # type: ignore[method-assign]
    rt.sessions.reload = spy_reload  # type: ignore[method-assign]
    rt.send_dead = lambda items: asyncio.sleep(0)  # type: ignore[method-assign,assignment,return-value]
    rt.sessions.producer = ChangelogRecorder()  # type: ignore[assignment]  # no broker
    await rt.start()
    try:
        records = [RawRecord(0, i, r.key, r.to_bytes()) for i, r in enumerate(raws)]
        assert await rt.handle(records[:30]) == 30
        assert reloads == ["0@0:first"]  # no mark yet: loaded once, then the write failed
        assert not rt.sessions.current(0, 30)  # the mark no longer vouches for the table
        assert await rt.handle(records[30:]) == 30
        assert reloads == ["0@0:first", "0@30:first"]  # reloaded before use
        assert rt.sessions.current(0, 60)
    finally:
        await rt.stop()
    await assert_equals_rebuild(core_settings, [sites[0][0]], days_around(now_ms))
