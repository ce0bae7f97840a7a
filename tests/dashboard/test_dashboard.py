"""The dashboard in headless Chromium against the real stack with generated traffic.

Every figure a panel shows is compared with the reference API's answer to the same
query; changing the period, comparison, filters and funnel steps changes what is
shown (and again equals the API); markup in paths, UTM values and event names stays
text and runs nothing; the page logs no console error and no CSP violation; keyboard
only and dark. The locations panel and the administration views have modules of their
own (test_dashboard_locations.py, test_dashboard_admin.py). Screenshots of the reports
view at 375 and 1440 px go to .local/screenshots/ (git-ignored) for a person to look at.
"""

from __future__ import annotations

import datetime as dt

import pytest

from tests.dashboard.browser import Chromium
from tests.dashboard.checks import (
    PER_PAGE,
    SHOTS,
    R,
    check_devices,
    check_events,
    check_flow,
    check_funnel,
    check_locations,
    check_pages,
    check_realtime,
    check_series,
    check_sources,
    check_summary,
    paged,
    q,
)
from tests.dashboard.stack import (
    XSS_EVENT,
    XSS_PATH,
    XSS_UTM,
    Stack,
)
from tests.dashboard.ui import clean, open_dashboard, read, settle

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.kafka, pytest.mark.browser,
              pytest.mark.slow]


async def test_every_panel_equals_the_api_and_screenshots(stack: Stack, browser: Chromium
                                                          ) -> None:
    b = browser
    site = stack.sites[0]["id"]
    key = stack.new_key()
    await open_dashboard(b, stack.api, key)
    # No website named: the first one the key sees (an admin key sees every website of
    # the test session's database, not only the stack's), then this stack's own.
    first = stack.get("/api/v1/websites", key=key)[0]["id"]
    assert f"site={first}" in await b("url")
    await open_dashboard(b, stack.api, key, query=f"?site={site}")
    assert f"site={site}" in await b("url")
    await check_summary(b, stack, q(site))
    series = await check_series(b, stack, q(site, metric="pageviews"))
    assert sum(p["value"] for p in series) > 0
    await check_realtime(b, stack, site)
    assert len(await check_pages(b, stack, paged(site))) == PER_PAGE
    assert await check_sources(b, stack, paged(site), "channel")
    await check_devices(b, stack, q(site), "types")
    await check_flow(b, stack, paged(site))
    assert await check_events(b, stack, paged(site))
    assert await check_locations(b, stack, paged(site))
    # The chart is drawn (a canvas of the panel's width).
    assert await b("eval", expr="document.querySelector('[data-panel=timeseries] canvas')"
                                ".width > 300")
    SHOTS.mkdir(parents=True, exist_ok=True)
    await b("eval", expr="window.scrollTo(0, 0)")
    await b("screenshot", path=str(SHOTS / "dashboard-reports-1440.png"), full=True)
    await clean(b)

    await open_dashboard(b, stack.api, stack.new_key(), width=375, height=812,
                         query=f"?site={site}&step=/pricing&step=/signup")
    for panel in ("summary", "timeseries", "realtime", "pages", "locations", "sources",
                  "devices", "flow", "events", "funnel"):
        await read(b, panel)
    overflow = await b("eval", expr="document.documentElement.scrollWidth")
    assert overflow <= 375, f"the page is {overflow} px wide at 375 px"
    await check_summary(b, stack, q(site))
    await b("eval", expr="window.scrollTo(0, 0)")
    await b("screenshot", path=str(SHOTS / "dashboard-reports-375.png"), full=True)
    await clean(b)


