"""Issue 13's enrichment items, with inputs from the field (pure: no services).

11. internationalised referrer hosts are one source, in Unicode form;
12. the WHOLE referrer data set: every host classifies as its own medium, with and
    without `www.`, and parent domains are looked up;
13. business webmail (from a maintained list) is Email;
14. recent real user agents of browsers and apps, with the pinned regexes;
15. (part) viewport width 0 is the narrowest bucket.
"""

from __future__ import annotations

import importlib.metadata
import json
import re
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from streams.enrich.referrer import classify, normal_host
from streams.enrich.screen import bucket
from streams.enrich.useragent import classify as ua

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "streams" / "enrich" / "data"
CHANNEL_OF_MEDIUM = {"search": "Organic Search", "social": "Social", "email": "Email"}


# --- 11. internationalised hosts ------------------------------------------------------------

@pytest.mark.parametrize("ref", [
    pytest.param("https://xn--bcher-kva.example/buch", id="a-label"),
    pytest.param("https://bücher.example/buch", id="u-label"),
    pytest.param("https://BÜCHER.example./", id="upper-trailing-dot"),
    pytest.param("https://www.xn--bcher-kva.example:8443/", id="www-port"),
    pytest.param("https://user:pw@www.bücher.example/", id="userinfo"),
])
def test_internationalised_hosts_are_one_source(ref: str) -> None:
    assert classify(ref, None, "shop.example") == ("Referral", "bücher.example")


def test_internationalised_own_domain_is_internal() -> None:
    """Websites are saved in punycode; a referrer from the site in Unicode is internal."""
    assert classify("https://www.bücher.example/a", None, "xn--bcher-kva.example") == (
        "Direct", None)
    assert classify("https://shop.xn--bcher-kva.example/", None, "bücher.example") == (
        "Direct", None)


@pytest.mark.parametrize(("host", "want"), [
    pytest.param("xn--mnchen-3ya.de", "münchen.de", id="de"),
    pytest.param("xn--80ak6aa92e.com", "xn--80ak6aa92e.com", id="cyrillic-lookalike-kept"),
    pytest.param("аррӏе.com", "xn--80ak6aa92e.com", id="cyrillic-lookalike-unicode-in"),
    pytest.param("xn--ggle-0nda.com", "xn--ggle-0nda.com", id="mixed-latin-greek-kept"),
    pytest.param("gοοgle.com", "xn--ggle-0nda.com", id="mixed-unicode-in"),
    pytest.param("xn--ls8h.la", "xn--ls8h.la", id="emoji-a-label"),
    pytest.param("💩.la", "xn--ls8h.la", id="emoji-u-label-is-the-same-source"),
    pytest.param("яндекс.рф", "яндекс.рф", id="cyrillic-name-cyrillic-tld"),
    pytest.param("xn--d1acpjx3f.xn--p1ai", "яндекс.рф", id="cyrillic-a-label"),
    pytest.param("日本語ドメイン.jp", "日本語ドメイン.jp", id="japanese-script-mix-allowed"),
    pytest.param("ελληνικά.gr", "ελληνικά.gr", id="greek-words-readable"),
    pytest.param("a_b.example", "a_b.example", id="underscore-kept"),
    pytest.param("192.0.2.1", "192.0.2.1", id="ipv4"),
    pytest.param("xn--zz.example", "xn--zz.example", id="bad-a-label-kept"),
])
def test_normal_host(host: str, want: str) -> None:
    assert normal_host(host) == want


# --- 12. the whole referrer data set --------------------------------------------------------

def _referrers() -> list[pytest.ParameterSet]:
    raw = json.loads((DATA / "referrers.json").read_text())
    return [pytest.param(key, entry.get("medium", "unknown"), id=key) for key, entry in raw.items()]


