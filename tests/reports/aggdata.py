"""Random daily aggregate rows for the report tests, and plain reference sums over them.

The rows are inserted straight into `agg_site_daily` / `agg_dim_daily`; the
reference functions below recompute every report from the same Python rows with
loops and dicts, independently of the SQL under test.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import psycopg

SITE_COLS = ("visitors", "visits", "pageviews", "bounces", "duration_sec", "events")
DIM_COLS = ("visits", "pageviews", "unique_pageviews", "entries", "exits", "bounces",
            "duration_sec", "events")
PAGES = {"/": "", "/blog/a": "Blog", "/blog/b": "Blog", "/pricing": "Money",
         "=cmd()": "", "/docs": None}  # /docs changes group mid-way (None: decided per day)
DIMS: dict[str, list[str]] = {
    "channel": ["Direct", "Organic Search", "Social", "Referral", "Email", "Paid Search"],
    "referrer": ["google.com", "t.co", "news.ycombinator.com"],
    "utm": ["twitter\x1fsocial\x1flaunch", "news\x1f\x1f", "\x1fcpc\x1fspring"],
    "device": ["desktop", "mobile", "tablet", "bot"],
    "browser": ["Chrome", "Firefox", "Safari"],
    "os": ["Windows", "macOS", "Linux", "iOS"],
    "screen": ["320-375", "376-768", "1025-1440", "1441+", "unknown"],
    "content_group": ["Blog", "Money", "Docs"],
    "custom_event": ["signup", "video_play", "+plus"],
    "event_type": ["page_view", "custom", "scroll_25"],
}


@dataclass
class Dataset:
    website_id: str
    site: list[dict[str, Any]] = field(default_factory=list)
    dims: list[dict[str, Any]] = field(default_factory=list)


def make_site(conn: psycopg.Connection[Any], created: dt.date | None = None) -> str:
    acc = conn.execute("INSERT INTO accounts (name) VALUES ('reports') RETURNING id").fetchone()
    assert acc is not None
    row = conn.execute(
        "INSERT INTO websites (account_id, domain, created_at) VALUES (%s, %s, %s) RETURNING id",
        (acc[0], f"r{uuid.uuid4().hex[:10]}.example",
         dt.datetime.combine(created or dt.date(2020, 1, 1), dt.time(12), dt.UTC)),
    ).fetchone()
    assert row is not None
    return str(row[0])


def generate(website_id: str, days: list[dt.date], seed: int, kparts: int = 3) -> Dataset:
    rnd = random.Random(seed)
    ds = Dataset(website_id)
    for day in days:
        for is_bot in (False, True):
            for kpart in range(kparts):
                if rnd.random() < 0.15:
                    continue  # some (day, partition) cells have no traffic at all
                visits = rnd.randint(0, 40)
                ds.site.append({
                    "day": day, "is_bot": is_bot, "kpart": kpart, "visitors": rnd.randint(0, 30),
                    "visits": visits, "pageviews": rnd.randint(visits, 3 * visits + 1),
                    "bounces": rnd.randint(0, visits), "duration_sec": rnd.randint(0, 9000),
                    "events": rnd.randint(0, 200)})
                for path, grp in PAGES.items():
                    if rnd.random() < 0.3:
                        continue
                    if grp is None:
                        grp = "Docs" if day.toordinal() % 2 else ""
                    ds.dims.append(_dim(rnd, day, is_bot, kpart, "page", path, grp))
                for dim, keys in DIMS.items():
                    for key in keys:
                        if rnd.random() < 0.4:
                            ds.dims.append(_dim(rnd, day, is_bot, kpart, dim, key, ""))
    return ds


def _dim(rnd: random.Random, day: dt.date, is_bot: bool, kpart: int, dim: str, key: str,
         grp: str) -> dict[str, Any]:
    row = {"day": day, "is_bot": is_bot, "kpart": kpart, "dim": dim, "key": key, "grp": grp}
    row.update({c: rnd.randint(0, 25) for c in DIM_COLS})
    return row


def insert(conn: psycopg.Connection[Any], ds: Dataset) -> None:
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO agg_site_daily (website_id, day, is_bot, kpart, visitors, visits,"
            " pageviews, bounces, duration_sec, events) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
            [(ds.website_id, r["day"], r["is_bot"], r["kpart"], *(r[c] for c in SITE_COLS))
             for r in ds.site])
        cur.executemany(
            "INSERT INTO agg_dim_daily (website_id, day, is_bot, dim, key, grp, kpart, visits,"
            " pageviews, unique_pageviews, entries, exits, bounces, duration_sec, events)"
            " VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
            [(ds.website_id, r["day"], r["is_bot"], r["dim"], r["key"], r["grp"], r["kpart"],
              *(r[c] for c in DIM_COLS)) for r in ds.dims])


# --- reference computations ---------------------------------------------------------


def _keep(r: dict[str, Any], start: dt.date, end: dt.date, bots: bool) -> bool:
    return start <= r["day"] <= end and (bots or not r["is_bot"])


def site_sums(ds: Dataset, start: dt.date, end: dt.date, bots: bool) -> dict[str, int]:
    out = dict.fromkeys(SITE_COLS, 0)
    for r in ds.site:
        if _keep(r, start, end, bots):
            for c in SITE_COLS:
                out[c] += r[c]
    return out


def dim_sums(ds: Dataset, dim: str, start: dt.date, end: dt.date, bots: bool,
             by: tuple[str, ...] = ("key",), where: dict[str, Any] | None = None,
             ) -> dict[tuple[Any, ...], dict[str, int]]:
    out: dict[tuple[Any, ...], dict[str, int]] = defaultdict(lambda: dict.fromkeys(DIM_COLS, 0))
    for r in ds.dims:
        if r["dim"] != dim or not _keep(r, start, end, bots):
            continue
        if where and any(r[k] != v for k, v in where.items()):
            continue
        acc = out[tuple(r[b] for b in by)]
        for c in DIM_COLS:
            acc[c] += r[c]
    return dict(out)


def ranked(sums: dict[tuple[Any, ...], dict[str, int]], col: str) -> list[tuple[Any, ...]]:
    """Keys with a positive `col`, by `col` descending then key (code point order)."""
    items = [(k, v[col]) for k, v in sums.items() if v[col] > 0]
    items.sort(key=lambda kv: (-kv[1], kv[0]))
    return [(*k, n) for k, n in items]


def half_up(x: Fraction, places: int) -> Fraction:
    """Exact rational rounding half away from zero (the reference for every rate)."""
    scale = 10**places
    scaled = abs(x) * scale
    whole = int(scaled) + (1 if scaled - int(scaled) >= Fraction(1, 2) else 0)
    return Fraction(whole if x >= 0 else -whole, scale)


def rate(part: int, whole: int) -> float:
    return 0.0 if whole == 0 else float(half_up(Fraction(100 * part, whole), 2))


def seconds(total: int, visits: int) -> int:
    return 0 if visits == 0 else int(half_up(Fraction(total, visits), 0))


def change(value: float, previous: float) -> float | None:
    if previous == 0:
        return None
    return float(half_up((Fraction(str(value)) - Fraction(str(previous))) * 100
                         / Fraction(str(previous)), 2))
