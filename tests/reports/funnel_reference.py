"""The funnel's reference: plain Python over stored event rows, independent of the SQL.

Per visit, the longest prefix of the steps matched by events at strictly increasing
times: the definition itself (docs/RULES.md "Funnels"), by exhaustive search rather
than the greedy rule the SQL uses.
"""

from __future__ import annotations

import datetime as dt
from functools import cache
from typing import Any

import psycopg

DEFAULT_TYPES = ("page_view", "close_tab", "scroll_25", "scroll_50", "scroll_75",
                 "outbound_link", "custom")


def matches(ev: dict[str, Any], step: str) -> bool:
    """docs/REPORTS.md: `/…` is a page view of that path, a default type that type,
    anything else the name of a custom event."""
    if step.startswith("/"):
        return bool(ev["event_type"] == "page_view" and ev["path"] == step)
    if step in DEFAULT_TYPES:
        return bool(ev["event_type"] == step)
    return bool(ev["event_type"] == "custom" and ev["event_name"] == step)


def reached(events: list[dict[str, Any]], steps: list[str]) -> int:
    """The largest n such that some events e1…en of the visit match steps 1…n at strictly
    increasing times (same-millisecond events are not ordered). Exhaustive."""

    @cache
    def depth(k: int, after: dt.datetime | None) -> int:
        if k == len(steps):
            return 0
        return max((1 + depth(k + 1, ev["received_at"]) for ev in events
                    if (after is None or ev["received_at"] > after) and matches(ev, steps[k])),
                   default=0)

    return depth(0, None)


def reference(rows: list[dict[str, Any]], steps: list[str], start: dt.date, end: dt.date,
              bots: bool, group: str | None) -> list[int]:
    """Visits reaching step 1, 2, … of `steps` among the rows of [start, end] (UTC days):
    excluded rows never, bots only with `bots`, only rows of `group` when given."""
    visits: dict[Any, list[dict[str, Any]]] = {}
    for r in rows:
        if r["is_excluded"] or (r["is_bot"] and not bots):
            continue
        if not start <= r["received_at"].astimezone(dt.UTC).date() <= end:
            continue
        if group is not None and r["content_group"] != group:
            continue
        visits.setdefault(r["session_id"], []).append(r)
    out = [0] * len(steps)
    for events in visits.values():
        for k in range(reached(events, steps)):
            out[k] += 1
    return out


def stored(dsn: str, site: str) -> list[dict[str, Any]]:
    """The website's stored events, as the reference reads them."""
    with psycopg.connect(dsn, row_factory=psycopg.rows.dict_row) as conn:
        return conn.execute(
            "SELECT session_id, received_at, event_type, path, event_name, content_group,"
            " is_bot, is_excluded FROM events WHERE website_id = %s", (site,)).fetchall()
