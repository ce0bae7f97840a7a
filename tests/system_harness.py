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
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import psycopg
import requests

ROOT = Path(__file__).resolve().parents[1]
SERVICES = ROOT / "infra" / "services.sh"
PARTITIONS = 4
SHARED_PORTS = {54329, 63799, 19092, 19093}

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
                if _pid_alive(pid):
                    found.append(f"{proc.name} pid {pid}")
        for name, port in self.services.ports().items():
            if port_open(port):
                found.append(f"{name} port {port}")
        for name, port in (("collector", self.collector_port), ("api", self.api_port)):
            if port_open(port):
                found.append(f"{name} port {port}")
        found.extend(f"pid {pid}: {cmd}" for pid, cmd in _procs_mentioning(str(self.dir)))
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


def today_utc() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def _pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][:1] != "Z"
    except (FileNotFoundError, IndexError, ProcessLookupError):
        return False


def _procs_mentioning(needle: str) -> list[tuple[int, str]]:
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
        if (needle in cmd or needle in env) and _pid_alive(int(d.name)):
            out.append((int(d.name), cmd[:200]))
    return out


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


class Sender:
    """A bounded stream of tagged events to the collector, recording every answer.

    Each event has a path of its own (`/ft/<run>/<n>`), so that the events table can
    be matched against the answers. Concurrency `concurrency`, at most `rate` events per
    second, at most `limit` events; every request has a client timeout, so an answer
    that does not come is recorded as "timeout", not waited for.
    """

    def __init__(self, system: System, run: str, *, rate: float = 40, concurrency: int = 4,
                 limit: int = 5000, timeout: float = 10.0) -> None:
        self.system, self.run = system, run
        self.prefix = f"/ft/{run}/"
        self.rate, self.concurrency, self.limit, self.timeout = rate, concurrency, limit, timeout
        self.results: dict[str, int | str] = {}
        self.sent = 0
        self._stop = False
        self._task: Any = None

    def accepted(self) -> set[str]:
        return {p for p, r in self.results.items() if r == 202}

    def count(self, outcome: int | str) -> int:
        return sum(1 for r in self.results.values() if r == outcome)

    async def _one(self, session: Any, n: int) -> None:
        import aiohttp

        path = f"{self.prefix}{n}"
        kind = ("page_view", "page_view", "custom", "scroll_50", "page_view", "close_tab")[n % 6]
        body = event(self.system.website_id, path, kind)
        headers = {"User-Agent": CHROME if n % 3 else FIREFOX, "Content-Type": "text/plain",
                   "X-Forwarded-For": client_ip(n)}
        try:
            async with session.post(f"{self.system.collector_url}/api/v1/collect",
                                    data=json.dumps(body), headers=headers) as resp:
                await resp.read()
                self.results[path] = resp.status
        except TimeoutError:
            self.results[path] = "timeout"
        except aiohttp.ClientError as exc:
            self.results[path] = f"error: {type(exc).__name__}"

    async def _loop(self) -> None:
        import asyncio

        import aiohttp

        sem = asyncio.Semaphore(self.concurrency)
        pending: set[asyncio.Task[None]] = set()
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            for n in range(self.limit):
                if self._stop:
                    break
                await sem.acquire()
                self.sent += 1
                task = asyncio.create_task(self._one(session, n))
                pending.add(task)
                task.add_done_callback(lambda t: (pending.discard(t), sem.release()))
                await asyncio.sleep(1.0 / self.rate)
            if pending:
                await asyncio.gather(*pending)

    def start(self) -> None:
        import asyncio

        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        self._stop = True
        await self._task

    async def wait_accepted(self, more: int, timeout: float, what: str) -> None:
        """Wait until `more` further events have been answered 202 (bounded)."""
        import asyncio

        target = len(self.accepted()) + more
        deadline = time.monotonic() + timeout
        while len(self.accepted()) < target:
            assert not self._task.done(), "the sender stopped early"
            if time.monotonic() > deadline:
                raise AssertionError(f"only {len(self.accepted())}/{target} accepted: {what}")
            await asyncio.sleep(0.2)

    async def wait_for(self, pred: Callable[[], bool], timeout: float, what: str) -> None:
        import asyncio

        deadline = time.monotonic() + timeout
        while not pred():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            await asyncio.sleep(0.2)


