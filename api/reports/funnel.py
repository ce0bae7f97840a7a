"""GET /api/v1/reports/funnel: visits that reach each step, in order.

Reads the stored `events` (the only report that does), bounded to at most 3 years.
A visit reaches step N when it has steps 1…N in that order, not necessarily
adjacent (docs/RULES.md). A step starting with `/` is a `page_view` of that path; a
default event type matches that type; anything else is a custom event name.

Greedy earliest matching is exact for "in order" and keeps the SQL linear: for
each step k the query keeps, per session, the earliest time t_k of a matching
event strictly after t_{k-1}. A session has steps 1…N in order iff t_N exists.
Example: events /a@1, /b@2, /a@3, /c@4 and steps /a,/c,/b give t1=1, t2=4, no t3.
Events of one visitor in the same millisecond are not ordered (strictly after).
Each step reads only its own matching events through the index of migration
0004_reports (website_id, event_type, path) on the day partitions it covers.

Per day, cached. A session never crosses a UTC day (its key holds the day), so the
funnel of a period is the sum of its days' funnels: the query counts per day (the day
of t_k), and the days before today are kept in `funnel_cache_days` (migration 0008)
per (website, funnel definition, day). A request reads the cached days whose
fingerprint still holds and computes only the others, in one statement per stretch
of consecutive days; a warm 90-day request computes today alone. The fingerprint of
a day is (sum of agg_site_daily.events, rebuilt_days.rebuilds), read in the same
statement as the events: every writer adds its events and their count in one
transaction and events are never changed, so an unchanged count means unchanged
events; a rebuild, which may correct a count without adding events, bumps
`rebuilds`. Example: 2026-03-01 is cached with (events 1200, rebuilds 0); a late
event for that day arrives, the sink stores it and its count (1201): the next
request finds 1201 != 1200 and computes the day again. Retention deletes the cached
rows of the days it drops; the retention timer also keeps only the most recently
stored funnels of each website (streams/retention.py). docs/REPORTS.md has the rules
and the figures.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any

import psycopg
from prometheus_client import Counter
from psycopg import sql

from api.reports.figures import percent
from api.reports.params import ReportParams, too_long
from tinytrail.db import DictConnection, Pool
from tinytrail.envelope import ApiError
from tinytrail.event import EVENT_TYPES

NAME = "funnel"
CSV_COLUMNS = ("step", "sessions", "conversion_rate")
MAX_STEPS = 10
# Part of every cache key: a change of the matching rules makes every cached day a miss.
CACHE_VERSION = 1
# More separate stretches of uncached days than this (days invalidated here and there
# by late events) are computed in one statement over their hull instead.
MAX_STRETCHES = 4
# Per-step counts tagged with these step numbers carry the day's fingerprint instead.
_EVENTS, _REBUILDS = 0, -1

log = logging.getLogger("tinytrail.api.funnel")
CACHE_DAYS = Counter("tinytrail_funnel_cache_days", "Closed days of funnel requests, by"
                     " whether the cache had them (hit) or they were computed (miss)",
                     ["result"])
CACHE_STORE_FAILURES = Counter("tinytrail_funnel_cache_store_failures",
                               "Funnel cache writes that failed (the report was answered)")


@dataclass(frozen=True)
class Step:
    label: str
    event_type: str
    path: str | None = None
    name: str | None = None


def step_of(label: str) -> Step:
    if label.startswith("/"):
        return Step(label, "page_view", path=label)
    if label in EVENT_TYPES:
        return Step(label, label)
    return Step(label, "custom", name=label)


def parse_extra(get_all: Any) -> list[Step]:
    """`get_all(name)` returns every value of a repeated query parameter."""
    labels = list(get_all("steps[]")) or list(get_all("steps"))
    if len(labels) < 2:
        raise ApiError(400, "steps[] needs at least 2 steps")
    if len(labels) > MAX_STEPS:
        raise ApiError(400, f"steps[] allows at most {MAX_STEPS} steps")
    for label in labels:
        if not 1 <= len(label) <= 2048:
            raise ApiError(400, "steps[] values must be 1 to 2048 characters")
    return [step_of(label) for label in labels]


def funnel_key(steps: list[Step], content_group: str | None, include_bots: bool) -> bytes:
    """SHA-256 of everything the figures depend on besides the website and the day."""
    definition = [CACHE_VERSION, [[s.event_type, s.path, s.name] for s in steps],
                  content_group, include_bots]
    text = json.dumps(definition, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


def build_query(steps: list[Step], with_group: bool) -> tuple[sql.Composed, dict[str, Any]]:
    """Rows (day, k, n) for the events in [%(lo)s, %(hi)s): n visits of `day` reach step k
    (k >= 1), and the fingerprint of every day in [%(dlo)s, %(dhi)s) that has one:
    k = _EVENTS, n = sum(agg_site_daily.events); k = _REBUILDS, n = rebuilt_days.rebuilds.
    Days without a row have 0."""
    ctes: list[sql.Composable] = []
    args: dict[str, Any] = {}
    for k, step in enumerate(steps, start=1):
        match = [sql.SQL("e.event_type = {}").format(sql.Placeholder(f"t{k}"))]
        args[f"t{k}"] = step.event_type
        if step.path is not None:
            match.append(sql.SQL("e.path = {}").format(sql.Placeholder(f"p{k}")))
            args[f"p{k}"] = step.path
        if step.name is not None:
            match.append(sql.SQL("e.event_name = {}").format(sql.Placeholder(f"n{k}")))
            args[f"n{k}"] = step.name
        join: sql.Composable = sql.SQL("")
        if k > 1:
            join = sql.SQL(
                " JOIN {prev} p ON p.session_id = e.session_id AND e.received_at > p.t"
            ).format(prev=sql.Identifier(f"s{k - 1}"))
        ctes.append(sql.SQL(
            "{name} AS (SELECT e.session_id, min(e.received_at) AS t FROM events e{join}"
            " WHERE e.website_id = %(w)s AND e.received_at >= %(lo)s AND e.received_at < %(hi)s"
            " AND NOT e.is_excluded AND e.is_bot = ANY(%(bots)s){group} AND {match}"
            " GROUP BY e.session_id)"
        ).format(
            name=sql.Identifier(f"s{k}"),
            join=join,
            group=sql.SQL(" AND e.content_group = %(g)s") if with_group else sql.SQL(""),
            match=sql.SQL(" AND ").join(match),
        ))
    reached = sql.SQL(" UNION ALL ").join(
        sql.SQL("SELECT {k} AS k, t FROM {s}").format(k=sql.Literal(k),
                                                        s=sql.Identifier(f"s{k}"))
        for k in range(1, len(steps) + 1)
    )
    query = sql.SQL(
        "WITH {ctes}"
        " SELECT (x.t AT TIME ZONE 'UTC')::date AS day, x.k, count(*) AS n"
        " FROM ({reached}) AS x GROUP BY 1, 2"
        " UNION ALL SELECT a.day, {events}, sum(a.events)::bigint FROM agg_site_daily a"
        " WHERE a.website_id = %(w)s AND a.day >= %(dlo)s AND a.day < %(dhi)s GROUP BY a.day"
        " UNION ALL SELECT r.day, {rebuilds}, r.rebuilds FROM rebuilt_days r"
        " WHERE r.day >= %(dlo)s AND r.day < %(dhi)s"
    ).format(ctes=sql.SQL(", ").join(ctes), reached=reached,
             events=sql.Literal(_EVENTS), rebuilds=sql.Literal(_REBUILDS))
    return query, args


@dataclass
class Day:
    """One day's figures from the events, and the fingerprint they were read with."""

    sessions: list[int]
    events: int = 0
    rebuilds: int = 0


