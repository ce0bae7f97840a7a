"""The worker's stall check and the delivery of fetches into the agent's channel.

Pure unit tests: the real app from `build_app` (nothing connects: the settings point
at a closed port and every socket connect fails the test), with only what each
decision reads replaced:
* `Runtime.check_stalled` is driven check by check (no timer, no sleep) against a
  small fake consumer (`assignment()`, `_read_offset`), a real `Sink`'s offsets
  (`seeked`), Faust's own rebalance switch (`app.on_rebalance_start/end`), the
  runtime's `ready` event and `batch_lock`; `resync` is a recorder.
* `Sink.seeked` / `applied_ends` / `reset` on a sink over an unopened pool.
* `Runtime.deliver` (bound as `app.consumer.deliver`) against the real in-memory channel:
  a put that Faust's flow control cancels (`ThrowableQueue.clear` cancels pending
  putters) is counted and swallowed; a cancellation of the delivering task itself
  propagates.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pytest
from faust.types import TP
from prometheus_client import REGISTRY

from streams.app import FETCHES_PER_BATCH, STALL_TICKS, Runtime, build_app
from streams.consumer import RawBatch, RawRecord
from streams.settings import WorkerSettings
from streams.sink import Sink
from tests.streams.helpers import MemorySessions
from tinytrail.db import make_pool
from tinytrail.topics import raw_events_topic

CLOSED = "127.0.0.1:9"  # nothing may connect; if something tried, the guard below fails it
LOST = "tinytrail_worker_lost_fetches_total"


@pytest.fixture(autouse=True)
def _no_sockets(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stricter than the conftest guard (which only refuses the service ports that
    the environment names): these tests must not connect anywhere."""

    def refuse(self: socket.socket, address: Any) -> None:
        raise AssertionError(f"a pure unit test connected to {address}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)


def unit_settings(tmp: str) -> WorkerSettings:
    return WorkerSettings(
        database_url=f"postgresql://unit:unit@{CLOSED}/unit",
        redis_url=f"redis://{CLOSED}/0", kafka_bootstrap=CLOSED,
        topic_prefix=f"tt-unit-{uuid.uuid4().hex[:6]}", events_partitions=4,
        log_format="text", worker_metrics_port=0, worker_data_dir=f"{tmp}/data",
        worker_heartbeat_file=f"{tmp}/hb",
    )


class FakeConsumer:
    """What `Runtime.raw_positions` reads of Faust's consumer."""

    def __init__(self) -> None:
        self._read_offset: dict[TP, int | None] = {}

    def assignment(self) -> set[TP]:
        return set(self._read_offset)


@dataclass
class Harness:
    app: Any
    rt: Runtime
    consumer: FakeConsumer
    topic: str
    resyncs: list[tuple[str, bool]]  # (why, batch_lock held during the call)


@pytest.fixture
def harness(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Harness:
    settings = unit_settings(str(tmp_path))
    app, rt = build_app(settings)
    consumer = FakeConsumer()
    app.consumer = consumer  # Faust's App.consumer has a setter
    resyncs: list[tuple[str, bool]] = []

    async def resync(why: str = "gap") -> None:
        resyncs.append((why, rt.batch_lock.locked()))

    monkeypatch.setattr(rt, "resync", resync)
    return Harness(app, rt, consumer, raw_events_topic(settings), resyncs)


@dataclass(frozen=True)
class Step:
    """The world as one stall check sees it."""

    positions: Mapping[int, int | None]  # assigned raw partition -> consumer read position
    applied: Mapping[int, int]  # partition -> next offset Postgres holds (as Sink saw it)
    busy: bool = False  # a batch in flight (batch_lock held)
    rebalancing: bool = False
    ready: bool = True


AHEAD = Step({0: 10, 1: 5}, {0: 7, 1: 5})  # partition 0 fetched 7-9, nothing applies them
EQUAL = Step({0: 7, 1: 5}, {0: 7, 1: 5})
BUSY = Step(AHEAD.positions, AHEAD.applied, busy=True)
REBALANCING = Step(AHEAD.positions, AHEAD.applied, rebalancing=True)
NOT_READY = Step(AHEAD.positions, AHEAD.applied, ready=False)


def apply_step(h: Harness, step: Step) -> None:
    h.consumer._read_offset = {TP(h.topic, p): o for p, o in step.positions.items()}
    # A fresh real Sink holding exactly this step's offsets (`reset` keeps them).
    h.rt.sink = Sink(h.rt.pool, group="g", topic=h.topic, store=MemorySessions())
    h.rt.sink.seeked(step.applied)
    if step.rebalancing and not h.app.rebalancing:
        h.app.on_rebalance_start()
    elif not step.rebalancing and h.app.rebalancing:
        h.app.on_rebalance_end()
    if step.ready:
        h.rt.ready.set()
    else:
        h.rt.ready.clear()


# The first check records the state; each later check that sees it unchanged (and
# ahead) counts one tick; the check that reaches STALL_TICKS resyncs. With
# STALL_TICKS = 2 that is the 3rd check of an unchanged stall, then every 3rd again.
STALL_CASES = [
    pytest.param([AHEAD] * 7, [3, 6], id="ahead-unchanged-resyncs-then-count-restarts"),
    pytest.param([EQUAL] * 6, [], id="equal-never"),
    pytest.param([Step({0: 4}, {0: 7})] * 6, [], id="behind-applied-never"),
    pytest.param([Step({0: 10 + i}, {0: 5}) for i in range(6)], [], id="positions-moving-never"),
    pytest.param([Step({0: 20}, {0: 5 + i}) for i in range(6)], [],
                 id="applied-catching-up-never"),
    pytest.param([Step({0: 10 + min(i, 2)}, {0: 5}) for i in range(6)], [5],
                 id="progress-then-stuck-counts-from-last-change"),
    pytest.param([AHEAD, AHEAD, EQUAL, AHEAD, AHEAD, AHEAD], [6],
                 id="caught-up-in-between-restarts-count"),
    pytest.param([BUSY] * 6, [], id="batch-in-flight-never"),
    pytest.param([AHEAD, AHEAD, BUSY, AHEAD, AHEAD, AHEAD], [6],
                 id="batch-in-flight-restarts-count"),
    pytest.param([REBALANCING] * 6, [], id="rebalancing-never"),
    pytest.param([AHEAD, AHEAD, REBALANCING, AHEAD, AHEAD, AHEAD], [6],
                 id="rebalance-restarts-count"),
    pytest.param([NOT_READY] * 6, [], id="not-ready-never"),
    pytest.param([AHEAD, AHEAD, NOT_READY, AHEAD, AHEAD, AHEAD], [6],
                 id="not-ready-restarts-count"),
    pytest.param([Step({0: 7, 1: None}, {0: 7, 1: 5})] * 6, [],
                 id="no-read-position-ignored"),
    pytest.param([Step({0: 10, 1: None}, {0: 7, 1: 5})] * 4, [3],
                 id="no-read-position-does-not-hide-a-stall"),
    pytest.param([Step({0: 10}, {})] * 6, [], id="never-sought-partition-ignored"),
    pytest.param([Step({0: 7, 1: 9, 2: 3}, {0: 7, 1: 5, 2: 3})] * 3, [3],
                 id="one-partition-ahead-is-enough"),
]


@pytest.mark.parametrize(("steps", "resync_at"), STALL_CASES)
async def test_check_stalled(harness: Harness, steps: list[Step], resync_at: list[int]) -> None:
    assert STALL_TICKS == 2  # the table's check numbers are written for 2
    fired: list[int] = []
    for n, step in enumerate(steps, start=1):
        apply_step(harness, step)
        before = len(harness.resyncs)
        # A check never waits in these steps; the bound turns a deadlock into a failure.
        if step.busy:
            async with harness.rt.batch_lock:
                await asyncio.wait_for(harness.rt.check_stalled(), timeout=5)
        else:
            await asyncio.wait_for(harness.rt.check_stalled(), timeout=5)
        if len(harness.resyncs) > before:
            fired.append(n)
    assert fired == resync_at
    # Every resync was a stall resync, made while holding batch_lock (no batch may
    # start while the partitions are sought back).
    assert harness.resyncs == [("stalled", True)] * len(resync_at)
    assert not harness.rt.batch_lock.locked()


async def test_raw_positions_reads_only_assigned_raw_partitions(harness: Harness) -> None:
    c = harness.consumer
    c._read_offset = {
        TP(harness.topic, 0): 12, TP(harness.topic, 1): None, TP(harness.topic, 3): 0,
        TP(f"{harness.topic}-changelog", 2): 99,  # another topic of the same consumer
    }
    assert harness.rt.raw_positions() == {0: 12, 3: 0}


async def test_raw_positions_skips_an_assigned_partition_never_read(harness: Harness) -> None:
    """An assigned raw partition missing from `_read_offset` has no position."""

    class Partial(FakeConsumer):
        def assignment(self) -> set[TP]:
            return {TP(harness.topic, 0), TP(harness.topic, 1)}

    c = Partial()
    c._read_offset = {TP(harness.topic, 1): 4}
    harness.app.consumer = c
    assert harness.rt.raw_positions() == {1: 4}


# --- Sink offsets as the process last saw them -----------------------------------
# `seeked` records where a seek put each partition; `Sink.apply` records the fence
# after each COMMIT (that path needs Postgres: not here); `reset` (a rebalance, a
# rollback, a dedup retry) forgets only the session-store bookkeeping, so the stall
# check keeps its view of what Postgres holds.

SinkOp = tuple[str, Mapping[int, int]]  # ("seeked" | "reset", offsets)

SINK_CASES = [
    pytest.param([], {}, id="nothing-seen"),
    pytest.param([("seeked", {0: 5, 1: 7})], {0: 5, 1: 7}, id="seeked"),
    pytest.param([("seeked", {0: 5}), ("seeked", {1: 7}), ("seeked", {0: 9})], {0: 9, 1: 7},
                 id="seeks-merge-latest-wins"),
    pytest.param([("seeked", {0: 9}), ("seeked", {0: 3})], {0: 3},
                 id="a-seek-back-lowers-it"),
    pytest.param([("seeked", {0: 5, 1: 7}), ("reset", {})], {0: 5, 1: 7},
                 id="reset-keeps-it"),
    pytest.param([("seeked", {0: 5}), ("reset", {}), ("seeked", {1: 2})], {0: 5, 1: 2},
                 id="seek-after-reset-merges"),
]


@pytest.mark.parametrize(("ops", "applied"), SINK_CASES)
async def test_sink_applied_ends(tmp_path: Any, ops: list[SinkOp], applied: dict[int, int]
                                 ) -> None:
    pool = make_pool(unit_settings(str(tmp_path)), name="unit", max_size=1)  # never opened
    sink = Sink(pool, group="g", topic="t", store=MemorySessions())
    for op, offsets in ops:
        if op == "seeked":
            sink.seeked(offsets)
        else:
            sink.reset()
    got = sink.applied_ends()
    assert got == applied
    got[99] = 1  # a copy: the caller cannot change the sink's view
    assert sink.applied_ends() == applied
    assert pool.closed


# --- Runtime.deliver, as the consumer calls it ---------------------------------------


def lost() -> float:
    return REGISTRY.get_sample_value(LOST) or 0.0


async def until(cond: Any, what: str) -> None:
    for _ in range(100):  # bounded: a few loop turns are enough
        if cond():
            return
        await asyncio.sleep(0)
    raise AssertionError(f"never happened: {what}")


@dataclass
class Delivery:
    deliver: Any
    subscriber: Any  # stands in for the agent's stream (the channel holds it weakly)
    app: Any

    @property
    def queue(self) -> Any:  # the subscriber's Faust ThrowableQueue
        return self.subscriber.queue


    started: asyncio.Event  # Runtime.agent_started


def make_delivery(tmp: str) -> Delivery:
    app, rt = build_app(unit_settings(tmp))
    deliver = app.consumer.deliver  # rt.deliver, bound by build_app on the real BatchingConsumer
    assert deliver is not None
    # What the agent's stream does when it starts iterating: subscribe to the channel.
    sub = app.tt_agent.channel.clone(is_iterator=True)
    app.flow_control.resume()  # Faust's flow control starts suspended
    return Delivery(deliver, sub, app, rt.agent_started)


@pytest.fixture
async def delivery(tmp_path: Any) -> Delivery:
    d = make_delivery(str(tmp_path))
    d.started.set()
    return d


async def fill(d: Delivery) -> list[RawBatch]:
    """Deliver until the channel is full; the next put waits for room."""
    batches = [RawBatch([RawRecord(0, i, None, b"x")], 1) for i in range(2 * FETCHES_PER_BATCH)]
    for b in batches:
        await asyncio.wait_for(d.deliver(b), timeout=5)
    assert d.queue.full()
    return batches


async def test_deliver_sends_the_batch_to_the_agent_channel(delivery: Delivery) -> None:
    batches = await fill(delivery)
    got = [delivery.queue.get_nowait().value for _ in batches]
    assert got == batches


async def test_deliver_waits_for_the_agent_to_subscribe(tmp_path: Any) -> None:
    """An in-memory channel drops what is sent before its reader subscribed."""
    d = make_delivery(str(tmp_path))
    batch = RawBatch([RawRecord(0, 0, None, b"x")], 1)
    task = asyncio.ensure_future(d.deliver(batch))
    for _ in range(20):  # a few loop turns: nothing may be sent meanwhile
        await asyncio.sleep(0)
    assert not task.done() and d.queue.empty()
    d.started.set()
    await asyncio.wait_for(task, timeout=5)
    assert d.queue.get_nowait().value == batch


async def test_deliver_counts_a_put_flow_control_dropped(delivery: Delivery) -> None:
    await fill(delivery)
    before = lost()
    task = asyncio.ensure_future(delivery.deliver(RawBatch([RawRecord(0, 99, None, b"x")], 1)))
    await until(lambda: delivery.queue._putters, "the put waits for room")
    delivery.app.flow_control.clear()  # what a resync or a revocation does
    await asyncio.wait_for(task, timeout=5)  # returns: the CancelledError was swallowed
    assert not task.cancelled() and task.exception() is None
    assert lost() == before + 1
    assert delivery.queue.empty()


async def test_deliver_reraises_when_its_own_task_is_cancelled(delivery: Delivery) -> None:
    await fill(delivery)
    before = lost()
    task = asyncio.ensure_future(delivery.deliver(RawBatch([RawRecord(0, 99, None, b"x")], 1)))
    await until(lambda: delivery.queue._putters, "the put waits for room")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()
    assert lost() == before


async def test_deliver_abandoned_by_the_consumer_on_suspend_is_cancelled(
    delivery: Delivery,
) -> None:
    """The consumer's own call (`getmany`): `wait_first(deliver(b), suspend_flow.wait())`
    cancels the delivering task when the flow is suspended; that must propagate (the
    task ends cancelled) and is not counted as a flow-control drop."""
    await fill(delivery)
    consumer = delivery.app.consumer
    before = lost()
    batch = RawBatch([RawRecord(0, 99, None, b"x")], 1)
    waiting = asyncio.ensure_future(
        consumer.wait_first(delivery.deliver(batch), consumer.suspend_flow.wait())
    )
    await until(lambda: delivery.queue._putters, "the put waits for room")
    (task,) = [t for t in asyncio.all_tasks() if t.get_coro().__name__ == "deliver"]
    consumer.suspend_flow.set()
    res = await asyncio.wait_for(waiting, timeout=5)
    assert res.done and not res.stopped
    await asyncio.wait([task], timeout=5)
    assert task.cancelled()
    assert lost() == before
    assert delivery.queue.qsize() == 2 * FETCHES_PER_BATCH  # the abandoned batch never went in
