"""Fixtures of the dashboard tests: the real stack and one browser driver, both started
once for the package (tests name their own website or user, and `browser` gives each
test a driver with no page open and an empty log)."""

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


@pytest.fixture(scope="package")
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


@pytest.fixture(scope="package")
def _chromium() -> Iterator[list[Chromium]]:
    """The package's browser driver (node and one Chromium), in a list so that a test
    that left it unusable (a command with no answer) can have it replaced."""
    assert shutil.which("node"), "node is needed for the dashboard tests"
    assert (ROOT / "tests" / "browser" / "node_modules" / "playwright-core").is_dir(), (
        "run infra/bootstrap.sh (installs playwright-core for tests/browser)")
    held = [Chromium.start()]
    try:
        yield held
    finally:
        held[0].close()


@pytest.fixture
async def browser(_chromium: list[Chromium]) -> AsyncIterator[Chromium]:
    """The shared driver with no browser context open and an empty log: each test's
    `open` makes a fresh context (its own storage, cache and clock)."""
    if not _chromium[0].usable:
        _chromium[0].close()
        _chromium[0] = Chromium.start()
    b = _chromium[0]
    await b("reset")
    yield b
    if b.usable:
        await b("reset")  # no page of this test polls on into the next one
