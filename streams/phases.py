"""Wall-clock time per named step of the worker's batch path (`streams/batch.py`).

One `Phases` per worker (`streams.runtime.Runtime.phases`), shared by the batch path and
the sink, which lap it as each step ends: decode, enrich, pg_begin, pg_fence, pg_dedup,
pg_session_lookup, sessionise, pg_copy_events, pg_upsert_aggs, pg_offsets, pg_commit,
session_store, realtime_table, realtime_redis, and faust_between_batches (the time
Faust took to hand over the next batch). The stream benchmark prints them.
"""

from __future__ import annotations

import time

from prometheus_client import Counter

PHASE_SECONDS = Counter(
    "tinytrail_worker_phase_seconds_total", "Worker wall time per batch phase", ["phase"]
)


class Phases:
    """Wall-clock seconds per named batch phase, summed over the process's batches.

    `lap(name)` charges the time since the previous lap to `name`, so consecutive
    phases are timed with one clock read each. Exported as
    `tinytrail_worker_phase_seconds_total{phase}` and logged at shutdown (the
    benchmark prints the breakdown from that line)."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = {}
        self.batches = 0
        self._t = time.perf_counter()

    def start(self) -> None:
        self._t = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        dt_ = now - self._t
        self._t = now
        self.totals[name] = self.totals.get(name, 0.0) + dt_
        PHASE_SECONDS.labels(name).inc(dt_)
