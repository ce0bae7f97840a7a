"""Start and stop real worker subprocesses for the broker tests (always killed in a finally)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from typing import Any

import psycopg
from aiokafka import AIOKafkaProducer

from tinytrail.event import RawEvent
from tinytrail.settings import CoreSettings

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def worker_env(settings: CoreSettings, tmp: str, name: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TINYTRAIL_")}
    env.update({
        "TINYTRAIL_DATABASE_URL": settings.database_url,
        "TINYTRAIL_REDIS_URL": settings.redis_url,
        "TINYTRAIL_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "TINYTRAIL_TOPIC_PREFIX": settings.topic_prefix,
        "TINYTRAIL_EVENTS_PARTITIONS": str(settings.events_partitions),
        "TINYTRAIL_WORKER_METRICS_PORT": "0",
        "TINYTRAIL_WORKER_HEARTBEAT_FILE": f"{tmp}/{name}.heartbeat",
        "TINYTRAIL_WORKER_DATA_DIR": f"{tmp}/{name}-data",
        "TINYTRAIL_BROKER_SESSION_TIMEOUT": "6",
        "TINYTRAIL_BROKER_HEARTBEAT_INTERVAL": "1",
        "TINYTRAIL_BATCH_SIZE": "500",
        "TINYTRAIL_LOG_FORMAT": "text",
        "TINYTRAIL_LOG_LEVEL": "WARNING",
        "PYTHONPATH": ROOT,
    })
    return env


def start_worker(
    settings: CoreSettings, tmp: str, name: str, extra: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    log = open(f"{tmp}/{name}.log", "ab")  # noqa: SIM115 - lives as long as the process
    env = worker_env(settings, tmp, name) | (extra or {})
    return subprocess.Popen(
        [sys.executable, "-c", "from streams.app import main; raise SystemExit(main())"],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
    )


def stop(proc: subprocess.Popen[bytes], hard: bool = False) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL if hard else signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


async def produce(
    bootstrap: str, topic: str, items: list[RawEvent | tuple[bytes, bytes]]
) -> list[tuple[int, int]]:
    """Send `items` in order; returns each one's (partition, offset).

    Idempotent producer: a retried send must not write a message twice, or a test
    counting stored events could not tell a worker bug from a producer retry."""
    prod = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5,
                            enable_idempotence=True)
    await prod.start()
    try:
        futs = []
        for it in items:
            key, value = (it.key, it.to_bytes()) if isinstance(it, RawEvent) else it
            futs.append(await prod.send(topic, value=value, key=key))
        metas = await asyncio.gather(*futs)
    finally:
        await prod.stop()
    return [(m.partition, m.offset) for m in metas]


def applied_messages(settings: CoreSettings) -> int:
    """Sum over partitions of next_offset (= messages applied: offsets start at 0)."""
    with psycopg.connect(settings.database_url) as conn:
        row = conn.execute(
            "SELECT coalesce(sum(next_offset), 0) FROM stream_offsets WHERE consumer_group = %s",
            (f"{settings.topic_prefix}-worker",),
        ).fetchone()
    return int(row[0]) if row else 0


async def wait_group(bootstrap: str, group: str, members: int, timeout: float = 60) -> None:
    """Wait until the consumer group is settled with `members` members (0: empty/gone).

    The fault tests produce only once the group is settled, so that each test exercises
    the failure it names (kill -9, a second worker) with a known set-up. A rebalance while
    a worker holds fetched, unprocessed messages is safe (docs/STREAMS.md, "Resuming at
    the right offset") and tested on its own: tests/streams/test_offset_gap.py and
    test_worker_kafka.py::test_two_workers_rebalancing_mid_stream_lose_nothing."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        deadline = time.monotonic() + timeout
        state: Any = None
        while True:
            resp = await admin.describe_consumer_groups([group])
            g = resp[0].groups[0]
            state = (g[2], len(g[5]))  # (state, members)
            if state in ((("Stable", members),) if members else (("Empty", 0), ("Dead", 0))):
                return
            assert time.monotonic() < deadline, f"group {group} not settled: {state}"
            await asyncio.sleep(0.3)
    finally:
        await admin.close()


def log_tail(tmp: str, name: str, lines: int = 40) -> str:
    """The last lines of a worker's log, for failure messages."""
    try:
        with open(f"{tmp}/{name}.log", "rb") as fh:
            text = fh.read().decode(errors="replace")
    except OSError as exc:
        return f"({name}.log unreadable: {exc})"
    return f"--- {name}.log (last {lines} lines) ---\n" + "\n".join(text.splitlines()[-lines:])


def wait_until(pred: Any, timeout: float, procs: list[subprocess.Popen[bytes]] = ()) -> None:  # type: ignore[assignment]
    deadline = time.monotonic() + timeout
    while not pred():
        for p in procs:
            assert p.poll() is None, f"worker exited with {p.returncode}"
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.3)