@pytest.mark.parametrize(("key", "medium"), _referrers())
def test_every_listed_host_classifies_as_its_medium(key: str, medium: str) -> None:
    """Each key (`host` or `host/path`) of referrers.json, with and without `www.`."""
    want = CHANNEL_OF_MEDIUM.get(medium, "Referral")
    bare = key.removeprefix("www.")
    for form in (bare, "www." + bare):
        channel, domain = classify(f"https://{form}", None, "")
        assert channel == want, (form, medium)
        assert domain == normal_host(urlsplit(f"https://{form}").hostname or "")


@pytest.mark.parametrize(("ref", "want"), [
    pytest.param("https://www.qwant.com/?q=x", ("Organic Search", "qwant.com"), id="qwant-www"),
    pytest.param("https://qwant.com/", ("Organic Search", "qwant.com"), id="qwant-bare"),
    pytest.param("https://lite.qwant.com/", ("Organic Search", "lite.qwant.com"),
                 id="qwant-parent"),
    pytest.param("https://m.baidu.com/s?wd=x", ("Organic Search", "m.baidu.com"), id="baidu-m"),
    pytest.param("https://en.m.baidu.com/", ("Organic Search", "en.m.baidu.com"),
                 id="baidu-edition-parents"),
    pytest.param("https://foo.m.baidu.com/", ("Referral", "foo.m.baidu.com"),
                 id="search-parent-across-a-product-label"),
    pytest.param("https://orange.fr/webmail/inbox", ("Email", "orange.fr"), id="host-path"),
    pytest.param("https://www.bing.com/images/search?q=x", ("Organic Search", "bing.com"),
                 id="host-path-www"),
    pytest.param("https://example.com/", ("Referral", "example.com"), id="unlisted"),
])
def test_www_and_parent_lookup(ref: str, want: tuple[str, str]) -> None:
    assert classify(ref, None, "shop.example") == want


# --- 13. business webmail -------------------------------------------------------------------

def _webmail() -> list[pytest.ParameterSet]:
    listed = {k.removeprefix("www.").partition("/")[0]
              for k in json.loads((DATA / "referrers.json").read_text())}
    providers = json.loads((DATA / "emailproviders.json").read_text())["providers"]
    urls = sorted({p["loginUrl"] for p in providers if p.get("loginUrl")})
    return [pytest.param(u, id=u) for u in urls
            if (urlsplit(u).hostname or "").removeprefix("www.") not in listed]


@pytest.mark.parametrize("login_url", _webmail())
def test_every_webmail_login_url_is_its_own_key(login_url: str) -> None:
    """Every provider's `loginUrl` in emailproviders.json (unless referrers.json, which
    wins, lists its host): with a path, that path on that host is Email and the host's
    other pages are not (`www.kpn.nl/webmail` vs the ISP's site); a web mail host of its
    own (three labels or more) is Email; a bare registrable domain's home page
    (`https://www.centrum.cz`) is no key at all. No key reaches a subdomain."""
    parts = urlsplit(login_url)
    host = (parts.hostname or "").removeprefix("www.")
    path = parts.path.strip("/")
    for form in (host, "www." + host):
        if path:
            assert classify(f"https://{form}/{path}/x", None, "")[0] == "Email", form
            assert classify(f"https://{form}/not-mail", None, "")[0] != "Email", form
        elif host.count(".") >= 2:
            assert classify(f"https://{form}/mail/", None, "")[0] == "Email", form
        else:
            assert classify(f"https://{form}/", None, "")[0] != "Email", form
    assert classify(f"https://help.{host}/", None, "")[0] != "Email"


@pytest.mark.parametrize("ref", [
    pytest.param("https://outlook.office365.com/mail/inbox", id="microsoft-365"),
    pytest.param("https://outlook.office.com/mail/", id="outlook-on-the-web"),
    pytest.param("https://mail.proton.me/u/0/inbox", id="proton"),
    pytest.param("https://app.hey.com/imbox", id="hey"),
    pytest.param("https://workmail.aws.amazon.com/", id="aws-workmail"),
    pytest.param("https://mail.zoho.eu/zm/", id="zoho-eu"),
])
def test_business_webmail_is_email(ref: str) -> None:
    assert classify(ref, None, "shop.example")[0] == "Email"


