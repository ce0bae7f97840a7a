"""Realtime figures in Redis: written by the stream worker, read by the API.

Keys (all with a TTL of 35 minutes, refreshed on write):
  tt:rt:<site>:v          sorted set, member = visitor id, score = last event time (ms)
  tt:rt:<site>:p          sorted set, member = path + "\\x1f" + visitor id, score = last time
  tt:rt:<site>:t:<minute> hash, field = "<kpart>|<event type>", value = ABSOLUTE count of that
                          one-minute tumbling window (minute = epoch ms // 60,000), mirrored
                          from the worker's Faust window table, so rewriting it is idempotent
Only non-bot, non-excluded events are written. The worker writes after its
Postgres COMMIT, so an event is never shown twice; ZADD GT keeps the latest time.

`read_realtime` answers the contract's realtime `data` for the last 30 minutes:
visitors and pages by their last event time in (now - 30 min, now]; events by
type from the 30 one-minute windows ending with the current one. Worked example:
now = 10:30:20 -> minutes 10:01 ... 10:30 (the window 10:00 is left out because
most of it is older than 30 minutes), visitors seen after 10:00:20.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

WINDOW_MS = 30 * 60 * 1000
MINUTE_MS = 60_000
TTL_S = 35 * 60
SEP = "\x1f"


def _k(site: str, suffix: str) -> str:
    return f"tt:rt:{site}:{suffix}"


async def write_realtime(
    redis: Any,
    visitors: dict[str, dict[str, int]],
    pages: dict[str, dict[str, int]],
    windows: dict[tuple[str, int], dict[str, int]],
    now_ms: int,
) -> None:
    """One pipelined round trip. `visitors[site][visitor] = ts`, `pages[site][path\\x1fvisitor]
    = ts`, `windows[(site, minute)][f"{kpart}|{type}"] = absolute count`."""
    pipe = redis.pipeline(transaction=False)
    floor = now_ms - WINDOW_MS - MINUTE_MS
    for site, members in visitors.items():
        key = _k(site, "v")
        pipe.zadd(key, members, gt=True)
        pipe.zremrangebyscore(key, "-inf", floor)
        pipe.expire(key, TTL_S)
    for site, members in pages.items():
        key = _k(site, "p")
        pipe.zadd(key, members, gt=True)
        pipe.zremrangebyscore(key, "-inf", floor)
        pipe.expire(key, TTL_S)
    for (site, minute), fields in windows.items():
        key = _k(site, f"t:{minute}")
        pipe.hset(key, mapping=fields)
        pipe.expire(key, TTL_S)
    await pipe.execute()


async def read_realtime(redis: Any, website_id: str, now_ms: int) -> dict[str, Any]:
    """The contract's realtime `data`: active_visitors, top_pages (10), events_by_type."""
    since = f"({now_ms - WINDOW_MS}"
    this_minute = now_ms // MINUTE_MS
    minutes = range(this_minute - 29, this_minute + 1)
    pipe = redis.pipeline(transaction=False)
    pipe.zcount(_k(website_id, "v"), since, "+inf")
    pipe.zrangebyscore(_k(website_id, "p"), since, "+inf")
    for m in minutes:
        pipe.hgetall(_k(website_id, f"t:{m}"))
    out = await pipe.execute()
    active = int(out[0])
    per_page: Counter[str] = Counter()
    for member in out[1]:
        text = member.decode() if isinstance(member, bytes) else member
        path, _, _visitor = text.rpartition(SEP)
        per_page[path] += 1
    types: Counter[str] = Counter()
    for fields in out[2:]:
        for f, v in fields.items():
            name = f.decode() if isinstance(f, bytes) else f
            types[name.split("|", 1)[1]] += int(v)
    top = sorted(per_page.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
    by_type = sorted(((t, c) for t, c in types.items() if c), key=lambda kv: (-kv[1], kv[0]))
    return {
        "active_visitors": active,
        "top_pages": [{"path": p, "visitors": n} for p, n in top],
        "events_by_type": [{"eventType": t, "count": c} for t, c in by_type],
    }
