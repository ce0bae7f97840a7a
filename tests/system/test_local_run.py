"""`tinytrail run` brings the whole system up behind one base URL and Ctrl-C stops it all.

This is issue 2's "done when" on the real services: health answers through the
router, an event posted to the router's /api/v1/collect shows in the realtime
report, a child killed with SIGKILL is restarted and serves again (issue 12), and
SIGINT leaves no child process behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from tinytrail.settings import CoreSettings

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BROWSER_UA = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
              "(KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _http(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None
          ) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - loopback
            raw = resp.read()
            return resp.status, json.loads(raw) if raw.startswith((b"{", b"[")) else raw
    except urllib.error.HTTPError as err:
        raw = err.read()
        return err.code, json.loads(raw) if raw.startswith(b"{") else raw
    except (urllib.error.URLError, ConnectionError):
        return 0, None  # not listening yet


def _children(pid: int) -> list[int]:
    """Direct children of `pid`, read from /proc."""
    kids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if int(fields[1]) == pid:
                    kids.append(int(entry))
            except OSError:
                continue
    return kids


def _child_running(pids: list[int], command: str) -> int:
    """The pid among `pids` running `tinytrail <command>` (0 when none)."""
    for pid in pids:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                args = f.read().split(b"\0")
        except OSError:
            continue
        if command.encode() in args and _alive(pid):
            return pid
    return 0


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _until(what: str, fn: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.kafka
def test_run_serves_the_contract_on_one_base_url_and_stops_cleanly(
    core_settings: CoreSettings, tmp_path: Any
) -> None:
    port, cport, aport, mport, amport, cmport = (_free_port() for _ in range(6))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TINYTRAIL_")}
    env.update({
        "TINYTRAIL_DATABASE_URL": core_settings.database_url,
        "TINYTRAIL_REDIS_URL": core_settings.redis_url,
        "TINYTRAIL_KAFKA_BOOTSTRAP": core_settings.kafka_bootstrap,
        "TINYTRAIL_TOPIC_PREFIX": core_settings.topic_prefix + "-run",
        "TINYTRAIL_EVENTS_PARTITIONS": "2",
        "TINYTRAIL_SECRET_KEY": secrets.token_urlsafe(40),
        "TINYTRAIL_COLLECTOR_PORT": str(cport),
        "TINYTRAIL_API_PORT": str(aport),
        "TINYTRAIL_WORKER_METRICS_PORT": str(mport),
        "TINYTRAIL_API_METRICS_PORT": str(amport),
        "TINYTRAIL_COLLECTOR_METRICS_PORT": str(cmport),
        "TINYTRAIL_LOCAL_DIR": str(tmp_path),
        "TINYTRAIL_COLLECT_RATE_LIMIT": "1000",
        "TINYTRAIL_LOG_FORMAT": "json",
        "PYTHONPATH": ROOT,
    })
    cli = [sys.executable, "-m", "cli"]
    migrated = subprocess.run([*cli, "migrate"], env=env, cwd=ROOT, capture_output=True,
                              text=True, timeout=120)
    assert migrated.returncode == 0, migrated.stderr
    log = open(tmp_path / "run.log", "wb")  # noqa: SIM115 - closed in finally
    proc = subprocess.Popen([*cli, "run", "--port", str(port)], env=env, cwd=ROOT,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    children: list[int] = []
    try:
        health = _until("router health",
                        lambda: (s := _http("GET", f"{base}/health"))[0] == 200 and s[1], 90)
        assert health["db"] == "connected"
        children = _children(proc.pid)
        assert len(children) == 4  # collector, API, worker, router

        made = subprocess.run([*cli, "create-admin", "--account-name", "Run test"], env=env,
                              cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert made.returncode == 0, made.stderr
        key = re.search(r"(tt_[A-Za-z0-9_-]{32})", made.stdout).group(1)  # type: ignore[union-attr]
        auth = {"X-API-KEY": key, "Content-Type": "application/json"}
        status, body = _http("POST", f"{base}/api/v1/websites", {"domain": "run.example"}, auth)
        assert status == 201, body
        site = body["data"]["id"]

        status, tracker = _http("GET", f"{base}/js/tracker.js")
        assert status == 200 and b"analytics" in tracker

        event = {"website_id": site, "event_type": "page_view",
                 "url": "https://run.example/hello", "path": "/hello"}
        ua = {"User-Agent": BROWSER_UA, "Content-Type": "application/json"}
        # The collector learns about the new website within its refresh interval (<= 5 s).
        _until("202 from the collector",
               lambda: _http("POST", f"{base}/api/v1/collect", event, ua)[0] == 202, 30)

        def realtime() -> Any:
            s, b = _http("GET", f"{base}/api/v1/reports/realtime?website_id={site}", None, auth)
            assert s == 200, b
            return b["data"]["active_visitors"] >= 1 and b["data"]

        data = _until("the event in the realtime report", realtime, 30)
        assert {"path": "/hello", "visitors": 1} in data["top_pages"]

        # Issue 12: a crashed child is restarted (with backoff), not the end of the run.
        collector = _child_running(children, "collector")
        os.kill(collector, signal.SIGKILL)
        _until("the collector to be replaced",
               lambda: (new := _children(proc.pid)) and collector not in new
               and _child_running(new, "collector"), 30)
        _until("202 from the restarted collector",
               lambda: _http("POST", f"{base}/api/v1/collect", event, ua)[0] == 202, 60)
        assert proc.poll() is None  # the supervisor and the other children carried on
        children = _children(proc.pid)
        assert len(children) == 4
        assert b"collector exited with code -9; restarting" in (tmp_path / "run.log"
                                                               ).read_bytes()
    finally:
        proc.send_signal(signal.SIGINT)  # what Ctrl-C does to the foreground process
        try:
            rc = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            for pid in children:
                with contextlib.suppress(OSError):
                    os.killpg(pid, signal.SIGKILL)
            raise
        finally:
            log.close()
    assert rc == 0, (tmp_path / "run.log").read_text()[-3000:]
    assert [pid for pid in children if _alive(pid)] == []
