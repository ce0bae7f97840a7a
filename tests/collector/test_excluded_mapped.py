"""Issue 13 item 15: `excluded_ips` in IPv4-mapped IPv6 form match IPv4 clients, in the
pure matcher and through the real collector (a row saved before the API normalised it)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
import pytest
from collector_testlib import create_website, event_body, post, read_topic
from tornado.httpclient import AsyncHTTPClient

from collector.app import RunningCollector
from collector.settings import CollectorSettings
from collector.websites import Website, parse_excluded
from tinytrail.settings import CoreSettings
from tinytrail.topics import raw_events_topic


@pytest.mark.parametrize(("excluded", "ip", "expected"), [
    pytest.param(["::ffff:203.0.113.7"], "203.0.113.7", True, id="mapped-entry"),
    pytest.param(["::FFFF:cb00:7107"], "203.0.113.7", True, id="mapped-entry-hex"),
    pytest.param(["::ffff:10.0.0.0/104"], "10.200.1.1", True, id="mapped-range"),
    pytest.param(["::ffff:10.0.0.0/104"], "11.0.0.1", False, id="mapped-range-outside"),
    pytest.param(["10.0.0.0/8"], "::ffff:10.1.2.3", True, id="mapped-client"),
    pytest.param(["::ffff:10.0.0.0/104"], "2001:db8::1", False, id="ipv6-client"),
    pytest.param(["::/0"], "10.0.0.1", False, id="wider-than-mapped-stays-ipv6"),
])
def test_mapped_excluded_ips_match(excluded: list[str], ip: str, expected: bool) -> None:
    site = Website("w", "example.com", parse_excluded(excluded))
    assert site.is_excluded(ip) is expected


@pytest.fixture
async def collector(core_settings: CoreSettings) -> AsyncIterator[RunningCollector]:
    values = core_settings.model_dump()
    values.update(collector_host="127.0.0.1", collector_port=0, trusted_proxies="127.0.0.1/32",
                  kafka_linger_ms=1)
    col = await RunningCollector.start(CollectorSettings(**values))
    yield col
    await col.stop()


@pytest.mark.kafka
@pytest.mark.redis
@pytest.mark.postgres
async def test_mapped_entry_of_an_old_row_excludes_the_ipv4_client(
    collector: RunningCollector, pg_dsn: str, core_settings: CoreSettings,
) -> None:
    site = create_website(pg_dsn, "mapped", excluded=["::ffff:203.0.113.0/120"])
    await collector.deps.websites.refresh()
    http = AsyncHTTPClient()
    resp = await post(http, f"http://127.0.0.1:{collector.port}",
                      event_body(site, path="/mapped"), ip="203.0.113.77")
    assert resp.code == 204
    msgs = await read_topic(core_settings.kafka_bootstrap, raw_events_topic(core_settings),
                            lambda v: v["website_id"] == site, want=1)
    (event,) = [orjson.loads(v) for _, v in msgs]
    assert event["is_excluded"] is True
