"""Review of issue 13 (fresh eyes): tracker cases the issue's tests do not cover, in the
real Chromium against the real collector. The first five were `xfail(strict=True)` until
their findings were fixed (docs/COLLECTOR.md, "It never sends what the collector must
refuse" and "track(name, props)"); the rest pin the rules chosen then. A body is judged
by the collector's own rules
(`collector.validate.validate` and `tinytrail.limits`): a body they refuse is a 400 in
the site owner's browser console, or an event that is 202'd and then dead-lettered."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from collector.app import RunningCollector
from collector.validate import validate
from tinytrail.envelope import ApiError
from tinytrail.limits import EVENT_TEXT_CAPS, text_problem

sys.path.insert(0, str(Path(__file__).resolve().parent))
from browserlib import PageServer, new_site, run_scenario  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.kafka, pytest.mark.redis, pytest.mark.postgres]

TRACKING = 'data-allow-localhost data-respect-dnt="false"'
LOADED = "window.analytics && !window.analytics.q && document.readyState === 'complete'"
STUB = ("<script>window.analytics = window.analytics || "
        "{q: [], track: function () { this.q.push(arguments) }};</script>")


def tag(site: str | None, col: RunningCollector, attrs: str = TRACKING) -> str:
    wid = f'data-id="{site}"' if site else ""
    return f'<script defer {wid} {attrs} src="http://127.0.0.1:{col.port}/js/tracker.js"></script>'


def html(head: str) -> str:
    return f"<!doctype html><html><head><meta charset=utf-8>{head}</head><body>x</body></html>"


def refused(body: dict[str, Any]) -> str | None:
    """Why the collector (400) or the worker (dead letter) refuses `body`, or None."""
    try:
        p = validate(body)
    except ApiError as exc:
        return f"400: {exc}"
    for name, cap in EVENT_TEXT_CAPS.items():
        value = getattr(p, name, None)
        if isinstance(value, str) and (why := text_problem(name, value, cap)):
            return f"dead letter: {why}"
    return None


async def test_track_never_throws_into_the_page(
    live_collector: RunningCollector, pages: PageServer, pg_dsn: str,
) -> None:
    site = await new_site(pg_dsn, live_collector)
    pages.html = html(tag(site, live_collector))
    probe = ("(function(){var out=[], c={}; c.self=c;"
             "[c, {n: BigInt(1)}, {toJSON: function(){ throw new Error('x') }}].forEach("
             "function(p){ try { analytics.track('p', p); out.push('ok') }"
             " catch (e) { out.push(String(e).slice(0, 60)) } }); return out })()")
    result = await run_scenario({"url": pages.url("/t"), "steps": [{"wait": LOADED}],
                                 "report": probe})
    assert result["report"] == ["ok", "ok", "ok"], result["log"]


async def test_stray_copy_without_id_does_not_disable_the_real_one(
    live_collector: RunningCollector, pages: PageServer, pg_dsn: str,
) -> None:
    site = await new_site(pg_dsn, live_collector)
    pages.html = html(STUB + "<script>analytics.track('queued')</script>"
                      + tag(None, live_collector) + tag(site, live_collector))
    result = await run_scenario({"url": pages.url("/stray"), "steps": [
        {"wait": "document.readyState === 'complete'"},
        {"eval": "new Promise(r => setTimeout(r, 300))"}]})
    kinds = [b["event_type"] for b in result["posted"]]
    assert kinds == ["page_view", "custom"], result["log"]


async def test_odd_track_calls_send_nothing_the_collector_refuses(
    live_collector: RunningCollector, pages: PageServer, pg_dsn: str,
) -> None:
    site = await new_site(pg_dsn, live_collector)
    pages.html = html(STUB + "<script>analytics.track(); analytics.track(123);"
                      "analytics.track({a: 1}); analytics.track('x'.repeat(201));"
                      "analytics.track('good', 'not-an-object');</script>"
                      + tag(site, live_collector))
    result = await run_scenario({"url": pages.url("/odd"), "steps": [{"wait": LOADED}]})
    bad = [(b.get("properties"), why) for b in result["posted"] if (why := refused(b))]
    assert bad == [], result["log"]
    assert "good" in [(b.get("properties") or {}).get("name") for b in result["posted"]]


async def test_long_page_url_is_still_counted(
    live_collector: RunningCollector, pages: PageServer, pg_dsn: str,
) -> None:
    site = await new_site(pg_dsn, live_collector)
    pages.html = html(tag(site, live_collector))
    result = await run_scenario({"url": pages.url("/long?q=" + "x" * 2100),
                                 "steps": [{"wait": LOADED}]})
    assert result["posted"] and [refused(b) for b in result["posted"]] == [None], result["log"]


async def test_utm_with_a_control_character_does_not_lose_the_page_view(
    live_collector: RunningCollector, pages: PageServer, pg_dsn: str,
) -> None:
    site = await new_site(pg_dsn, live_collector)
    pages.html = html(tag(site, live_collector))
    result = await run_scenario({"url": pages.url("/l?utm_source=news&utm_campaign=spring%0A"),
                                 "steps": [{"wait": LOADED}]})
    assert result["posted"] and [refused(b) for b in result["posted"]] == [None], result["log"]


# --- after the fixes: the rules the tracker now keeps (docs/COLLECTOR.md, "The tracker") ---

async def test_track_calls_send_what_a_user_means(
    live_collector: RunningCollector, pages: PageServer, pg_dsn: str,
) -> None:
    """Invalid names are ignored (a console warning); a name's control characters are
    removed; properties count only as a plain object, and are left out (the event still
    sent) when over 4 KiB or not serialisable; keys with control characters are dropped."""
    site = await new_site(pg_dsn, live_collector)
    pages.html = html(STUB + "<script>analytics.track(null); analytics.track('');"
                      "analytics.track('\\u4e00'.repeat(134)); analytics.track('\\n');"
                      "analytics.track('str', 'abc'); analytics.track('arr', [1, 2]);"
                      "analytics.track('big', {v: 'x'.repeat(5000)});"
                      "analytics.track('tab\\tname', {a: 1, 'k\\u0001': 2, s: 'a\\u0000b'});"
                      "analytics.track('\\u4e00'.repeat(133), {ok: true});"
                      "var c = {}; c.self = c; analytics.track('circular', c);</script>"
                      + tag(site, live_collector))
    result = await run_scenario({"url": pages.url("/calls"), "steps": [{"wait": LOADED}]})
    customs = [b["properties"] for b in result["posted"] if b["event_type"] == "custom"]
    assert customs == [
        {"name": "str"}, {"name": "arr"}, {"name": "big"},
        {"a": 1, "s": "ab", "name": "tabname"},
        {"ok": True, "name": "\u4e00" * 133},  # 399 bytes: within 400
        {"name": "circular"},
    ], result["log"]
    assert [refused(b) for b in result["posted"]] == [None] * len(result["posted"])
    assert result["log"].count("TinyTrail: bad event name") == 4, result["log"]


@pytest.mark.parametrize(("path", "why"), [
    ("/" + "%E4%B8%80" * 600, "CJK path: 5,401 characters sent, 1,801 bytes decoded"),
    ("/#/" + "r" * 3000, "hash route over the cap"),
    ("/" + "a" * 1590 + "%C3%A9" * 10, "cut inside an escaped character"),
])
async def test_long_paths_are_cut_within_the_caps(
    path: str, why: str, live_collector: RunningCollector, pages: PageServer, pg_dsn: str,
) -> None:
    site = await new_site(pg_dsn, live_collector)
    pages.html = html(tag(site, live_collector))
    result = await run_scenario({"url": pages.url(path), "steps": [{"wait": LOADED}]})
    assert len(result["posted"]) == 1, result["log"]
    body = result["posted"][0]
    assert refused(body) is None, why
    stored = validate(body).path
    assert "%" not in stored, (why, stored[-20:])  # cut between characters, not inside one
    assert path.startswith(body["path"][:1000])


async def test_utm_control_characters_are_removed(
    live_collector: RunningCollector, pages: PageServer, pg_dsn: str,
) -> None:
    """`utm_source=a%1Fb` (the UTM key's separator) goes as `ab`; the URL goes without its
    query, which the collector would refuse."""
    site = await new_site(pg_dsn, live_collector)
    pages.html = html(tag(site, live_collector))
    result = await run_scenario({"url": pages.url("/l?utm_source=a%1Fb&utm_medium=" + "m" * 300),
                                 "steps": [{"wait": LOADED}]})
    (body,) = result["posted"]
    assert refused(body) is None, result["log"]
    assert (body["utm_source"], body["utm_medium"]) == ("ab", "m" * 200)
    assert body["url"] == pages.url("/l")


SEGMENT = ("<script>!function(){var a=window.analytics=window.analytics||[];a.invoked=!0;"
           "a._writeKey='k';['track','identify','page'].forEach(function(m){a[m]=function(){"
           "a.push([m].concat([].slice.call(arguments)))}})}();</script>")


async def test_segment_keeps_window_analytics(
    live_collector: RunningCollector, pages: PageServer, pg_dsn: str,
) -> None:
    """With Segment's snippet on the page, window.analytics stays Segment's; TinyTrail is
    window.tinytrail (its stub under that name is replayed)."""
    site = await new_site(pg_dsn, live_collector)
    pages.html = html(SEGMENT + "<script>window.tinytrail = {q: [], track: function () {"
                      " this.q.push(arguments) }}; tinytrail.track('early');"
                      " analytics.track('for-segment');</script>" + tag(site, live_collector))
    result = await run_scenario({
        "url": pages.url("/seg"),
        "steps": [{"wait": "window.tinytrail && tinytrail.v && document.readyState === 'complete'"},
                  {"eval": "tinytrail.track('late')"}],
        "report": "[Array.isArray(analytics), analytics._writeKey, analytics.length]"})
    assert result["report"] == [True, "k", 1], result["log"]
    names = [b["properties"]["name"] for b in result["posted"] if b["event_type"] == "custom"]
    assert names == ["early", "late"], result["log"]
    assert result["errors"] == []


async def test_stray_copy_after_the_real_one_changes_nothing(
    live_collector: RunningCollector, pages: PageServer, pg_dsn: str,
) -> None:
    site = await new_site(pg_dsn, live_collector)
    pages.html = html(tag(site, live_collector) + tag(None, live_collector))
    result = await run_scenario({"url": pages.url("/order"), "steps": [
        {"wait": LOADED}, {"eval": "analytics.track('after')"}]})
    kinds = [b["event_type"] for b in result["posted"]]
    assert kinds == ["page_view", "custom"], result["log"]
