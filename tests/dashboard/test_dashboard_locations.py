"""The locations panel in headless Chromium against the real stack: visits by country
and their share equal the API, a row sets the country filter, pages and the summary
follow it, and Back restores the previous filter."""

from __future__ import annotations

import pytest

from tests.dashboard.browser import Chromium
from tests.dashboard.checks import (
    PER_PAGE,
    SHOTS,
    R,
    check_locations,
    check_pages,
    check_series,
    check_sources,
    check_summary,
    paged,
    q,
)
from tests.dashboard.stack import (
    COUNTRY_VISITORS,
    Stack,
)
from tests.dashboard.ui import clean, open_dashboard, read, settle

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.kafka, pytest.mark.browser,
              pytest.mark.slow]


async def test_locations_panel_and_the_country_filter(stack: Stack, browser: Chromium) -> None:
    """Visitors from twelve countries came through the real collector (a trusted proxy's
    X-Forwarded-For). The locations panel equals the API's answer page by page, its CSV
    is the API's, DB-IP's attribution is visible, and a country (a row or the toolbar)
    filters the overview and pages to the API's country= answers, in the URL; the
    reports that refuse country show every country and say so. (The reference API: this
    test makes more changes in a minute than the real limit is for.)"""
    b = browser
    site = stack.sites[0]["id"]
    await open_dashboard(b, stack.ref, stack.new_key(), query=f"?site={site}")
    first = await check_locations(b, stack, paged(site))
    planned = {c: sum(1 for _, x in COUNTRY_VISITORS if x == c) for _, c in COUNTRY_VISITORS}
    by_code = {r["country"]: r["visits"] for r in first}
    assert by_code["DE"] == planned["DE"] == 4 and by_code["GB"] == 3 and by_code["JP"] == 2
    assert None in by_code  # TEST-NET addresses: no country, one row
    assert len(first) == PER_PAGE

    # DB-IP's attribution (CC BY 4.0), visible beside the table.
    sel = "[data-panel=locations] .attribution a"
    await b("wait", sel=sel)
    link = await b("eval", expr=f"""(() => {{ const a = document.querySelector('{sel}');
        const r = a.getBoundingClientRect();
        return [a.textContent, a.href, r.width > 0 && r.height > 0,
                getComputedStyle(a).visibility]; }})()""")
    assert link == ["IP Geolocation by DB-IP", "https://db-ip.com/", True, "visible"], link

    # Page 2, and its CSV is the API's own file.
    await b("click", sel="[data-panel=locations] button.next")
    await settle(b, "locations")
    second = await check_locations(b, stack, paged(site) | {"page": 2})
    countries = {r["country"] for r in first + second} - {None}
    assert countries == {c for _, c in COUNTRY_VISITORS}, countries
    got = await b("download", sel="[data-panel=locations] button.csv")
    want = stack.get_raw(R + "locations", paged(site) | {"page": 2, "format": "csv"})
    assert want.status_code == 200
    assert got["name"] == want.headers["Content-Disposition"].split('filename="')[1].rstrip('"')
    assert got["text"] == want.text and got["text"].startswith("country,countryName,visits")
    await b("click", sel="[data-panel=locations] button.prev")
    await settle(b, "locations")

    # A row sets the filter: the overview and pages are the API's country=DE answers.
    await b("click", sel="[data-panel=locations] tr:has(td[data-col=country]:text-is('DE'))")
    await b("waitFn", expr="location.search.includes('country=DE')")
    await settle(b, "summary")
    de = await check_summary(b, stack, q(site, country="DE"))
    assert de["metrics"]["visits"]["value"] == 4
    de_pages = await check_pages(b, stack, paged(site, country="DE"))
    assert {r["path"] for r in de_pages} == {"/", "/pricing"}
    assert await b("eval", expr="document.querySelector('input[name=country]').value") == "DE"
    pressed = await b("eval", expr="[...document.querySelectorAll('[data-panel=locations] "
                                   "[aria-pressed=true]')].map((x) => x.textContent)")
    assert pressed == ["Germany"]
    for panel in ("summary", "pages"):  # the filter is said where it applies
        assert "Only visits from Germany (DE)." in (await read(b, panel))["text"], panel
    # Reports that refuse country show every country and say so.
    for panel in ("timeseries", "sources", "realtime"):
        got_p = await read(b, panel)
        assert "All countries: this report is not kept per country." in got_p["text"], panel
    await check_sources(b, stack, paged(site), "channel")
    await check_series(b, stack, q(site, metric="pageviews"))
    assert "Germany (DE)" in (await read(b, "locations"))["text"]
    await check_locations(b, stack, paged(site))  # every country, as before
    SHOTS.mkdir(parents=True, exist_ok=True)
    await b("eval", expr="window.scrollTo(0, 0)")
    await b("screenshot", path=str(SHOTS / "dashboard-country-de-1440.png"), full=True)

    # The toolbar: a code in any case; a bookmark of it opens the same view.
    await b("eval", expr="window.scrollTo(0, 0)")
    await b("fill", sel="input[name=country]", value="gb")
    await b("press", key="Enter")
    await b("waitFn", expr="location.search.includes('country=GB')")
    await settle(b, "summary")
    await check_summary(b, stack, q(site, country="GB"))
    await check_pages(b, stack, paged(site, country="GB"))
    url = await b("url")
    await b("goto", url=url)
    await check_summary(b, stack, q(site, country="GB"))
    await check_pages(b, stack, paged(site, country="GB"))
    assert await b("eval", expr="document.querySelector('input[name=country]').value") == "GB"
    # Not a code: said at the field, nothing changes.
    await b("fill", sel="input[name=country]", value="Atlantis")
    await b("press", key="Enter")
    await b("waitFn", expr="document.querySelector('#country-msg').textContent !== ''")
    assert "country=GB" in await b("url")

    # With a content group as well: pages take both; the overview cannot (the API's
    # 400), so it shows the group from every country and says so.
    await b("fill", sel="input[name=country]", value="GB")
    await b("select", sel="select[name=group]", value="Blog")
    await settle(b, "pages")
    await check_pages(b, stack, paged(site, content_group="Blog", country="GB"))
    await check_summary(b, stack, q(site, content_group="Blog"))
    assert "cannot combine a country with a content group" in (await read(b, "summary"))["text"]
    await b("select", sel="select[name=group]", value="")

    # The chosen row again clears the filter; Back brings it back.
    await settle(b, "locations")
    await b("click", sel="[data-panel=locations] tr.selected")
    await b("waitFn", expr="!location.search.includes('country=')")
    await settle(b, "summary")
    await check_summary(b, stack, q(site))
    await check_pages(b, stack, paged(site))
    assert await b("eval", expr="document.querySelector('input[name=country]').value") == ""
    await b("eval", expr="history.back()")
    await b("waitFn", expr="location.search.includes('country=GB')")
    await settle(b, "summary")
    await check_summary(b, stack, q(site, country="GB"))
    await clean(b)

