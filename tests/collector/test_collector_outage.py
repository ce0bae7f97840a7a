"""Broker outage: 503 with Retry-After while Kafka is down, 202 again when it is back, and
every event that got a 202 is in the topic. Uses a Kafka instance of its own (never the
shared broker), started and stopped with infra/services.sh on free loopback ports."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from collector_testlib import create_website, event_body, post, read_topic
from tornado.httpclient import AsyncHTTPClient

from collector.app import RunningCollector
from collector.settings import CollectorSettings
from tinytrail.settings import CoreSettings
from tinytrail.topics import raw_events_topic

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class OwnKafka:
    def __init__(self, local_dir: Path) -> None:
        self.port, self.cport = free_port(), free_port()
        self.env = dict(os.environ, TINYTRAIL_LOCAL_DIR=str(local_dir),
                        TINYTRAIL_KAFKA_PORT=str(self.port),
                        TINYTRAIL_KAFKA_CONTROLLER_PORT=str(self.cport))

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _run(self, action: str) -> None:
        subprocess.run([str(ROOT / "infra" / "services.sh"), action, "kafka"], env=self.env,
                       check=True, timeout=120, capture_output=True)

    def start(self) -> None:
        self._run("start-one")

    def stop(self) -> None:
        self._run("stop-one")


@pytest.fixture
def own_kafka(tmp_path: Path) -> Iterator[OwnKafka]:
    kafka = OwnKafka(tmp_path / "kafka-local")
    kafka.start()
    try:
        yield kafka
    finally:
        kafka.stop()


@pytest.mark.slow
@pytest.mark.kafka
@pytest.mark.redis
@pytest.mark.postgres
async def test_503_while_broker_down_and_no_accepted_event_lost(
    own_kafka: OwnKafka, core_settings: CoreSettings, pg_dsn: str,
) -> None:
    values = core_settings.model_dump()
    values.update(kafka_bootstrap=own_kafka.bootstrap, collector_host="127.0.0.1",
                  collector_port=0, trusted_proxies="127.0.0.1/32", collect_rate_limit=10_000,
                  kafka_send_timeout=2.0, retry_after_seconds=3, kafka_linger_ms=1,
                  kafka_request_timeout_ms=10_000)
    settings = CollectorSettings(**values)
    site = create_website(pg_dsn, "outage")
    col = await RunningCollector.start(settings)
    http = AsyncHTTPClient(force_instance=True)
    base = f"http://127.0.0.1:{col.port}"
    accepted: list[int] = []
    seq = 0

    async def send() -> int:
        nonlocal seq
        seq += 1
        resp = await post(http, base, event_body(site, event_type="custom",
                                                 properties={"name": "o", "seq": seq}),
                          ip=f"198.51.100.{seq % 250}")
        if resp.code == 202:
            accepted.append(seq)
        elif resp.code == 503:
            assert resp.headers["Retry-After"] == "3"
            assert orjson.loads(resp.body)["error"]["code"] == "SERVICE_UNAVAILABLE"
        return resp.code

    try:
        assert [await send() for _ in range(5)] == [202] * 5

        await asyncio.to_thread(own_kafka.stop)
        down = [await send() for _ in range(3)]
        assert down == [503, 503, 503]
        health = orjson.loads((await http.fetch(f"{base}/health", raise_error=False)).body)
        assert health["kafka"] == "disconnected" and health["db"] == "connected"

        await asyncio.to_thread(own_kafka.start)
        codes = []
        for _ in range(60):  # bounded: the producer reconnects within a few seconds
            codes.append(await send())
            if codes[-1] == 202:
                break
            await asyncio.sleep(0.5)
        assert codes[-1] == 202, codes
        assert [await send() for _ in range(5)] == [202] * 5
    finally:
        http.close()
        await col.stop()

    msgs = await read_topic(own_kafka.bootstrap, raw_events_topic(settings),
                            lambda v: v["website_id"] == site, want=seq, timeout=15)
    seen = {orjson.loads(v)["properties"]["seq"] for _, v in msgs}
    missing = set(accepted) - seen
    assert not missing, f"202'd events missing from Kafka: {sorted(missing)}"
    assert len(accepted) >= 11
