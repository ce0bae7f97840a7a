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
0004_reports (website_id, event_type, path) on the day partitions of the period.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from psycopg import sql

from api.reports.figures import percent
from api.reports.params import ReportParams, too_long
from api.reports.store import as_int, fetch_one
from tinytrail.db import Pool
from tinytrail.envelope import ApiError
from tinytrail.event import EVENT_TYPES

NAME = "funnel"
CSV_COLUMNS = ("step", "sessions", "conversion_rate")
MAX_STEPS = 10


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


def build_query(steps: list[Step], with_group: bool) -> tuple[sql.Composed, dict[str, Any]]:
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
    counts = sql.SQL(", ").join(
        sql.SQL("(SELECT count(*) FROM {s}) AS {n}").format(
            s=sql.Identifier(f"s{k}"), n=sql.Identifier(f"n{k}"))
        for k in range(1, len(steps) + 1)
    )
    query = sql.SQL("WITH {ctes} SELECT {counts}").format(
        ctes=sql.SQL(", ").join(ctes), counts=counts)
    return query, args


async def compute(pool: Pool, p: ReportParams, steps: list[Step]) -> dict[str, Any]:
    if too_long(p.range):
        raise ApiError(400, "period: a funnel covers at most 3 years")
    query, args = build_query(steps, p.content_group is not None)
    lo = dt.datetime.combine(p.range.start, dt.time(), dt.UTC)
    hi = dt.datetime.combine(p.range.end + dt.timedelta(days=1), dt.time(), dt.UTC)
    args.update({"w": p.website_id, "lo": lo, "hi": hi, "bots": p.bot_flags,
                 "g": p.content_group})
    row = await fetch_one(pool, query, args)
    counts = [as_int(row[f"n{k}"]) for k in range(1, len(steps) + 1)]
    funnel = []
    for k, (step, n) in enumerate(zip(steps, counts, strict=True)):
        rate = 100 if k == 0 else percent(n, counts[k - 1])
        funnel.append({"step": step.label, "sessions": n, "conversion_rate": rate})
    return {"period": p.range.label(), "funnel": funnel}


def csv_rows(data: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [(r["step"], r["sessions"], r["conversion_rate"]) for r in data["funnel"]]
