"""Traffic to a running `System` (tests/system_harness.py) and checks of what it stored.

`Sender` streams tagged events to the collector at a bounded rate and records every
answer; `topic_end_offsets` and `wait_quiet` say when the worker has applied everything
produced; `assert_aggregates_equal_rebuild` compares the stream's aggregates with a
rebuild of every stored day. Used by the fault, abuse and privacy suites.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import psycopg

from tests.system_harness import CHROME, FIREFOX, PARTITIONS, System, client_ip, event


class Sender:
    """A bounded stream of tagged events to the collector, recording every answer.

    Each event has a path of its own (`/ft/<run>/<n>`), so that the events table can
    be matched against the answers. Concurrency `concurrency`, at most `rate` events per
    second, at most `limit` events; every request has a client timeout, so an answer
    that does not come is recorded as "timeout", not waited for.
    """

    def __init__(self, system: System, run: str, *, rate: float = 40, concurrency: int = 4,
                 limit: int = 5000, timeout: float = 10.0) -> None:
        self.system, self.run = system, run
        self.prefix = f"/ft/{run}/"
        self.rate, self.concurrency, self.limit, self.timeout = rate, concurrency, limit, timeout
        self.results: dict[str, int | str] = {}
        self.sent = 0
        self._stop = False
        self._task: Any = None

    def accepted(self) -> set[str]:
        return {p for p, r in self.results.items() if r == 202}

    def count(self, outcome: int | str) -> int:
        return sum(1 for r in self.results.values() if r == outcome)

    async def _one(self, session: Any, n: int) -> None:
        import aiohttp

        path = f"{self.prefix}{n}"
        kind = ("page_view", "page_view", "custom", "scroll_50", "page_view", "close_tab")[n % 6]
        body = event(self.system.website_id, path, kind)
        headers = {"User-Agent": CHROME if n % 3 else FIREFOX, "Content-Type": "text/plain",
                   "X-Forwarded-For": client_ip(n)}
        try:
            async with session.post(f"{self.system.collector_url}/api/v1/collect",
                                    data=json.dumps(body), headers=headers) as resp:
                await resp.read()
                self.results[path] = resp.status
        except TimeoutError:
            self.results[path] = "timeout"
        except aiohttp.ClientError as exc:
            self.results[path] = f"error: {type(exc).__name__}"

    async def _loop(self) -> None:
        import asyncio

        import aiohttp

        sem = asyncio.Semaphore(self.concurrency)
        pending: set[asyncio.Task[None]] = set()
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            for n in range(self.limit):
                if self._stop:
                    break
                await sem.acquire()
                self.sent += 1
                task = asyncio.create_task(self._one(session, n))
                pending.add(task)
                task.add_done_callback(lambda t: (pending.discard(t), sem.release()))
                await asyncio.sleep(1.0 / self.rate)
            if pending:
                await asyncio.gather(*pending)

    def start(self) -> None:
        import asyncio

        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        self._stop = True
        await self._task

    async def wait_accepted(self, more: int, timeout: float, what: str) -> None:
        """Wait until `more` further events have been answered 202 (bounded)."""
        import asyncio

        target = len(self.accepted()) + more
        deadline = time.monotonic() + timeout
        while len(self.accepted()) < target:
            assert not self._task.done(), "the sender stopped early"
            if time.monotonic() > deadline:
                raise AssertionError(f"only {len(self.accepted())}/{target} accepted: {what}")
            await asyncio.sleep(0.2)

    async def wait_for(self, pred: Callable[[], bool], timeout: float, what: str) -> None:
        import asyncio

        deadline = time.monotonic() + timeout
        while not pred():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            await asyncio.sleep(0.2)


async def topic_end_offsets(system: System, name: str = "events.raw",
                            partitions: int | None = None) -> int:
    """Sum of a topic's end offsets (the raw topic: how many events were produced)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    topic = f"{system.prefix}.{name}"
    consumer = AIOKafkaConsumer(bootstrap_servers=system.services.kafka_bootstrap,
                                enable_auto_commit=False, request_timeout_ms=10000)
    await consumer.start()
    try:
        parts = range(partitions or PARTITIONS)  # as `tinytrail migrate` made the topic
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in parts])
        return int(sum(ends.values()))
    finally:
        await consumer.stop()


async def wait_quiet(system: System, timeout: float = 90) -> int:
    """Wait until the worker has applied every message in the raw topic, twice in a row.

    A 503'd event may still reach Kafka a little later (the producer keeps it until its
    request timeout), so "caught up" is checked on two polls a second apart.
    """
    import asyncio

    deadline = time.monotonic() + timeout
    previous = -1
    while True:
        end = await topic_end_offsets(system)
        applied = await asyncio.to_thread(system.applied_offsets)
        if end == applied == previous:
            return end
        previous = end if end == applied else -1
        w = system.procs["worker"]
        assert w.alive, "the worker exited"
        if time.monotonic() > deadline:
            raise AssertionError(f"worker not caught up: {applied} of {end} messages applied")
        await asyncio.sleep(1.0)


AGG_TABLES = ("agg_site_daily", "agg_dim_daily", "agg_page_country_daily")


def aggregate_rows(system: System) -> dict[str, list[tuple[Any, ...]]]:
    """Every non-zero aggregate row (all columns), sorted; zero rows are what a delta leaves."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    with psycopg.connect(system.services.database_url) as conn:
        for table in AGG_TABLES:
            cur = conn.execute(f"SELECT * FROM {table}")  # noqa: S608 - fixed names
            cols = [c.name for c in cur.description or ()]
            figures = [i for i, c in enumerate(cols) if c not in _AGG_KEYS]
            rows = [r for r in cur if any(r[i] for i in figures)]
            out[table] = sorted(rows, key=repr)
    return out


_AGG_KEYS = {"website_id", "day", "is_bot", "kpart", "dim", "key", "grp", "updated_at",
             "country", "path"}


async def assert_aggregates_equal_rebuild(system: System) -> int:
    """Snapshot the stream's aggregates, rebuild every stored day, compare; returns rows."""
    import asyncio

    from streams.rebuild import rebuild_days
    from tinytrail.db import make_pool, open_pool
    from tinytrail.settings import CoreSettings

    days = [r[0] for r in await asyncio.to_thread(
        system.sql, "SELECT DISTINCT (received_at AT TIME ZONE 'UTC')::date FROM events")]
    stream = await asyncio.to_thread(aggregate_rows, system)
    pool = make_pool(CoreSettings(database_url=system.services.database_url), name="check",
                     max_size=1)
    await open_pool(pool)
    try:
        await rebuild_days(pool, min(days), max(days))
    finally:
        await pool.close()
    rebuilt = await asyncio.to_thread(aggregate_rows, system)
    for table in AGG_TABLES:
        only_stream = set(stream[table]) - set(rebuilt[table])
        only_rebuild = set(rebuilt[table]) - set(stream[table])
        assert not only_stream and not only_rebuild, (
            f"{table}: stream rows not in rebuild {sorted(only_stream, key=repr)[:5]}; "
            f"rebuild rows not in stream {sorted(only_rebuild, key=repr)[:5]}")
    assert stream["agg_site_daily"], "no aggregates at all"
    return sum(len(v) for v in stream.values())
