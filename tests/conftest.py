"""Session-scoped real services for the test suite.

Where the servers come from, in order:
  1. `TINYTRAIL_TEST_DATABASE_URL`, `TINYTRAIL_TEST_REDIS_URL`,
     `TINYTRAIL_TEST_KAFKA_BOOTSTRAP` (set by `infra/test.sh`, which starts them
     with `infra/services.sh`);
  2. testcontainers, when a Docker engine answers;
  3. otherwise the test fails and says how to start them.

Tiers: a test that needs Postgres, Redis or Kafka says so with the marker of the
same name; the fixtures refuse to serve an unmarked test. Every session gets a
fresh database, its own Redis database number and its own Kafka topic prefix,
so that concurrent runs on one machine do not see each other's data.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from tinytrail.migrate import apply_migrations
from tinytrail.settings import CoreSettings

HOW_TO = (
    "start the local services with `infra/services.sh install && infra/services.sh start` "
    "and export the variables printed by `infra/services.sh env` as TINYTRAIL_TEST_* "
    "(or run the whole suite with `make test`)"
)
_containers: list[Any] = []


def _docker_answers() -> bool:
    try:
        import docker  # type: ignore[import-untyped]

        docker.from_env(timeout=2).ping()
        return True
    except Exception:
        return False


def _require_marker(request: pytest.FixtureRequest, marker: str) -> None:
    if request.node.get_closest_marker(marker) is None:
        pytest.fail(
            f"{request.node.nodeid} uses a real {marker} server but is not marked "
            f"@pytest.mark.{marker}",
            pytrace=False,
        )


# --- Postgres -----------------------------------------------------------------


@pytest.fixture(scope="session")
def _pg_server() -> Iterator[str]:
    url = os.environ.get("TINYTRAIL_TEST_DATABASE_URL")
    if not url and _docker_answers():
        from testcontainers.postgres import PostgresContainer

        c = PostgresContainer("postgres:16-alpine", driver=None)
        c.start()
        _containers.append(c)
        url = c.get_connection_url()
    if not url:
        pytest.fail(f"no PostgreSQL server for the tests: {HOW_TO}", pytrace=False)
    yield url


@pytest.fixture(scope="session")
def _pg_database(_pg_server: str) -> Iterator[str]:
    """A fresh database for this test session, migrated, dropped at the end."""
    name = f"tt_test_{os.getpid()}_{secrets.token_hex(3)}"
    with psycopg.connect(_pg_server, autocommit=True) as conn:
        conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(name)))
    dsn = psycopg.conninfo.make_conninfo(_pg_server, dbname=name)
    dsn_url = _as_url(_pg_server, name)
    apply_migrations(dsn)
    yield dsn_url
    with psycopg.connect(_pg_server, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )
        conn.execute(
            psycopg.sql.SQL("DROP DATABASE IF EXISTS {}").format(psycopg.sql.Identifier(name))
        )


def _as_url(server_url: str, dbname: str) -> str:
    base, _, _ = server_url.rpartition("/")
    return f"{base}/{dbname}"


@pytest.fixture
def pg_dsn(request: pytest.FixtureRequest, _pg_database: str) -> str:
    """DSN of this session's migrated database (test must be marked `postgres`)."""
    _require_marker(request, "postgres")
    return _pg_database


@pytest.fixture
def pg_server_dsn(request: pytest.FixtureRequest, _pg_server: str) -> str:
    """DSN of the server's maintenance database, for tests that make their own DBs."""
    _require_marker(request, "postgres")
    return _pg_server


# --- Redis --------------------------------------------------------------------


@pytest.fixture(scope="session")
def _redis_server() -> Iterator[str]:
    url = os.environ.get("TINYTRAIL_TEST_REDIS_URL")
    if not url and _docker_answers():
        from testcontainers.redis import RedisContainer

        c = RedisContainer("redis:7-alpine")
        c.start()
        _containers.append(c)
        url = f"redis://{c.get_container_host_ip()}:{c.get_exposed_port(6379)}/0"
    if not url:
        pytest.fail(f"no Redis server for the tests: {HOW_TO}", pytrace=False)
    # A database number of our own (1..15) so that concurrent sessions do not collide.
    base = url.rsplit("/", 1)[0] if url.count("/") > 2 else url
    yield f"{base}/{1 + secrets.randbelow(15)}"