def stretches(start: dt.date, end: dt.date, known: set[dt.date]) -> list[tuple[dt.date, dt.date]]:
    """The runs of consecutive days of [start, end] not in `known`, as (first, last);
    their hull when there are more than MAX_STRETCHES. Example: 1…10 March with 3-8
    known -> [(1, 2), (9, 10)]."""
    runs: list[tuple[dt.date, dt.date]] = []
    day = start
    while day <= end:
        if day not in known:
            if runs and runs[-1][1] == day - dt.timedelta(days=1):
                runs[-1] = (runs[-1][0], day)
            else:
                runs.append((day, day))
        day += dt.timedelta(days=1)
    if len(runs) > MAX_STRETCHES:
        return [(runs[0][0], runs[-1][1])]
    return runs


async def cached_days(conn: DictConnection, website_id: str, key: bytes, start: dt.date,
                      end: dt.date) -> dict[dt.date, list[int]]:
    """The cached figures of the days in [start, end) whose fingerprint still holds."""
    cur = await conn.execute(
        "SELECT c.day, c.sessions FROM funnel_cache_days c"
        " WHERE c.website_id = %(w)s AND c.funnel = %(f)s AND c.day >= %(lo)s AND c.day < %(hi)s"
        " AND c.events = (SELECT coalesce(sum(a.events), 0) FROM agg_site_daily a"
        "                 WHERE a.website_id = c.website_id AND a.day = c.day)"
        " AND c.rebuilds = coalesce((SELECT r.rebuilds FROM rebuilt_days r"
        "                            WHERE r.day = c.day), 0)",
        {"w": website_id, "f": key, "lo": start, "hi": end},
    )
    return {r["day"]: [int(n) for n in r["sessions"]] for r in await cur.fetchall()}


