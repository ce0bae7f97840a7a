"""Enrichment steps, table-driven (pure: no services)."""

from __future__ import annotations

import uuid

import pytest

from streams.enrich import enrich_batch, enrich_one
from streams.enrich.content_group import step as group_step
from streams.enrich.referrer import classify
from streams.enrich.screen import bucket
from streams.enrich.useragent import classify as ua
from streams.enrich.website import WebsiteInfo
from streams.models import Drop, Enriched
from tinytrail.event import RawEvent

SITE = str(uuid.uuid4())
INFO = WebsiteInfo.from_row(SITE, "www.Shop.example", [
    {"name": "Blog", "pattern": "/blog/*"}, {"name": "Any", "pattern": "/b?og*"},
])


def ev(**kw: object) -> Enriched:
    base: dict[str, object] = dict(
        event_id=str(uuid.uuid4()), received_at_ms=1_700_000_000_000, website_id=SITE,
        visitor_id="a" * 64, event_type="page_view", url="https://shop.example/", path="/",
    )
    base.update(kw)
    return Enriched.from_raw(RawEvent(**base), 0, 0)  # type: ignore[arg-type]


@pytest.mark.parametrize(("ref", "utm", "want"), [
    pytest.param(None, None, ("Direct", None), id="none"),
    pytest.param("", None, ("Direct", None), id="empty"),
    pytest.param("https://www.google.com/search?q=a", None, ("Organic Search", "google.com"),
                 id="google"),
    pytest.param("https://www.google.co.uk/", "cpc", ("Paid Search", "google.co.uk"), id="paid"),
    pytest.param("https://bing.com/", "Paid-Social", ("Paid Search", "bing.com"), id="paid-any"),
    pytest.param("https://t.co/x", None, ("Social", "t.co"), id="twitter"),
    pytest.param("https://m.facebook.com/x", "cpc", ("Social", "m.facebook.com"), id="fb-sub"),
    pytest.param("https://mail.google.com/", None, ("Email", "mail.google.com"), id="webmail"),
    pytest.param(None, "email", ("Email", None), id="utm-email"),
    pytest.param("https://blog.other.org/p", None, ("Referral", "blog.other.org"), id="referral"),
    pytest.param("https://www.shop.example/a", None, ("Direct", None), id="own-domain"),
    pytest.param("https://cdn.shop.example/a", None, ("Direct", None), id="own-subdomain"),
    pytest.param("https://www.shop.example/a", "email", ("Email", None), id="own-but-email"),
    pytest.param("not a url", None, ("Direct", None), id="garbage"),
])
def test_referrer_channel(ref: str | None, utm: str | None, want: tuple[str, str | None]) -> None:
    assert classify(ref, utm, INFO.domain) == want


@pytest.mark.parametrize(("width", "want"), [
    pytest.param(None, "unknown", id="missing"), pytest.param(0, "320-375", id="zero"),
    pytest.param(200, "320-375", id="tiny"), pytest.param(375, "320-375", id="375"),
    pytest.param(376, "376-768", id="376"), pytest.param(768, "376-768", id="768"),
    pytest.param(1024, "769-1024", id="1024"), pytest.param(1440, "1025-1440", id="1440"),
    pytest.param(1441, "1441+", id="1441"),
])
def test_screen_bucket(width: int | None, want: str) -> None:
    assert bucket(width) == want


@pytest.mark.parametrize(("agent", "want"), [
    pytest.param("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like"
                 " Gecko) Chrome/126.0.0.0 Safari/537.36", ("Chrome", "Windows", "desktop"),
                 id="chrome-win"),
    pytest.param("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15"
                 " (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
                 ("Mobile Safari", "iOS", "mobile"), id="iphone"),
    pytest.param("Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML,"
                 " like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
                 ("Mobile Safari", "iOS", "tablet"), id="ipad"),
    pytest.param("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML,"
                 " like Gecko) Version/17.5 Safari/605.1.15", ("Safari", "macOS", "desktop"),
                 id="mac"),
    pytest.param("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
                 ("Googlebot", "Other", "bot"), id="googlebot"),
    pytest.param("", ("Other", "Other", "other"), id="empty"),
])
def test_user_agent(agent: str, want: tuple[str, str, str]) -> None:
    assert ua(agent) == want


@pytest.mark.parametrize(("url", "body", "want"), [
    pytest.param("https://s.example/?utm_source=a&utm_medium=b&utm_campaign=c", {},
                 ("a", "b", "c"), id="url"),
    pytest.param("https://s.example/?utm_source=a", {"utm_source": "body"},
                 ("body", None, None), id="body-wins"),
    pytest.param("https://s.example/?utm_source=a", {"utm_source": "  "}, ("a", None, None),
                 id="blank-body-ignored"),
    pytest.param("https://s.example/", {}, (None, None, None), id="none"),
])
def test_utm(url: str, body: dict[str, str], want: tuple[object, ...]) -> None:
    out = enrich_one(ev(url=url, **body), __import__("streams.enrich").enrich.EnrichContext(INFO))
    assert not isinstance(out, Drop)
    assert (out.utm_source, out.utm_medium, out.utm_campaign) == want


@pytest.mark.parametrize(("path", "want"), [
    pytest.param("/blog/x", "Blog", id="first-wins"), pytest.param("/bxog", "Any", id="qmark"),
    pytest.param("/pricing", None, id="none"), pytest.param("/blog", "Any", id="no-slash"),
])
def test_content_group(path: str, want: str | None) -> None:
    from streams.enrich import EnrichContext

    assert group_step(ev(path=path), EnrichContext(INFO)).content_group == want


def test_unknown_website_is_dropped_and_bots_flagged() -> None:
    bot = ev(user_agent="curl/8.0")
    gone = ev(website_id=str(uuid.uuid4()))
    kept, dropped = enrich_batch([bot, gone], lambda w: INFO if w == SITE else None)
    assert [e.event_id for e in kept] == [bot.event_id]
    assert kept[0].is_bot and kept[0].device_type == "bot"
    assert [(e.event_id, d.reason) for e, d in dropped] == [(gone.event_id, "unknown_website")]
