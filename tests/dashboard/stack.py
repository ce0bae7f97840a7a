"""The real TinyTrail stack for the dashboard tests, with generated traffic.

Three API processes on one database (`tinytrail api`, as in production): the one
the browser uses with the real per-key limit (60 per 60 s), a reference one the
tests ask for "the API's answer" with a high limit (so the tests' own questions do
not spend the browser's budget), and a tight one (5 per 8 s) for the 429 tests.
The rate-limit counters live in Redis per user, so each browser session gets a
user of its own. A real collector and a real worker process; fourteen past days
(produced to the raw topic as the collector would, with chosen times) and today's
visits through the collector over HTTP, including a custom event named
`<img src=x onerror=alert(1)>` and a page whose path holds `"><script>`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import random
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import psycopg
import requests

from api.bootstrap import create_admin
from api.settings import ApiSettings
from tests.api.apisupport import SECRET
from tests.reports import traffic as T
from tests.reports.e2e_services import Http
from tests.streams.workerproc import applied_messages, produce, start_worker, stop, wait_group
from tests.system_harness import free_port, wait_for
from tinytrail.settings import CoreSettings
from tinytrail.topics import ensure_topics, raw_events_topic

ROOT = Path(__file__).resolve().parents[2]
XSS_EVENT = "<img src=x onerror=alert(1)>"
XSS_PATH = '/q/"><script>alert(2)</script>'
XSS_UTM = "<b onmouseover=alert(3)>x</b>"
HISTORY_DAYS = 14
# The tight API's limit: 5 requests per 8 s per key. The 429 test waits out whole
# windows (the page's panels need two or three), so the window is short.
TIGHT_LIMIT, TIGHT_WINDOW = 5, 8
# Today's visitors from public addresses (the bundled DB-IP file lists them in these
# countries; the first three as in tests/reports/test_locations_e2e.py), through the
# collector's trusted proxy: 12 countries, so the locations table has a second page.
COUNTRY_VISITORS = [
    ("193.99.144.80", "DE"), ("193.99.144.81", "DE"), ("193.99.144.82", "DE"),
    ("193.99.144.83", "DE"), ("81.2.69.160", "GB"), ("81.2.69.161", "GB"),
    ("81.2.69.162", "GB"), ("202.12.27.33", "JP"), ("202.12.27.34", "JP"),
    ("2.10.0.1", "FR"), ("5.200.0.1", "NL"), ("8.10.0.1", "US"), ("24.150.0.1", "CA"),
    ("37.100.0.1", "IT"), ("78.10.0.1", "PL"), ("95.200.0.1", "SE"), ("177.10.0.1", "BR"),
    ("1.150.0.1", "AU"),
]


@dataclass
class Stack:
    settings: CoreSettings
    api: str  # the browser's API (real limits)
    ref: str  # reference API (high limit) for the tests' own questions
    tight: str  # TIGHT_LIMIT requests per TIGHT_WINDOW s
    collector: str
    admin_key: str
    sites: list[dict[str, Any]]
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    logs: Path = Path()

    def get(self, path: str, params: Any = None, key: str | None = None) -> Any:
        r = requests.get(self.ref + path, params=params, timeout=30,
                         headers={"X-API-KEY": key or self.admin_key})
        assert r.status_code == 200, (path, params, r.status_code, r.text[:300])
        return r.json()["data"]

    def get_raw(self, path: str, params: Any = None) -> requests.Response:
        return requests.get(self.ref + path, params=params, timeout=30,
                            headers={"X-API-KEY": self.admin_key})

    def call(self, method: str, path: str, body: Any, key: str | None = None,
             base: str | None = None) -> requests.Response:
        return requests.request(method, (base or self.ref) + path, json=body, timeout=30,
                                headers={"X-API-KEY": key or self.admin_key})

    def new_key(self, role: str = "admin", account_id: str | None = None) -> str:
        """A user of its own (so its own rate-limit counter) in the admin's account."""
        account = account_id or self.sites[0]["accountId"]
        email = f"{role}-{uuid.uuid4().hex[:6]}@t.example"
        r = self.call("POST", "/api/v1/users",
                      {"account_id": account, "role": role, "email": email})
        assert r.status_code == 201, r.text
        return str(r.json()["data"]["apiKey"])

    def log_tail(self) -> str:
        out = []
        for f in sorted(self.logs.glob("*.log")):
            out.append(f"--- {f.name} ---\n" + "\n".join(
                f.read_text(errors="replace").splitlines()[-15:]))
        return "\n".join(out)


