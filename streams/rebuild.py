"""Rebuild daily aggregates from the stored events: the oracle the stream must equal.

For each day, in one transaction under the day's EXCLUSIVE advisory lock (the
stream takes it shared per batch, so the two never interleave), the events of
the day (excluded ones skipped) are grouped by their stored `session_id` and run
through the same `apply_event` / `add_contribution` code the stream uses; the day's
aggregate rows are then replaced by the result. Running it twice gives the same
rows (idempotent). Used by `tinytrail aggregate` and POST /api/v1/admin/aggregate.

Reading: one server-side cursor per day fetched `FETCH_ROWS` rows per round trip
(psycopg's default is 100, which made the rebuild wait on the network ~8,000 times
for 200k events), as plain tuples with the event time already in epoch ms (so no
datetime objects are built per row). The fold itself is the shared Python code.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import sys
from collections.abc import Callable
from typing import Any

from psycopg.rows import tuple_row

from streams.aggregates import (
    AGG_TABLES,
    DIM_COUNTERS,
    DIM_KEY,
    PAGE_COUNTRY_COUNTERS,
    PAGE_COUNTRY_KEY,
    SITE_COUNTERS,
    SITE_KEY,
    dim_row,
    lock_day,
    page_country_row,
    site_row,
    split_deltas,
)
from streams.compaction import compact_day_locked
from streams.models import Enriched
from streams.sessions import (
    VISITORS,
    AggKey,
    Deltas,
    Session,
    SessionKey,
    add_change,
    apply_event,
    new_session,
)
from streams.stored import STORED_COLUMNS, enriched_from_tuple
from tinytrail.days import date_ordinal, day_start
from tinytrail.db import Pool
from tinytrail.ids import canonical_uuid

log = logging.getLogger("tinytrail.streams.rebuild")

FETCH_ROWS = 20_000
PARALLEL_DAYS = 2


class RebuildRefused(ValueError):
    """A day the rebuild cannot recompute: its events are past retention, or its event
    partition is gone. Nothing was deleted. `str(exc)` says which day and why."""


def partition_name(day: dt.date) -> str:
    """The `events` partition holding `day` (tinytrail_ensure_event_partitions):
    2026-03-01 -> 'events_20260301'."""
    return f"events_{day:%Y%m%d}"


async def refuse_unrecomputable(
    conn: Any, days: list[dt.date], retention_days: int | None = None,
    today: dt.date | None = None,
) -> None:
    """Raise RebuildRefused for the first of `days` older than `today - retention_days`
    (retention drops those partitions: worked example in streams/retention.py) or whose
    event partition does not exist: rebuilding it would replace its figures by nothing."""
    if retention_days is not None:
        today = today or dt.datetime.now(dt.UTC).date()
        oldest = today - dt.timedelta(days=retention_days)
        for d in days:
            if d < oldest:
                raise RebuildRefused(
                    f"{d.isoformat()} is past the event retention ({retention_days} days:"
                    f" the oldest day with events is {oldest.isoformat()}); its aggregates"
                    " are kept and cannot be rebuilt")
    cur = await conn.execute(
        "SELECT n FROM unnest(%s::text[]) AS n WHERE to_regclass(n) IS NULL",
        ([partition_name(d) for d in days],),
    )
    gone = sorted(r[0] if isinstance(r, tuple) else r["n"] for r in await cur.fetchall())
    if gone:
        raise RebuildRefused(
            f"the events of {gone[0].removeprefix('events_')} are gone (partition"
            f" {gone[0]} does not exist); its aggregates are kept and cannot be rebuilt")


class SessionFolder:
    """Folds events grouped by session id into aggregate deltas (shared with bulk loads)."""

    def __init__(self) -> None:
        self.deltas = Deltas()
        self.events = 0
        self.sessions = 0
        # Per (website, visitor, day, bot, kpart): the first event seen by the stream, as
        # (kafka offset, time, event id), and the country of its session.
        self._visitors: dict[SessionKey, tuple[tuple[int, int, str], str]] = {}
        self._cur: Session | None = None
        self._mark: tuple[int, int, str] = (0, 0, "")

    def add(self, ev: Enriched) -> None:
        self.events += 1
        mark = (ev.kafka_offset, ev.received_at_ms, ev.event_id)
        if self._cur is None or self._cur.session_id != ev.session_id:
            self.flush()
            self._cur = new_session(ev, ev.session_id, first_of_day=False)
            self._mark = mark
        elif mark < self._mark:
            self._mark = mark
        apply_event(self._cur, ev, self.deltas)

    def flush(self) -> None:
        """Add the current session's figures. Exactly one session per (website, visitor,
        day, bot, kpart) counts the visitor: the stream's `first_of_day` session, the one
        that holds the key's first event in partition order (lowest Kafka offset; time
        and event id break ties, as for bulk loads whose offsets are all 0). The site row
        does not care which; the `country` rows do when one visitor's visits of a day had
        different countries (the collector's database changed in between)."""
        s = self._cur
        if s is None:
            return
        add_change(self.deltas, None, s)  # first_of_day False: visitors counted below
        k = s.key
        row = self.deltas.row
        w, _, d, b, kp = k
        best = self._visitors.get(k)
        if best is None:
            row((w, d, b, kp, "", "", ""))[VISITORS] += 1
            row((w, d, b, kp, "country", s.country, ""))[VISITORS] += 1
            self._visitors[k] = (self._mark, s.country)
        elif self._mark < best[0]:
            row((w, d, b, kp, "country", best[1], ""))[VISITORS] -= 1
            row((w, d, b, kp, "country", s.country, ""))[VISITORS] += 1
            self._visitors[k] = (self._mark, s.country)
        self.sessions += 1
        self._cur = None


async def copy_aggregates(cur: Any, rows: dict[AggKey, list[int]]) -> None:
    """COPY aggregate rows straight into the tables: the caller guarantees that none of
    these keys exists (the day's rows were just deleted under its exclusive lock), so no
    upsert is needed; the dict keys are unique by construction."""
    site, dims, pcs = split_deltas(rows.items())
    if site:
        async with cur.copy(f"COPY agg_site_daily ({', '.join(SITE_KEY + SITE_COUNTERS)})"
                            " FROM STDIN") as cp:
            for k, v in site:
                await cp.write_row(site_row(k, v))
    if dims:
        async with cur.copy(f"COPY agg_dim_daily ({', '.join(DIM_KEY + DIM_COUNTERS)})"
                            " FROM STDIN") as cp:
            for k, v in dims:
                await cp.write_row(dim_row(k, v))
    if pcs:
        async with cur.copy("COPY agg_page_country_daily"
                            f" ({', '.join(PAGE_COUNTRY_KEY + PAGE_COUNTRY_COUNTERS)})"
                            " FROM STDIN") as cp:
            for k, v in pcs:
                await cp.write_row(page_country_row(k, v))


async def rebuild_day(
    pool: Pool, day: dt.date, website_id: str | None = None,
    compact: bool = False,
) -> dict[str, int]:
    """Replace `day`'s aggregate rows (one website's, or all) by the fold of its events;
    with `compact`, also collapse the day's rows across partitions (streams/compaction.py)
    in the same transaction."""
    ordinal = date_ordinal(day)
    start = day_start(ordinal)
    end = start + dt.timedelta(days=1)
    folder = SessionFolder()
    site_filter = "" if website_id is None else " AND website_id = %(site)s"
    params = {"start": start, "end": end, "site": website_id, "day": day}
    async with pool.connection() as conn, conn.transaction():
        await lock_day(conn, ordinal)
        # Checked again under the lock: retention may have dropped it since rebuild_days.
        await refuse_unrecomputable(conn, [day])
        async with conn.cursor(name="tt_rebuild", row_factory=tuple_row) as cur:
            await cur.execute(
                f"SELECT {STORED_COLUMNS} FROM events WHERE received_at >= %(start)s"  # noqa: S608
                f" AND received_at < %(end)s AND NOT is_excluded{site_filter}"
                " ORDER BY events.session_id",
                params,
            )
            while rows := await cur.fetchmany(FETCH_ROWS):
                for row in rows:
                    folder.add(enriched_from_tuple(row))
        folder.flush()
        for table in AGG_TABLES:
            await conn.execute(
                f"DELETE FROM {table} WHERE day = %(day)s{site_filter}", params  # noqa: S608
            )
        # The funnel cache's fingerprint of a day holds its event count from these rows;
        # this bump tells it that the count may have changed without new events
        # (api/reports/funnel.py): every cached funnel of the day is computed again.
        await conn.execute(
            "INSERT INTO rebuilt_days (day, rebuilds) VALUES (%(day)s, 1) ON CONFLICT (day)"
            " DO UPDATE SET rebuilds = rebuilt_days.rebuilds + 1", params)
        agg_rows = folder.deltas.nonzero()
        await copy_aggregates(conn.cursor(), agg_rows)
        if compact:
            await compact_day_locked(conn, day)
    return {"events": folder.events, "sessions": folder.sessions, "rows": len(agg_rows)}


async def rebuild_days(
    pool: Pool,
    first: dt.date,
    last: dt.date,
    website_id: str | None = None,
    progress: Callable[[dt.date, int], None] | None = None,
    compact_before: dt.date | None = None,
    retention_days: int | None = None,
    today: dt.date | None = None,
) -> dict[str, Any]:
    """Rebuild every day in [first, last]; `progress(day, events)` after each day.

    Days earlier than `compact_before` are also compacted (one row per key across
    partitions) in their rebuild transaction; `tinytrail aggregate` passes yesterday.
    Raises RebuildRefused, before anything is deleted, when a day of the range is older
    than `today` (default: the UTC date) minus `retention_days` (if given), or its event
    partition is gone (docs/RULES.md: "a
    rebuild never deletes figures it cannot recompute"); ValueError when first > last."""
    if first > last:
        raise ValueError("first must not be after last")
    days = events = rows = 0
    todo = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
    async with pool.connection() as conn:
        await refuse_unrecomputable(conn, todo, retention_days, today)
    # Two days in flight: while Python folds one day, Postgres reads and sorts the
    # next (each day is its own transaction and lock, so they are independent).
    for i in range(0, len(todo), PARALLEL_DAYS):
        window = todo[i : i + PARALLEL_DAYS]
        outs = await asyncio.gather(*(
            rebuild_day(pool, d, website_id,
                        compact=compact_before is not None and d < compact_before)
            for d in window
        ))
        for d, out in zip(window, outs, strict=True):
            days += 1
            events += out["events"]
            rows += out["rows"]
            if progress is not None:
                progress(d, out["events"])
    return {"days": days, "events": events, "rows": rows,
            "first": first.isoformat(), "last": last.isoformat()}


def aggregate_command(first: dt.date, last: dt.date, website: str | None) -> int:
    """`tinytrail aggregate`: rebuild days, one progress line per day; exit code."""
    from tinytrail.db import make_pool, open_pool
    from tinytrail.logs import setup_logging
    from tinytrail.settings import CoreSettings, load_settings

    settings = load_settings(CoreSettings)
    setup_logging(settings.log_format, settings.log_level, process="aggregate")
    if website is not None:
        canonical = canonical_uuid(website)
        if canonical is None:
            print(f"tinytrail aggregate: not a website id: {website!r}", file=sys.stderr)
            return 2
        website = canonical

    async def run() -> dict[str, Any]:
        pool = make_pool(settings, name="aggregate", max_size=2)
        await open_pool(pool)
        try:
            return await rebuild_days(
                pool, first, last, website,
                progress=lambda d, n: print(f"{d.isoformat()}: {n} events", flush=True),
                compact_before=dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1),
                retention_days=settings.retention_days,
            )
        finally:
            await pool.close()

    try:
        out = asyncio.run(run())
    except Exception as exc:
        print(f"tinytrail aggregate: {exc}", file=sys.stderr)
        return 1
    print(f"rebuilt {out['days']} day(s), {out['events']} events, {out['rows']} rows")
    return 0
