"""Stream benchmark: raw topic -> aggregates committed in Postgres, for one worker process,
beside a bare aiokafka consumer that only decodes the same topic. Prints both rates, the
worker's time per batch phase (from the phase totals it logs at shutdown) and, last, the
ratio worker/bare.

    python bench/stream.py --events 100000 --partitions 4 --sites 20

Bounded: the worker gets at most 600 s; all traffic is to the local services.

Uses the services in TINYTRAIL_* (defaults: the local ones), a fresh topic prefix, and
deletes its websites (and so their events and aggregates) at the end unless --keep.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import orjson  # noqa: E402
import psycopg  # noqa: E402
from aiokafka import AIOKafkaConsumer  # noqa: E402

from tests.streams.gen import traffic  # noqa: E402
from tests.streams.helpers import make_sites  # noqa: E402
from tests.streams.workerproc import applied_messages, produce, start_worker, stop  # noqa: E402
from tinytrail.event import RawEvent  # noqa: E402
from tinytrail.migrate import apply_migrations  # noqa: E402
from tinytrail.settings import CoreSettings  # noqa: E402
from tinytrail.topics import ensure_topics, raw_events_topic  # noqa: E402


async def bare_consumer(settings: CoreSettings, n: int) -> float:
    cons = AIOKafkaConsumer(raw_events_topic(settings), bootstrap_servers=settings.kafka_bootstrap,
                            auto_offset_reset="earliest", enable_auto_commit=False,
                            group_id=f"bench-bare-{uuid.uuid4().hex[:6]}")
    await cons.start()
    try:
        seen = 0
        t0 = time.perf_counter()
        while seen < n:
            batch = await cons.getmany(timeout_ms=1000, max_records=5000)
            for msgs in batch.values():
                for m in msgs:
                    RawEvent.from_bytes(m.value)
                    seen += 1
        return n / (time.perf_counter() - t0)
    finally:
        await cons.stop()


def phase_totals(log_path: str) -> tuple[int, dict[str, float]]:
    """(batches, {phase: seconds}) from the worker's "worker phase totals" log line."""
    with open(log_path, "rb") as f:
        for line in f:
            try:
                rec = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if isinstance(rec, dict) and rec.get("msg") == "worker phase totals":
                return int(rec["batches"]), dict(rec["phases"])
    return 0, {}


def print_phases(batches: int, phases: dict[str, float], n: int, wall: float) -> None:
    if not phases:
        print("phase breakdown: not found in the worker log")
        return
    print(f"worker phases over {batches} batches ({n / max(batches, 1):,.0f} events/batch),"
          f" {wall:.1f} s wall:")
    other = max(wall - sum(phases.values()), 0.0)
    for name, sec in [*sorted(phases.items(), key=lambda kv: -kv[1]),
                      ("other (Faust, fetch, idle)", other)]:
        print(f"  {name:<28} {sec:7.2f} s {100 * sec / wall:5.1f}%  {1e6 * sec / n:7.1f} us/event")


def tail(path: str, lines: int = 40) -> str:
    with open(path, errors="replace") as f:
        return "".join(f.readlines()[-lines:])


def worker_rate(
    settings: CoreSettings, n: int, tmp: str, batch_size: int, window: float
) -> tuple[float, float]:
    """(events/s from the first committed batch to the last, wall seconds from start)."""
    proc = start_worker(settings, tmp, "bench", {
        "TINYTRAIL_BATCH_SIZE": str(batch_size), "TINYTRAIL_BATCH_WINDOW": str(window),
        "TINYTRAIL_LOG_LEVEL": "INFO", "TINYTRAIL_LOG_FORMAT": "json",
    })
    started = time.perf_counter()
    try:
        deadline = time.monotonic() + 600
        while applied_messages(settings) == 0:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"worker did not start; its log:\n{tail(f'{tmp}/bench.log')}")
            time.sleep(0.05)
        t0, base = time.perf_counter(), applied_messages(settings)
        while (done := applied_messages(settings)) < n:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"worker stopped; its log:\n{tail(f'{tmp}/bench.log')}")
            time.sleep(0.05)
        end = time.perf_counter()
        return (done - base) / (end - t0), end - started
    finally:
        stop(proc)


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=100_000, help="events to produce")
    ap.add_argument("--partitions", type=int, default=4, help="raw topic partitions")
    ap.add_argument("--sites", type=int, default=20, help="websites")
    ap.add_argument("--visitors", type=int, default=5000, help="visitors per site")
    ap.add_argument("--batch-size", type=int, default=10_000, help="worker batch size")
    ap.add_argument("--batch-window", type=float, default=1.0, help="worker batch window (s)")
    ap.add_argument("--keep", action="store_true", help="keep the generated data")
    args = ap.parse_args()
    settings = CoreSettings(topic_prefix=f"bench-{uuid.uuid4().hex[:8]}",
                            events_partitions=args.partitions)
    apply_migrations(settings.database_url)
    await ensure_topics(settings)
    sites = make_sites(settings.database_url, args.sites)
    now_ms = int(time.time() * 1000)
    print(f"producing {args.events} events ...", flush=True)
    raws = traffic(random.Random(1), sites, args.events, now_ms - 6 * 3600 * 1000,
                   6 * 3600 * 1000, visitors=args.visitors)
    await produce(settings.kafka_bootstrap, raw_events_topic(settings), raws)
    try:
        bare = await bare_consumer(settings, args.events)
        print(f"bare aiokafka consumer (decode only): {bare:,.0f} events/s", flush=True)
        with tempfile.TemporaryDirectory(prefix="tt-bench-") as tmp:
            worker, wall = worker_rate(settings, args.events, tmp, args.batch_size,
                                       args.batch_window)
            batches, phases = phase_totals(f"{tmp}/bench.log")
        print(f"worker (raw topic -> aggregates committed in Postgres): {worker:,.0f} events/s")
        print_phases(batches, phases, args.events, wall)
        print(f"ratio worker/bare: {worker / bare:.3f}")
    finally:
        if not args.keep:
            with psycopg.connect(settings.database_url, autocommit=True) as conn:
                conn.execute("DELETE FROM websites WHERE id::text = ANY(%s)",
                             ([s for s, _ in sites],))
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