async def test_period_compare_and_filters_change_what_is_shown(stack: Stack, browser: Chromium
                                                               ) -> None:
    """Some forty changes in two minutes, more than a person makes: this test uses the
    API process without a practical rate limit (same code, same database), so it checks
    what is shown; the request budget and 429 tests below check the limit."""
    b = browser
    w = stack.sites[0]
    site = w["id"]
    await open_dashboard(b, stack.ref, stack.new_key(), query=f"?site={site}")
    week = await check_summary(b, stack, q(site))

    await b("select", sel="select[name=period]", value="30d")
    await settle(b, "summary")
    month = await check_summary(b, stack, q(site, period="30d"))
    assert month["period"] != week["period"]
    assert month["metrics"]["visits"]["value"] > week["metrics"]["visits"]["value"]
    assert "period=30d" in await b("url")

    await b("select", sel="select[name=compare]", value="previous_period")
    await settle(b, "summary")
    cmp = await check_summary(b, stack, q(site, period="30d", compare="previous_period"))
    assert "previous" in cmp["metrics"]["visits"]
    await b("select", sel="select[name=compare]", value="yoy")
    await settle(b, "summary")
    yoy = await check_summary(b, stack, q(site, period="30d", compare="yoy"))
    assert yoy["comparison"] != cmp["comparison"]

    await b("check", sel="input[name=bots]", on=True)
    await settle(b, "summary")
    bots = await check_summary(b, stack, q(site, period="30d", compare="yoy",
                                           include_bots="true"))
    assert bots["metrics"]["visits"]["value"] > yoy["metrics"]["visits"]["value"]
    await check_pages(b, stack, paged(site, period="30d", include_bots="true"))
    await check_sources(b, stack, paged(site, period="30d", include_bots="true"), "channel")

    # A custom range (the two days before yesterday).
    today = dt.datetime.now(dt.UTC).date()
    start, end = today - dt.timedelta(days=3), today - dt.timedelta(days=2)
    await b("eval", expr="window.scrollTo(0, 0)")
    await b("select", sel="select[name=period]", value="custom")
    await b("fill", sel="input[name=from]", value=start.isoformat())
    await b("fill", sel="input[name=to]", value=end.isoformat())
    await b("click", sel="form.range button[type=submit]")
    await settle(b, "summary")
    rng = {"start_date": start.isoformat(), "end_date": end.isoformat()}
    custom = {"website_id": site, **rng, "include_bots": "true"}
    await check_summary(b, stack, {**custom, "compare": "yoy"})
    await check_series(b, stack, {**custom, "metric": "pageviews"})

    # Back to 7 days without bots; a content group narrows pages and the summary.
    await b("select", sel="select[name=period]", value="7d")
    await b("check", sel="input[name=bots]", on=False)
    await b("select", sel="select[name=compare]", value="")
    await b("select", sel="select[name=group]", value="Blog")
    await settle(b, "pages")
    blog = await check_pages(b, stack, paged(site, content_group="Blog"))
    assert blog and {r["contentGroup"] for r in blog} == {"Blog"}
    await check_summary(b, stack, q(site, content_group="Blog"))
    await check_flow(b, stack, paged(site, content_group="Blog"))
    got = await read(b, "sources")  # sources are not kept per group: says so, shows all
    assert "not kept per content group" in got["text"]
    await check_sources(b, stack, paged(site), "channel")

    # Metric switcher and path filter.
    await b("select", sel="select[name=group]", value="")
    await b("select", sel="select[name=metric]", value="bounce_rate")
    await settle(b, "timeseries")
    await check_series(b, stack, q(site, metric="bounce_rate"))
    await b("fill", sel="input[name=path]", value="/pricing")
    await b("press", key="Enter")
    await settle(b, "timeseries")
    await check_series(b, stack, q(site, metric="bounce_rate", path="/pricing"))
    await b("select", sel="select[name=metric]", value="visits")
    await settle(b, "timeseries")
    a = await check_series(b, stack, q(site, metric="visits", path="/pricing"))
    whole = stack.get(R + "timeseries", q(site, metric="visits"))["series"]
    assert a != whole

    # Tabs of sources and devices.
    for by in ("domain", "utm"):
        await b("click", sel=f'[data-panel=sources] [data-tab="{by}"]')
        await settle(b, "sources")
        assert await check_sources(b, stack, paged(site), by)
    for tab in ("browsers", "os", "screens"):
        await b("click", sel=f'[data-panel=devices] [data-tab="{tab}"]')
        await settle(b, "devices")
        await check_devices(b, stack, q(site), tab)

    # The event name filter.
    await b("fill", sel="input[name=event]", value="signup_complete")
    await b("press", key="Enter")
    await settle(b, "events")
    one = await check_events(b, stack, paged(site, event_name="signup_complete"))
    assert [r["name"] for r in one] == ["signup_complete"]

    # Pagination: page 2 of pages over 30 days (11 paths).
    await b("select", sel="select[name=period]", value="30d")
    await settle(b, "pages")
    await check_pages(b, stack, paged(site, period="30d"))
    await b("click", sel="[data-panel=pages] button.next")
    await settle(b, "pages")
    page2 = await check_pages(b, stack, paged(site, period="30d") | {"page": 2})
    assert page2 and (await read(b, "pages"))["page"] == "Page 2"

    # CSV: the API's own file, byte for byte.
    got = await b("download", sel="[data-panel=pages] button.csv")
    want = stack.get_raw(R + "pages", paged(site, period="30d") | {"page": 2, "format": "csv"})
    assert got["name"] == want.headers["Content-Disposition"].split('filename="')[1].rstrip('"')
    assert got["text"] == want.text

    # State in the URL: a reload (or a shared link) shows the same view.
    url = await b("url")
    for part in ("period=30d", "metric=visits", "path=%2Fpricing", "src=utm", "dev=screens",
                 "event=signup_complete", f"site={site}"):
        assert part in url, (part, url)
    await b("goto", url=url)
    await check_series(b, stack, q(site, period="30d", metric="visits", path="/pricing"))
    await check_sources(b, stack, paged(site, period="30d"), "utm")
    await check_devices(b, stack, q(site, period="30d"), "screens")
    await check_events(b, stack, paged(site, period="30d", event_name="signup_complete"))
    assert await b("eval", expr="document.querySelector('select[name=period]').value") == "30d"
    # Back goes to the previous state.
    await b("eval", expr="history.back()")
    await b("waitFn", expr="!location.search.includes('period=30d')")
    await settle(b, "summary")
    await clean(b)



