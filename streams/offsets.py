"""Where each raw partition resumes: the `stream_offsets` fence in Postgres.

One row per (consumer group, topic, partition) holds `next_offset`, the first offset
not yet applied. The sink locks the batch's rows (`lock_fence`, FOR UPDATE) and moves
them (`move_fence`) in the same transaction as the events and aggregates, so a
crash before COMMIT leaves nothing and a replay after it is skipped. Kafka's
committed offsets are written for lag monitoring only.

The fence never moves over a hole (`contiguous_end`, `OffsetGap`): the raw topic is
written without transactions and never compacted, so its offsets are dense. Stored
E = 10, batch offsets {20..29}: nothing applied, `OffsetGap(p, expected=10,
found=20)`; batch {8, 9, 10, 11, 13}: 8, 9 are replays, 10, 11 applied, 13 not,
`next_offset` = 12, `OffsetGap(p, 12, 13)`. The worker then seeks back to `expected`.

`resume_offsets` is where a partition starts after an assignment or a resync;
`StallCheck` notices fetched records that are never applied (Faust's flow control can
drop fetched batches) so the worker re-seeks.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import psycopg
from prometheus_client import Counter

from tinytrail.db import Pool

log = logging.getLogger("tinytrail.streams.offsets")

EXPIRED = Counter(
    "tinytrail_sink_expired_messages_total",
    "Messages deleted by the raw topic's retention before any worker applied them",
)
STALL_TICKS = 2  # further checks with fetched-but-unapplied records and no progress


@dataclass(frozen=True)
class OffsetGap:
    """Partition `partition` must resume at `expected` (its stored next offset after this
    batch); the batch skipped from there to `found` (the lowest offset above it)."""

    partition: int
    expected: int
    found: int


def contiguous_end(stored: int, offsets: Iterable[int]) -> int:
    """End (exclusive) of the hole-free run of `offsets` starting at `stored`.

    contiguous_end(10, [8, 9, 10, 11, 13]) == 12; contiguous_end(10, [20, 21]) == 10;
    repeats are fine: contiguous_end(0, [0, 1, 1, 2]) == 3."""
    end = stored
    for o in sorted(o for o in set(offsets) if o >= stored):
        if o != end:
            break
        end += 1
    return end


async def lock_fence(
    cur: psycopg.AsyncCursor[Any], group: str, topic: str, start: Mapping[int, int],
) -> dict[int, int]:
    """Lock the rows of the partitions in `start` (FOR UPDATE, in partition order) and
    return partition -> stored `next_offset`. A partition without a row gets one at
    `start[p]` first. Must run inside the caller's transaction."""
    parts = sorted(start)
    await cur.execute(
        "INSERT INTO stream_offsets (consumer_group, topic, kpartition, next_offset)"
        " SELECT %s, %s, p, e FROM unnest(%s::int[], %s::bigint[]) AS n(p, e)"
        " ON CONFLICT DO NOTHING",
        (group, topic, parts, [start[p] for p in parts]),
    )
    await cur.execute(
        "SELECT kpartition, next_offset FROM stream_offsets WHERE consumer_group = %s"
        " AND topic = %s AND kpartition = ANY(%s) ORDER BY kpartition FOR UPDATE",
        (group, topic, parts),
    )
    return {int(r["kpartition"]): int(r["next_offset"]) for r in await cur.fetchall()}


async def move_fence(
    cur: psycopg.AsyncCursor[Any], group: str, topic: str, ends: Mapping[int, int],
) -> None:
    """Set `next_offset` of the partitions in `ends` (rows locked by `lock_fence`)."""
    parts = sorted(ends)
    if parts:
        await cur.execute(
            "UPDATE stream_offsets AS o SET next_offset = n.e, updated_at = now()"
            " FROM unnest(%s::int[], %s::bigint[]) AS n(p, e)"
            " WHERE o.consumer_group = %s AND o.topic = %s AND o.kpartition = n.p",
            (parts, [ends[p] for p in parts], group, topic),
        )


async def resume_offsets(
    pool: Pool, group: str, topic: str, earliest: Mapping[int, int],
) -> dict[int, int]:
    """Where each of these partitions must resume: its stored `next_offset`.

    `earliest`: partition -> the broker's first offset still held. A partition with
    no row gets one at its earliest offset (a new group reads the whole retained
    topic; starting the fence at 0 would be a hole when retention has trimmed the
    head). A stored offset below the earliest means retention deleted messages no
    one applied: logged as an error, counted, and the fence moves to the earliest
    (they cannot come back; waiting for them would stop the partition forever)."""
    async with pool.connection() as conn, conn.transaction():
        cur = conn.cursor()
        stored = await lock_fence(cur, group, topic, earliest)
        behind = {p: earliest[p] for p in sorted(earliest) if stored[p] < earliest[p]}
        for p, first in behind.items():
            EXPIRED.inc(first - stored[p])
            log.error("partition %d: offsets %d-%d expired before they were applied",
                      p, stored[p], first - 1)
            stored[p] = first
        await move_fence(cur, group, topic, behind)
    return stored


class StallCheck:
    """Fetched records past what Postgres applied, and nothing moving: `tick` returns
    True once the same (read positions, applied ends) state was seen `STALL_TICKS`
    more times with some partition read ahead of its applied end."""

    def __init__(self) -> None:
        self._last: object = None
        self._ticks = 0

    def reset(self) -> None:
        self._last, self._ticks = None, 0

    def tick(self, positions: Mapping[int, int], applied: Mapping[int, int]) -> bool:
        """`positions`: partition -> next offset the consumer reads; `applied`:
        partition -> next offset Postgres holds. True: re-seek now (state reset)."""
        state = (tuple(sorted(positions.items())), tuple(sorted(applied.items())))
        ahead = any(pos > applied.get(p, pos) for p, pos in state[0])
        self._ticks = self._ticks + 1 if ahead and state == self._last else 0
        self._last = state
        if self._ticks >= STALL_TICKS:
            self.reset()
            return True
        return False