async def count_days(conn: DictConnection, query: sql.Composed, args: dict[str, Any],
                     first: dt.date, last: dt.date, n: int) -> dict[dt.date, Day]:
    """Every day of [first, last] computed from the events, with its fingerprint."""
    after = last + dt.timedelta(days=1)
    # Never prepared: the same text computes one day (today) or 90, and after a few
    # executions Postgres may switch a prepared statement to its generic plan (every
    # partition, no estimate of the period): measured, a 90-day stretch then took 6.7-12.6 s
    # instead of 1.6-2.0 s. Planned each time, the days' partitions are pruned at planning.
    cur = await conn.execute(query, args | {
        "lo": dt.datetime.combine(first, dt.time(), dt.UTC),
        "hi": dt.datetime.combine(after, dt.time(), dt.UTC),
        "dlo": first, "dhi": after}, prepare=False)
    days: dict[dt.date, Day] = {}
    for day in (first + dt.timedelta(days=i) for i in range((after - first).days)):
        days[day] = Day([0] * n)
    for r in await cur.fetchall():
        d, k, value = days[r["day"]], r["k"], int(r["n"])
        if k == _EVENTS:
            d.events = value
        elif k == _REBUILDS:
            d.rebuilds = value
        else:
            d.sessions[k - 1] = value
    return days


async def store_days(conn: DictConnection, website_id: str, key: bytes,
                     days: dict[dt.date, Day]) -> None:
    """Upsert the computed closed days; a failure is logged and counted, never raised
    (the report has its figures already)."""
    try:
        async with conn.transaction():  # a savepoint: the request's transaction goes on
            await conn.execute(
                "INSERT INTO funnel_cache (website_id, funnel) VALUES (%s, %s)"
                " ON CONFLICT (website_id, funnel) DO UPDATE SET stored_at = now()",
                (website_id, key))
            await conn.execute(
                "INSERT INTO funnel_cache_days"
                " (website_id, funnel, day, events, rebuilds, sessions)"
                " SELECT %(w)s, %(f)s, d.day, d.events, d.rebuilds, d.sessions::bigint[]"
                " FROM unnest(%(days)s::date[], %(events)s::bigint[], %(rebuilds)s::bigint[],"
                "             %(sessions)s::text[]) AS d(day, events, rebuilds, sessions)"
                " ON CONFLICT (website_id, funnel, day) DO UPDATE SET events = EXCLUDED.events,"
                " rebuilds = EXCLUDED.rebuilds, sessions = EXCLUDED.sessions",
                {"w": website_id, "f": key, "days": list(days),
                 "events": [d.events for d in days.values()],
                 "rebuilds": [d.rebuilds for d in days.values()],
                 "sessions": ["{" + ",".join(map(str, d.sessions)) + "}"
                              for d in days.values()]})
    except psycopg.Error:
        CACHE_STORE_FAILURES.inc()
        log.warning("funnel cache: %d days not stored", len(days), exc_info=True)


async def compute(pool: Pool, p: ReportParams, steps: list[Step],
                  today: dt.date | None = None) -> dict[str, Any]:
    """The funnel of `p`'s period. `today` (default: the UTC date now) decides which days
    are closed, i.e. cached; the figures do not depend on it."""
    if too_long(p.range):
        raise ApiError(400, "period: a funnel covers at most 3 years")
    today = today or dt.datetime.now(dt.UTC).date()
    query, args = build_query(steps, p.content_group is not None)
    args |= {"w": p.website_id, "bots": p.bot_flags, "g": p.content_group}
    key = funnel_key(steps, p.content_group, p.include_bots)
    start, end = p.range.start, p.range.end
    closed = min(end + dt.timedelta(days=1), today)  # days before it are cached
    figures: dict[dt.date, list[int]] = {}
    async with pool.connection() as conn, conn.transaction():
        # JIT compiles ~850 functions for a 90-day plan (~0.3 s), more than it saves.
        await conn.execute("SET LOCAL jit = off")
        if start < closed:
            figures = await cached_days(conn, p.website_id, key, start, closed)
        hits = len(figures)
        new: dict[dt.date, Day] = {}
        for first, last in stretches(start, end, set(figures)):
            for day, d in (await count_days(conn, query, args, first, last, len(steps))).items():
                if day < closed and day not in figures:
                    new[day] = d
                figures[day] = d.sessions
        CACHE_DAYS.labels("hit").inc(hits)
        CACHE_DAYS.labels("miss").inc(len(new))
        if new:
            await store_days(conn, p.website_id, key, new)
    counts = [sum(day[k] for day in figures.values()) for k in range(len(steps))]
    funnel = []
    for k, (step, n) in enumerate(zip(steps, counts, strict=True)):
        rate = 100 if k == 0 else percent(n, counts[k - 1])
        funnel.append({"step": step.label, "sessions": n, "conversion_rate": rate})
    return {"period": p.range.label(), "funnel": funnel}


def csv_rows(data: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [(r["step"], r["sessions"], r["conversion_rate"]) for r in data["funnel"]]
