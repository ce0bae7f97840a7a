"""Faults under a steady stream of events: nothing accepted is lost, nothing counted twice.

Each test runs a `Sender` (tagged events at a steady rate, every answer recorded),
breaks one part of the system while events flow, repairs it, and then checks:

- every answer was 202 or 503 (never a 500, never a hang: the client has a timeout);
- every event answered 202 is stored exactly once (matched by its own path);
- no event is stored twice, no event id appears twice;
- every aggregate row equals the rebuild of its day from the stored events.

The figures of every run are written to `$TMPDIR/tinytrail-reliability.json` (and quoted
in docs/RELIABILITY.md).
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
from collections.abc import Awaitable, Callable

import pytest
import requests

from tests.system_harness import System, client_ip
from tests.system_traffic import Sender, assert_aggregates_equal_rebuild, wait_quiet

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis, pytest.mark.kafka]

FIGURES = os.path.join(tempfile.gettempdir(), "tinytrail-reliability.json")


def _status(url: str) -> int | str:
    try:
        return requests.get(url, timeout=5).status_code
    except requests.RequestException as exc:
        return type(exc).__name__


async def status(url: str) -> int | str:
    return await asyncio.to_thread(_status, url)


async def run_fault(system: System, name: str,
                    fault: Callable[[Sender], Awaitable[None]]) -> dict[str, int]:
    sender = Sender(system, name)
    sender.start()
    try:
        await sender.wait_accepted(20, 60, "before the fault")
        await fault(sender)
        await sender.wait_accepted(20, 90, "after recovery")
    finally:
        await sender.stop()
    await wait_quiet(system)

    outcomes = set(sender.results.values())
    assert outcomes <= {202, 503}, f"unexpected answers: {outcomes - {202, 503}}"
    accepted = sender.accepted()
    stored = await asyncio.to_thread(system.stored_paths, sender.prefix)
    lost = accepted - set(stored)
    duplicated = {p: n for p, n in stored.items() if n > 1}
    unknown = set(stored) - set(sender.results)
    assert not lost, f"{len(lost)} events answered 202 but not stored: {sorted(lost)[:10]}"
    assert not duplicated, f"stored more than once: {duplicated}"
    assert not unknown, f"stored but never sent: {sorted(unknown)[:10]}"
    [(rows, ids)] = await asyncio.to_thread(
        system.sql, "SELECT count(*), count(DISTINCT event_id) FROM events")
    assert rows == ids, f"{rows - ids} event ids stored twice"
    agg_rows = await assert_aggregates_equal_rebuild(system)

    figures = {
        "sent": sender.sent, "accepted": len(accepted), "503": sender.count(503),
        "stored": len(stored), "stored_not_accepted": len(set(stored) - accepted),
        "lost": len(lost), "duplicated": len(duplicated), "aggregate_rows_checked": agg_rows,
    }
    system.figures.setdefault("faults", {})[name] = figures
    with open(FIGURES, "w") as f:
        json.dump(system.figures["faults"], f, indent=1)
    print(name, figures)
    return figures


ROUND = 24  # events from distinct visitors: with 4 partitions, every one is hit


def fully_recovered(system: System, timeout: float = 60) -> list[list[int]]:
    """Rounds of ROUND events (distinct visitors, so every partition) until one round is
    all 202, bounded by `timeout`; returns the rounds' status codes."""
    rounds: list[list[int]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        n = len(rounds)
        codes = [system.collect(
            {"website_id": system.website_id, "event_type": "page_view",
             "url": "https://reliability.example/recovery", "path": f"/recovery/{n}/{i}"},
            client_ip(1000 + 37 * i + n)).status_code for i in range(ROUND)]
        rounds.append(codes)
        if codes == [202] * ROUND:
            break
    return rounds


async def test_worker_killed_with_sigkill_and_restarted(system: System) -> None:
    async def fault(sender: Sender) -> None:
        system.procs["worker"].kill9()
        # Collection does not depend on the worker: 202s go on while it is dead.
        await sender.wait_accepted(30, 60, "while the worker is dead")
        system.start_worker()

    figures = await run_fault(system, "worker-kill-9", fault)
    assert figures["503"] == 0


async def test_postgres_stopped_and_restarted(system: System) -> None:
    api_health = f"{system.api_url}/health"
    seen: dict[str, object] = {}

    async def fault(sender: Sender) -> None:
        await asyncio.to_thread(system.services.stop_one, "postgres")
        # The API says so on /health (503, within the client timeout, not a hang) ...
        await sender.wait_for(lambda: _status(api_health) == 503, 30, "API /health 503")
        seen["down"] = requests.get(api_health, timeout=5).json()
        # ... and collection goes on from the collector's cached websites.
        await sender.wait_accepted(20, 60, "while Postgres is down")
        await asyncio.to_thread(system.services.start_one, "postgres")
        await sender.wait_for(lambda: _status(api_health) == 200, 60, "API /health 200 again")

    figures = await run_fault(system, "postgres-restart", fault)
    assert seen["down"] == {"status": "degraded", "db": "disconnected"}
    assert figures["503"] == 0
    assert system.procs["api"].alive and system.procs["collector"].alive


async def test_redis_stopped_and_restarted(system: System) -> None:
    checked: dict[str, int] = {}

    async def fault(sender: Sender) -> None:
        await asyncio.to_thread(system.services.stop_one, "redis")
        # Rate limits fail open and the collector keeps its cached salt: 202s go on.
        await sender.wait_accepted(30, 60, "while Redis is down")
        resp = await asyncio.to_thread(system.api, "GET", "/api/v1/websites")
        checked["api"] = resp.status_code
        await asyncio.to_thread(system.services.start_one, "redis")

    figures = await run_fault(system, "redis-restart", fault)
    assert checked["api"] == 200
    assert figures["503"] == 0


async def test_kafka_stopped_and_restarted(system: System) -> None:
    collector_health = f"{system.collector_url}/health"
    seen: dict[str, object] = {}

    async def fault(sender: Sender) -> None:
        await asyncio.to_thread(system.services.stop_one, "kafka")
        # 503 with Retry-After, not 202 and not a hang (the sender's timeout is 10 s).
        before = sender.count(503)
        await sender.wait_for(lambda: sender.count(503) >= before + 5, 60, "503s")
        seen["health"] = requests.get(collector_health, timeout=10).json()
        probe = await asyncio.to_thread(
            system.collect, {"website_id": system.website_id, "event_type": "page_view",
                             "url": "https://reliability.example/probe", "path": "/probe"},
            "198.51.100.250")
        seen["probe"] = (probe.status_code, probe.headers.get("Retry-After"),
                         probe.json()["error"]["code"])
        await asyncio.to_thread(system.services.start_one, "kafka")
        # The collector reconnects by itself: 202s come back without a restart, for
        # every partition (not merely some events).
        seen["recovered"] = await asyncio.to_thread(fully_recovered, system)

    figures = await run_fault(system, "kafka-restart", fault)
    assert seen["recovered"][-1] == [202] * ROUND, f"still refusing: {seen['recovered']}"
    assert seen["probe"] == (503, "2", "SERVICE_UNAVAILABLE")
    assert seen["health"]["kafka"] == "disconnected"  # type: ignore[index]
    assert figures["503"] >= 5
    assert all(p.alive for p in system.procs.values()), "a process died during the outage"
