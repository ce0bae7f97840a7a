"""Review of issue 13 (fresh eyes): referrer classification cases the issue's tests do not
cover. Each was `xfail(strict=True)` until its finding was fixed (parent lookup restricted
for search engines; web mail keys matched exactly; home-page loginUrls skipped)."""

from __future__ import annotations

import pytest

from streams.enrich.referrer import classify


@pytest.mark.parametrize("ref", ["https://docs.google.com/document/d/1abc/edit",
                                 "https://play.google.com/store/apps/details?id=x",
                                 "https://translate.google.com/"])
def test_google_apps_are_not_organic_search(ref: str) -> None:
    assert classify(ref, None, "site.test")[0] == "Referral"


@pytest.mark.parametrize("ref", ["https://www.kpn.nl/zakelijk", "https://www.proximus.be/en/personal",
                                 "https://www.ziggo.nl/", "https://help.one.com/hc/en-us",
                                 "https://www.centrum.cz/"])
def test_isp_home_pages_are_not_email(ref: str) -> None:
    assert classify(ref, None, "site.test")[0] != "Email"


@pytest.mark.parametrize(("ref", "want"), [
    pytest.param("https://mail.google.com/mail/u/0/", "Email", id="gmail-listed-itself"),
    pytest.param("https://www.google.com/search?q=x", "Organic Search", id="google-search"),
    pytest.param("https://m.baidu.com/s?wd=x", "Organic Search", id="decisions-example"),
    pytest.param("https://en.m.baidu.com/", "Organic Search", id="language-edition"),
    pytest.param("https://lite.qwant.com/", "Organic Search", id="lite-edition"),
    pytest.param("https://foo.m.baidu.com/", "Referral", id="other-product"),
    pytest.param("https://l.facebook.com/l.php", "Social", id="social-parents-still-climb"),
])
def test_parent_lookup_for_search_crosses_edition_labels_only(ref: str, want: str) -> None:
    assert classify(ref, None, "site.test")[0] == want


@pytest.mark.parametrize(("ref", "want"), [
    pytest.param("https://www.kpn.nl/webmail/inbox", "Email", id="kpn-webmail-path"),
    pytest.param("https://www.one.com/mail/", "Email", id="one-mail-path"),
    pytest.param("https://www.ziggo.nl/mail", "Email", id="ziggo-mail-path"),
    pytest.param("https://web.de/", "Referral", id="portal-home-page-skipped"),
    pytest.param("https://www.simply.com/en/hosting", "Referral", id="simply-other-page"),
    pytest.param("https://outlook.office365.com/mail/", "Email", id="webmail-host"),
    pytest.param("https://eu.outlook.office365.com/", "Referral", id="no-parent-climb"),
])
def test_webmail_keys_match_exactly(ref: str, want: str) -> None:
    assert classify(ref, None, "site.test")[0] == want
