"""The sink never moves a partition's fence over a hole in its offsets.

The bug this pins down (docs/STREAMS.md, "Resuming at the right offset"): a batch of
partition p that started ABOVE the stored `next_offset` (the messages in between were
dropped by Faust on a rebalance and never delivered again) was applied, `next_offset`
jumped over the hole, and the missing messages, when they came, were skipped as
replays: lost. Now only the hole-free run from the stored offset is applied; the rest
is held back and reported as an `OffsetGap`, on which the worker seeks back.

Real Postgres; the "consumer" here is a list of offsets delivered in a chosen order.
"""

from __future__ import annotations

import dataclasses
import random
import time
import uuid

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.deadletters import DeadLetter
from streams.enrich import enrich_batch
from streams.models import Enriched
from streams.offsets import EXPIRED, OffsetGap, contiguous_end
from streams.rebuild import rebuild_days
from streams.sink import Sink
from streams.websites import WorkerWebsites
from tests.streams.gen import traffic
from tests.streams.helpers import MemorySessions, contiguous_offsets, days_of, make_sites, snapshot
from tinytrail.db import make_pool, open_pool
from tinytrail.settings import CoreSettings


@pytest.mark.parametrize(("stored", "offsets", "end"), [
    pytest.param(0, [0, 1, 2], 3, id="contiguous"),
    pytest.param(10, [20, 21, 22], 10, id="starts-above-stored"),
    pytest.param(10, [8, 9, 10, 11, 13], 12, id="replays-then-hole"),
    pytest.param(0, [2, 0, 1, 1, 3], 4, id="unordered-with-repeats"),
    pytest.param(5, [1, 2], 5, id="only-replays"),
    pytest.param(5, [], 5, id="empty"),
])
def test_contiguous_end_table(stored: int, offsets: list[int], end: int) -> None:
    assert contiguous_end(stored, offsets) == end


@given(st.integers(0, 50), st.lists(st.integers(0, 120), max_size=80))
def test_contiguous_end_is_the_longest_hole_free_run(stored: int, offsets: list[int]) -> None:
    end = contiguous_end(stored, offsets)
    assert end >= stored
    assert set(range(stored, end)) <= set(offsets)  # everything applied was delivered
    assert end not in offsets  # and the run cannot be extended


class Harness:
    """One partition's messages (offsets 0..n-1) of one website, fed to a real Sink."""

    def __init__(self, pool, dsn: str, n: int, seed: int) -> None:  # type: ignore[no-untyped-def]
        self.dsn = dsn
        self.sites = make_sites(dsn, 1)
        now = int(time.time() * 1000)
        raws = traffic(random.Random(seed), self.sites, n, now - 3_600_000, 3_000_000,
                       visitors=20, excluded_share=0)
        self.msgs = [Enriched.from_raw(r, 0, i) for i, r in enumerate(raws)]
        self.days = days_of(raws)
        self.pool = pool
        self.group = f"g-{uuid.uuid4().hex[:6]}"
        self.sink = Sink(pool, group=self.group, topic="raw", store=MemorySessions())
        self.cache = WorkerWebsites(pool)

    async def feed(self, offsets: list[int], legacy: bool = False, dead=()):  # type: ignore[no-untyped-def]
        """Deliver these offsets as one batch (repeats allowed, any order)."""
        await self.cache.maybe_refresh()
        garbage = {d.offset for d in dead}  # these offsets did not decode
        deliver = [dataclasses.replace(self.msgs[o]) for o in offsets if o not in garbage]
        kept, _ = enrich_batch(deliver, self.cache.get)
        marks = {0: max(offsets)}
        if legacy:  # callers that vouch their batches are contiguous: lowest offset only
            return await self.sink.apply(kept, marks, offsets=contiguous_offsets(kept, marks))
        sent: list[DeadLetter] = []

        async def send(batch) -> None:  # type: ignore[no-untyped-def]
            sent.extend(batch)

        res = await self.sink.apply(kept, marks, dead, send, offsets={0: offsets})
        res.sent = sent  # type: ignore[attr-defined]
        return res

    def stored(self) -> list[int]:
        with psycopg.connect(self.dsn) as conn:
            rows = conn.execute(
                "SELECT kafka_offset FROM events WHERE website_id = %s ORDER BY 1",
                (self.sites[0][0],),
            ).fetchall()
        return [r[0] for r in rows]

    def next_offset(self) -> int:
        with psycopg.connect(self.dsn) as conn:
            row = conn.execute("SELECT next_offset FROM stream_offsets WHERE"
                               " consumer_group = %s AND kpartition = 0", (self.group,)).fetchone()
        return int(row[0]) if row else 0  # no batch yet

    async def assert_equals_rebuild(self) -> None:
        ids = [s for s, _ in self.sites]
        stream = snapshot(self.dsn, ids)
        assert stream[0] and stream[1]
        await rebuild_days(self.pool, min(self.days), max(self.days))
        assert snapshot(self.dsn, ids) == stream


@pytest.fixture
async def pool(core_settings: CoreSettings):  # type: ignore[no-untyped-def]
    p = make_pool(core_settings, name="t", max_size=2)
    await open_pool(p)
    try:
        yield p
    finally:
        await p.close()


@pytest.mark.postgres
@pytest.mark.parametrize("legacy", [pytest.param(False, id="offsets"),
                                    pytest.param(True, id="lowest-offset-only")])
