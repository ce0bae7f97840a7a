"""The plain reference of the end-to-end report test: every report from the events.

Input: `Ev`s (tests/reports/traffic.py), i.e. every generated event with its
receive time, visitor id and expected enrichment. Visits are rebuilt here with
loops (a visitor's events of one UTC day, split where consecutive events are more
than 30 minutes apart) and each report's `data` object is computed from them as
the contract, docs/RULES.md and docs/REPORTS.md define it. No code is shared with
the workers or the API; rounding is done with `Decimal` half-up, as the contract's
examples imply (33.333… -> 33.33, 2.5 s -> 3 s).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from tests.reports.traffic import GAP_MS, Ev

ENGAGING = ("custom", "outbound_link")
EVENT_TYPES = ("page_view", "close_tab", "scroll_25", "scroll_50", "scroll_75",
               "outbound_link", "custom")


def num(d: Decimal) -> int | float:
    return int(d) if d == d.to_integral_value() else float(d)


def rate(part: int, whole: int) -> int | float:
    if whole == 0:
        return 0
    return num((Decimal(part) * 100 / whole).quantize(Decimal("0.01"), ROUND_HALF_UP))


def mean_seconds(total: int, n: int) -> int:
    return 0 if n == 0 else int((Decimal(total) / n).quantize(Decimal(1), ROUND_HALF_UP))


def change(value: float | None, previous: float | None) -> float | None:
    if value is None or previous is None or previous == 0:
        return None
    v, p = Decimal(str(value)), Decimal(str(previous))
    return num(((v - p) * 100 / p).quantize(Decimal("0.01"), ROUND_HALF_UP))


@dataclass
class Visit:
    site: str
    visitor: str
    day: dt.date
    events: list[Ev]

    @property
    def bot(self) -> bool:
        return self.events[0].bot

    @property
    def views(self) -> list[Ev]:
        return [e for e in self.events if e.etype == "page_view"]

    @property
    def bounced(self) -> bool:
        return len(self.views) == 1 and not any(e.etype in ENGAGING for e in self.events)

    @property
    def duration(self) -> int:
        """Whole seconds, floored; a bounce counts 0."""
        return 0 if self.bounced else (self.events[-1].ms - self.events[0].ms) // 1000


def visits_of(events: list[Ev]) -> list[Visit]:
    """Every session (with or without a page_view) of the non-excluded events."""
    by_key: dict[tuple[str, str, dt.date], list[Ev]] = defaultdict(list)
    for e in events:
        if not e.excluded:
            by_key[(e.site, e.visitor, e.day)].append(e)
    out = []
    for (site, visitor, day), evs in by_key.items():
        evs.sort(key=lambda e: (e.ms, e.eid))
        current = [evs[0]]
        for e in evs[1:]:
            if e.ms - current[-1].ms > GAP_MS:
                out.append(Visit(site, visitor, day, current))
                current = []
            current.append(e)
        out.append(Visit(site, visitor, day, current))
    return out


class Reference:
    """Reports of one website over [start, end] (inclusive UTC days)."""

    def __init__(self, all_visits: list[Visit], site: str, start: dt.date, end: dt.date,
                 bots: bool, group: str | None = None) -> None:
        self.start, self.end, self.group = start, end, group
        self.sessions = [v for v in all_visits if v.site == site and start <= v.day <= end
                         and (bots or not v.bot)]
        self.visits = [v for v in self.sessions if v.views]

    def period(self) -> dict[str, str]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat()}

    def days(self) -> list[dt.date]:
        return [self.start + dt.timedelta(days=i) for i in range((self.end - self.start).days + 1)]

    def in_group(self, e: Ev) -> bool:
        return self.group is None or e.group == self.group

    # --- summary ---------------------------------------------------------------------
    def figures(self) -> dict[str, Any]:
        g = self.group
        if g is None:
            landed = self.visits
            visits = len(self.visits)
            visitors: int | None = len({(v.visitor, v.day) for v in self.sessions})
        else:
            landed = [v for v in self.visits if v.views[0].group == g]
            visits = sum(1 for v in self.visits if any(e.group == g for e in v.views))
            visitors = None
        pageviews = sum(1 for v in self.visits for e in v.views if self.in_group(e))
        return {"visits": visits, "unique_visitors": visitors, "pageviews": pageviews,
                "bounce_rate": rate(sum(v.bounced for v in landed), len(landed)),
                "avg_session_duration_sec": mean_seconds(sum(v.duration for v in landed),
                                                         len(landed))}

    def summary(self, previous: Reference | None = None) -> dict[str, Any]:
        now = self.figures()
        if previous is None:
            return {"period": self.period(), "metrics": {m: {"value": x} for m, x in now.items()}}
        before = previous.figures()
        return {"period": self.period(),
                "comparison": f"{previous.start.isoformat()} to {previous.end.isoformat()}",
                "metrics": {m: {"value": now[m], "previous": before[m],
                                "change_pct": change(now[m], before[m])} for m in now}}

    # --- pages, flow -------------------------------------------------------------------
    def page_rows(self) -> list[dict[str, Any]]:
        pv: Counter[tuple[str, str | None]] = Counter()
        upv: Counter[tuple[str, str | None]] = Counter()
        for v in self.visits:
            keys = [(e.path, e.group) for e in v.views if self.in_group(e)]
            pv.update(keys)
            upv.update(set(keys))
        order = sorted(pv, key=lambda k: (-pv[k], k[0], k[1] or ""))
        return [{"path": p, "contentGroup": g, "pageviews": pv[(p, g)],
                 "uniquePageviews": upv[(p, g)]} for p, g in order]

    def pages(self, page: int = 1, per_page: int = 50) -> dict[str, Any]:
        rows = self.page_rows()[(page - 1) * per_page: page * per_page]
        return {"period": self.period(), "page": page, "per_page": per_page, "rows": rows}

    def flow(self, page: int = 1, per_page: int = 50) -> dict[str, Any]:
        entries = Counter(v.views[0].path for v in self.visits if self.in_group(v.views[0]))
        exits = Counter(v.views[-1].path for v in self.visits if self.in_group(v.views[-1]))
        cut = slice((page - 1) * per_page, page * per_page)
        return {"period": self.period(),
                "landing_pages": [{"path": p, "entries": n} for p, n in ranked(entries)[cut]],
                "exit_pages": [{"path": p, "exits": n} for p, n in ranked(exits)[cut]]}

    # --- sources, devices ------------------------------------------------------------
    def sources(self, group_by: str, page: int = 1, per_page: int = 50) -> dict[str, Any]:
        counts: Counter[Any] = Counter()
        for v in self.visits:
            first = v.events[0]
            if group_by == "channel":
                counts[first.channel] += 1
            elif group_by == "domain" and first.domain:
                counts[first.domain] += 1
            elif group_by == "utm" and any(first.utm):
                counts[first.utm] += 1

        def key(k: Any) -> str:
            return "\x1f".join(x or "" for x in k) if group_by == "utm" else k

        order = sorted(counts, key=lambda k: (-counts[k], key(k)))
        rows = []
        for k in order[(page - 1) * per_page: page * per_page]:
            if group_by == "channel":
                rows.append({"channel": k, "visits": counts[k]})
            elif group_by == "domain":
                rows.append({"referrer": k, "visits": counts[k]})
            else:
                rows.append({"utmSource": k[0], "utmMedium": k[1], "utmCampaign": k[2],
                             "visits": counts[k]})
        return {"period": self.period(), "page": page, "per_page": per_page, "rows": rows}

    def devices(self) -> dict[str, Any]:
        out: dict[str, Any] = {"period": self.period()}
        for name, field, attr in (("device_types", "deviceType", "device"),
                                  ("browsers", "browserFamily", "browser"),
                                  ("os_families", "osFamily", "os"),
                                  ("screen_resolutions", "bucket", "screen")):
            c = Counter(getattr(v.events[0], attr) for v in self.visits)
            out[name] = [{field: k, "visits": n} for k, n in ranked(c)]
        return out

    # --- custom events, funnel -----------------------------------------------------
    def custom_events(self, name: str | None = None, page: int = 1,
                      per_page: int = 50) -> dict[str, Any]:
        c = Counter(e.name for v in self.sessions for e in v.events
                    if e.etype == "custom" and (name is None or e.name == name))
        rows = [{"name": k, "count": n} for k, n in ranked(c)]
        return {"period": self.period(), "page": page, "per_page": per_page,
                "rows": rows[(page - 1) * per_page: page * per_page]}

    def funnel(self, steps: list[str]) -> dict[str, Any]:
        reached = [0] * len(steps)
        for v in self.sessions:
            k, last = 0, None
            for e in v.events:
                if k == len(steps):
                    break
                s = steps[k]
                if s.startswith("/"):
                    hit = e.etype == "page_view" and e.path == s
                elif s in EVENT_TYPES:
                    hit = e.etype == s
                else:
                    hit = e.etype == "custom" and e.name == s
                if hit and (last is None or e.ms > last):
                    reached[k] += 1
                    k, last = k + 1, e.ms
        return {"period": self.period(), "funnel": [
            {"step": s, "sessions": n, "conversion_rate": 100 if i == 0
             else rate(n, reached[i - 1])} for i, (s, n) in enumerate(zip(steps, reached,
                                                                         strict=True))]}

    # --- timeseries ---------------------------------------------------------------------
    def timeseries(self, metric: str, path: str | None = None) -> dict[str, Any]:
        def on_path(e: Ev) -> bool:
            return (path is None or e.path == path) and self.in_group(e)

        scoped = path is not None or self.group is not None
        series = []
        for day in self.days():
            vs = [v for v in self.visits if v.day == day]
            landed = [v for v in vs if on_path(v.views[0])] if scoped else vs
            if metric == "visits" and scoped:
                value: float = sum(1 for v in vs if any(on_path(e) for e in v.views))
            elif metric == "visits":
                value = len(vs)
            elif metric == "pageviews":
                value = sum(1 for v in vs for e in v.views if on_path(e))
            elif metric == "unique_pageviews":
                value = sum(len({e.path for e in v.views if on_path(e)}) for v in vs)
            elif metric == "bounce_rate":
                value = rate(sum(v.bounced for v in landed), len(landed))
            elif metric == "avg_session_duration":
                value = mean_seconds(sum(v.duration for v in landed), len(landed))
            elif metric == "landing_page_entries":
                value = len(landed)
            else:  # exit_page_exits
                value = sum(1 for v in vs if on_path(v.views[-1]))
            series.append({"date": day.isoformat(), "value": value})
        return {"period": self.period(), "metric": metric,
                "path": path if path is not None else "*", "series": series}


def ranked(c: Counter[Any]) -> list[tuple[Any, int]]:
    """Count descending, then key in code-point order (what COLLATE "C" gives)."""
    return sorted(((k, n) for k, n in c.items() if n), key=lambda kv: (-kv[1], kv[0]))


def realtime(events: list[Ev], site: str, now_ms: int) -> dict[str, Any]:
    """Last 30 minutes, humans only: visitors and pages by their last event in
    (now − 30 min, now]; event types from the 30 one-minute windows ending now."""
    live = [e for e in events if e.site == site and not e.bot and not e.excluded
            and e.ms <= now_ms]
    recent = [e for e in live if e.ms > now_ms - GAP_MS]
    minute = now_ms // 60_000
    types = Counter(e.etype for e in live if minute - 29 <= e.ms // 60_000 <= minute)
    pages = Counter(p for p, _ in {(e.path, e.visitor) for e in recent
                                   if e.etype == "page_view"})
    return {"active_visitors": len({e.visitor for e in recent}),
            "top_pages": [{"path": p, "visitors": n} for p, n in ranked(pages)[:10]],
            "events_by_type": [{"eventType": t, "count": n} for t, n in ranked(types)]}