def test_webmail_data_is_named_with_its_licence() -> None:
    readme = (DATA / "README.md").read_text()
    assert "@mikkelscheike/email-provider-links" in readme and "5.2.2" in readme
    assert "MIT" in (DATA / "emailproviders.LICENSE").read_text()


def test_every_vendor_webmail_host_names_its_source_and_is_email() -> None:
    hosts = json.loads((DATA / "webmail_vendors.json").read_text())["hosts"]
    assert hosts
    for entry in hosts:
        assert entry["source"] and entry["vendor"] and entry["checked"], entry
        for form in (entry["host"], "www." + entry["host"]):
            assert classify(f"https://{form}/mail/", None, "")[0] == "Email", form


# --- 14. recent real user agents, pinned regexes --------------------------------------------

# Real user agents of browsers and in-app browsers released or updated in 2024-2026.
# The four marked "old" were reported as their engine or as another browser with
# ua-parser-builtins 0.18 (uap-core 0.18): TikTok as "Chrome Mobile WebView", Huawei as
# "Chrome", Ecosia as "Phantom", the Quest browser as "Samsung Internet".
RECENT = [
    pytest.param("Mozilla/5.0 (Linux; Android 15; SM-S928B) AppleWebKit/537.36 (KHTML, like "
                 "Gecko) SamsungBrowser/28.0 Chrome/130.0.0.0 Mobile Safari/537.36",
                 ("Samsung Internet", "Android", "mobile"), id="samsung-internet-28"),
    pytest.param("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko)"
                 " Chrome/131.0.0.0 Mobile Safari/537.36 EdgA/131.0.2903.87",
                 ("Edge Mobile", "Android", "mobile"), id="edge-android"),
    pytest.param("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like "
                 "Gecko) Chrome/128.0.0.0 YaBrowser/24.10.0.0 Safari/537.36",
                 ("Yandex Browser", "Windows", "desktop"), id="yandex-24"),
    pytest.param("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like "
                 "Gecko) Chrome/130.0.0.0 Safari/537.36 Vivaldi/7.0.3495.18",
                 ("Vivaldi", "Windows", "desktop"), id="vivaldi-7"),
    pytest.param("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like "
                 "Gecko) Chrome/128.0.0.0 Whale/3.28.266.14 Safari/537.36",
                 ("Whale", "Windows", "desktop"), id="naver-whale"),
    pytest.param("Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) "
                 "Version/4.0 Chrome/131.0.6778.39 Mobile DuckDuckGo/5 Safari/537.36",
                 ("DuckDuckGo Mobile", "Android", "mobile"), id="duckduckgo-android"),
    pytest.param("Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
                 "(KHTML, like Gecko) Version/18.0 EdgiOS/131.2903.68 Mobile/15E148 "
                 "Safari/605.1.15", ("Edge Mobile", "iOS", "mobile"), id="edge-ios"),
    pytest.param("Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
                 "(KHTML, like Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1",
                 ("Chrome Mobile iOS", "iOS", "mobile"), id="chrome-ios"),
    pytest.param("Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
                 "(KHTML, like Gecko) Mobile/15E148 Instagram 356.0.0.24.105 (iPhone15,3; "
                 "iOS 18_1; en_US; en; scale=3.00; 1290x2796; 661867616)",
                 ("Instagram", "iOS", "mobile"), id="instagram-app"),
    pytest.param("Mozilla/5.0 (Linux; Android 14; SM-S918B Build/UP1A.231005.007; wv) "
                 "AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/130.0.6723.107 "
                 "Mobile Safari/537.36 [FB_IAB/FB4A;FBAV/490.0.0.59.109;]",
                 ("Facebook", "Android", "mobile"), id="facebook-app"),
    pytest.param("Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
                 "(KHTML, like Gecko) Mobile/15E148 Snapchat/13.17.0.35 (like "
                 "Safari/8619.2.8.10.7, panda)", ("Snapchat", "iOS", "mobile"), id="snapchat-app"),
    pytest.param("Mozilla/5.0 (Linux; Android 14; Pixel 7 Build/AP1A.240505.005; wv) "
                 "AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/124.0.6367.179 "
                 "Mobile Safari/537.36 trill_350003 JsSdk/1.0 NetType/WIFI Channel/googleplay "
                 "AppName/trill app_version/35.0.3 ByteLocale/en ByteFullLocale/en Region/US "
                 "AppId/1180 Spark/1.5.8.2-bugfix AppVersion/35.0.3 BytedanceWebview/d8a21c6",
                 ("TikTok", "Android", "mobile"), id="tiktok-app-old"),
    pytest.param("Mozilla/5.0 (Linux; Android 12; HarmonyOS; NOH-AN00; HMSCore 6.14.0.302) "
                 "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/114.0.5735.196 "
                 "HuaweiBrowser/15.0.4.312 Mobile Safari/537.36",
                 ("Huawei Browser", "Android", "mobile"), id="huawei-browser-old"),
    pytest.param("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko)"
                 " Chrome/131.0.0.0 Mobile Safari/537.36 (Ecosia android@131.0.6778.81)",
                 ("Ecosia Android", "Android", "mobile"), id="ecosia-android-old"),
    pytest.param("Mozilla/5.0 (X11; Linux x86_64; Quest 3) AppleWebKit/537.36 (KHTML, like "
                 "Gecko) OculusBrowser/35.3.0.5.53.651394837 SamsungBrowser/4.0 "
                 "Chrome/128.0.6613.191 VR Safari/537.36",
                 ("Oculus Browser", None, None), id="quest-browser-old"),
]