async def test_hole_is_refused_then_filled_nothing_lost(
    pool, core_settings: CoreSettings, legacy: bool  # type: ignore[no-untyped-def]
) -> None:
    """Offsets 0-9, then 20-29 (hole 10-19), then 10-19, then 20-29 again (the seek back)."""
    h = Harness(pool, core_settings.database_url, 30, seed=1)
    r1 = await h.feed(list(range(0, 10)), legacy)
    assert len(r1.new_events) == 10 and not r1.gaps
    r2 = await h.feed(list(range(20, 30)), legacy)
    assert r2.new_events == [] and r2.gaps == [OffsetGap(0, 10, 20)]
    assert h.next_offset() == 10  # the fence did not move over the hole
    r3 = await h.feed(list(range(10, 20)), legacy)
    assert len(r3.new_events) == 10 and r3.replayed == 0 and not r3.gaps
    r4 = await h.feed(list(range(20, 30)), legacy)
    assert len(r4.new_events) == 10 and not r4.gaps
    assert h.stored() == list(range(30)) and h.next_offset() == 30
    await h.assert_equals_rebuild()


@pytest.mark.postgres
async def test_stale_messages_mixed_with_resumed_ones(
    pool, core_settings: CoreSettings  # type: ignore[no-untyped-def]
) -> None:
    """After a seek back, a batch can hold stale queued messages (30-39) beside the resumed
    ones (10-19): its lowest offset equals the stored one, yet 20-29 are missing. Only
    10-19 may be applied."""
    h = Harness(pool, core_settings.database_url, 40, seed=2)
    await h.feed(list(range(0, 10)))
    res = await h.feed(list(range(30, 40)) + list(range(10, 20)))
    assert len(res.new_events) == 10 and res.gaps == [OffsetGap(0, 20, 30)]
    assert res.held_back == 10 and h.next_offset() == 20
    await h.feed(list(range(20, 40)))
    assert h.stored() == list(range(40)) and h.next_offset() == 40
    await h.assert_equals_rebuild()


@pytest.mark.postgres
async def test_dead_letters_sent_once_across_a_gap_and_repeats(
    pool, core_settings: CoreSettings  # type: ignore[no-untyped-def]
) -> None:
    """A garbage message after a hole is not dead-lettered until its turn; one delivered
    twice in a batch (queued before and after a seek) is dead-lettered once."""
    h = Harness(pool, core_settings.database_url, 20, seed=3)
    garbage = DeadLetter(0, 15, b"k", b"{not json", "decode: bad")
    await h.feed(list(range(0, 5)))
    res = await h.feed(list(range(12, 20)), dead=[garbage])  # hole 5-11
    assert res.gaps and res.sent == [] and res.dead_letters == 0
    res = await h.feed(list(range(5, 20)) + [15], dead=[garbage, garbage])
    assert not res.gaps and res.sent == [garbage] and res.dead_letters == 1
    res = await h.feed([15], dead=[garbage])  # a replay
    assert res.sent == []
    # Offset 15 was garbage: every other offset is stored once.
    assert h.stored() == [o for o in range(20) if o != 15] and h.next_offset() == 20


@pytest.mark.postgres
@pytest.mark.parametrize("seed", [pytest.param(s, id=f"seed{s}") for s in (4, 5, 6)])
async def test_consumer_that_skips_and_redelivers_loses_nothing(
    pool, core_settings: CoreSettings, seed: int  # type: ignore[no-untyped-def]
) -> None:
    """A consumer that, at random, jumps ahead (a rebalance dropped its fetched messages),
    re-delivers old messages (a replay) or mixes stale ones in, and seeks back to
    `expected` on every OffsetGap, as the worker does: every event stored once,
    aggregates equal the rebuild."""
    n = 300
    h = Harness(pool, core_settings.database_url, n, seed=seed)
    rng = random.Random(seed)
    pos = 0
    for _ in range(400):  # bounded; converges in far fewer rounds
        if h.next_offset() == n:
            break
        size = rng.randint(1, 40)
        batch = list(range(pos, min(pos + size, n)))
        roll = rng.random()
        if roll < 0.2:  # skipped ahead
            jump = rng.randint(1, 30)
            batch = list(range(min(pos + jump, n - 1), min(pos + jump + size, n)))
        elif roll < 0.3:  # stale messages queued before a seek, mixed in
            stale = rng.randint(0, n - 1)
            batch = list(range(stale, min(stale + 5, n))) + batch
        elif roll < 0.4:  # a replay
            batch = list(range(max(pos - 10, 0), pos + 1 if pos < n else n))
        if not batch:
            continue
        res = await h.feed(batch)
        pos = res.gaps[0].expected if res.gaps else max(batch) + 1
    assert h.stored() == list(range(n)) and h.next_offset() == n
    await h.assert_equals_rebuild()


@pytest.mark.postgres
async def test_resume_offsets_new_stored_and_expired(
    pool, core_settings: CoreSettings  # type: ignore[no-untyped-def]
) -> None:
    """Where partitions resume: a new partition at the broker's earliest offset, a stored
    one at its next_offset, one whose messages expired unapplied at the earliest."""
    group = f"g-{uuid.uuid4().hex[:6]}"
    sink = Sink(pool, group=group, topic="raw", store=MemorySessions())
    assert await sink.resume_offsets({0: 0, 1: 7}) == {0: 0, 1: 7}
    with psycopg.connect(core_settings.database_url, autocommit=True) as conn:
        conn.execute("UPDATE stream_offsets SET next_offset = 50 WHERE consumer_group = %s"
                     " AND kpartition = 0", (group,))
    before = EXPIRED._value.get()
    assert await sink.resume_offsets({0: 3, 1: 20}) == {0: 50, 1: 20}
    assert EXPIRED._value.get() - before == 13  # offsets 7-19 of partition 1
    assert await sink.resume_offsets({0: 3, 1: 20}) == {0: 50, 1: 20}  # stored now
