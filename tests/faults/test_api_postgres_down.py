"""Postgres stopped under a running API (`tinytrail api`, a real process): a report
request answers 503 `SERVICE_UNAVAILABLE` with `Retry-After` in the envelope (never
500, never 401 although authentication reads the database, and within a bounded time,
not a hang); when Postgres is back, the same request answers 200 from the same process,
which was never restarted.

A Postgres and a Redis of this test's own (`infra/services.sh` on free ports under a
throwaway folder, as tests/system_harness.py does for the System, without Kafka, which
the API does not use), so stopping Postgres disturbs no other test.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from api.bootstrap import create_admin
from api.settings import ApiSettings
from tests.system_services import OwnServices, Proc, free_port, port_open, wait_for
from tinytrail.migrate import apply_migrations

pytestmark = [pytest.mark.slow]

RETRY_AFTER = 4
CONNECT_TIMEOUT = 2.0  # the pool's wait for a connection: the 503 comes after about this


@dataclass
class Rig:
    services: OwnServices
    api: Proc
    base: str
    key: str
    website_id: str


@pytest.fixture(scope="module")
def rig() -> Iterator[Rig]:
    folder = Path(tempfile.mkdtemp(prefix="tt-pgdown-"))
    os.chmod(folder, 0o755)  # the postgres user must reach its data folder
    services = OwnServices(folder / "services")
    api: Proc | None = None
    try:
        services.start_one("postgres")
        services.start_one("redis")
        apply_migrations(services.database_url)
        secret = secrets.token_urlsafe(40)
        settings = ApiSettings(database_url=services.database_url, redis_url=services.redis_url,
                               secret_key=secret)
        made = asyncio.run(create_admin(settings, "pg-down", "ops@pgdown.test"))
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("TINYTRAIL_")}
        env.update({
            "TINYTRAIL_DATABASE_URL": services.database_url,
            "TINYTRAIL_REDIS_URL": services.redis_url,
            "TINYTRAIL_SECRET_KEY": secret,
            "TINYTRAIL_LOG_FORMAT": "json",
            "TINYTRAIL_API_HOST": "127.0.0.1",
            "TINYTRAIL_API_METRICS_PORT": str(free_port()),
            "TINYTRAIL_DB_CONNECT_TIMEOUT": str(CONNECT_TIMEOUT),
            "TINYTRAIL_API_RETRY_AFTER_SECONDS": str(RETRY_AFTER),
        })
        api = Proc("api", ["api", "--port", str(port)], env, folder / "api.log")
        api.start()
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: requests.get(f"{base}/health", timeout=3).status_code == 200, 60,
                 "the API")
        site = requests.post(f"{base}/api/v1/websites", json={"domain": "pgdown.example"},
                             headers={"X-API-KEY": made["api_key"]}, timeout=10)
        assert site.status_code == 201, site.text
        yield Rig(services, api, base, made["api_key"], site.json()["data"]["id"])
    finally:
        if api is not None:
            api.stop()
        services.stop()
        shutil.rmtree(folder, ignore_errors=True)
        assert not port_open(services.pg_port) and not port_open(services.redis_port)


def _summary(rig: Rig) -> requests.Response:
    return requests.get(f"{rig.base}/api/v1/reports/summary",
                        params={"website_id": rig.website_id, "period": "7d"},
                        headers={"X-API-KEY": rig.key}, timeout=30)


def test_postgres_stopped_then_back_503_then_200_without_restarting_the_api(rig: Rig) -> None:
    assert _summary(rig).status_code == 200
    assert rig.api.popen is not None
    pid = rig.api.popen.pid
    rig.services.stop_one("postgres")
    try:
        began = time.monotonic()
        down = _summary(rig)
        took = time.monotonic() - began
        assert down.status_code == 503, down.text
        assert down.json() == {"status": "error", "error": {
            "code": "SERVICE_UNAVAILABLE", "message": "database unavailable, retry later"}}
        assert down.headers["Retry-After"] == str(RETRY_AFTER)
        assert took < CONNECT_TIMEOUT + 8, took  # the pool's timeout, not a hang
        # Other routes alike; health says degraded in its own (non-envelope) format.
        sites = requests.get(f"{rig.base}/api/v1/websites", headers={"X-API-KEY": rig.key},
                             timeout=30)
        assert sites.status_code == 503 and sites.headers["Retry-After"] == str(RETRY_AFTER)
        assert requests.get(f"{rig.base}/health", timeout=10).status_code == 503
    finally:
        rig.services.start_one("postgres")
    # Back: the same request is served by the same process once the pool reconnects.
    back = wait_for(lambda: (r := _summary(rig)).status_code == 200 and r, 60,
                    "the summary to answer 200 again", step=0.5)
    assert back.json()["status"] == "success"
    assert rig.api.alive and rig.api.popen.pid == pid
    log = rig.api.log.read_text()
    assert "database unavailable (PoolTimeout) in GET /api/v1/reports/summary" in log
    assert "Traceback" not in log and rig.website_id not in log and rig.key not in log
