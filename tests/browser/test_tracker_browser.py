"""Headless Chromium loads a local page with the real tracker, served by the real collector,
and every kind of event the tracker sends arrives in Kafka."""

from __future__ import annotations

import asyncio
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
import tornado.httpserver
import tornado.netutil
import tornado.web

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "collector"))
from collector_testlib import create_website, read_topic  # noqa: E402

from collector.app import RunningCollector  # noqa: E402
from collector.settings import CollectorSettings  # noqa: E402
from tinytrail.settings import CoreSettings  # noqa: E402
from tinytrail.topics import raw_events_topic  # noqa: E402

HERE = Path(__file__).resolve().parent
EXPECTED = {"page_view", "scroll_25", "scroll_50", "scroll_75", "custom", "outbound_link",
            "close_tab"}

PAGE = """<!doctype html><html><head><title>tracker test</title>
<script defer data-id="{site}" data-allow-localhost data-respect-dnt="false"
 src="http://127.0.0.1:{cport}/js/tracker.js"></script></head>
<body style="margin:0"><a id="outbound" href="https://example.org/away">away</a>
<div style="height:5000px">tall</div>
<script>document.getElementById('outbound').addEventListener('click',
 function (e) {{ e.preventDefault(); }});</script></body></html>"""


class PageHandler(tornado.web.RequestHandler):
    def initialize(self, html: str) -> None:
        self.html = html

    def get(self, _path: str) -> None:
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(self.html)


@pytest.fixture
async def collector(core_settings: CoreSettings) -> AsyncIterator[RunningCollector]:
    values = core_settings.model_dump()
    values.update(collector_host="127.0.0.1", collector_port=0, collect_rate_limit=1000,
                  kafka_linger_ms=1)
    col = await RunningCollector.start(CollectorSettings(**values))
    yield col
    await col.stop()


@pytest.mark.browser
@pytest.mark.kafka
@pytest.mark.redis
@pytest.mark.postgres
async def test_tracker_events_arrive_in_kafka(
    collector: RunningCollector, core_settings: CoreSettings, pg_dsn: str,
) -> None:
    assert shutil.which("node"), "node is needed for the browser test"
    assert (HERE / "node_modules" / "playwright-core").is_dir(), "run infra/bootstrap.sh"
    site = create_website(pg_dsn, "browser")
    await collector.deps.websites.refresh()

    html = PAGE.format(site=site, cport=collector.port)
    server = tornado.httpserver.HTTPServer(
        tornado.web.Application([(r"/(.*)", PageHandler, {"html": html})]))
    sockets = tornado.netutil.bind_sockets(0, address="127.0.0.1")
    server.add_sockets(sockets)
    page_url = f"http://127.0.0.1:{sockets[0].getsockname()[1]}/shop/index.html?utm_source=news"
    try:
        proc = await asyncio.create_subprocess_exec(
            "node", str(HERE / "drive.js"), page_url, cwd=str(HERE),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), 120)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        log = out.decode(errors="replace")
        assert proc.returncode == 0, log
        assert "step: closed" in log, log
    finally:
        server.stop()
        await server.close_all_connections()

    def mine(v: dict) -> bool:
        return v["website_id"] == site

    msgs = await read_topic(core_settings.kafka_bootstrap, raw_events_topic(core_settings),
                            mine, want=len(EXPECTED) + 1, timeout=20)
    events = [orjson.loads(v) for _, v in msgs]
    types = {e["event_type"] for e in events}
    assert types >= EXPECTED, (types, log)
    views = [e for e in events if e["event_type"] == "page_view"]
    assert {v["path"] for v in views} == {"/shop/index.html", "/spa/next"}
    first = next(v for v in views if v["path"] == "/shop/index.html")
    assert first["utm_source"] == "news" and first["screen_width"] > 0
    scrolls = [e["event_type"] for e in events if e["event_type"].startswith("scroll_")]
    assert sorted(scrolls) == ["scroll_25", "scroll_50", "scroll_75"]  # once per page view
    custom = next(e for e in events if e["event_type"] == "custom")
    assert custom["name"] == "signup" and custom["properties"]["plan"] == "pro"
    outbound = next(e for e in events if e["event_type"] == "outbound_link")
    assert outbound["properties"]["href"] == "https://example.org/away"
    # One visitor throughout; headless Chromium is recognised as a bot (published, flagged).
    assert len({e["visitor_id"] for e in events}) == 1
    assert all(e["is_bot"] for e in events)
