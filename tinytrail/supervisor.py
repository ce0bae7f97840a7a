"""`tinytrail run`: the whole local system under one supervisor.

Starts the collector (:8001), the API (:8002), N stream workers and the local
router (:8000) as child processes, prints where to reach them, restarts nothing
silently (a child that dies stops the whole run with its exit code), and on
Ctrl-C or SIGTERM stops every child: SIGTERM, then SIGKILL after a grace period.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request

GRACE_SECONDS = 15.0


def _spawn(name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    print(f"[run] starting {name}: tinytrail {' '.join(args)}", flush=True)
    # Own process group: Ctrl-C reaches only the supervisor, which stops children in order.
    return subprocess.Popen(
        [sys.executable, "-m", "tinytrail.cli", *args], env=env, start_new_session=True
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


def stop_all(children: dict[str, subprocess.Popen[bytes]]) -> None:
    for proc in children.values():
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + GRACE_SECONDS
    for name, proc in children.items():
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"[run] {name} did not stop in {GRACE_SECONDS:.0f}s; killing", flush=True)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def run_local(port: int = 8000, workers: int = 1) -> int:
    env = dict(os.environ)
    env.setdefault("TINYTRAIL_COLLECTOR_PORT", "8001")
    env.setdefault("TINYTRAIL_API_PORT", "8002")
    # The router on loopback is our proxy: trust it for X-Forwarded-For.
    env.setdefault("TINYTRAIL_TRUSTED_PROXIES", "127.0.0.1/32,::1/128")
    cport, aport = env["TINYTRAIL_COLLECTOR_PORT"], env["TINYTRAIL_API_PORT"]
    local_dir = env.get("TINYTRAIL_LOCAL_DIR") or os.path.join(os.getcwd(), ".local")
    children: dict[str, subprocess.Popen[bytes]] = {}
    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    rc = 0
    try:
        children["collector"] = _spawn("collector", ["collector"], env)
        children["api"] = _spawn("api", ["api"], env)
        for i in range(workers):
            wenv = dict(env)
            base = int(env.get("TINYTRAIL_WORKER_METRICS_PORT", "8003"))
            wenv["TINYTRAIL_WORKER_METRICS_PORT"] = str(base + 10 * i)
            # Each worker keeps its Faust state and heartbeat in a folder of its own.
            wdir = os.path.join(local_dir, f"worker-{i}")
            os.makedirs(wdir, exist_ok=True)
            wenv.setdefault("TINYTRAIL_WORKER_DATA_DIR", os.path.join(wdir, "data"))
            wenv.setdefault("TINYTRAIL_WORKER_HEARTBEAT_FILE", os.path.join(wdir, "heartbeat"))
            children[f"worker-{i}"] = _spawn(f"worker-{i}", ["worker"], wenv)
        children["router"] = _spawn(
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
        )
        ok = all(_wait_http(f"http://127.0.0.1:{p}/health", 60) for p in (cport, aport, port))
        if ok and not stopping:
            print(
                "\nTinyTrail is running:\n"
                f"  everything (contract base URL)  http://localhost:{port}\n"
                f"  collector  http://localhost:{cport}  (/api/v1/collect, /js/tracker.js)\n"
                f"  API        http://localhost:{aport}  (/api/v1/..., /health)\n"
                f"  health     curl http://localhost:{port}/health\n"
                "  first admin key: tinytrail create-admin --account-name 'My company'\n"
                "Press Ctrl-C to stop.\n",
                flush=True,
            )
        elif not stopping:
            print("[run] a service did not become healthy in 60 s; stopping", flush=True)
            rc = 1
            stopping = True
        while not stopping:
            for name, proc in children.items():
                code = proc.poll()
                if code is not None:
                    print(f"[run] {name} exited with code {code}; stopping everything", flush=True)
                    rc = code or 1
                    stopping = True
                    break
            time.sleep(0.3)
    finally:
        print("[run] stopping...", flush=True)
        stop_all(children)
        print("[run] stopped", flush=True)
    return rc
