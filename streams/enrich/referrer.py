"""Referrer -> channel and referrer domain, from maintained referrer data.

Channels, first rule that matches wins (contract + docs/RULES.md):
  Paid Search     referrer is a search engine and utm_medium contains cpc, ppc or paid
  Organic Search  referrer is a search engine
  Social          referrer is a social network
  Email           utm_medium is "email", or the referrer is a webmail provider
  Referral        any other external referrer
  Direct          no referrer (or only internal navigation)
A referrer on the website's own domain (or a subdomain of it) is internal
navigation, not a source: it yields no referrer domain.

The referrer host (docs/RULES.md, "Referrer hosts"): lower case, no port, no userinfo, no
trailing dot, internationalised names in Unicode (UTS 46 via `idna`:
`xn--bcher-kva.example` and `BÜCHER.example` both become `bücher.example`) unless the
Unicode form is a lookalike (mixed scripts, or Latin-looking Cyrillic/Greek under an ASCII
TLD: kept in punycode), no leading `www.`. Lookup: the data sets' keys are normalised the
same way (so `www.qwant.com` in the data is `qwant.com`), then the host is tried, then its
parent domains (`m.baidu.com` -> `baidu.com`); for each, `host/first/path/segments`
entries of the data (`orange.fr/webmail`, `bing.com/images/search`) are tried before the
bare host. A parent that is a search engine counts only across edition labels (`www`,
`m`, `lite`, a language: `docs.google.com` is a Referral); web mail keys match exactly,
never as a parent.

Data: `data/referrers.json` (host -> medium; search, social, email, ...) and the webmail
keys of `data/emailproviders.json` (each provider's `loginUrl`, see `_provider_key`) and
of `data/webmail_vendors.json` (hosts their vendors publish), see `data/README.md`.
Where both name a host, `referrers.json` wins.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import idna
from confusable_homoglyphs import categories, confusables

from streams.models import Enriched
from tinytrail.boundedcache import short_key_cache

if TYPE_CHECKING:
    from streams.enrich import EnrichContext


def normal_host(host: str) -> str:
    """Lower case, no trailing dot, Unicode form of an internationalised name, no `www.`.

    `idna` (IDNA 2008 with the UTS 46 mapping) turns both spellings into one A-label and
    back. The Unicode form is kept only when it is unambiguous (`_readable`); a lookalike
    (`xn--ggle-0nda.com`, "gοοgle.com" with Greek omicrons) stays in punycode, as browsers
    show it. A name IDNA 2008 refuses but IDNA 2003 (Python's `idna` codec) encodes, such
    as an emoji domain, is written as its A-label, so `💩.la` and `xn--ls8h.la` are one
    source; any other host `idna` refuses (an underscore, an IP address, a bad `xn--`
    label) is kept as it is, lower-cased, since it can still be a valid referrer host."""
    host = host.strip().rstrip(".").lower()
    if host and (not host.isascii() or "xn--" in host):
        host = _idn(host)
    return host.removeprefix("www.")


def _idn(host: str) -> str:
    try:
        a_label = idna.encode(host, uts46=True).decode("ascii")
        u_label = idna.decode(a_label)
    except (idna.IDNAError, UnicodeError, ValueError):
        try:
            return host.encode("idna").decode("ascii")
        except (UnicodeError, ValueError):
            return host
    return u_label if _readable(u_label) else a_label


# Script mixes UTS 39's "highly restrictive" level allows in one label (Japanese, Chinese,
# Korean writing mixes Han with its own scripts, and Latin).
_CJK_MIXES = (frozenset({"LATIN", "HAN", "HIRAGANA", "KATAKANA"}),
              frozenset({"LATIN", "HAN", "BOPOMOFO"}), frozenset({"LATIN", "HAN", "HANGUL"}))
_NEUTRAL = frozenset({"COMMON", "INHERITED"})  # digits, hyphen, emoji, combining marks


def _readable(host: str) -> bool:
    """Whether the Unicode form of `host` can be shown without being mistaken for another
    name (the rules of Chrome's IDN display policy, with Unicode's script and
    confusables data from `confusable_homoglyphs`): no label mixes scripts (but the CJK
    mixes above), and, under an ASCII top-level domain, no label is written wholly in
    one non-Latin script with letters that all look like Latin ones (`аррӏе.com`)."""
    labels = host.split(".")
    ascii_tld = labels[-1].isascii()
    for label in labels:
        if label.isascii():
            continue
        scripts = categories.unique_aliases(label) - _NEUTRAL
        if len(scripts) > 1 and not any(scripts <= mix for mix in _CJK_MIXES):
            return False
        if ascii_tld and scripts and scripts != {"LATIN"}:
            letters = {ch for ch in label if ch.isalpha()}
            lookalikes = confusables.is_confusable(
                label, greedy=True, preferred_aliases=["latin"]) or []
            if letters and letters <= {d["character"] for d in lookalikes}:
                return False
    return True


def _normal_key(key: str) -> str:
    """A data-set key: `host` or `host/path` (the path without a trailing slash)."""
    host, _, path = key.partition("/")
    path = path.strip("/")
    return normal_host(host) + ("/" + path if path else "")


def _provider_key(login_url: str) -> str | None:
    """The Email key of one `emailproviders.json` provider: its `loginUrl` as `host/path`
    when it has a path (`www.kpn.nl/webmail` -> `kpn.nl/webmail`: the rest of kpn.nl is
    the ISP's own site), its host when the host is a web mail host of its own
    (`mail.proton.me`, `outlook.office365.com`), and None when the `loginUrl` is a bare
    registrable domain's home page (`https://www.centrum.cz`, `https://web.de/`): that is
    the company's whole site (a portal, a shop), not where mail is read."""
    parts = urlsplit(login_url)
    host = normal_host(parts.hostname or "")
    path = parts.path.strip("/")
    if not host:
        return None
    if path:
        return _normal_key(f"{host}/{path}")
    return host if host.count(".") >= 2 else None


def _load() -> tuple[dict[str, str], frozenset[str]]:
    """(key -> medium, the keys matched exactly only). Keys from emailproviders.json and
    webmail_vendors.json name single web mail hosts: their parent domains (a provider's
    apex, an ISP) are not mail, so they are never reached by the parent lookup."""
    data = resources.files("streams.enrich") / "data"
    mediums: dict[str, str] = {}
    exact: set[str] = set()
    providers = json.loads((data / "emailproviders.json").read_text())["providers"]
    for provider in providers:
        key = _provider_key(provider.get("loginUrl") or "")
        if key:
            mediums[key] = "email"
            exact.add(key)
    for entry in json.loads((data / "webmail_vendors.json").read_text())["hosts"]:
        key = _normal_key(entry["host"])
        mediums[key] = "email"
        exact.add(key)
    raw = json.loads((data / "referrers.json").read_text())
    for key, entry in raw.items():
        key = _normal_key(key)
        mediums[key] = entry.get("medium", "unknown")
        exact.discard(key)
    return mediums, frozenset(exact)


MEDIUMS, EXACT_ONLY = _load()
PAID_MARKERS = ("cpc", "ppc", "paid")
# classify() cache: referrer + utm_medium + own domain of at most 256 characters (a
# cross-site referrer is usually its origin), 16,384 entries: <= ~40 MB at worst
# (4-byte characters), ~10 MB for ASCII (docs/STREAMS.md).
CLASSIFY_CACHE_ENTRIES = 16384
CLASSIFY_CACHE_KEY_CHARS = 256
_MAX_PATH_SEGMENTS = max(k.count("/") for k in MEDIUMS)  # the deepest host/path key's
# Labels that name another edition of the same site, not another product: only these may
# be climbed over to reach a search engine (`m.baidu.com` -> `baidu.com`,
# `de.search.yahoo.com`), so that `docs.google.com` or `play.google.com` (Google's
# apps, not its search) stay referrals, as in Plausible and GA4.
_EDITION_LABELS = frozenset({"www", "www1", "www2", "m", "mobile", "wap", "touch", "amp",
                             "lite"})


def _edition(label: str) -> bool:
    """A label that names an edition of a site: `www`, a mobile or light version, or a
    language or country (two letters, optionally a region: `de`, `pt-br`)."""
    return label in _EDITION_LABELS or (
        len(label) in (2, 5) and label[:2].isalpha() and label.isascii()
        and (len(label) == 2 or (label[2] == "-" and label[3:].isalpha())))


def medium_of(host: str, path: str = "") -> str | None:
    """The data's medium for a (normalised) host and URL path: the host, then each parent
    domain; for each, its `host/path` entries first (longest first), then the bare host.
    A parent (never the bare TLD) counts only when it is not an exact-only web mail key,
    and, for a search engine, only when every label climbed over is an edition label."""
    segments = [s for s in path.split("/") if s][:_MAX_PATH_SEGMENTS]
    labels = host.split(".")
    for i in range(len(labels) - 1 if len(labels) > 1 else 1):
        domain = ".".join(labels[i:])
        medium = None
        for n in range(len(segments), 0, -1):
            key = domain + "/" + "/".join(segments[:n])
            medium = MEDIUMS.get(key)
            if medium is not None:
                break
        else:
            key = domain
            medium = MEDIUMS.get(domain)
        if medium is None:
            continue
        if i and (key in EXACT_ONLY or (
                medium == "search" and not all(_edition(lb) for lb in labels[:i]))):
            return None  # the nearest listed parent decides: not this host's medium
        return medium
    return None


def referrer_parts(referrer: str | None) -> tuple[str, str] | None:
    """(normalised host, path) of a referrer URL, or None when it has no host."""
    if not referrer:
        return None
    try:
        parts = urlsplit(referrer.strip())
        host = parts.hostname
    except ValueError:
        return None
    if not host:
        return None
    host = normal_host(host)
    return (host, parts.path) if host else None


@short_key_cache(maxsize=CLASSIFY_CACHE_ENTRIES, max_chars=CLASSIFY_CACHE_KEY_CHARS)
def classify(
    referrer: str | None, utm_medium: str | None, own_domain: str
) -> tuple[str, str | None]:
    """(channel, referrer_domain) for one event (cached: referrers repeat a lot)."""
    parts = referrer_parts(referrer)
    domain = parts[0] if parts else None
    own = _own(own_domain)
    if domain and own and (domain == own or domain.endswith("." + own)):
        domain = None  # internal navigation is not a source
    medium = medium_of(domain, parts[1]) if domain and parts else None
    utm = (utm_medium or "").lower()
    if medium == "search":
        if any(m in utm for m in PAID_MARKERS):
            return "Paid Search", domain
        return "Organic Search", domain
    if medium == "social":
        return "Social", domain
    if utm == "email" or medium == "email":
        return "Email", domain
    if domain:
        return "Referral", domain
    return "Direct", None


@lru_cache(maxsize=4096)
def _own(domain: str) -> str:
    """The website's domain in the same form as referrer hosts (websites store punycode)."""
    return normal_host(domain) if domain else ""


def step(ev: Enriched, ctx: EnrichContext) -> Enriched:
    own = ctx.website.domain if ctx.website is not None else ""
    ev.referrer_channel, ev.referrer_domain = classify(ev.referrer, ev.utm_medium, own)
    return ev
