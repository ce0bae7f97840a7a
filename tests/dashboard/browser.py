"""`Chromium`: the Python side of drive.js (one JSON command per line, one answer back).

Each call raises `AssertionError` with the driver's message when the browser step
fails, so a failing step reads like a failed assertion. `close()` always ends node
and Chromium (killed if they do not quit).

One driver serves every test of the dashboard package (tests/dashboard/conftest.py):
the process is a plain subprocess read by a thread of its own, so a call works from
whichever event loop the test runs in. A call that gets no answer in time leaves the
driver `broken` (a late answer would be taken for the next command's), and the
fixture starts a new one for the next test.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue
import subprocess
import threading
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


class Chromium:
    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self.lock = threading.Lock()
        self.broken = False
        self.answers: queue.Queue[bytes] = queue.Queue()
        threading.Thread(target=self._read, name="drive.js stdout", daemon=True).start()

    @classmethod
    def start(cls) -> Chromium:
        proc = subprocess.Popen(["node", str(HERE / "drive.js")], cwd=str(HERE),
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None,
                                env={**os.environ})
        return cls(proc)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.answers.put(line)
        self.answers.put(b"")  # the driver ended

    @property
    def usable(self) -> bool:
        return not self.broken and self.proc.poll() is None

    def _ask(self, command: str, timeout: float) -> bytes:
        with self.lock:
            assert not self.broken, "an earlier command of this driver got no answer"
            assert self.proc.stdin is not None
            self.proc.stdin.write(command.encode() + b"\n")
            self.proc.stdin.flush()
            try:
                return self.answers.get(timeout=timeout)
            except queue.Empty:
                self.broken = True
                raise AssertionError(f"no answer from the browser driver in {timeout:.0f} s: "
                                     f"{command[:200]}") from None

    async def __call__(self, op: str, **args: Any) -> Any:
        # `timeout` (ms) goes to the driver; the answer may take that long and a bit more.
        timeout = 60 + args.get("timeout", 0) / 1000 + args.get("ms", 0) / 1000
        line = await asyncio.to_thread(self._ask, json.dumps({"op": op, **args}), timeout)
        assert line, f"the browser driver ended during {op}"
        answer = json.loads(line)
        assert answer["ok"], f"{op} {args}: {answer.get('error')}"
        return answer.get("value")  # undefined in the page: no value

    def close(self) -> None:
        with contextlib.suppress(Exception):
            assert self.proc.stdin is not None
            self.proc.stdin.write(b'{"op": "quit"}\n')
            self.proc.stdin.close()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
