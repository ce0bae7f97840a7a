"""Stream benchmark: raw topic -> aggregates committed in Postgres, for one worker process,
beside a bare aiokafka consumer that only decodes the same topic. Prints both rates, the
worker's time per batch phase (from the phase totals it logs at shutdown), the freshness
of live traffic and, last, the ratio worker/bare.

    python bench/stream.py --events 100000 --partitions 4 --sites 20

Freshness: once the backlog is applied (and that worker stopped, so its phase table is
the backlog's alone), a second worker resumes the same topic and consumer group, and
--live-events events are produced one at a time (each send awaited) at --live-rate per
second. For each one: the time from its broker acknowledgement until `stream_offsets`
in Postgres covers it, i.e. until the transaction holding its aggregate deltas is
committed (polled every 20 ms, so each figure is an upper bound by up to ~20 ms).
Prints p50 / p95 / max and how many took over 2,000 ms (the issue's "aggregates
persisted at least every 2 seconds").

Bounded: the backlog worker gets at most 600 s, the live part (worker start included)
at most 120 s; each worker is stopped in a finally; all traffic is to the local services.

Uses the services in TINYTRAIL_* (defaults: the local ones), a fresh topic prefix, and
deletes its websites (and so their events and aggregates) at the end unless --keep.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import math
import os
import random
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import orjson  # noqa: E402
import psycopg  # noqa: E402
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer  # noqa: E402

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


def worker_extra(batch_size: int, window: float) -> dict[str, str]:
    """The worker's environment beyond `workerproc.worker_env` (both workers share it)."""
    return {
        "TINYTRAIL_BATCH_SIZE": str(batch_size), "TINYTRAIL_BATCH_WINDOW": str(window),
        "TINYTRAIL_LOG_LEVEL": "INFO", "TINYTRAIL_LOG_FORMAT": "json",
    }


def worker_rate(
    settings: CoreSettings, n: int, tmp: str, batch_size: int, window: float
) -> tuple[float, float]:
    """(events/s from the first committed batch to the last, wall seconds from start)."""
    proc = start_worker(settings, tmp, "bench", worker_extra(batch_size, window))
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


LIVE_CAP_S = 120.0  # the whole live part: worker start, warm-up, traffic, drain
LIVE_DRAIN_S = 10.0  # sends stop this long before the cap: an event unapplied at the cap
# has waited >= 10 s, so it counts as over the limit
LIVE_MAX_SPAN_S = 60.0  # --live-events / --live-rate must fit in this
POLL_S = 0.02  # Postgres poll interval: the resolution of each latency
FRESH_LIMIT_S = 2.0  # the issue: aggregates persisted at least every 2 s


class LiveFailed(Exception):
    """The live worker exited or never applied the warm-up event."""


@dataclasses.dataclass
class Freshness:
    wanted: int
    sent: int = 0
    send_s: float = 0.0  # first send to last ack: (sent - 1) / send_s ~ the rate
    latencies: list[float] = dataclasses.field(default_factory=list)  # s; inf = not applied
    batches: int = 0  # the live worker's batches (warm-up included)


def nearest_rank(sorted_vals: list[float], pct: float) -> float:
    """The pct-th percentile by nearest rank: the value at rank ceil(pct/100 * n).

    Worked example: n = 200, p95 -> rank ceil(190.0) = 190 -> sorted_vals[189], i.e. 10
    values are at least as large; p50 -> rank 100 -> sorted_vals[99]."""
    rank = max(1, math.ceil(pct / 100 * len(sorted_vals)))
    return sorted_vals[rank - 1]


async def applied_offsets(conn: psycopg.AsyncConnection[tuple[int, int]], group: str,
                          topic: str) -> dict[int, int]:
    """Partition -> stored next_offset: every offset below it is committed in Postgres."""
    cur = await conn.execute(
        "SELECT kpartition, next_offset FROM stream_offsets WHERE consumer_group = %s"
        " AND topic = %s", (group, topic))
    return {int(p): int(e) for p, e in await cur.fetchall()}