async def test_keyboard_only_and_dark(stack: Stack, browser: Chromium) -> None:
    """Sign in, change the period and open a tab with the keyboard alone; the dark
    scheme is used when the system asks for it (screenshot beside the others)."""
    b = browser
    site = stack.sites[0]["id"]
    await b("open", width=1440, height=900, scheme="dark")
    await b("goto", url=f"{stack.api}/dashboard/?site={site}")
    assert await b("eval", expr="document.activeElement.id") == "key"  # focused at once
    for ch in stack.new_key():
        await b("press", key=ch)
    await b("press", key="Enter")
    await settle(b, "summary")
    # After sign-in the focus is on the view's content: Tab reaches the toolbar, and
    # Shift+Tab the navigation.
    assert await b("eval", expr="document.activeElement.id") == "main"

    async def focused() -> str:
        return await b("eval", expr="document.activeElement.getAttribute('name') || "  # type: ignore[no-any-return]
                                    "document.activeElement.textContent")

    await b("press", key="Shift+Tab")
    assert await focused() == "Sign out"
    for want in ("site", "period"):
        await b("press", key="Tab")
        assert await focused() == want
    await b("press", key="ArrowDown")  # 7d -> 30d on a focused select
    await settle(b, "summary")
    await b("waitFn", expr="location.search.includes('period=30d')")
    await check_summary(b, stack, q(site, period="30d"))
    visible = await b("eval", expr="getComputedStyle(document.activeElement).outlineStyle")
    assert visible != "none"  # focus is visible
    bg = await b("eval", expr="getComputedStyle(document.body).backgroundColor")
    assert bg == "rgb(17, 20, 24)", bg  # the dark palette
    SHOTS.mkdir(parents=True, exist_ok=True)
    await b("eval", expr="window.scrollTo(0, 0)")
    await b("screenshot", path=str(SHOTS / "dashboard-reports-1440-dark.png"))
    await clean(b)


