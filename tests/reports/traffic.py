"""Realistic traffic for the end-to-end report test, and what each event must become.

Three websites. Past days are generated here with chosen timestamps and visitor ids
(the collector stamps `received_at` itself, so history cannot go through it); today's
traffic is a plan of `POST /api/v1/collect` requests that the test sends through the
real collector. Both are lists of `Hit`s: what a browser sent (website, client IP,
user agent, JSON body). `expect` turns a hit plus its receive time and visitor id into
an `Ev`, the plain record the reference (`e2e_reference.py`) counts, with the worker's
enrichment recomputed by small hand-written tables of the generated user agents and
referrers, never by the production code.

The traffic covers: desktop, mobile, tablet browsers, crawlers and a headless browser
(bots), excluded IPv4/IPv6 addresses and ranges, search / paid / social / email /
referral / internal referrers, UTM in the URL and in the body (body wins, per field),
content groups (first matching glob wins, `?` = one character), SPA navigation
(several page_views per visit, internal referrers), scroll and close_tab (extend a
visit, never un-bounce it), outbound links and custom events (un-bounce), visitors
that cross midnight (a new visitor id after midnight, as the daily salt gives), gaps
of exactly 30 minutes (same visit) and 30 minutes + 1 s (a new visit), and a visitor
whose only event is a close_tab (a visitor without a visit).

Over 400 lines on purpose: the generator and the expectation read the same hand-written
tables (AGENTS, SOURCES, REFERRER_KIND, SITE_CONFIGS), so each generated case sits next to
what it must become and a reader checks one against the other in one place; splitting
generation from expectation would put the cases and their expected classification in
different files without making either shorter to follow.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import hashlib
import ipaddress
import random
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tinytrail.event import RawEvent

GAP_MS = 30 * 60 * 1000
DAY_MS = 86_400_000
TAG = "tt_req"  # query parameter naming the request a collected event came from


@dataclass(frozen=True)
class Agent:
    """A user agent and what it must be classified as."""

    ua: str
    browser: str
    os: str
    device: str
    bot: bool = False
    widths: tuple[int | None, ...] = (1920,)


AGENTS: dict[str, Agent] = {
    "chrome_win": Agent(
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36", "Chrome", "Windows", "desktop",
        widths=(1920, 1366, 2560, None)),
    "edge_win": Agent(
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.51", "Edge", "Windows", "desktop",
        widths=(1440, 1280)),
    "safari_mac": Agent(
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like "
        "Gecko) Version/17.4 Safari/605.1.15", "Safari", "macOS", "desktop",
        widths=(1440, 1680)),
    "firefox_linux": Agent(
        "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
        "Firefox", "Linux", "desktop", widths=(1920, 1025)),
    "iphone": Agent(
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
        "like Gecko) Version/17.4 Mobile/15E148 Safari/604.1", "Mobile Safari", "iOS", "mobile",
        widths=(390, 375, 430)),
    "android_phone": Agent(
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.6367.82 Mobile Safari/537.36", "Chrome Mobile", "Android", "mobile",
        widths=(360, 412, 300)),
    "ipad": Agent(
        "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.4 Mobile/15E148 Safari/604.1", "Mobile Safari", "iOS", "tablet",
        widths=(820, 768, 1024)),
    "android_tablet": Agent(
        "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.6367.82 Safari/537.36", "Chrome", "Android", "tablet", widths=(800,)),
    "googlebot": Agent(
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "Googlebot", "Other", "bot", bot=True, widths=(None,)),
    "bingbot": Agent(
        "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
        "bingbot", "Other", "bot", bot=True, widths=(1024,)),
    "headless": Agent(
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "HeadlessChrome/124.0.0.0 Safari/537.36", "HeadlessChrome", "Linux", "bot", bot=True,
        widths=(800,)),
}
AGENT_OF_UA = {a.ua: a for a in AGENTS.values()}
HUMANS = [k for k, a in AGENTS.items() if not a.bot]
BOTS = [k for k, a in AGENTS.items() if a.bot]

# Referrer hosts (without "www.") of the generated traffic and their kind.
REFERRER_KIND = {"google.com": "search", "bing.com": "search", "t.co": "social",
                 "m.facebook.com": "social", "news.ycombinator.com": "social",
                 "mail.google.com": "email"}


@dataclass(frozen=True)
class Source:
    """How a visit arrives: referrer ("{own}" = the website's own host) and UTM."""

    referrer: str | None
    url_query: str = ""  # UTM in the landing URL
    body_utm: dict[str, str] = field(default_factory=dict)  # UTM fields in the JSON body


SOURCES = [
    Source(None),
    Source(None),
    Source("https://www.google.com/search?q=cookieless+analytics"),
    Source("https://www.bing.com/search?q=web+analytics"),
    Source("https://www.google.com/", "utm_source=google&utm_medium=cpc&utm_campaign=spring"),
    Source("https://t.co/Ab12", body_utm={"utm_source": "twitter", "utm_medium": "social",
                                          "utm_campaign": "launch"}),
    Source("https://m.facebook.com/"),
    Source("https://mail.google.com/mail/u/0/"),
    Source(None, "utm_source=newsletter&utm_medium=email&utm_campaign=may"),
    Source("https://blog.partner-site.example/review"),
    Source("https://www.{own}/"),  # internal: not a source
    # Body wins per field: source from the body, medium and campaign from the URL.
    Source("https://news.ycombinator.com/item?id=1",
           "utm_source=hn&utm_medium=social&utm_campaign=show", {"utm_source": "hackernews"}),
]

PATHS = ["/", "/pricing", "/signup", "/about", "/blog/hello-world", "/blog/launch",
         "/docs/install", "/docs/guides/setup", "/p/1", "/p/10"]
CUSTOM_NAMES = ["video_play", "=export", "newsletter_signup"]


@dataclass(frozen=True)
class Site:
    id: str
    domain: str
    groups: tuple[tuple[str, str], ...]  # (name, glob)
    excluded: tuple[str, ...]  # IPs / CIDRs

    def group_of(self, path: str) -> str | None:
        for name, pattern in self.groups:
            if fnmatch.fnmatchcase(path, pattern):  # no [] in our paths: * and ? only
                return name
        return None

    def is_excluded(self, ip: str) -> bool:
        addr = ipaddress.ip_address(ip)
        return any(addr in ipaddress.ip_network(n) for n in self.excluded)


SITE_CONFIGS: list[dict[str, Any]] = [
    {"content_groups": [{"name": "Guides", "pattern": "/docs/guides/*"},
                        {"name": "Docs", "pattern": "/docs/*"},
                        {"name": "Blog", "pattern": "/blog/*"},
                        {"name": "Product", "pattern": "/p/?"}],
     "excluded_ips": ["198.51.100.0/28", "2001:db8:ee::/48"]},
    {"content_groups": [{"name": "Blog", "pattern": "/blog/*"}],
     "excluded_ips": ["203.0.113.250"]},
    {"content_groups": [], "excluded_ips": []},
]
EXCLUDED_IPS = ["198.51.100.3", "198.51.100.9", "2001:db8:ee::7", "203.0.113.250"]


@dataclass
class Hit:
    """One event as a browser sent it (plus, for history, its chosen time and visitor)."""

    site: Site
    ip: str
    agent: str
    body: dict[str, Any]
    ms: int = 0
    visitor: str = ""

    @property
    def user_agent(self) -> str:
        return AGENTS[self.agent].ua

    @property
    def tag(self) -> str:
        return tag_of(self.body["url"])


def tag_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)[TAG][0]