async def live_freshness(
    settings: CoreSettings, sites: list[tuple[str, str]], tmp: str, n: int, rate: float,
    batch_size: int, window: float,
) -> Freshness:
    """Start a worker on the (applied) backlog's topic and group, send one warm-up event and
    wait until it is applied, then send `n` events one at a time at `rate`/s while polling
    Postgres for when each is covered. The worker is stopped before returning."""
    deadline = time.perf_counter() + LIVE_CAP_S
    topic, group = raw_events_topic(settings), f"{settings.topic_prefix}-worker"
    # Another seed than the backlog's: the same event ids would be skipped as duplicates.
    events = traffic(random.Random(2), sites, n + 1, int(time.time() * 1000), 1000)
    res = Freshness(wanted=n)
    proc = start_worker(settings, tmp, "live", worker_extra(batch_size, window))
    prod = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all",
                            linger_ms=0, enable_idempotence=True)
    try:
        await prod.start()
        async with await psycopg.AsyncConnection.connect(settings.database_url,
                                                         autocommit=True) as conn:

            async def send(ev: RawEvent) -> tuple[int, int, float]:
                ev = dataclasses.replace(ev, received_at_ms=int(time.time() * 1000))
                meta = await prod.send_and_wait(topic, value=ev.to_bytes(), key=ev.key)
                return meta.partition, meta.offset, time.perf_counter()

            def check_alive(what: str) -> None:
                if proc.poll() is not None:
                    raise LiveFailed(f"live worker exited ({what}); its log:\n"
                                     f"{tail(f'{tmp}/live.log')}")

            # Warm-up: not measured (worker start, rebalance, session table recovery).
            print("live: starting a worker on the applied backlog ...", flush=True)
            wp, wo, _ = await send(events[0])
            while (await applied_offsets(conn, group, topic)).get(wp, 0) <= wo:
                check_alive("warm-up")
                if time.perf_counter() > deadline - LIVE_DRAIN_S:
                    raise LiveFailed(f"warm-up event not applied; worker log:\n"
                                     f"{tail(f'{tmp}/live.log')}")
                await asyncio.sleep(POLL_S)

            acked: list[tuple[int, int, float]] = []  # (partition, offset, ack time)
            sending = True

            async def producer() -> None:
                nonlocal sending
                t0 = time.perf_counter()
                try:
                    for i, ev in enumerate(events[1:], 1):
                        # Steady schedule: event i is due at t0 + (i-1)/rate; a slow ack
                        # is made up by sending the next ones without waiting.
                        delay = t0 + (i - 1) / rate - time.perf_counter()
                        if delay > 0:
                            await asyncio.sleep(delay)
                        if time.perf_counter() > deadline - LIVE_DRAIN_S:
                            print(f"live: time cap reached, sent {i - 1}/{n}", flush=True)
                            break
                        acked.append(await send(ev))
                        if i % 50 == 0 or i == n:
                            print(f"live: {i}/{n} sent, {len(res.latencies)} applied",
                                  flush=True)
                    res.send_s = (acked[-1][2] - t0) if acked else 0.0
                finally:
                    sending = False

            task = asyncio.create_task(producer())
            try:
                pending: list[tuple[int, int, float]] = []
                taken = 0
                while True:
                    # Take the acks first: an event acked after the query could look
                    # unapplied this round, never applied too early.
                    pending.extend(acked[taken:])
                    taken = len(acked)
                    done = not sending
                    offs = await applied_offsets(conn, group, topic)
                    now = time.perf_counter()
                    still = []
                    for p, off, t_ack in pending:
                        if offs.get(p, 0) > off:
                            res.latencies.append(max(now - t_ack, 0.0))
                        else:
                            still.append((p, off, t_ack))
                    pending = still
                    if (done and taken == len(acked) and not pending) or now > deadline:
                        break
                    check_alive("live traffic")
                    await asyncio.sleep(POLL_S)
                pending.extend(acked[taken:])  # only if the cap cut a send short
                res.latencies.extend(math.inf for _ in pending)
                res.sent = len(acked)
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
    finally:
        try:
            await prod.stop()
        finally:
            stop(proc)
    res.batches, _ = phase_totals(f"{tmp}/live.log")
    return res


