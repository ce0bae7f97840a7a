"""Finding 7: SIGTERM to a worker whose Kafka or Postgres is gone must end it within its
`worker_shutdown_timeout` and a 5 s margin: 25 s with the default 20 s (Kubernetes kills
at 30 s; tests/deploy/test_chart.py checks the default against the chart's grace
period). The harness runs its workers with a 6 s timeout, so the bound here is 11 s. It
is the fault's pass mark, not a performance figure: `Popen.wait(timeout=...)` either
returns or the test fails.

Each test stops one service of the shared system, SIGTERMs the real worker process
(`tinytrail worker`), then brings the service back and starts a new worker, and checks
that events flow again (nothing answered 202 in between is lost: wait_quiet + stored)."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time

import pytest

from tests.system_harness import WORKER_SHUTDOWN_MARGIN as MARGIN
from tests.system_harness import System, client_ip, event
from tests.system_traffic import wait_quiet

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis, pytest.mark.kafka]


def sigterm_and_wait(system: System) -> float:
    """SIGTERM the system's worker; returns its exit time in seconds, or fails once its
    `TINYTRAIL_WORKER_SHUTDOWN_TIMEOUT` and MARGIN have passed."""
    worker = system.procs["worker"]
    proc = worker.popen
    assert proc is not None and proc.poll() is None, "the worker is not running"
    bound = float(worker.env["TINYTRAIL_WORKER_SHUTDOWN_TIMEOUT"]) + MARGIN
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=bound)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
        raise AssertionError(f"the worker did not exit within {bound:.0f} s of SIGTERM") from None
    return time.monotonic() - t0


async def back_to_work(system: System, name: str) -> None:
    """A new worker; one more event is collected and stored; the raw topic fully applied."""
    system.start_worker()
    path = f"/shutdown/{name}"
    await asyncio.to_thread(system.collect, event(system.website_id, path), client_ip(7))
    await asyncio.to_thread(system.wait_stored, {path}, path, 120)
    await wait_quiet(system, timeout=120)


async def test_worker_exits_on_sigterm_with_kafka_stopped(system: System) -> None:
    await asyncio.to_thread(system.services.stop_one, "kafka")
    try:
        took = await asyncio.to_thread(sigterm_and_wait, system)
    finally:
        await asyncio.to_thread(system.services.start_one, "kafka")
    system.figures.setdefault("shutdown", {})["kafka-stopped"] = round(took, 1)
    print(f"worker exited {took:.1f} s after SIGTERM with Kafka stopped")
    await back_to_work(system, "kafka")


async def test_worker_exits_on_sigterm_with_postgres_stopped_mid_batch(system: System) -> None:
    """Postgres stops, events keep arriving (the collector answers 202 from Kafka), so the
    worker holds a batch it retries; then SIGTERM. Those events are stored once the new
    worker runs (Postgres' offsets never moved past them)."""
    await asyncio.to_thread(system.services.stop_one, "postgres")
    paths = [f"/shutdown/pg/{i}" for i in range(5)]
    try:
        codes = [(await asyncio.to_thread(system.collect, event(system.website_id, p),
                                          client_ip(100 + i))).status_code
                 for i, p in enumerate(paths)]
        assert codes == [202] * len(paths), codes
        await asyncio.sleep(2)  # the worker fetched them and is retrying its batch
        took = await asyncio.to_thread(sigterm_and_wait, system)
    finally:
        await asyncio.to_thread(system.services.start_one, "postgres")
    system.figures.setdefault("shutdown", {})["postgres-stopped"] = round(took, 1)
    print(f"worker exited {took:.1f} s after SIGTERM with Postgres stopped")
    await back_to_work(system, "postgres")
    stored = await asyncio.to_thread(system.stored_paths, "/shutdown/pg/")
    assert stored == {p: 1 for p in paths}