@pytest.fixture
def redis_url(request: pytest.FixtureRequest, _redis_server: str) -> str:
    _require_marker(request, "redis")
    return _redis_server


# --- Kafka --------------------------------------------------------------------


@pytest.fixture(scope="session")
def _kafka_server() -> Iterator[str]:
    bootstrap = os.environ.get("TINYTRAIL_TEST_KAFKA_BOOTSTRAP")
    if not bootstrap and _docker_answers():
        from testcontainers.kafka import KafkaContainer

        c = KafkaContainer().with_kraft()
        c.start()
        _containers.append(c)
        bootstrap = c.get_bootstrap_server()
    if not bootstrap:
        pytest.fail(f"no Kafka broker for the tests: {HOW_TO}", pytrace=False)
    _wait_for_kafka(bootstrap, timeout=60)
    yield bootstrap


def _wait_for_kafka(bootstrap: str, timeout: float) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    async def probe() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
        try:
            await admin.start()
            await admin.list_topics()
        finally:
            await admin.close()

    deadline = time.monotonic() + timeout
    while True:
        try:
            asyncio.run(probe())
            return
        except Exception as exc:
            if time.monotonic() > deadline:
                pytest.fail(f"Kafka at {bootstrap} did not answer: {exc}; {HOW_TO}", pytrace=False)
            time.sleep(1)


@pytest.fixture(scope="session")
def topic_prefix() -> str:
    """A topic prefix of this test session's own."""
    return f"tt-test-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def kafka_bootstrap(request: pytest.FixtureRequest, _kafka_server: str) -> str:
    _require_marker(request, "kafka")
    return _kafka_server


# --- Settings -----------------------------------------------------------------


@pytest.fixture
def core_settings(request: pytest.FixtureRequest, topic_prefix: str) -> CoreSettings:
    """CoreSettings pointing at whichever real services this test is marked for."""
    values: dict[str, Any] = {"topic_prefix": topic_prefix, "events_partitions": 4,
                              "log_format": "text"}
    if request.node.get_closest_marker("postgres"):
        values["database_url"] = request.getfixturevalue("pg_dsn")
    if request.node.get_closest_marker("redis"):
        values["redis_url"] = request.getfixturevalue("redis_url")
    if request.node.get_closest_marker("kafka"):
        values["kafka_bootstrap"] = request.getfixturevalue("kafka_bootstrap")
    return CoreSettings(**values)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    for c in _containers:
        with contextlib.suppress(Exception):
            c.stop()


# --- Tier guard -----------------------------------------------------------------
# Traffic from tests goes to loopback only, and a test that is not marked for a
# service cannot reach that service's port (snuba blocks unmarked Redis use the same way).

_SERVICE_MARKERS = {"TINYTRAIL_TEST_DATABASE_URL": "postgres", "TINYTRAIL_TEST_REDIS_URL": "redis",
                    "TINYTRAIL_TEST_KAFKA_BOOTSTRAP": "kafka"}


def _service_ports() -> dict[int, str]:
    import re

    ports: dict[int, str] = {}
    for var, marker in _SERVICE_MARKERS.items():
        m = re.search(r":(\d+)(?:/|$)", os.environ.get(var, ""))
        if m:
            ports[int(m.group(1))] = marker
    return ports


@pytest.fixture(autouse=True)
def _network_guard(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    import ipaddress
    import socket

    blocked = {p: m for p, m in _service_ports().items()
               if request.node.get_closest_marker(m) is None}
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def check(address: Any) -> None:
        if not isinstance(address, tuple):
            return  # unix sockets
        host, port = address[0], address[1]
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = host == "localhost"
        if not loopback:
            raise OSError(f"tests may only connect to loopback, not {host}:{port}")
        if port in blocked:
            raise OSError(f"{request.node.nodeid} reached the {blocked[port]} server on port "
                          f"{port} without @pytest.mark.{blocked[port]}")

    def connect(self: socket.socket, address: Any) -> None:
        check(address)
        return real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        check(address)
        return real_connect_ex(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