def print_freshness(f: Freshness, rate: float, window: float) -> None:
    lat = sorted(f.latencies)
    print(f"freshness (live traffic, one awaited produce per event, worker batch window"
          f" {window:g} s): {f.sent}/{f.wanted} sent at {rate:g}/s requested,"
          f" {(f.sent - 1) / f.send_s if f.send_s > 0 else 0:,.1f}/s achieved,"
          f" {f.batches} worker batches (warm-up included)")
    if not lat:
        print("  no live events were sent")
        return

    def ms(x: float) -> str:
        return f"{1000 * x:,.0f} ms" if math.isfinite(x) else f"not applied in {LIVE_CAP_S:.0f} s"

    unapplied = sum(1 for x in lat if not math.isfinite(x))
    over = sum(1 for x in lat if x > FRESH_LIMIT_S)
    print(f"  ack -> committed in Postgres (polled every {1000 * POLL_S:.0f} ms):"
          f" p50 {ms(nearest_rank(lat, 50))}, p95 {ms(nearest_rank(lat, 95))},"
          f" max {ms(lat[-1])}")
    print(f"  over {1000 * FRESH_LIMIT_S:,.0f} ms: {over} of {len(lat)}"
          f" ({unapplied} of them never applied)")


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--events", type=int, default=100_000, help="events to produce")
    ap.add_argument("--partitions", type=int, default=4, help="raw topic partitions")
    ap.add_argument("--sites", type=int, default=20, help="websites")
    ap.add_argument("--visitors", type=int, default=5000, help="visitors per site")
    ap.add_argument("--batch-size", type=int, default=10_000, help="worker batch size")
    ap.add_argument("--batch-window", type=float, default=1.0, help="worker batch window (s)")
    ap.add_argument("--live-events", type=int, default=200,
                    help="freshness: live events sent one at a time after the backlog, each"
                         " timed from its ack to its Postgres commit (0: skip; at most 60 s"
                         " of traffic, the live part is capped at 120 s)")
    ap.add_argument("--live-rate", type=float, default=50.0,
                    help="freshness: live events per second")
    ap.add_argument("--keep", action="store_true", help="keep the generated data")
    args = ap.parse_args()
    if args.live_events < 0 or args.live_rate <= 0:
        ap.error("--live-events must be >= 0 and --live-rate > 0")
    if args.live_events / args.live_rate > LIVE_MAX_SPAN_S:
        ap.error(f"--live-events / --live-rate must be <= {LIVE_MAX_SPAN_S:.0f} s"
                 f" (the live part is capped at {LIVE_CAP_S:.0f} s)")
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
    failed = False
    try:
        bare = await bare_consumer(settings, args.events)
        print(f"bare aiokafka consumer (decode only): {bare:,.0f} events/s", flush=True)
        with tempfile.TemporaryDirectory(prefix="tt-bench-") as tmp:
            worker, wall = worker_rate(settings, args.events, tmp, args.batch_size,
                                       args.batch_window)
            batches, phases = phase_totals(f"{tmp}/bench.log")
            print(f"worker (raw topic -> aggregates committed in Postgres):"
                  f" {worker:,.0f} events/s")
            print_phases(batches, phases, args.events, wall)
            if args.live_events:
                try:
                    fresh = await live_freshness(settings, sites, tmp, args.live_events,
                                                 args.live_rate, args.batch_size,
                                                 args.batch_window)
                    print_freshness(fresh, args.live_rate, args.batch_window)
                except LiveFailed as exc:
                    failed = True
                    print(f"freshness: FAILED: {exc}")
        # Last line: other tooling reads it.
        print(f"ratio worker/bare: {worker / bare:.3f}")
    finally:
        if not args.keep:
            with psycopg.connect(settings.database_url, autocommit=True) as conn:
                conn.execute("DELETE FROM websites WHERE id::text = ANY(%s)",
                             ([s for s, _ in sites],))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
