"""`tinytrail run`: the whole local system under one supervisor.

Starts the collector (:8001, metrics :8005), the API (:8002, metrics :8004), N stream
workers (metrics :8003, :8013, …) and
the local router (:8000) as child processes and prints where to reach them. A child
that exits is restarted, as Kubernetes would restart a container, after a backoff
that doubles with each quick crash: 1 s, 2 s, 4 s … up to 30 s; a child that stayed
up for `STABLE_SECONDS` (60 s) starts again from 1 s. Every exit and restart is
printed with its exit code, so nothing is restarted silently. Worked example: the
worker crashes at t = 0 (restarted at t = 1), again at t = 5 (restarted at t = 7),
again at t = 9 (restarted at t = 13); it then runs for 10 minutes, crashes, and is
restarted after 1 s.

On Ctrl-C or SIGTERM every child is stopped: SIGTERM, then SIGKILL after a grace
period (`grace_seconds`) longer than each child's own shutdown bound, so a child always
gets to end itself first: the collector's and the API's watchdog
(`tinytrail.shutdown.SHUTDOWN_SECONDS`, 22 s) and the worker's
(`TINYTRAIL_WORKER_SHUTDOWN_TIMEOUT`, default 20 s), plus `STOP_MARGIN_SECONDS` (3 s)
for the interpreter's exit: 25 s with the defaults.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request

from pydantic import ValidationError

from streams.settings import WorkerSettings
from tinytrail.shutdown import SHUTDOWN_SECONDS

STOP_MARGIN_SECONDS = 3.0  # after a child's own bound: room for its interpreter's exit


def grace_seconds() -> float:
    """Seconds from SIGTERM to SIGKILL for the children: the longest of their own
    shutdown bounds (the HTTP processes' `SHUTDOWN_SECONDS` and the worker's
    `worker_shutdown_timeout` as the environment sets it, the default when the
    environment holds no valid value) plus `STOP_MARGIN_SECONDS`."""
    worker = float(WorkerSettings.model_fields["worker_shutdown_timeout"].default)
    with contextlib.suppress(ValidationError):
        worker = WorkerSettings().worker_shutdown_timeout
    return max(SHUTDOWN_SECONDS, worker) + STOP_MARGIN_SECONDS


GRACE_SECONDS = max(SHUTDOWN_SECONDS, WorkerSettings.model_fields[
    "worker_shutdown_timeout"].default) + STOP_MARGIN_SECONDS  # 25 s: with the defaults
BACKOFF_FIRST = 1.0
BACKOFF_MAX = 30.0
STABLE_SECONDS = 60.0


class Child:
    """One supervised process: how to start it, and its restart backoff."""

    def __init__(self, name: str, args: list[str], env: dict[str, str]) -> None:
        self.name, self.args, self.env = name, args, env
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0
        self.backoff = BACKOFF_FIRST
        self.restart_at: float | None = None  # monotonic time of the next start, if down
        self.restarts = 0

    def start(self) -> None:
        self.proc = _spawn(self.name, self.args, self.env)
        self.started_at = time.monotonic()
        self.restart_at = None

    def check(self, now: float) -> None:
        """Notice an exit (and schedule the restart) or start it when its time came."""
        if self.restart_at is not None:
            if now >= self.restart_at:
                self.restarts += 1
                self.start()
            return
        assert self.proc is not None
        code = self.proc.poll()
        if code is None:
            return
        if now - self.started_at >= STABLE_SECONDS:
            self.backoff = BACKOFF_FIRST  # it had been fine for a while: a fresh crash
        print(f"[run] {self.name} exited with code {code}; restarting in "
              f"{self.backoff:.0f}s", flush=True)
        self.restart_at = now + self.backoff
        self.backoff = min(BACKOFF_MAX, self.backoff * 2)


def _spawn(name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    print(f"[run] starting {name}: tinytrail {' '.join(args)}", flush=True)
    # Own process group: Ctrl-C reaches only the supervisor, which stops children in order.
    return subprocess.Popen(
        [sys.executable, "-m", "cli", *args], env=env, start_new_session=True
    )


def _wait_http(url: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - loopback only
                if resp.status < 500:
                    return True
        except Exception:
            time.sleep(0.3)
    return False


def stop_all(children: dict[str, subprocess.Popen[bytes]], grace: float = GRACE_SECONDS) -> None:
    """SIGTERM to every child, then SIGKILL to those still running `grace` seconds later."""
    for proc in children.values():
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for name, proc in children.items():
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"[run] {name} did not stop in {grace:.0f}s; killing", flush=True)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def run_local(port: int = 8000, workers: int = 1) -> int:
    env = dict(os.environ)
    env.setdefault("TINYTRAIL_COLLECTOR_PORT", "8001")
    env.setdefault("TINYTRAIL_API_PORT", "8002")
    env.setdefault("TINYTRAIL_API_METRICS_PORT", "8004")
    env.setdefault("TINYTRAIL_COLLECTOR_METRICS_PORT", "8005")
    # The router on loopback is our proxy: trust it for X-Forwarded-For.
    env.setdefault("TINYTRAIL_TRUSTED_PROXIES", "127.0.0.1/32,::1/128")
    cport, aport = env["TINYTRAIL_COLLECTOR_PORT"], env["TINYTRAIL_API_PORT"]
    local_dir = env.get("TINYTRAIL_LOCAL_DIR") or os.path.join(os.getcwd(), ".local")
    children: list[Child] = []
    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    rc = 0
    try:
        children.append(Child("collector", ["collector"], env))
        children.append(Child("api", ["api"], env))
        for i in range(workers):
            wenv = dict(env)
            base = int(env.get("TINYTRAIL_WORKER_METRICS_PORT", "8003"))
            wenv["TINYTRAIL_WORKER_METRICS_PORT"] = str(base + 10 * i)
            # Each worker keeps its Faust state and heartbeat in a folder of its own.
            wdir = os.path.join(local_dir, f"worker-{i}")
            os.makedirs(wdir, exist_ok=True)
            wenv.setdefault("TINYTRAIL_WORKER_DATA_DIR", os.path.join(wdir, "data"))
            wenv.setdefault("TINYTRAIL_WORKER_HEARTBEAT_FILE", os.path.join(wdir, "heartbeat"))
            children.append(Child(f"worker-{i}", ["worker"], wenv))
        children.append(Child(
            "router",
            [
                "router",
                "--port",
                str(port),
                "--collector",
                f"http://127.0.0.1:{cport}",
                "--api",
                f"http://127.0.0.1:{aport}",
            ],
            env,
        ))
        for child in children:
            child.start()
        ok = all(_wait_http(f"http://127.0.0.1:{p}/health", 60) for p in (cport, aport, port))
        if ok and not stopping:
            print(
                "\nTinyTrail is running:\n"
                f"  everything (contract base URL)  http://localhost:{port}\n"
                f"  collector  http://localhost:{cport}  (/api/v1/collect, /js/tracker.js)\n"
                f"  API        http://localhost:{aport}  (/api/v1/..., /health)\n"
                f"  health     curl http://localhost:{port}/health\n"
                "  first admin key: tinytrail create-admin --account-name 'My company'\n"
                "A process that exits is restarted (backoff 1 s doubling to 30 s).\n"
                "Press Ctrl-C to stop.\n",
                flush=True,
            )
        elif not stopping:
            print("[run] a service did not become healthy in 60 s; stopping", flush=True)
            rc = 1
            stopping = True
        while not stopping:
            now = time.monotonic()
            for child in children:
                child.check(now)
            time.sleep(0.3)
    finally:
        print("[run] stopping...", flush=True)
        stop_all({c.name: c.proc for c in children if c.proc is not None}, grace_seconds())
        print("[run] stopped", flush=True)
    return rc