@dataclass(frozen=True)
class Ev:
    """An event as the reference counts it, with its expected enrichment."""

    site: str
    visitor: str
    ms: int
    eid: str  # the event id: the worker breaks ties of equal times with it
    etype: str
    path: str
    name: str | None
    bot: bool
    excluded: bool
    channel: str
    domain: str | None
    utm: tuple[str | None, str | None, str | None]
    device: str
    browser: str
    os: str
    screen: str
    group: str | None

    @property
    def day(self) -> dt.date:
        return dt.date(1970, 1, 1) + dt.timedelta(days=self.ms // DAY_MS)


def screen_bucket(width: int | None) -> str:
    if width is None:
        return "unknown"
    for top, name in ((375, "320-375"), (768, "376-768"), (1024, "769-1024"),
                      (1440, "1025-1440")):
        if width <= top:
            return name
    return "1441+"


def utm_of(body: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
    """Per field: the body's value, else the landing URL's."""
    q = parse_qs(urlsplit(body["url"]).query)
    return tuple(body.get(f) or (q[f][0] if f in q else None)  # type: ignore[return-value]
                 for f in ("utm_source", "utm_medium", "utm_campaign"))


def channel_of(referrer: str | None, medium: str | None, own: str) -> tuple[str, str | None]:
    host = urlsplit(referrer).hostname if referrer else None
    domain = host[4:] if host and host.startswith("www.") else host
    if domain and (domain == own or domain.endswith("." + own)):
        domain = None  # internal navigation
    kind = REFERRER_KIND.get(domain or "")
    if kind == "search":
        paid = medium is not None and any(m in medium for m in ("cpc", "ppc", "paid"))
        return ("Paid Search" if paid else "Organic Search"), domain
    if kind == "social":
        return "Social", domain
    if kind == "email" or medium == "email":
        return "Email", domain
    return ("Referral" if domain else "Direct"), domain


def expect(hit: Hit, ms: int, visitor: str, eid: str) -> Ev:
    """What the worker must make of this hit, by the rules above."""
    b, agent = hit.body, AGENTS[hit.agent]
    utm = utm_of(b)
    channel, domain = channel_of(b.get("referrer"), utm[1], hit.site.domain)
    return Ev(site=hit.site.id, visitor=visitor, ms=ms, eid=eid, etype=b["event_type"],
              path=b["path"],
              name=(b.get("properties") or {}).get("name") if b["event_type"] == "custom"
              else None,
              bot=agent.bot, excluded=hit.site.is_excluded(hit.ip), channel=channel,
              domain=domain, utm=utm, device=agent.device, browser=agent.browser, os=agent.os,
              screen=screen_bucket(b.get("screen_width")), group=hit.site.group_of(b["path"]))


# --- generation --------------------------------------------------------------------

class Ips:
    """Distinct TEST-NET client addresses (never an excluded one unless asked)."""

    def __init__(self) -> None:
        self._pool = [f"192.0.2.{i}" for i in range(1, 255)] + [
            f"198.51.100.{i}" for i in range(20, 255)] + [
            f"203.0.113.{i}" for i in range(1, 250)] + [f"2001:db8:1::{i:x}" for i in
                                                         range(1, 200)]
        self._next = 0

    def take(self) -> str:
        ip = self._pool[self._next % len(self._pool)]
        self._next += 1
        return ip


def visit_bodies(rnd: random.Random, site: Site, source: Source, width: int | None,
                 tag: Any) -> list[dict[str, Any]]:
    """One visit's events as the tracker would send them (SPA: internal referrers)."""
    host = f"www.{site.domain}"
    if rnd.random() < 0.3:
        pages = ["/", "/pricing", "/signup"][: rnd.randint(1, 3)]
    else:
        pages = [rnd.choice(PATHS) for _ in range(rnd.choice((1, 1, 2, 3, 4)))]
    out: list[dict[str, Any]] = []

    def add(etype: str, path: str, referrer: str | None, query: str = "",
            properties: dict[str, Any] | None = None, utm: dict[str, str] | None = None) -> None:
        q = "&".join(x for x in (query, f"{TAG}={tag()}") if x)
        body: dict[str, Any] = {"website_id": site.id, "event_type": etype,
                                "url": f"https://{host}{path}?{q}", "path": path}
        if referrer:
            body["referrer"] = referrer
        if width is not None:
            body["screen_width"], body["screen_height"] = width, width * 2 // 3
        if properties:
            body["properties"] = properties
        body.update(utm or {})
        out.append(body)

    prev: str | None = source.referrer.format(own=site.domain) if source.referrer else None
    for i, path in enumerate(pages):
        if i == 0:
            add("page_view", path, prev, source.url_query, utm=source.body_utm)
        else:
            add("page_view", path, prev)
        prev = f"https://{host}{path}"
        r = rnd.random()
        if path == "/signup" and r < 0.6:
            add("custom", path, prev, properties={"name": "signup_complete", "plan": "pro"})
        elif r < 0.15:
            add("custom", path, prev, properties={"name": rnd.choice(CUSTOM_NAMES), "n": 1})
        elif r < 0.25:
            add("outbound_link", path, prev, properties={"href": "https://github.com/x"})
        elif r < 0.45:
            add(rnd.choice(("scroll_25", "scroll_50", "scroll_75")), path, prev)
    if rnd.random() < 0.4:
        add("close_tab", pages[-1], prev)
    return out


def new_visitor(rnd: random.Random, site: Site, ips: Ips) -> tuple[str, str, int | None]:
    """(ip, agent, screen width): 12 % bots, 10 % from an excluded address."""
    agent = rnd.choice(BOTS) if rnd.random() < 0.12 else rnd.choice(HUMANS)
    ip = rnd.choice(EXCLUDED_IPS) if site.excluded and rnd.random() < 0.1 else ips.take()
    return ip, agent, rnd.choice(AGENTS[agent].widths)


def history_visitor_id(site: Site, day: dt.date, ip: str, agent: str) -> str:
    """Like the collector's: a new id every UTC day (the daily salt)."""
    return hashlib.sha256(f"{day}|{ip}|{AGENTS[agent].ua}|{site.id}".encode()).hexdigest()


def history(rnd: random.Random, sites: list[Site], days: list[dt.date], until_ms: int,
            visitors_per_day: int) -> list[Hit]:
    """Past days' hits with times and visitor ids; nothing at or after `until_ms`."""
    ips = Ips()
    counter = iter(range(10**9))

    def tag() -> str:
        return f"h{next(counter)}"

    out: list[Hit] = []

    def emit(site: Site, ip: str, agent: str, body: dict[str, Any], ms: int) -> None:
        day = dt.date(1970, 1, 1) + dt.timedelta(days=ms // DAY_MS)
        if ms < until_ms:
            out.append(Hit(site, ip, agent, body, ms, history_visitor_id(site, day, ip, agent)))

    for site in sites:
        for day in days:
            start = int(dt.datetime.combine(day, dt.time(), dt.UTC).timestamp()) * 1000
            for _ in range(visitors_per_day):
                ip, agent, width = new_visitor(rnd, site, ips)
                t = start + rnd.randrange(0, 20 * 3600) * 1000
                for _visit in range(rnd.choice((1, 1, 1, 2))):
                    for body in visit_bodies(rnd, site, rnd.choice(SOURCES), width, tag):
                        t += rnd.randint(3, 300) * 1000
                        if t >= start + DAY_MS:
                            break
                        emit(site, ip, agent, body, t)
                    t += GAP_MS + rnd.randint(1, 3600) * 1000
            # A visitor browsing across midnight: 23:50 ... 00:10 (new id after midnight).
            ip, agent, width = ips.take(), rnd.choice(HUMANS), 1920
            bodies = visit_bodies(random.Random(1), site, SOURCES[2], width, tag)
            late = start + DAY_MS - 10 * 60_000
            for i, b in enumerate(bodies[:2]):
                emit(site, ip, agent, b, late + i * 240_000)  # 23:50, 23:54
            host = f"https://www.{site.domain}"
            for j, (etype, path) in enumerate([("page_view", "/pricing"), ("scroll_50", "/pricing"),
                                               ("page_view", "/signup"), ("close_tab", "/signup")]):
                b = {"website_id": site.id, "event_type": etype, "path": path,
                     "url": f"{host}{path}?{TAG}={tag()}", "referrer": f"{host}/",
                     "screen_width": width}
                emit(site, ip, agent, b, start + DAY_MS - 30_000 + j * 200_000)  # 23:59:30 ...
            # Gaps of exactly 30 minutes (same visit) and 30 minutes + 1 s (a new visit).
            ip, agent = ips.take(), rnd.choice(HUMANS)
            t = start + 3 * 3600_000 + rnd.randrange(0, 3600) * 1000
            for j, path in enumerate(["/", "/blog/launch", "/docs/install"]):
                b = {"website_id": site.id, "event_type": "page_view", "path": path,
                     "url": f"https://www.{site.domain}{path}?{TAG}={tag()}"}
                emit(site, ip, agent, b, t + [0, GAP_MS, 2 * GAP_MS + 1000][j])
            # A visitor whose only event is a close_tab: a visitor, not a visit.
            b = {"website_id": site.id, "event_type": "close_tab", "path": "/about",
                 "url": f"https://www.{site.domain}/about?{TAG}={tag()}"}
            emit(site, ips.take(), rnd.choice(HUMANS), b,
                 start + 5 * 3600_000 + rnd.randrange(0, 3600) * 1000)
    out.sort(key=lambda h: h.ms)
    return out


@dataclass
class Planned:
    """One request of today's traffic and the collector's expected answer."""

    hit: Hit
    status: int  # 202, or 204 for bot / excluded / unknown website, 400 for invalid
    stored: bool


def today_plan(rnd: random.Random, sites: list[Site], visitors: int) -> list[list[Planned]]:
    """Today's visitors, each a list of requests in order (one visitor = one client)."""
    ips = Ips()
    ips._next = 500  # other addresses than the history's first ones
    counter = iter(range(10**9))

    def tag() -> str:
        return f"t{next(counter)}"

    out: list[list[Planned]] = []
    for site in sites:
        people = [new_visitor(rnd, site, ips) for _ in range(visitors)]
        # Always at least one crawler and one excluded visitor (IPv6 too on the first site).
        people.append((ips.take(), "googlebot", None))
        if site.excluded:
            people.append((EXCLUDED_IPS[0] if site.excluded[0].startswith("198") else
                           site.excluded[0], "safari_mac", 1440))
        if "2001:db8:ee::/48" in site.excluded:
            people.append(("2001:db8:ee::7", "android_phone", 412))
            people.append(("198.51.100.9", "bingbot", 1024))  # bot AND excluded
        # One client per (address, agent): two would share a visitor id and interleave.
        seen: set[tuple[str, str]] = set()
        for i, (ip, agent, width) in enumerate(people):
            if (ip, agent) in seen:
                people[i] = ip, agent, width = ips.take(), agent, width
            seen.add((ip, agent))
        for ip, agent, width in people:
            bodies = visit_bodies(rnd, site, rnd.choice(SOURCES), width, tag)
            seq = []
            for b in bodies:
                hit = Hit(site, ip, agent, b)
                quiet = AGENTS[agent].bot or site.is_excluded(ip)
                seq.append(Planned(hit, 204 if quiet else 202, True))
            out.append(seq)
    # Never stored: an unknown website (204) and a custom event without a name (400).
    site = sites[0]
    ghost = Site("6f1b2c3d-0000-4000-8000-000000000000", site.domain, (), ())
    out.append([Planned(Hit(ghost, ips.take(), "chrome_win", {
        "website_id": ghost.id, "event_type": "page_view", "path": "/",
        "url": f"https://{site.domain}/?{TAG}={tag()}"}), 204, False)])
    out.append([Planned(Hit(site, ips.take(), "chrome_win", {
        "website_id": site.id, "event_type": "custom", "path": "/", "properties": {"n": 1},
        "url": f"https://{site.domain}/?{TAG}={tag()}"}), 400, False)])
    return out


def raw_of(hit: Hit, event_id: str) -> RawEvent:
    """The message the collector would have produced for `hit` (to send past days
    straight to the raw topic, where the collector would stamp them with today)."""
    b = hit.body
    return RawEvent(
        event_id=event_id, received_at_ms=hit.ms, website_id=hit.site.id,
        visitor_id=hit.visitor, event_type=b["event_type"], url=b["url"], path=b["path"],
        referrer=b.get("referrer"), user_agent=hit.user_agent,
        screen_width=b.get("screen_width"), screen_height=b.get("screen_height"),
        name=b["properties"]["name"] if b["event_type"] == "custom" else None,
        properties=b.get("properties"), utm_source=b.get("utm_source"),
        utm_medium=b.get("utm_medium"), utm_campaign=b.get("utm_campaign"),
        is_bot=AGENTS[hit.agent].bot, is_excluded=hit.site.is_excluded(hit.ip))
