"""The whole TinyTrail system on services of its own, for the fault, abuse and privacy suites.

`System` starts a private PostgreSQL, Redis and Kafka with `infra/services.sh` on free
loopback ports under a throwaway folder (the shared instances on 54329/63799/19092 are
never touched), migrates, bootstraps an admin with `tinytrail create-admin`, creates a
website through the API, and runs the collector, one stream worker and the API as
`python -m cli ...` subprocesses, each logging JSON lines to a file of its own
that the privacy suite scans afterwards.

One `System` serves a whole pytest session (`shared_system`, reference counted, so the
three suites' conftests share it); `System.stop` ends every process and service it
started and `leftovers()` says what, if anything, is still alive or listening.

The services and processes are tests/system_services.py's; traffic to a running System
and the checks of what it stored (`Sender`, `wait_quiet`, the rebuild comparison) are
tests/system_traffic.py's.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import psycopg
import requests

from tests.system_services import (
    ROOT,
    OwnServices,
    Proc,
    free_port,
    pid_alive,
    port_open,
    procs_mentioning,
    wait_for,
)

# tests/dashboard/stack.py and bench/dashboard.py import these two from here.
__all__ = ["free_port", "wait_for"]

PARTITIONS = 4
# The harness's workers end at most this many seconds after SIGTERM (the watchdog of
# `TINYTRAIL_WORKER_SHUTDOWN_TIMEOUT`; 20 s by default, which tests/deploy/test_chart.py
# checks against the chart's grace period): the shutdown tests wait it out. They allow
# the margin on top of a worker's own timeout.
WORKER_SHUTDOWN_TIMEOUT = 6.0
WORKER_SHUTDOWN_MARGIN = 5.0

# Distinctive client addresses (documentation ranges, RFC 5737 / RFC 3849): the privacy
# suite looks for these strings everywhere after a run.
IPV4_PREFIX = "198.51.100."
IPV6_PREFIX = "2001:db8::"
CHROME = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/124.0.0.0 Safari/537.36")
FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0"


def client_ip(n: int) -> str:
    """A probe address: even n → 198.51.100.(1..200), odd n → 2001:db8::a:(1..200)."""
    k = 1 + (n // 2) % 200
    return f"{IPV4_PREFIX}{k}" if n % 2 == 0 else f"{IPV6_PREFIX}a:{k:x}"


class System:
    """Services + collector + worker + API, an admin key and one website."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="tt-system-"))
        os.chmod(self.dir, 0o755)  # the postgres user must reach its data folder
        self.logs = self.dir / "logs"
        self.logs.mkdir()
        self.services = OwnServices(self.dir / "services")
        self.prefix = f"tt-sys-{uuid.uuid4().hex[:8]}"
        self.secret = secrets.token_urlsafe(40)
        self.collector_port, self.api_port = free_port(), free_port()
        self.api_metrics_port, self.collector_metrics_port = free_port(), free_port()
        self.procs: dict[str, Proc] = {}
        self.worker_runs = 0
        self.admin_key = ""
        self.admin_id = ""
        self.account_id = ""
        self.website_id = ""
        self.user_key = ""
        self.figures: dict[str, Any] = {}

    # --- environment --------------------------------------------------------------

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TINYTRAIL_")}
        env.update({
            "PYTHONPATH": str(ROOT),
            "TINYTRAIL_DATABASE_URL": self.services.database_url,
            "TINYTRAIL_REDIS_URL": self.services.redis_url,
            "TINYTRAIL_KAFKA_BOOTSTRAP": self.services.kafka_bootstrap,
            "TINYTRAIL_TOPIC_PREFIX": self.prefix,
            "TINYTRAIL_EVENTS_PARTITIONS": str(PARTITIONS),
            "TINYTRAIL_LOG_FORMAT": "json",
            "TINYTRAIL_LOG_LEVEL": "INFO",
            "TINYTRAIL_SECRET_KEY": self.secret,
            "TINYTRAIL_DB_CONNECT_TIMEOUT": "3",
        })
        env.update(extra)
        return env

    @property
    def collector_url(self) -> str:
        return f"http://127.0.0.1:{self.collector_port}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    # --- processes ------------------------------------------------------------------

    def _collector(self) -> Proc:
        env = self.env(
            TINYTRAIL_COLLECTOR_HOST="127.0.0.1",
            TINYTRAIL_COLLECTOR_METRICS_PORT=str(self.collector_metrics_port),
            TINYTRAIL_TRUSTED_PROXIES="127.0.0.1",
            TINYTRAIL_COLLECT_RATE_LIMIT="1000000",
            TINYTRAIL_WEBSITE_REFRESH_INTERVAL="1",
            TINYTRAIL_KAFKA_SEND_TIMEOUT="2",
            TINYTRAIL_RETRY_AFTER_SECONDS="2",
            TINYTRAIL_KAFKA_REQUEST_TIMEOUT_MS="10000",
            TINYTRAIL_CONNECTION_TIMEOUT="3",
        )
        return Proc("collector", ["collector", "--port", str(self.collector_port)], env,
                    self.logs / "collector.log")

    def _api(self) -> Proc:
        env = self.env(
            TINYTRAIL_API_HOST="127.0.0.1",
            TINYTRAIL_API_RATE_LIMIT="1000000",
            TINYTRAIL_API_AUTH_FAIL_LIMIT="1000000",
            TINYTRAIL_API_METRICS_PORT=str(self.api_metrics_port),
            TINYTRAIL_API_IDLE_TIMEOUT="3",
            TINYTRAIL_API_BODY_TIMEOUT="3",
        )
        return Proc("api", ["api", "--port", str(self.api_port)], env, self.logs / "api.log")

    def _worker(self) -> Proc:
        self.worker_runs += 1
        n = self.worker_runs
        env = self.env(
            TINYTRAIL_WORKER_METRICS_PORT="0",
            TINYTRAIL_WORKER_HEARTBEAT_FILE=str(self.dir / f"worker{n}.heartbeat"),
            TINYTRAIL_WORKER_DATA_DIR=str(self.dir / f"worker{n}-data"),
            TINYTRAIL_BROKER_SESSION_TIMEOUT="6",
            TINYTRAIL_BROKER_HEARTBEAT_INTERVAL="1",
            TINYTRAIL_BATCH_SIZE="500",
            TINYTRAIL_WEBSITE_REFRESH_INTERVAL="1",
            TINYTRAIL_WORKER_SHUTDOWN_TIMEOUT=str(WORKER_SHUTDOWN_TIMEOUT),
        )
        return Proc("worker", ["worker"], env, self.logs / f"worker{n}.log")

    def start_worker(self) -> Proc:
        w = self._worker()
        w.start()
        self.procs["worker"] = w
        return w

    def cli(self, *argv: str) -> str:
        out = subprocess.run([sys.executable, "-m", "cli", *argv], env=self.env(),
                             cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
        with open(self.logs / "cli.log", "a") as log:
            # create-admin prints the new key on stdout by design (once, to the operator);
            # that is the harness's business, not a log line of the system.
            log.write((out.stdout if argv[0] != "create-admin" else "") + out.stderr)
        if out.returncode != 0:
            raise RuntimeError(f"tinytrail {argv[0]} failed: {out.stderr[-2000:]}")
        return out.stdout

    def start(self) -> None:
        self.services.start()
        self.cli("migrate")
        made = self.cli("create-admin", "--account-name", "reliability", "--email", "ops@x.test")
        fields = dict(line.split(": ", 1) for line in made.splitlines() if ": " in line)
        self.admin_key = fields["API key (shown only now; keep it secret)"].strip()
        self.admin_id = fields["admin user id"].strip()
        self.account_id = fields["account id"].strip()
        for name, proc in (("collector", self._collector()), ("api", self._api())):
            self.procs[name] = proc
            proc.start()
        self.start_worker()
        wait_for(lambda: self.get_api("/health").status_code == 200, 60, "the API")
        wait_for(lambda: requests.get(f"{self.collector_url}/health", timeout=3).ok, 90,
                 "the collector")
        site = self.api("POST", "/api/v1/websites", json={
            "domain": "reliability.example",
            "content_groups": [{"name": "Tagged", "pattern": "/ft/*"}],
            "excluded_ips": ["203.0.113.0/24"],
        })
        assert site.status_code == 201, site.text
        self.website_id = site.json()["data"]["id"]
        user = self.api("POST", "/api/v1/users", json={
            "account_id": self.account_id, "role": "user", "email": "viewer@x.test"})
        assert user.status_code == 201, user.text
        self.user_key = user.json()["data"]["apiKey"]
        # The collector learns new websites within a second or two (its cache refresh);
        # then one event must go all the way through to the events table.
        warm = event(self.website_id, "/warm-up")
        wait_for(lambda: self.collect(warm, ip=client_ip(0)).status_code == 202, 30,
                 "the collector to know the website", step=0.5)
        self.wait_stored({"/warm-up"}, "/warm-up", timeout=120)

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.stop()
        try:
            self.services.stop()
        finally:
            self.figures["leftovers"] = self.leftovers()

    def leftovers(self) -> list[str]:
        """Processes of ours still running and ports of ours still answering."""
        found = []
        for proc in self.procs.values():
            for pid in proc.pids:
                if pid_alive(pid):
                    found.append(f"{proc.name} pid {pid}")
        for name, port in self.services.ports().items():
            if port_open(port):
                found.append(f"{name} port {port}")
        for name, port in (("collector", self.collector_port), ("api", self.api_port)):
            if port_open(port):
                found.append(f"{name} port {port}")
        found.extend(f"pid {pid}: {cmd}" for pid, cmd in procs_mentioning(str(self.dir)))
        return found

    def remove_files(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    # --- HTTP helpers -----------------------------------------------------------------

    def api(self, method: str, path: str, key: str | None = None, **kw: Any) -> requests.Response:
        headers = {"X-API-KEY": key or self.admin_key, **kw.pop("headers", {})}
        return requests.request(method, f"{self.api_url}{path}", headers=headers, timeout=15,
                                **kw)

    def get_api(self, path: str, **kw: Any) -> requests.Response:
        return requests.get(f"{self.api_url}{path}", timeout=5, **kw)

    def collect(self, body: Any, ip: str | None = None, ua: str = CHROME,
                headers: dict[str, str] | None = None, timeout: float = 10) -> requests.Response:
        hdrs = {"User-Agent": ua, "Content-Type": "text/plain", **(headers or {})}
        if ip:
            hdrs["X-Forwarded-For"] = ip
        data = body if isinstance(body, bytes | str) else json.dumps(body)
        return requests.post(f"{self.collector_url}/api/v1/collect", data=data, headers=hdrs,
                             timeout=timeout)

    # --- database helpers ----------------------------------------------------------

    def sql(self, query: str, params: Iterable[Any] | dict[str, Any] = ()) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.services.database_url, connect_timeout=5) as conn:
            return list(conn.execute(query, params))  # type: ignore[arg-type]

    def stored_paths(self, prefix: str) -> dict[str, int]:
        rows = self.sql("SELECT path, count(*) FROM events WHERE website_id = %s"
                        " AND path LIKE %s GROUP BY path", (self.website_id, prefix + "%"))
        return {p: int(n) for p, n in rows}

    def applied_offsets(self) -> int:
        rows = self.sql("SELECT coalesce(sum(next_offset), 0) FROM stream_offsets"
                        " WHERE consumer_group = %s", (f"{self.prefix}-worker",))
        return int(rows[0][0])

    def wait_stored(self, paths: set[str], prefix: str, timeout: float = 90) -> dict[str, int]:
        """Wait until every path in `paths` is stored; returns all stored under `prefix`."""

        def done() -> dict[str, int] | None:
            w = self.procs["worker"]
            assert w.alive, f"the worker exited ({w.popen.returncode if w.popen else None})"
            got = self.stored_paths(prefix)
            return got if paths <= set(got) else None

        return wait_for(done, timeout, f"{len(paths)} events to be stored", step=0.5)


def event(website_id: str, path: str, kind: str = "page_view", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "website_id": website_id, "event_type": kind, "url": f"https://reliability.example{path}",
        "path": path, "referrer": "https://www.google.com/search?q=x", "screen_width": 1440,
        "screen_height": 900,
    }
    if kind == "custom":
        body["properties"] = {"name": "signup", "plan": "pro"}
    body.update(extra)
    return body


# --- one System per pytest session, shared by the suites' conftests ----------------------

_shared: dict[str, Any] = {"system": None, "users": 0}


def shared_system() -> System:
    """Start the System on first use; `release_system` stops it when the last user leaves."""
    if _shared["system"] is None:
        system = System()
        try:
            system.start()
        except BaseException:
            system.stop()
            system.remove_files()
            raise
        _shared["system"] = system
    _shared["users"] += 1
    return _shared["system"]


def release_system() -> None:
    _shared["users"] -= 1
    if _shared["users"] > 0:
        return
    system: System = _shared["system"]
    _shared["system"] = None
    system.stop()
    left = system.figures["leftovers"]
    if not left and not os.environ.get("TINYTRAIL_KEEP_SYSTEM_FILES"):
        system.remove_files()  # set TINYTRAIL_KEEP_SYSTEM_FILES=1 to read the logs after
    assert not left, f"left behind after teardown: {left}"
