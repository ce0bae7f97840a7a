"""Enrichment steps, table-driven (pure: no services)."""

from __future__ import annotations

import uuid

import pytest

from streams.enrich import enrich_batch
from streams.enrich.content_group import step as group_step
from streams.enrich.referrer import classify
from streams.enrich.screen import bucket
from streams.enrich.useragent import classify as ua
from streams.enrich.website import WebsiteInfo
from streams.models import Drop, Enriched
from tests.streams.helpers import enrich_one
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


@pytest.mark.parametrize("agent", [
    # The crawler list's `Current[\s\S]*RSS Reader` copies everything in between into the
    # browser family: 1,017 characters, 2,017 bytes before the cap.
    pytest.param("Current" + "\u00e9" * 1000 + "RSS Reader", id="latin1-crawler-name"),
    pytest.param("Current" + "\U0001f600" * 1000 + "RSS Reader", id="4-byte-crawler-name"),
    pytest.param("Mozilla/5.0 (Linux; Android 10; " + "\u00e9" * 900 + " Build/X) "
                 "AppleWebKit/537.36 Chrome/90 Mobile Safari/537.36", id="long-device"),
])
def test_user_agent_families_are_capped(agent: str) -> None:
    """Issue-12 review finding 5: families parsed from a hostile agent are aggregate keys;
    each is within limits.UA_FAMILY (100 characters, 400 bytes), cut whole characters."""
    from streams.enrich import EnrichContext
    from tinytrail import limits

    event = enrich_one(ev(user_agent=agent), EnrichContext(INFO))
    assert isinstance(event, Enriched)
    for value in (event.browser_family, event.os_family, event.device_type):
        assert len(value) <= limits.UA_FAMILY.chars
        assert len(value.encode()) <= limits.UA_FAMILY.bytes
    if "Current" in agent:
        assert event.browser_family == agent[:100]


def test_utm_body_and_url_values_are_cut_to_the_caps() -> None:
    """Issue-12 review finding 3, through the step: URL values (derived) are cut to
    limits.UTM in characters AND bytes at a code-point boundary; body values were
    refused over the caps by the collector (and the worker's decode), so they are kept."""
    from streams.enrich import EnrichContext

    url = ("https://shop.example/?utm_source=" + "\U0001f600" * 300 + "&utm_medium="
           + "\u4e00" * 250 + "&utm_campaign=" + "a" * 300)
    got = enrich_one(ev(url=url, utm_campaign="\u4e00" * 133), EnrichContext(INFO))
    assert isinstance(got, Enriched)
    assert (got.utm_source, got.utm_medium, got.utm_campaign) == (
        "\U0001f600" * 100, "\u4e00" * 133, "\u4e00" * 133)


async def test_a_batch_is_enriched_in_chunks_that_yield_to_the_event_loop() -> None:
    """Issue-12 review finding 1: one slow batch must not hold the worker's event loop for
    its whole length (heartbeats, metrics, Faust's timers). `enrich_batch_async` yields
    between chunks: a task counting loop turns runs between every two chunks; the result
    is `enrich_batch`'s, in order."""
    import asyncio

    from streams.enrich import enrich_batch_async

    events = [ev(path=f"/blog/{i}") for i in range(1000)]
    events[500] = ev(website_id=str(uuid.uuid4()))  # dropped, in the middle
    turns = 0
    done = False

    async def ticker() -> None:
        nonlocal turns
        while not done:
            turns += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)  # the ticker has started
    before = turns
    kept, dropped = await enrich_batch_async(events, lambda w: INFO if w == SITE else None,
                                             chunk=200)
    during = turns - before
    done = True
    await task
    assert during >= 4  # 5 chunks of 200: at least one turn between each two
    want_kept, want_dropped = enrich_batch(events, lambda w: INFO if w == SITE else None)
    assert [e.event_id for e in kept] == [e.event_id for e in want_kept]
    assert [(e.event_id, d.reason) for e, d in dropped] == [
        (e.event_id, d.reason) for e, d in want_dropped]
    assert all(e.content_group == "Blog" for e in kept)


def test_the_worker_enriches_through_the_chunked_path() -> None:
    """The worker's batch handler uses `enrich_batch_async` (not the all-at-once one)."""
    import inspect

    from streams import batch

    source = inspect.getsource(batch)
    assert "await enrich_batch_async(" in source and "enrich_batch(" not in source.replace(
        "enrich_batch_async(", "")
