"""Helpers of the browser tests (not a test module): the local page server's handler, the
Chromium driver (`scenario.js`), a website in the collector's cache, and a reader of what
the collector published to Kafka."""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import tornado.web
from aiokafka import AIOKafkaConsumer, TopicPartition

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "collector"))
from collector_testlib import create_website  # noqa: E402

from collector.app import RunningCollector  # noqa: E402
from tinytrail.settings import CoreSettings  # noqa: E402
from tinytrail.topics import raw_events_topic  # noqa: E402

HERE = Path(__file__).resolve().parent
SENTINEL = "__end__"
SCENARIO_TIMEOUT_S = 120.0  # one Chromium run, seconds


class PageHandler(tornado.web.RequestHandler):
    def initialize(self, site: PageServer) -> None:
        self.site = site

    def get(self, _path: str) -> None:
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(self.site.html)


@dataclass
class PageServer:
    """Serves `html` at every path, and `tests/browser/node_modules` under /node_modules/."""

    port: int = 0
    html: str = ""

    def url(self, path: str = "/", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"


def sentinel(collector_port: int, site: str) -> dict[str, Any]:
    """The last event a scenario sends (from the page, so from the same visitor)."""
    return {"collect": f"http://127.0.0.1:{collector_port}/api/v1/collect",
            "body": {"website_id": site, "event_type": "custom", "url": "http://sentinel.test/",
                     "path": "/sentinel", "properties": {"name": SENTINEL}}}


async def run_scenario(spec: dict[str, Any]) -> dict[str, Any]:
    """Run `scenario.js` with `spec`; its result (what the page sent, etc.) plus `log`."""
    assert shutil.which("node"), "node is needed for the browser tests"
    assert (HERE / "node_modules" / "playwright-core").is_dir(), "run infra/bootstrap.sh"
    proc = await asyncio.create_subprocess_exec(
        "node", str(HERE / "scenario.js"), json.dumps(spec), cwd=str(HERE),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), SCENARIO_TIMEOUT_S)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    log = out.decode(errors="replace")
    assert proc.returncode == 0, log
    lines = [ln for ln in log.splitlines() if ln.startswith("result: ")]
    assert lines, log
    result: dict[str, Any] = json.loads(lines[-1].removeprefix("result: "))
    result["log"] = log
    return result


async def published(core_settings: CoreSettings, site: str, timeout: float = 30.0
                    ) -> list[dict[str, Any]]:
    """Every event of `site` the collector published, in partition order, up to the
    scenario's sentinel (not included). One visitor's events share a key and so a
    partition: the sentinel, sent last, comes after all of them."""
    topic = raw_events_topic(core_settings)
    consumer = AIOKafkaConsumer(bootstrap_servers=core_settings.kafka_bootstrap,
                                enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    found: list[dict[str, Any]] = []
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        parts = consumer.partitions_for_topic(topic)
        while not parts and loop.time() < deadline:
            await consumer._client.force_metadata_update()
            parts = consumer.partitions_for_topic(topic)
        consumer.assign([TopicPartition(topic, p) for p in parts or ()])
        await consumer.seek_to_beginning()
        while loop.time() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for tp in sorted(batch, key=lambda t: t.partition):
                for rec in batch[tp]:
                    ev = orjson.loads(rec.value)
                    if ev["website_id"] != site:
                        continue
                    if ev.get("name") == SENTINEL:
                        return found
                    found.append(ev)
    finally:
        await consumer.stop()
    raise AssertionError(f"the sentinel of {site} never arrived; got {found}")


async def new_site(pg_dsn: str, collector: RunningCollector) -> str:
    """A fresh website, already in the collector's cache."""
    site = create_website(pg_dsn, f"browser-{uuid.uuid4().hex[:6]}")
    await collector.deps.websites.refresh()
    return site
