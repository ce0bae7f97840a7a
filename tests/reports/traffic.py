"""Realistic multi-day traffic for the end-to-end report test, and its plain reference.

Visitors on several websites over several UTC days: multi-page visits, a second
visit after a gap over 30 minutes, bots, excluded IPs, UTM campaigns, search and
social referrers, content groups, custom and outbound events. Every timestamp is a
whole second, so durations need no rounding convention. The reference below
recomputes each report from these events with plain loops, sharing no code with
the workers or the API.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

from tinytrail.event import RawEvent

UA = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
      "Chrome/124.0.0.0 Safari/537.36")
PATHS = ["/", "/pricing", "/signup", "/blog/a", "/blog/b", "/docs/x"]
GROUPS = [{"name": "Blog", "pattern": "/blog/*"}, {"name": "Docs", "pattern": "/docs/*"}]
REFERRERS = [(None, "Direct"), ("https://www.google.com/search?q=x", "Organic Search"),
             ("https://t.co/abc", "Social")]
GAP_MS = 30 * 60 * 1000


def group_of(path: str) -> str | None:
    if path.startswith("/blog/"):
        return "Blog"
    if path.startswith("/docs/"):
        return "Docs"
    return None


@dataclass(frozen=True)
class Ev:
    raw: RawEvent
    channel: str  # what the reference expects for the visit when this is its first event
    day: dt.date


def generate(rnd: random.Random, sites: list[str], days: list[dt.date], now_ms: int,
             visitors_per_day: int) -> list[Ev]:
    out: list[Ev] = []
    for site in sites:
        for day in days:
            start = int(dt.datetime.combine(day, dt.time(), dt.UTC).timestamp()) * 1000
            end = min(start + 86_400_000, now_ms - 60_000)
            for v in range(visitors_per_day):
                vid = hashlib.sha256(f"{site}{day}{v}".encode()).hexdigest()
                bot, excluded = rnd.random() < 0.1, rnd.random() < 0.07
                room = max(1, (end - start) // 2 - 4 * 3_600_000)
                t = start + rnd.randrange(0, room) // 1000 * 1000
                for _visit in range(rnd.choice((1, 1, 2))):
                    ref, channel = rnd.choice(REFERRERS)
                    utm = ("twitter", "social", "launch") if rnd.random() < 0.2 else (None,) * 3
                    for i in range(rnd.randint(1, 6)):
                        t += rnd.randint(1, 240) * 1000
                        if t >= end:
                            break
                        r = rnd.random()
                        path = rnd.choice(PATHS)
                        etype, name = "page_view", None
                        if i > 0 and r < 0.12:
                            etype, name = "custom", rnd.choice(("signup_complete", "=video"))
                        elif i > 0 and r < 0.2:
                            etype = "outbound_link"
                        elif i > 0 and r < 0.3:
                            etype = rnd.choice(("scroll_50", "close_tab"))
                        raw = RawEvent(
                            event_id=str(uuid.UUID(int=rnd.getrandbits(128), version=4)),
                            received_at_ms=t, website_id=site, visitor_id=vid,
                            event_type=etype, url=f"https://e.example{path}", path=path,
                            referrer=ref if i == 0 else None, user_agent=UA,
                            screen_width=1920, screen_height=1080, name=name,
                            properties={"name": name} if name else None,
                            utm_source=utm[0] if i == 0 else None,
                            utm_medium=utm[1] if i == 0 else None,
                            utm_campaign=utm[2] if i == 0 else None,
                            is_bot=bot, is_excluded=excluded)
                        out.append(Ev(raw, channel, day))
                    t += GAP_MS + rnd.randint(60, 600) * 1000  # the next visit
    return out


@dataclass
class Visit:
    site: str
    day: dt.date
    visitor: str
    bot: bool
    events: list[Ev]

    @property
    def views(self) -> list[RawEvent]:
        return [e.raw for e in self.events if e.raw.event_type == "page_view"]


def visits_of(events: list[Ev]) -> list[Visit]:
    """Sessions: a visitor's events of one day split where the gap exceeds 30 minutes."""
    by_visitor: dict[tuple[str, str, dt.date], list[Ev]] = defaultdict(list)
    for e in events:
        if not e.raw.is_excluded:
            by_visitor[(e.raw.website_id, e.raw.visitor_id, e.day)].append(e)
    out = []
    for (site, visitor, day), evs in by_visitor.items():
        evs.sort(key=lambda e: e.raw.received_at_ms)
        cur: list[Ev] = []
        for e in evs:
            if cur and e.raw.received_at_ms - cur[-1].raw.received_at_ms > GAP_MS:
                out.append(Visit(site, day, visitor, cur[0].raw.is_bot, cur))
                cur = []
            cur.append(e)
        out.append(Visit(site, day, visitor, cur[0].raw.is_bot, cur))
    return out


def reference(events: list[Ev], site: str, first: dt.date, last: dt.date,
              bots: bool) -> dict[str, Any]:
    """Every figure the reports show, for one site, days [first, last]."""
    vs = [v for v in visits_of(events)
          if v.site == site and first <= v.day <= last and (bots or not v.bot)]
    counted = [v for v in vs if v.views]
    pageviews = sum(len(v.views) for v in vs)
    bounced = [len(v.views) == 1 and not any(
        e.raw.event_type in ("custom", "outbound_link") for e in v.events) for v in counted]
    bounces = sum(bounced)
    # Bounces count as 0 seconds (DECISIONS.md), even when a scroll or close_tab followed.
    duration = sum(0 if b else (v.events[-1].raw.received_at_ms
                                - v.events[0].raw.received_at_ms) // 1000
                   for v, b in zip(counted, bounced, strict=True))
    pv, upv, entries, exits = Counter(), Counter(), Counter(), Counter()
    channels, utm, customs, daily_pv = Counter(), Counter(), Counter(), Counter()
    for v in vs:
        for r in v.views:
            pv[r.path] += 1
            daily_pv[v.day] += 1
        for path in {r.path for r in v.views}:
            upv[path] += 1
        for e in v.events:
            if e.raw.event_type == "custom":
                customs[e.raw.name] += 1
        if v.views:
            entries[v.views[0].path] += 1
            exits[v.views[-1].path] += 1
            channels[v.events[0].channel] += 1
            first = v.events[0].raw
            if first.utm_source:
                utm[(first.utm_source, first.utm_medium, first.utm_campaign)] += 1
    return {
        "visits": len(counted), "pageviews": pageviews, "bounces": bounces,
        "duration": duration,
        "visitors": len({(v.visitor, v.day) for v in vs}),
        "pv": pv, "upv": upv, "entries": entries, "exits": exits, "channels": channels,
        "utm": utm, "customs": customs, "daily_pv": daily_pv, "visits_list": vs,
    }


def funnel_counts(visits: list[Visit], steps: list[str]) -> list[int]:
    reached = [0] * len(steps)
    for v in visits:
        k = 0
        for e in v.events:
            r = e.raw
            hit = (r.event_type == "page_view" and r.path == steps[k]) if steps[k].startswith(
                "/") else (r.event_type == steps[k] or (r.event_type == "custom"
                                                         and r.name == steps[k]))
            if hit:
                reached[k] += 1
                k += 1
                if k == len(steps):
                    break
    return reached
