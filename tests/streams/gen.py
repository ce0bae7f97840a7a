"""Generated realistic traffic for the stream tests and the benchmark."""

from __future__ import annotations

import hashlib
import random
import uuid

from tinytrail.event import RawEvent

AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/126.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)"
    " Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like"
    " Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/126.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko)"
    " Version/17.0 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0",
)
REFERRERS = (None, None, "https://www.google.com/search?q=x", "https://t.co/abc",
             "https://news.ycombinator.com/", "https://blog.example.org/post",
             "https://mail.google.com/", "https://{own}/previous")
PATHS = ("/", "/pricing", "/blog/a", "/blog/b", "/docs/start", "/docs/api", "/about")
TYPES = ("page_view",) * 6 + ("scroll_25", "scroll_50", "close_tab", "outbound_link", "custom")
WIDTHS = (None, 360, 390, 800, 1280, 1920)
COUNTRIES = ("DE", "US", "FR", None, "JP", "BR", "GB")  # None: no country (private address)


def visitor_id(n: int, site: str) -> str:
    return hashlib.sha256(f"{site}:{n}".encode()).hexdigest()


def traffic(
    rng: random.Random,
    sites: list[tuple[str, str]],
    n_events: int,
    start_ms: int,
    span_ms: int,
    visitors: int = 50,
    excluded_share: float = 0.03,
) -> list[RawEvent]:
    """`n_events` events over [start_ms, start_ms + span_ms) for (website_id, domain) sites."""
    out = []
    for _ in range(n_events):
        site, domain = rng.choice(sites)
        v = rng.randrange(visitors)
        ua = AGENTS[v % len(AGENTS)]
        etype = rng.choice(TYPES)
        path = rng.choice(PATHS)
        ref = rng.choice(REFERRERS)
        utm = rng.random() < 0.2
        # A visitor's country is fixed, except now and then (the collector's database
        # changed during the visit): aggregates must stay exact either way.
        country = COUNTRIES[v % len(COUNTRIES)] if rng.random() < 0.97 else rng.choice(
            COUNTRIES)
        out.append(
            RawEvent(
                event_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                received_at_ms=start_ms + rng.randrange(span_ms),
                website_id=site,
                visitor_id=visitor_id(v, site),
                event_type=etype,
                url=f"https://{domain}{path}" + ("?utm_source=nl&utm_medium=email" if utm else ""),
                path=path,
                referrer=ref.format(own=domain) if ref else None,
                user_agent=ua,
                screen_width=WIDTHS[v % len(WIDTHS)],
                name=rng.choice(("signup", "buy")) if etype == "custom" else None,
                properties={"plan": "pro"} if etype == "custom" else None,
                is_bot="bot" in ua,
                is_excluded=(v % 37 == 0) and rng.random() < excluded_share * 30,
                country=country,
            )
        )
    return out
