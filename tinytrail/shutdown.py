"""Bounded shutdown for the HTTP processes (collector, API).

Kubernetes sends SIGTERM and kills the pod 30 s later (`terminationGracePeriodSeconds`);
docs/RULES.md asks every process to be gone within 25 s, services up or down. Each step of
a graceful stop has its own timeout, and behind them a watchdog thread ends the
process with `os._exit` if the steps together (or anything they did not foresee: a
thread, a stuck socket) take longer than `SHUTDOWN_SECONDS`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from collections.abc import Awaitable
from typing import TypeVar

log = logging.getLogger("tinytrail.shutdown")
T = TypeVar("T")

SHUTDOWN_SECONDS = 22.0
"""Seconds from SIGTERM to a forced exit: under the 25 s promised, with room for the
interpreter's own exit."""


def arm_watchdog(process: str, seconds: float = SHUTDOWN_SECONDS) -> threading.Timer:
    """Start a daemon timer that logs and calls `os._exit(1)` after `seconds` unless
    cancelled (the caller cancels it once the graceful stop is done)."""

    def fire() -> None:
        log.error("%s did not stop within %.0f s; exiting now", process, seconds)
        logging.shutdown()
        os._exit(1)

    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    timer.start()
    return timer


async def bounded(step: Awaitable[object], seconds: float, what: str) -> None:
    """Await one shutdown step for at most `seconds`; a timeout or an error is logged,
    never raised (the next step runs all the same)."""
    try:
        await asyncio.wait_for(step, max(0.1, seconds))
    except TimeoutError:
        log.warning("shutdown: %s took longer than %.1f s; going on", what, seconds)
    except Exception as exc:
        log.warning("shutdown: %s failed (%s); going on", what, type(exc).__name__)


async def first_of(work: Awaitable[T], stop: asyncio.Event) -> tuple[bool, T | None]:
    """Run `work` until it finishes or `stop` is set, whichever comes first.

    Returns `(True, result)` when `work` finished (its exception, if any, is raised),
    `(False, None)` when `stop` came first: `work` is then cancelled (start-up
    interrupted by SIGTERM), waiting at most 10 s for its own clean-up."""
    task = asyncio.ensure_future(work)
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
    if task.done():
        return True, task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await asyncio.wait_for(task, 10.0)
    return False, None
