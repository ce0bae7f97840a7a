"""Review of issue 13 (fresh eyes): referrer classification cases the issue's tests do not
cover. `xfail(strict=True)`: each documents a finding and turns red (XPASS) when fixed."""

from __future__ import annotations

import pytest

from streams.enrich.referrer import classify


@pytest.mark.xfail(strict=True, reason="review13: the parent-domain fallback makes every "
                   "unlisted *.google.com host a search engine: Google Docs, Play and "
                   "Translate links count as Organic Search (referrer.py medium_of)")
@pytest.mark.parametrize("ref", ["https://docs.google.com/document/d/1abc/edit",
                                 "https://play.google.com/store/apps/details?id=x",
                                 "https://translate.google.com/"])
def test_google_apps_are_not_organic_search(ref: str) -> None:
    assert classify(ref, None, "site.test")[0] == "Referral"


@pytest.mark.xfail(strict=True, reason="review13: emailproviders.json's loginUrl is, for some "
                   "providers, the company's home page (www.kpn.nl, www.proximus.be, "
                   "www.ziggo.nl, www.one.com, www.centrum.cz); with the parent-domain "
                   "lookup every page of those sites and their subdomains becomes Email")
@pytest.mark.parametrize("ref", ["https://www.kpn.nl/zakelijk", "https://www.proximus.be/en/personal",
                                 "https://www.ziggo.nl/", "https://help.one.com/hc/en-us",
                                 "https://www.centrum.cz/"])
def test_isp_home_pages_are_not_email(ref: str) -> None:
    assert classify(ref, None, "site.test")[0] != "Email"
