"""Realtime one-minute tumbling windows kept in a Faust table, mirrored to Redis.

Table key: "<website>|<kpart>|<minute>" (minute = event time ms // 60,000), value:
{event type: count}. The source partition is part of the key and the table
writes each key's changelog to partition <kpart> (`streams.consumer.KpartTable`), so every key
has exactly one home, co-partitioned with the raw topic: the worker that owns
raw partition p recovers exactly the windows of p (docs/RULES.md, "Co-partitioned state"). Windows
expire 35 minutes after they close (`expire`, on a timer).

Only events that the Postgres batch really stored (new, non-bot, non-excluded)
are counted, after COMMIT; a crash between COMMIT and the table write can
leave a realtime window short by that batch, never double.

Cost: every table write is one changelog message, so a batch writes each window
key ONCE with the batch's combined counts, and events whose window has already
expired (a backlog, a replay after an outage: older than `EXPIRE_MINUTES`) are
left out of the table and the mirror; nobody can read them any more. Worked
example: now = 10:40, an event stamped 10:04 (window 10:04 < 10:40 - 35 min)
is skipped; one stamped 10:05 is counted.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from streams.models import Enriched
from tinytrail.realtime import MINUTE_MS, SEP, WINDOW_MS

EXPIRE_MINUTES = 35


def window_key(ev: Enriched) -> str:
    return f"{ev.website_id}|{ev.kafka_partition}|{ev.received_at_ms // MINUTE_MS}"


def count_windows(events: Iterable[Enriched]) -> dict[str, dict[str, int]]:
    """Per window key, counts by event type (each event lands in exactly one window)."""
    out: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for ev in events:
        out[window_key(ev)][ev.event_type] += 1
    return {k: dict(v) for k, v in out.items()}


def realtime_events(events: Iterable[Enriched]) -> list[Enriched]:
    return [e for e in events if not e.is_bot and not e.is_excluded]


Mirror = tuple[
    dict[str, dict[str, int]], dict[str, dict[str, int]], dict[tuple[str, int], dict[str, int]]
]


def live_window(now_ms: int) -> tuple[int, int]:
    """(oldest minute still kept, oldest event time the Redis sets still keep)."""
    return now_ms // MINUTE_MS - EXPIRE_MINUTES, now_ms - WINDOW_MS - MINUTE_MS


def mirror_payload(events: list[Enriched], table: Any, now_ms: int | None = None) -> Mirror:
    """Add `events` to `table` (combined per key: one write per key) and build the Redis
    mirror: visitors / pages by last time, and absolute window counts. Events whose
    window has expired (see module doc) are skipped."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    oldest_minute, floor = live_window(now_ms)
    oldest_ms = oldest_minute * MINUTE_MS
    events = [e for e in events if e.received_at_ms >= oldest_ms]
    visitors: dict[str, dict[str, int]] = defaultdict(dict)
    pages: dict[str, dict[str, int]] = defaultdict(dict)
    for e in events:
        if e.received_at_ms <= floor:
            continue  # the Redis sets drop it at once (ZREMRANGEBYSCORE): do not send it
        v = visitors[e.website_id]
        if v.get(e.visitor_id, 0) < e.received_at_ms:
            v[e.visitor_id] = e.received_at_ms
        if e.event_type == "page_view":
            member = f"{e.path}{SEP}{e.visitor_id}"
            p = pages[e.website_id]
            if p.get(member, 0) < e.received_at_ms:
                p[member] = e.received_at_ms
    windows: dict[tuple[str, int], dict[str, int]] = {}
    for key, counts in count_windows(events).items():
        merged = dict(table.get(key) or {})
        for t, n in counts.items():
            merged[t] = merged.get(t, 0) + n
        table[key] = merged
        site, kpart, minute = key.split("|")
        fields = windows.setdefault((site, int(minute)), {})
        for t, n in merged.items():
            fields[f"{kpart}|{t}"] = n
    return dict(visitors), dict(pages), windows


def expire(table: Any, now_ms: int | None = None) -> int:
    """Delete windows that closed more than 35 minutes ago; returns how many."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    oldest = now_ms // MINUTE_MS - EXPIRE_MINUTES
    old = [k for k in list(table.keys()) if int(str(k).rsplit("|", 1)[1]) < oldest]
    for k in old:
        del table[k]
    return len(old)
