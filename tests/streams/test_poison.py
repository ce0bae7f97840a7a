"""Poison messages never stop the worker, and only the refused events are dead-lettered.

Finding 1 (issue 12): a `page_view` whose path is "/" + ~2,000 CJK characters, or whose
referrer host is ~2,000 CJK characters, got 202 and then stalled its partition for ever
(Postgres refused the index row, the worker retried, exited, and crash-looped). The
collector now refuses them (tinytrail/limits.py), so here they are produced straight onto
the raw topic: the worker's choke point dead-letters them alone.
Finding 5: a refused row dead-lettered its whole batch. Here a row that passes every cap
(a legacy website setting: a content-group name far over its byte cap, written straight
into Postgres) makes Postgres refuse exactly the events in that group: the batch is
bisected, those events alone are dead-lettered with partition, offset and reason, and the
rest commit with their offsets.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import datetime as dt
import random
import time
import uuid
from typing import Any

import orjson
import psycopg
import pytest

from streams.app import build_app
from streams.consumer import RawRecord
from streams.errors import backoff, is_transient
from tests.streams.gen import traffic
from tests.streams.helpers import ChangelogRecorder, assert_equals_rebuild, days_of, make_sites
from tests.streams.test_agent_context import worker_settings
from tests.streams.workerproc import (
    applied_messages,
    log_tail,
    produce,
    start_worker,
    stop,
    wait_until,
)
from tinytrail.event import DecodeError, RawEvent
from tinytrail.settings import CoreSettings
from tinytrail.topics import deadletter_topic, ensure_topics, raw_events_topic

CJK = [chr(c) for c in range(0x4E00, 0x9FFF)]


def cjk(n: int, seed: int) -> str:
    """`n` random CJK characters (3 UTF-8 bytes each; random, so TOAST cannot shrink them)."""
    rng = random.Random(seed)
    return "".join(rng.choice(CJK) for _ in range(n))


def base_event(**over: Any) -> RawEvent:
    ev = RawEvent(event_id=str(uuid.uuid4()), received_at_ms=int(time.time() * 1000),
                  website_id=str(uuid.uuid4()), visitor_id="a" * 64, event_type="page_view",
                  url="https://e.example/", path="/")
    return dataclasses.replace(ev, **over)


@pytest.mark.parametrize("over, needle", [
    pytest.param({"path": "/" + cjk(2000, 1)}, "path is longer than 1600 bytes",
                 id="finding-1-cjk-path"),
    pytest.param({"referrer": "https://" + cjk(2000, 2) + ".example/"},
                 "referrer is longer than 2048 bytes", id="finding-1-cjk-referrer-host"),
    pytest.param({"path": "/" + "a" * 2048}, "path is longer than 2048 characters",
                 id="path-chars"),
    pytest.param({"url": "https://e.example/" + "\U0001f600" * 1100}, "url is longer",
                 id="url-bytes"),
    pytest.param({"utm_source": "\u00e9" * 201}, "utm_source is longer than 200 characters",
                 id="utm-chars"),
    pytest.param({"path": "/a\tb"}, "control characters", id="tab-in-path"),
    pytest.param({"referrer": "https://x.example/\x85"}, "control characters", id="c1"),
    pytest.param({"event_type": "custom", "name": "x\x1b[31m"}, "control", id="ansi-name"),
    pytest.param({"properties": {"k": "v" * 4100}}, "properties is larger", id="props-size"),
    pytest.param({"properties": {"k\x00": 1}}, "NUL", id="props-nul-key"),
    pytest.param({"received_at_ms": 2**62}, "received_at_ms", id="time-past-year-9999"),
    pytest.param({"received_at_ms": True}, "received_at_ms", id="time-bool"),
    pytest.param({"is_bot": 1}, "booleans", id="bot-int"),
    pytest.param({"screen_width": 10**6}, "screen_width", id="screen"),
    pytest.param({"visitor_id": "Z" * 64}, "visitor_id", id="visitor-not-hex"),
])
def test_the_choke_point_refuses_what_postgres_could_not_store(
    over: dict[str, Any], needle: str
) -> None:
    ev = base_event(**over)
    with pytest.raises(DecodeError, match=needle):
        RawEvent.from_bytes(ev.to_bytes())


def test_the_choke_point_accepts_the_caps_exactly() -> None:
    ev = base_event(path="/" + cjk(533, 3), referrer="https://" + "r" * 2040,
                    properties={"k": "\x07 control characters are allowed in values"},
                    utm_campaign="\u00e9" * 200)
    assert RawEvent.from_bytes(ev.to_bytes()) == ev  # 1 + 533 * 3 = 1,600 bytes


@pytest.mark.parametrize("exc, transient", [
    pytest.param(psycopg.OperationalError("connection lost"), True, id="connection-lost"),
    pytest.param(psycopg.errors.SerializationFailure(), True, id="serialization"),
    pytest.param(psycopg.errors.DeadlockDetected(), True, id="deadlock"),
    pytest.param(psycopg.errors.QueryCanceled(), True, id="statement-timeout"),
    pytest.param(psycopg.errors.AdminShutdown(), True, id="admin-shutdown"),
    pytest.param(psycopg.errors.TooManyConnections(), True, id="too-many-connections"),
    pytest.param(ConnectionResetError(), True, id="socket"),
    pytest.param(psycopg.errors.ProgramLimitExceeded("index row size"), False,
                 id="finding-1-index-row-size"),
    pytest.param(psycopg.errors.NumericValueOutOfRange(), False, id="out-of-range"),
    pytest.param(psycopg.errors.CheckViolation(), False, id="no-partition"),
    pytest.param(psycopg.DataError("NUL"), False, id="driver-data-error"),
    pytest.param(ValueError("sessions"), False, id="python-error"),
])
def test_errors_are_classified(exc: BaseException, transient: bool) -> None:
    assert is_transient(exc) is transient


def test_backoff_doubles_up_to_five_seconds() -> None:
    assert [backoff(a) for a in (1, 2, 3, 4, 5, 6, 50)] == [0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]


def poison_site(dsn: str) -> tuple[str, str]:
    """A website whose content group `/poison/*` has a 3,000-byte name: written straight
    into Postgres (the API refuses it), as a setting saved before the caps existed."""
    (site_id, domain), = make_sites(dsn, 1)
    groups = [{"name": cjk(1000, 7), "pattern": "/poison/*"}, {"name": "Blog", "pattern": "/b/*"}]
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("UPDATE websites SET content_groups = %s WHERE id = %s",
                     (orjson.dumps(groups).decode(), site_id))
    return site_id, domain


@pytest.mark.postgres
@pytest.mark.redis
async def test_finding_5_one_refused_row_does_not_dead_letter_its_batch(
    core_settings: CoreSettings, tmp_path: Any
) -> None:
    site = poison_site(core_settings.database_url)
    now_ms = int(dt.datetime.now(dt.UTC).timestamp() * 1000)
    raws = traffic(random.Random(11), [site], 200, now_ms - 600_000, 600_000, visitors=15)
    poison_at = {17, 101, 102, 180}  # page views on the poisoned group, among the rest
    for i in poison_at:
        raws[i] = dataclasses.replace(raws[i], event_type="page_view", path=f"/poison/{i}",
                                      name=None, properties=None)
    settings = worker_settings(core_settings, str(tmp_path), batch=len(raws))
    app, rt = build_app(settings)
    dead: list[Any] = []

    async def send_dead(items: Any) -> None:  # the DLQ topic needs a broker (tested below)
        dead.extend(items)

    rt.send_dead = send_dead  # type: ignore[method-assign]
    rt.sessions.producer = ChangelogRecorder()  # type: ignore[assignment]  # no broker
    await rt.start()
    try:
        records = [RawRecord(0, i, r.key, r.to_bytes()) for i, r in enumerate(raws)]
        stored_new = await rt.handle(records)  # one batch of 200 events
    finally:
        await rt.stop()
    assert sorted(d.offset for d in dead) == sorted(poison_at)  # exactly those, once each
    assert all(d.partition == 0 for d in dead)
    assert {d.value for d in dead} == {raws[i].to_bytes() for i in poison_at}
    assert all(d.error.startswith("sink: ProgramLimitExceeded [54000]") for d in dead), dead
    good = [r for i, r in enumerate(raws) if i not in poison_at]
    assert stored_new == len(good)
    with psycopg.connect(core_settings.database_url) as conn:
        stored = {r[0] for r in conn.execute(
            "SELECT event_id::text FROM events WHERE website_id = %s", (site[0],))}
        next_offset = conn.execute(
            "SELECT next_offset FROM stream_offsets WHERE consumer_group = %s",
            (str(app.conf.id),)).fetchone()
    assert stored == {r.event_id for r in good}
    assert next_offset == (len(raws),)
    await assert_equals_rebuild(core_settings, [site[0]], days_of(raws))


async def read_topic(bootstrap: str, topic: str, want: int, timeout: float = 30) -> list[Any]:
    """At least `want` messages of `topic` from the start (bounded by `timeout` s)."""
    from aiokafka import AIOKafkaConsumer

    cons = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                            enable_auto_commit=False)
    await cons.start()
    out: list[Any] = []
    try:
        deadline = time.monotonic() + timeout
        while len(out) < want and time.monotonic() < deadline:
            for msgs in (await cons.getmany(timeout_ms=500)).values():
                out.extend(msgs)
    finally:
        await cons.stop()
    return out


@pytest.mark.kafka
@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.slow
async def test_finding_1_poison_produced_onto_the_raw_topic_is_isolated(
    core_settings: CoreSettings, tmp_path: Any
) -> None:
    """The real worker process: CJK path and CJK referrer host (over the byte caps) and a
    page view of the poisoned content group, produced straight onto the raw topic among
    normal traffic. Each lands in the dead-letter topic with its partition, offset and
    reason; everything else is stored once; the worker never exits; the applied offsets
    reach the end of the topic (lag 0); aggregates equal the rebuild."""
    settings = core_settings.model_copy(
        update={"topic_prefix": f"{core_settings.topic_prefix}-{uuid.uuid4().hex[:6]}"})
    await ensure_topics(settings)
    site = poison_site(settings.database_url)
    now_ms = int(time.time() * 1000)
    raws = traffic(random.Random(12), [site], 300, now_ms - 600_000, 600_000, visitors=30)
    poison = {
        "path": dataclasses.replace(raws[0], event_id=str(uuid.uuid4()), event_type="page_view",
                                    path="/" + cjk(2000, 21), name=None, properties=None),
        "referrer": dataclasses.replace(raws[1], event_id=str(uuid.uuid4()),
                                        referrer="https://" + cjk(2000, 22) + "/x"),
        "group": dataclasses.replace(raws[2], event_id=str(uuid.uuid4()), event_type="page_view",
                                     path="/poison/x", name=None, properties=None),
    }
    items: list[Any] = [*raws[:100], poison["path"], *raws[100:200], poison["referrer"],
                        poison["group"], *raws[200:]]
    coords = await produce(settings.kafka_bootstrap, raw_events_topic(settings), items)
    where = {ev.event_id: coords[i] for i, ev in enumerate(items)}
    proc = start_worker(settings, str(tmp_path), "w1")
    try:
        wait_until(lambda: applied_messages(settings) >= len(items), 120, [proc])
        assert proc.poll() is None, log_tail(str(tmp_path), "w1")
    finally:
        stop(proc)
    dl = [orjson.loads(m.value) for m in await read_topic(
        settings.kafka_bootstrap, deadletter_topic(settings), 3)]
    got = {(d["partition"], d["offset"]): d for d in dl}
    assert len(dl) == 3 and set(got) == {where[p.event_id] for p in poison.values()}, dl
    for name, ev in poison.items():
        d = got[where[ev.event_id]]
        assert base64.b64decode(d["value_b64"]) == ev.to_bytes()
        assert d["topic"] == raw_events_topic(settings)
        expected = {"path": "decode: path is longer than 1600 bytes",
                    "referrer": "decode: referrer is longer than 2048 bytes",
                    "group": "sink: ProgramLimitExceeded [54000]"}[name]
        assert d["error"].startswith(expected), d["error"]
    with psycopg.connect(settings.database_url) as conn:
        n, distinct = conn.execute("SELECT count(*), count(DISTINCT event_id) FROM events"
                                   " WHERE website_id = %s", (site[0],)).fetchone()
    assert (n, distinct) == (len(raws), len(raws))
    await assert_equals_rebuild(settings, [site[0]], days_of(raws))
    assert asyncio.get_running_loop()


def test_an_enrichment_step_that_raises_drops_that_event_alone() -> None:
    """Any exception of a per-event step becomes that event's `error:` drop (which the
    worker dead-letters with its original bytes); the batch's other events go on."""
    from streams.enrich import enrich_batch
    from streams.enrich.website import WebsiteInfo
    from streams.models import Enriched

    site = WebsiteInfo.from_row(str(uuid.uuid4()), "e.example", [])
    good = [Enriched.from_raw(base_event(website_id=site.id), 0, i) for i in range(3)]
    bad = Enriched.from_raw(base_event(website_id=site.id), 0, 3)
    bad.user_agent = None  # type: ignore[assignment] - a malformed event: the UA step raises
    kept, dropped = enrich_batch([good[0], bad, *good[1:]], lambda _id: site)
    assert [e.kafka_offset for e in kept] == [0, 1, 2]
    assert [(e.kafka_offset, d.reason.split(":")[:2]) for e, d in dropped] == [
        (3, ["error", " useragent"])]
