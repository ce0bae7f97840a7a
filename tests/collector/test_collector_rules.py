"""Pure rules: client IP extraction, bots, excluded IPs, identities, log redaction."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from collector.clientip import client_ip
from collector.identity import ratelimit_identity, visitor_id
from collector.logfilter import RedactIPFilter, redact
from collector.settings import CollectorSettings
from collector.websites import CollectorWebsites, Website, parse_excluded
from tinytrail.bots import bot_reason, is_bot
from tinytrail.settings import parse_cidrs

TRUST = parse_cidrs("10.0.0.0/8, 127.0.0.1, ::1")


@pytest.mark.parametrize(
    "peer,xff,trusted,expected",
    [
        pytest.param("203.0.113.9", None, TRUST, "203.0.113.9", id="direct"),
        pytest.param("203.0.113.9", "1.2.3.4", TRUST, "203.0.113.9",
                     id="untrusted-peer-xff-ignored"),
        pytest.param("10.0.0.2", "198.51.100.7", TRUST, "198.51.100.7", id="trusted-peer"),
        pytest.param("10.0.0.2", "1.1.1.1, 198.51.100.7, 10.0.0.5", TRUST, "198.51.100.7",
                     id="skips-trusted-hops-not-spoofed-left"),
        pytest.param("10.0.0.2", "10.0.0.9, 10.0.0.5", TRUST, "10.0.0.9", id="all-trusted"),
        pytest.param("10.0.0.2", "garbage, 198.51.100.7", TRUST, "198.51.100.7",
                     id="garbage-left-of-client"),
        pytest.param("10.0.0.2", "198.51.100.7, garbage", TRUST, "10.0.0.2", id="garbage-right"),
        pytest.param("10.0.0.2", "198.51.100.7", (), "10.0.0.2", id="no-trusted-proxies"),
        pytest.param("::1", "2001:db8::7", TRUST, "2001:db8::7", id="ipv6"),
        pytest.param("10.0.0.2", "[2001:db8::7]:443", TRUST, "2001:db8::7", id="ipv6-bracket-port"),
        pytest.param("10.0.0.2", "198.51.100.7:5555", TRUST, "198.51.100.7", id="ipv4-port"),
        pytest.param("::ffff:10.0.0.2", "198.51.100.7", TRUST, "198.51.100.7", id="v4-mapped-peer"),
        pytest.param("10.0.0.2", "", TRUST, "10.0.0.2", id="empty-xff"),
    ],
)
def test_client_ip(peer: str, xff: str | None, trusted: tuple, expected: str) -> None:
    assert client_ip(peer, xff, trusted) == expected


CHROME = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/120.0.0.0 Safari/537.36")


@pytest.mark.parametrize(
    "ua,reason",
    [
        pytest.param(CHROME, None, id="chrome"),
        pytest.param("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
                     "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1", None,
                     id="safari-ios"),
        pytest.param("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 "
                     "Firefox/121.0", None, id="firefox"),
        pytest.param("", "empty", id="empty"),
        pytest.param("   ", "empty", id="blank"),
        pytest.param("hello", "implausible", id="too-short"),
        pytest.param("just some words without a product", "implausible", id="no-product-token"),
        pytest.param("Mozilla/5.0 " + "x" * 1200, "implausible", id="too-long"),
        pytest.param(CHROME.replace("Chrome/", "HeadlessChrome/"), "headless",
                     id="headless-chrome"),
        pytest.param(CHROME + " Puppeteer/1.0", "headless", id="puppeteer"),
        pytest.param("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
                     "crawler", id="googlebot"),
        pytest.param("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
                     "crawler", id="bingbot"),
        pytest.param("python-requests/2.31.0", "crawler", id="python-requests"),
        pytest.param("Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
                     "crawler", id="ahrefs"),
    ],
)
def test_bot_rules(ua: str, reason: str | None) -> None:
    assert bot_reason(ua) == reason
    assert is_bot(ua) is (reason is not None)


def test_bot_none_user_agent() -> None:
    assert is_bot(None)


@pytest.mark.parametrize(
    "excluded,ip,expected",
    [
        pytest.param(["203.0.113.7"], "203.0.113.7", True, id="exact"),
        pytest.param(["203.0.113.7"], "203.0.113.8", False, id="other"),
        pytest.param(["10.0.0.0/8"], "10.200.1.1", True, id="cidr"),
        pytest.param(["10.0.0.0/8"], "11.0.0.1", False, id="outside-cidr"),
        pytest.param(["2001:db8::/32"], "2001:db8::42", True, id="ipv6-cidr"),
        pytest.param(["2001:db8::/32"], "10.0.0.1", False, id="family-mismatch"),
        pytest.param(["bogus", "192.0.2.1"], "192.0.2.1", True, id="bad-entry-skipped"),
        pytest.param([], "192.0.2.1", False, id="none"),
        pytest.param("not-a-list", "192.0.2.1", False, id="not-a-list"),
    ],
)
def test_excluded_ips(excluded: object, ip: str, expected: bool) -> None:
    site = Website("w", "example.com", parse_excluded(excluded))
    assert site.is_excluded(ip) is expected


class Rows:
    """A stand-in pool whose every query returns `rows` (the cache's SQL is tested on the
    real Postgres in tests/foundation/test_websites.py)."""

    def __init__(self, *rows: dict[str, Any]) -> None:
        self.rows = list(rows)

    @contextlib.asynccontextmanager
    async def connection(self, timeout: float | None = None) -> AsyncIterator[Rows]:
        yield self

    async def execute(self, query: Any, params: tuple[Any, ...]) -> Rows:
        return self

    async def fetchall(self) -> list[dict[str, Any]]:
        return self.rows


async def test_a_refresh_builds_the_cache_from_rows() -> None:
    pool = Rows({"id": "a", "domain": "a.com", "excluded_ips": ["1.2.3.4", "bad"]},
                {"id": "b", "domain": "b.com", "excluded_ips": None})
    cache = CollectorWebsites(pool, refresh_seconds=2.0)  # type: ignore[arg-type]
    await cache.refresh()
    a, b = cache.get("a"), cache.get("b")
    assert len(cache) == 2 and a is not None and b is not None
    assert (a.domain, b.domain) == ("a.com", "b.com")
    assert a.is_excluded("1.2.3.4") and not a.is_excluded("1.2.3.5")
    assert b.excluded == ()


def test_identities_are_keyed_hashes() -> None:
    salt = b"s" * 32
    vid = visitor_id(salt, "203.0.113.9", CHROME, "w")
    assert len(vid) == 64 and "203.0.113.9" not in vid
    assert vid != visitor_id(b"t" * 32, "203.0.113.9", CHROME, "w")  # salt matters
    assert vid != visitor_id(salt, "203.0.113.9", CHROME, "x")  # website matters
    assert vid == visitor_id(salt, "203.0.113.9", CHROME, "w")  # stable within a day
    rl = ratelimit_identity(salt, "203.0.113.9")
    assert rl != ratelimit_identity(salt, "203.0.113.10")
    assert len(rl) == 32


@pytest.mark.parametrize(
    "text,expected",
    [
        pytest.param("Malformed HTTP message from 203.0.113.9: bad", "Malformed HTTP message from "
                     "<ip>: bad", id="ipv4-colon"),
        pytest.param("peer ('127.0.0.1', 5000)", "peer ('<ip>', 5000)", id="tuple"),
        pytest.param("from 2001:db8::7.", "from <ip>.", id="ipv6"),
        pytest.param("at 10:30:00 v1.2.3", "at 10:30:00 v1.2.3", id="times-and-versions-stay"),
    ],
)
def test_redact(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_redact_filter_rewrites_record() -> None:
    record = logging.LogRecord("tornado.general", logging.INFO, "f", 1,
                               "bad request from %s", ("198.51.100.7",), None)
    RedactIPFilter().filter(record)
    assert "198.51.100.7" not in record.getMessage()


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"trusted_proxies": "10.0.0.0/33"}, id="bad-cidr"),
        pytest.param({"website_refresh_interval": 6}, id="refresh-too-slow"),
        pytest.param({"website_negative_ttl": 6}, id="negative-ttl-too-long"),
        pytest.param({"collect_rate_limit": 0}, id="zero-limit"),
    ],
)
def test_settings_are_validated(overrides: dict) -> None:
    with pytest.raises(ValueError):
        CollectorSettings(**overrides)


def test_settings_defaults() -> None:
    s = CollectorSettings()
    assert (s.collector_port, s.collect_rate_limit, s.collect_rate_window, s.max_body_bytes) == (
        8001, 10, 10, 32768)
    assert s.website_refresh_interval <= 5