@pytest.mark.parametrize(("agent", "want"), RECENT)
def test_recent_user_agents(agent: str, want: tuple[str, str | None, str | None]) -> None:
    """Browser family, OS family and device type (None: not asserted; a VR headset has no
    fitting device type)."""
    got = ua(agent)
    assert tuple(g if w is not None else None for g, w in zip(got, want, strict=True)) == want


def test_ua_regexes_are_the_pinned_release() -> None:
    """pyproject pins ua-parser-builtins exactly; the installed one is that release."""
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    (pin,) = [d for d in deps if d.startswith("ua-parser-builtins")]
    match = re.fullmatch(r"ua-parser-builtins==(\d+)", pin)
    assert match, pin
    assert importlib.metadata.version("ua-parser-builtins") == match.group(1)


# --- 15. viewport width 0 -------------------------------------------------------------------

@pytest.mark.parametrize(("width", "want"), [
    pytest.param(0, "320-375", id="zero"), pytest.param(1, "320-375", id="one"),
    pytest.param(319, "320-375", id="under-320"), pytest.param(None, "unknown", id="missing"),
])
def test_zero_width_is_the_narrowest_bucket(width: int | None, want: str) -> None:
    assert bucket(width) == want


# --- review 13: AI agents are bots named by the crawler list ------------------------------

@pytest.mark.parametrize(("agent", "name"), [
    pytest.param("Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko); compatible; "
                 "ChatGPT-User/1.0; +https://openai.com/bot", "ChatGPT-User", id="chatgpt-user"),
    pytest.param("Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; "
                 "Perplexity-User/1.0; +https://perplexity.ai/perplexity-user)",
                 "Perplexity-User", id="perplexity-user"),
    pytest.param("Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.1;"
                 " +https://openai.com/gptbot)", "GPTBot", id="gptbot"),
])
def test_ai_agents_are_bots_with_their_names(agent: str, name: str) -> None:
    """ua-parser read ChatGPT-User's `+https://openai.com/bot` as a browser "com/bot" and
    did not know Perplexity-User; both are in crawler-user-agents (and flagged is_bot)."""
    assert ua(agent) == (name, "Other", "bot")
