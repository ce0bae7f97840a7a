"""Service control and process helpers for the system suites: PostgreSQL, Redis and Kafka of
a test's own (`OwnServices`, driven through infra/services.sh on free loopback ports, never
the shared instances on 54329/63799/19092), one TinyTrail process as a subprocess
(`Proc`), free ports, polling with a bound (`wait_for`), and what is still alive
(`pid_alive`, `procs_mentioning`). tests/system_harness.py builds the whole `System` on
these; tests that need only a service or a process use them directly.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SERVICES = ROOT / "infra" / "services.sh"
SHARED_PORTS = {54329, 63799, 19092, 19093}


def free_port() -> int:
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in SHARED_PORTS:
            return port


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait_for(pred: Callable[[], Any], timeout: float, what: str, step: float = 0.25) -> Any:
    """Poll `pred` until it returns something truthy; bounded by `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = pred()
        except Exception:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(step)


class OwnServices:
    """PostgreSQL, Redis and Kafka of our own, driven through infra/services.sh."""

    def __init__(self, local_dir: Path) -> None:
        self.local_dir = local_dir
        self.pg_port, self.redis_port = free_port(), free_port()
        self.kafka_port, self.kafka_cport = free_port(), free_port()
        self.env = {
            **os.environ,
            "TINYTRAIL_LOCAL_DIR": str(local_dir),
            "TINYTRAIL_PG_PORT": str(self.pg_port),
            "TINYTRAIL_REDIS_PORT": str(self.redis_port),
            "TINYTRAIL_KAFKA_PORT": str(self.kafka_port),
            "TINYTRAIL_KAFKA_CONTROLLER_PORT": str(self.kafka_cport),
        }

    @property
    def database_url(self) -> str:
        return f"postgresql://tinytrail:tinytrail@127.0.0.1:{self.pg_port}/tinytrail"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    @property
    def kafka_bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    def ports(self) -> dict[str, int]:
        return {"postgres": self.pg_port, "redis": self.redis_port, "kafka": self.kafka_port,
                "kafka-controller": self.kafka_cport}

    def _run(self, *args: str) -> None:
        out = subprocess.run([str(SERVICES), *args], env=self.env, timeout=180,
                             capture_output=True, text=True, check=False)
        if out.returncode != 0:
            raise RuntimeError(f"services.sh {' '.join(args)} failed: {out.stderr[-2000:]}")

    def start(self) -> None:
        self._run("start")

    def stop(self) -> None:
        self._run("stop")

    def stop_one(self, name: str) -> None:
        self._run("stop-one", name)

    def start_one(self, name: str) -> None:
        self._run("start-one", name)

    def pg_log(self) -> Path | None:
        found = list(self.local_dir.glob("pg/*.log"))
        return found[0] if found else None


class Proc:
    """One TinyTrail process (`python -m cli <cmd>`), logging to its own file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.name, self.argv, self.env, self.log = name, argv, env, log
        self.popen: subprocess.Popen[bytes] | None = None
        self.pids: list[int] = []

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "cli", *self.argv], env=self.env, cwd=ROOT,
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )
        self.pids.append(self.popen.pid)

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill9(self) -> None:
        assert self.popen is not None
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(timeout=10)

    def stop(self) -> None:
        p = self.popen
        if p is None or p.poll() is not None:
            return
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=10)


def pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][:1] != "Z"
    except (FileNotFoundError, IndexError, ProcessLookupError):
        return False


def procs_mentioning(needle: str) -> list[tuple[int, str]]:
    """Live processes whose command line or environment mentions `needle` (our folder)."""
    out = []
    me = os.getpid()
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == me:
            continue
        try:
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            env = (d / "environ").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if (needle in cmd or needle in env) and pid_alive(int(d.name)):
            out.append((int(d.name), cmd[:200]))
    return out