async def topic_end_offsets(system: System, name: str = "events.raw",
                            partitions: int | None = None) -> int:
    """Sum of a topic's end offsets (the raw topic: how many events were produced)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    topic = f"{system.prefix}.{name}"
    consumer = AIOKafkaConsumer(bootstrap_servers=system.services.kafka_bootstrap,
                                enable_auto_commit=False, request_timeout_ms=10000)
    await consumer.start()
    try:
        parts = range(partitions or PARTITIONS)  # as `tinytrail migrate` made the topic
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in parts])
        return int(sum(ends.values()))
    finally:
        await consumer.stop()


async def wait_quiet(system: System, timeout: float = 90) -> int:
    """Wait until the worker has applied every message in the raw topic, twice in a row.

    A 503'd event may still reach Kafka a little later (the producer keeps it until its
    request timeout), so "caught up" is checked on two polls a second apart.
    """
    import asyncio

    deadline = time.monotonic() + timeout
    previous = -1
    while True:
        end = await topic_end_offsets(system)
        applied = await asyncio.to_thread(system.applied_offsets)
        if end == applied == previous:
            return end
        previous = end if end == applied else -1
        w = system.procs["worker"]
        assert w.alive, "the worker exited"
        if time.monotonic() > deadline:
            raise AssertionError(f"worker not caught up: {applied} of {end} messages applied")
        await asyncio.sleep(1.0)


AGG_TABLES = ("agg_site_daily", "agg_dim_daily", "agg_page_country_daily")


def aggregate_rows(system: System) -> dict[str, list[tuple[Any, ...]]]:
    """Every non-zero aggregate row (all columns), sorted; zero rows are what a delta leaves."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    with psycopg.connect(system.services.database_url) as conn:
        for table in AGG_TABLES:
            cur = conn.execute(f"SELECT * FROM {table}")  # noqa: S608 - fixed names
            cols = [c.name for c in cur.description or ()]
            figures = [i for i, c in enumerate(cols) if c not in _AGG_KEYS]
            rows = [r for r in cur if any(r[i] for i in figures)]
            out[table] = sorted(rows, key=repr)
    return out


_AGG_KEYS = {"website_id", "day", "is_bot", "kpart", "dim", "key", "grp", "updated_at",
             "country", "path"}


async def assert_aggregates_equal_rebuild(system: System) -> int:
    """Snapshot the stream's aggregates, rebuild every stored day, compare; returns rows."""
    import asyncio

    from streams.rebuild import rebuild_days
    from tinytrail.db import make_pool, open_pool
    from tinytrail.settings import CoreSettings

    days = [r[0] for r in await asyncio.to_thread(
        system.sql, "SELECT DISTINCT (received_at AT TIME ZONE 'UTC')::date FROM events")]
    stream = await asyncio.to_thread(aggregate_rows, system)
    pool = make_pool(CoreSettings(database_url=system.services.database_url), name="check",
                     max_size=1)
    await open_pool(pool)
    try:
        await rebuild_days(pool, min(days), max(days))
    finally:
        await pool.close()
    rebuilt = await asyncio.to_thread(aggregate_rows, system)
    for table in AGG_TABLES:
        only_stream = set(stream[table]) - set(rebuilt[table])
        only_rebuild = set(rebuilt[table]) - set(stream[table])
        assert not only_stream and not only_rebuild, (
            f"{table}: stream rows not in rebuild {sorted(only_stream, key=repr)[:5]}; "
            f"rebuild rows not in stream {sorted(only_rebuild, key=repr)[:5]}")
    assert stream["agg_site_daily"], "no aggregates at all"
    return sum(len(v) for v in stream.values())
