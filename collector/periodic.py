"""A named background loop: call `fn` every `seconds` until stopped.

The collector's website refresh and salt re-assert both use it; `fn` is expected to
handle its own failures (both log and count them), so the loop never dies silently.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable


class Periodic:
    def __init__(self, name: str, seconds: float, fn: Callable[[], Awaitable[object]]) -> None:
        self.name, self.seconds, self.fn = name, seconds, fn
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name=self.name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.seconds)
            await self.fn()
