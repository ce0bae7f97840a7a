"""`Chromium`: the Python side of drive.js (one JSON command per line, one answer back).

Each call raises `AssertionError` with the driver's message when the browser step
fails, so a failing step reads like a failed assertion. `close()` always ends node
and Chromium (killed if they do not quit).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


class Chromium:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lock = asyncio.Lock()

    @classmethod
    async def start(cls) -> Chromium:
        proc = await asyncio.create_subprocess_exec(
            "node", str(HERE / "drive.js"), cwd=str(HERE), stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=None, limit=64 * 1024 * 1024,
            env={**os.environ})
        return cls(proc)

    async def __call__(self, op: str, **args: Any) -> Any:
        # `timeout` (ms) goes to the driver; the answer may take that long and a bit more.
        timeout = 60 + args.get("timeout", 0) / 1000 + args.get("ms", 0) / 1000
        assert self.proc.stdin is not None and self.proc.stdout is not None
        async with self.lock:
            self.proc.stdin.write((json.dumps({"op": op, **args}) + "\n").encode())
            await self.proc.stdin.drain()
            line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        assert line, f"the browser driver ended during {op}"
        answer = json.loads(line)
        assert answer["ok"], f"{op} {args}: {answer.get('error')}"
        return answer.get("value")  # undefined in the page: no value

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            assert self.proc.stdin is not None
            self.proc.stdin.write(b'{"op": "quit"}\n')
            await self.proc.stdin.drain()
            await asyncio.wait_for(self.proc.wait(), 15)
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
