"""Fixtures of the dashboard tests: the real stack (once per module) and a browser."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.dashboard.browser import Chromium
from tests.dashboard.stack import Stack, start_stack, stop_stack
from tinytrail.settings import CoreSettings

ROOT = Path(__file__).resolve().parents[2]
DIST = ROOT / "api" / "dashboard_dist"


@pytest.fixture(scope="module")
def stack(_pg_database: str, _redis_server: str, _kafka_server: str, topic_prefix: str,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    assert (DIST / "index.html").is_file(), (
        "the dashboard is not built: cd dashboard && npm ci && npm run build")
    settings = CoreSettings(database_url=_pg_database, redis_url=_redis_server,
                            kafka_bootstrap=_kafka_server, events_partitions=4,
                            topic_prefix=f"{topic_prefix}-dash{uuid.uuid4().hex[:6]}",
                            log_format="text")
    s = start_stack(settings, tmp_path_factory.mktemp("dashboard-logs"))
    try:
        yield s
    finally:
        stop_stack(s)


@pytest.fixture
async def browser() -> AsyncIterator[Chromium]:
    assert shutil.which("node"), "node is needed for the dashboard tests"
    assert (ROOT / "tests" / "browser" / "node_modules" / "playwright-core").is_dir(), (
        "run infra/bootstrap.sh (installs playwright-core for tests/browser)")
    b = await Chromium.start()
    try:
        yield b
    finally:
        await b.close()