async def test_funnel_builder(stack: Stack, browser: Chromium) -> None:
    b = browser
    site = stack.sites[0]["id"]
    await open_dashboard(b, stack.api, stack.new_key(), query=f"?site={site}")
    got = await read(b, "funnel")
    assert got["funnel"] == [] and "Add 2 to 10 steps" in got["text"]  # no request yet
    await b("fill", sel="[data-panel=funnel] input[name=step1]", value="/")
    await b("fill", sel="[data-panel=funnel] input[name=step2]", value="/pricing")
    await b("click", sel="[data-panel=funnel] button[type=submit]")
    await settle(b, "funnel")
    two = await check_funnel(b, stack, q(site, **{"steps[]": ["/", "/pricing"]}))
    await b("click", sel="[data-panel=funnel] .add-step")
    await b("fill", sel="[data-panel=funnel] input[name=step3]", value="signup_complete")
    await b("click", sel="[data-panel=funnel] button[type=submit]")
    await settle(b, "funnel")
    three = await check_funnel(b, stack, q(site, **{"steps[]": ["/", "/pricing",
                                                                 "signup_complete"]}))
    assert len(three) == 3 and three[:2] == two and three[2]["sessions"] > 0
    assert "step=signup_complete" in await b("url")
    # Up to 10 steps; an 11th is refused; fewer than 2 is refused without a request.
    for _ in range(10):
        await b("click", sel="[data-panel=funnel] .add-step")
    assert await b("eval", expr="document.querySelectorAll('[data-panel=funnel] .steps li')"
                                ".length") == 10
    assert "at most 10 steps" in (await read(b, "funnel"))["text"]
    await b("fill", sel="[data-panel=funnel] input[name=step4]", value="outbound_link")
    await b("click", sel="[data-panel=funnel] button[type=submit]")
    await settle(b, "funnel")
    await check_funnel(b, stack, q(site, **{"steps[]": ["/", "/pricing", "signup_complete",
                                                         "outbound_link"]}))
    # The content group filters the funnel too.
    await b("eval", expr="window.scrollTo(0, 0)")
    await b("select", sel="select[name=group]", value="Blog")
    await settle(b, "funnel")
    await check_funnel(b, stack, q(site, content_group="Blog", **{"steps[]": [
        "/", "/pricing", "signup_complete", "outbound_link"]}))
    await clean(b)


async def test_markup_from_the_internet_is_text_and_runs_nothing(stack: Stack,
                                                                  browser: Chromium) -> None:
    b = browser
    site = stack.sites[0]["id"]
    await open_dashboard(b, stack.api, stack.new_key(),
                         query=f"?site={site}&period=today&src=utm&step={XSS_PATH}"
                               f"&step={XSS_EVENT}".replace("#", "%23"))
    events = await check_events(b, stack, paged(site, period="today"))
    assert XSS_EVENT in [r["name"] for r in events]
    pages = await check_pages(b, stack, paged(site, period="today"))
    assert XSS_PATH in [r["path"] for r in pages]
    rt = await check_realtime(b, stack, site)
    assert XSS_PATH in [r["path"] for r in rt["top_pages"]]
    utm = await check_sources(b, stack, paged(site, period="today"), "utm")
    assert XSS_UTM in [r["utmSource"] for r in utm]
    funnel = await check_funnel(b, stack, q(site, period="today",
                                            **{"steps[]": [XSS_PATH, XSS_EVENT]}))
    assert funnel[1]["sessions"] == 1
    await check_flow(b, stack, paged(site, period="today"))
    # The event name filter with markup, too.
    await b("fill", sel="input[name=event]", value=XSS_EVENT)
    await b("press", key="Enter")
    await settle(b, "events")
    assert [r["name"] for r in await check_events(
        b, stack, paged(site, period="today", event_name=XSS_EVENT))] == [XSS_EVENT]
    # Nothing became markup: no injected element exists, no script ran.
    injected = await b("eval", expr="""[
        document.querySelectorAll('img').length,
        document.querySelectorAll('script').length,
        document.querySelectorAll('b').length,
        document.querySelectorAll('[onerror], [onmouseover]').length]""")
    assert injected == [0, 1, 0, 0]  # the one script is the dashboard's bundle
    await b("sleep", ms=500)
    await clean(b)