def _env(settings: CoreSettings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TINYTRAIL_")}
    env.update({
        "PYTHONPATH": str(ROOT),
        "TINYTRAIL_DATABASE_URL": settings.database_url,
        "TINYTRAIL_REDIS_URL": settings.redis_url,
        "TINYTRAIL_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "TINYTRAIL_TOPIC_PREFIX": settings.topic_prefix,
        "TINYTRAIL_EVENTS_PARTITIONS": str(settings.events_partitions),
        "TINYTRAIL_SECRET_KEY": SECRET,
        "TINYTRAIL_LOG_FORMAT": "text",
        "TINYTRAIL_LOG_LEVEL": "WARNING",
        # No /metrics listeners: several processes here, and none is scraped.
        "TINYTRAIL_API_METRICS_PORT": "0",
        "TINYTRAIL_COLLECTOR_METRICS_PORT": "0",
    })
    env.update(extra)
    return env


def _spawn(name: str, argv: list[str], env: dict[str, str], logs: Path) -> subprocess.Popen[bytes]:
    with open(logs / f"{name}.log", "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "cli", *argv], env=env,
                                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)


def _health(base: str) -> bool:
    return requests.get(base + "/health", timeout=2).status_code == 200


def country_visit(site: T.Site, n: int) -> list[dict[str, Any]]:
    """A plain visit: "/", then /pricing for every other visitor."""
    paths = ["/", "/pricing"] if n % 2 == 0 else ["/"]
    return [{"website_id": site.id, "event_type": "page_view",
             "url": f"https://www.{site.domain}{p}", "path": p, "screen_width": 1440}
            for p in paths]


def hostile_visit(site: T.Site, ip: str) -> list[dict[str, Any]]:
    """A visit whose path, UTM values and custom event name are markup."""
    url = f"https://www.{site.domain}/q/%22%3E%3Cscript%3Ealert(2)%3C/script%3E"
    return [
        {"website_id": site.id, "event_type": "page_view", "url": url, "path": XSS_PATH,
         "referrer": "https://evil.example/%3Cscript%3E", "utm_source": XSS_UTM,
         "utm_medium": "email", "utm_campaign": XSS_UTM, "screen_width": 1440},
        {"website_id": site.id, "event_type": "custom", "url": url, "path": XSS_PATH,
         "properties": {"name": XSS_EVENT}},
        {"website_id": site.id, "event_type": "page_view", "url": url.replace("/q/", "/"),
         "path": "/pricing"},
    ]


async def _traffic(stack: Stack, sites: list[T.Site], today: dt.date, start: dt.datetime,
                   collector: str) -> int:
    """History to Kafka, today's visits through the collector; returns messages sent."""
    rnd = random.Random(20261130)
    days = [today - dt.timedelta(days=i) for i in range(HISTORY_DAYS, 0, -1)]
    until = min(int(dt.datetime.combine(today, dt.time(), dt.UTC).timestamp() * 1000),
                int(start.timestamp() * 1000) - 45 * 60_000)
    hist = T.history(rnd, sites, days, until, visitors_per_day=10)
    raw = [T.raw_of(h, str(uuid.UUID(int=rnd.getrandbits(128), version=4))) for h in hist]
    await produce(stack.settings.kafka_bootstrap, raw_events_topic(stack.settings), raw)

    plan = T.today_plan(rnd, sites, visitors=12)
    http = Http()
    sent = 0
    try:
        async def visit(seq: list[T.Planned]) -> int:
            n = 0
            for p in seq:
                resp = await http.collect(collector, p.hit.body, p.hit.ip, p.hit.user_agent)
                assert resp.code == p.status, (resp.code, p.status, resp.body)
                n += resp.code == 202 or (resp.code == 204 and p.stored)
            return n

        sent += sum(await asyncio.gather(*(visit(seq) for seq in plan)))
        for body in hostile_visit(sites[0], "192.0.2.250"):
            resp = await http.collect(collector, body, "192.0.2.250", T.AGENTS["chrome_win"].ua)
            assert resp.code == 202, resp.body
            sent += 1
        for n, (ip, _country) in enumerate(COUNTRY_VISITORS):
            for body in country_visit(sites[0], n):
                resp = await http.collect(collector, body, ip, T.AGENTS["chrome_win"].ua)
                assert resp.code == 202, resp.body
                sent += 1
    finally:
        http.close()
    return len(raw) + sent


def _wait_worker(settings: CoreSettings) -> None:
    """The worker's group settled (the coordinator may need a moment on a fresh broker)."""
    from aiokafka.errors import KafkaError

    deadline = time.monotonic() + 90
    while True:
        try:
            asyncio.run(wait_group(settings.kafka_bootstrap, f"{settings.topic_prefix}-worker",
                                   1, timeout=90))
            return
        except KafkaError:
            assert time.monotonic() < deadline, "the worker's consumer group never settled"
            time.sleep(1)


def start_stack(settings: CoreSettings, logs: Path) -> Stack:
    asyncio.run(ensure_topics(settings))
    start = dt.datetime.now(dt.UTC)
    today = start.date()
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute("SELECT tinytrail_ensure_event_partitions(%s, %s)",
                     (today - dt.timedelta(days=HISTORY_DAYS + 2), HISTORY_DAYS + 5))
    cfg = ApiSettings(**settings.model_dump(), secret_key=SECRET)
    admin = asyncio.run(create_admin(cfg, "dashboard tests", "admin@t.example"))
    ports = {n: free_port() for n in ("api", "ref", "tight", "collector")}
    base = {n: f"http://127.0.0.1:{p}" for n, p in ports.items()}
    stack = Stack(settings, base["api"], base["ref"], base["tight"], base["collector"],
                  admin["api_key"], [], logs=logs)
    try:
        for name, extra in (("api", {}),
                            ("ref", {"TINYTRAIL_API_RATE_LIMIT": "1000000"}),
                            ("tight", {"TINYTRAIL_API_RATE_LIMIT": str(TIGHT_LIMIT),
                                       "TINYTRAIL_API_RATE_WINDOW": str(TIGHT_WINDOW)})):
            stack.procs.append(_spawn(name, ["api", "--port", str(ports[name])], _env(
                settings, TINYTRAIL_API_HOST="127.0.0.1", **extra), logs))
        stack.procs.append(_spawn("collector", ["collector", "--port", str(ports["collector"])],
                                  _env(settings, TINYTRAIL_COLLECTOR_HOST="127.0.0.1",
                                       TINYTRAIL_TRUSTED_PROXIES="127.0.0.1",
                                       TINYTRAIL_COLLECT_RATE_LIMIT="1000000",
                                       TINYTRAIL_WEBSITE_REFRESH_INTERVAL="1"), logs))
        for name in ("api", "ref", "tight", "collector"):
            wait_for(lambda name=name: _health(base[name]), 60, f"{name} to answer /health")
        worker = start_worker(settings, str(logs), "worker")
        stack.procs.append(worker)
        _wait_worker(settings)

        made = []
        for i, site_cfg in enumerate(T.SITE_CONFIGS[:2]):
            r = stack.call("POST", "/api/v1/websites", {
                "domain": f"shop{i}-{uuid.uuid4().hex[:6]}.example", **site_cfg})
            assert r.status_code == 201, r.text
            made.append(r.json()["data"])
        stack.sites = made
        sites = [T.Site(w["id"], w["domain"], tuple((g["name"], g["pattern"])
                                                    for g in w["contentGroups"]),
                        tuple(w["excludedIps"])) for w in made]
        time.sleep(1.5)  # the collector's website refresh (1 s) must see the new sites
        total = asyncio.run(_traffic(stack, sites, today, start, base["collector"]))
        wait_for(lambda: applied_messages(settings) >= total, 120,
                 f"the worker to apply {total} messages")
        # Realtime is mirrored to Redis just after the commit.
        wait_for(lambda: stack.get("/api/v1/reports/realtime",
                                   {"website_id": made[0]["id"]})["active_visitors"] > 0, 10,
                 "realtime to show today's visitors")
    except BaseException:
        print(stack.log_tail())
        stop_stack(stack)
        raise
    return stack


def stop_stack(stack: Stack) -> None:
    for p in stack.procs:
        if p.args[-1:] == ["worker"] or "streams.app" in " ".join(map(str, p.args)):
            stop(p)
        elif p.poll() is None:
            p.terminate()
    for p in stack.procs:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=10)


def dumps(v: Any) -> str:
    return orjson.dumps(v).decode()
