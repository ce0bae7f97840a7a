"""Sessions and what they contribute to the daily aggregates: the one place that defines it.

The stream (`streams/sink.py`), the bulk load (`streams/bulk.py`) and the rebuild
(`streams/rebuild.py`) run every event through `apply_event` and count every session
with `add_contribution`, so they give the same figures by construction.

Two kinds of figures (see the comments in migrations/0002_aggregates.sql):
* per-event counts, added by `apply_event` when the event joins its session:
  events, pageviews, event types, custom event names, page / content-group
  pageviews, and unique pageviews (+1 the first time a visit views a path);
* per-session figures, `add_contribution(deltas, session)`: visitors, visits, bounces,
  duration, landing (entries) and exit pages, channel, referrer, UTM, device,
  browser, OS and screen visits. These change as a visit grows (a bounce stops
  being one, the exit page moves), so the stream adds
  contribution(after) - contribution(before) (`add_change`) for every session a
  batch touches: Plausible's sign-collapsing idea. Worked example: a visit with one
  page_view on /a contributes visits=1, bounces=1, entries(/a)=1, exits(/a)=1.
  A second page_view on /b arrives: the new contribution is visits=1,
  bounces=0, entries(/a)=1, exits(/b)=1, so the delta is bounces -1,
  exits(/a) -1, exits(/b) +1 and visits 0.

A session is keyed (website, visitor, UTC day, is_bot, kpart): it never crosses
a day, and all its events share the bot verdict and the Kafka partition, so
each of its figures lands in exactly one aggregate row set.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass, field

from streams.models import Enriched
from tinytrail.days import day_of
from tinytrail.ids import new_uuid4

GAP_MS = 30 * 60 * 1000  # 30-minute inactivity gap, on event time

# Counter positions; agg_site_daily uses VISITORS..EVENTS minus the page-only ones.
VISITORS, VISITS, PAGEVIEWS, UNIQUE, ENTRIES, EXITS, BOUNCES, DURATION, EVENTS = range(9)
N_COUNTERS = 9
ENGAGING = frozenset({"custom", "outbound_link"})
PAGE_IN = "page:"  # dim "page:DE": the page rows of visits from one country

# (website_id, day ordinal, is_bot, kpart, dim, key, grp); dim "" = the agg_site_daily row.
AggKey = tuple[str, int, bool, int, str, str, str]
SessionKey = tuple[str, str, int, bool, int]  # website, visitor, day ordinal, is_bot, kpart


class Deltas(dict[AggKey, list[int]]):
    """Counter changes combined per aggregate key."""

    def row(self, key: AggKey) -> list[int]:
        """The counter row of `key`, created (all zeros) when missing."""
        r = self.get(key)
        if r is None:
            r = self[key] = [0] * N_COUNTERS
        return r

    def nonzero(self) -> dict[AggKey, list[int]]:
        return {k: v for k, v in self.items() if any(v)}


@dataclass(slots=True)
class Session:
    session_id: str
    website_id: str
    visitor_id: str
    day: int
    kpart: int
    is_bot: bool
    first_of_day: bool
    first_ms: int
    last_ms: int
    first_eid: str
    channel: str
    referrer_domain: str | None
    utm_source: str | None
    utm_medium: str | None
    utm_campaign: str | None
    device_type: str
    browser_family: str
    os_family: str
    screen_bucket: str
    pageviews: int = 0
    events: int = 0
    engaged: bool = False
    landing_ms: int | None = None
    landing_eid: str | None = None
    landing_path: str | None = None
    landing_group: str | None = None
    exit_ms: int | None = None
    exit_eid: str | None = None
    exit_path: str | None = None
    exit_group: str | None = None
    seen_pages: set[tuple[str, str]] = field(default_factory=set)
    seen_groups: set[str] = field(default_factory=set)
    # Last, with a default: changelog values written before it existed still decode.
    country: str = ""  # of the first event ('' = unknown)

    @property
    def key(self) -> SessionKey:
        return (self.website_id, self.visitor_id, self.day, self.is_bot, self.kpart)

    def copy(self) -> Session:
        c = copy.copy(self)
        c.seen_pages = set(self.seen_pages)
        c.seen_groups = set(self.seen_groups)
        return c

    def _take_dims(self, ev: Enriched) -> None:
        self.first_ms, self.first_eid = ev.received_at_ms, ev.event_id
        self.channel, self.referrer_domain = ev.referrer_channel, ev.referrer_domain
        self.utm_source, self.utm_medium = ev.utm_source, ev.utm_medium
        self.utm_campaign = ev.utm_campaign
        self.device_type, self.browser_family = ev.device_type, ev.browser_family
        self.os_family, self.screen_bucket = ev.os_family, ev.screen_bucket
        self.country = ev.country or ""


new_session_id = new_uuid4  # a random (version 4) UUID string (tinytrail.ids)


def session_key(ev: Enriched) -> SessionKey:
    return (ev.website_id, ev.visitor_id, day_of(ev.received_at_ms), ev.is_bot, ev.kafka_partition)


def new_session(ev: Enriched, session_id: str, first_of_day: bool) -> Session:
    """An empty session whose session-level dimensions come from `ev` (then apply `ev`)."""
    s = Session(
        session_id=session_id, website_id=ev.website_id, visitor_id=ev.visitor_id,
        day=day_of(ev.received_at_ms), kpart=ev.kafka_partition, is_bot=ev.is_bot,
        first_of_day=first_of_day, first_ms=ev.received_at_ms, last_ms=ev.received_at_ms,
        first_eid=ev.event_id, channel="", referrer_domain=None, utm_source=None,
        utm_medium=None, utm_campaign=None, device_type="", browser_family="", os_family="",
        screen_bucket="",
    )
    s._take_dims(ev)
    return s


def joins(s: Session | None, ev: Enriched) -> bool:
    """Does `ev` continue `s` (the visitor's latest session that day)?

    Same UTC day and at most 30 minutes after the session's last event, on event
    time. An event older than the last one (out of order) joins too.
    Example: last_ms = 10:00:00; an event at 10:29:59 joins, one at 10:30:01 starts
    a new visit, and a late one stamped 09:50 joins (and may move first_ms back).
    """
    return (
        s is not None
        and s.day == day_of(ev.received_at_ms)
        and ev.received_at_ms - s.last_ms <= GAP_MS
    )


def apply_event(s: Session, ev: Enriched, acc: Deltas) -> None:
    """Add `ev` to `s` and its per-event counts to `acc`. Order of events does not matter."""
    w, d, b, k = s.website_id, s.day, s.is_bot, s.kpart
    row = acc.row  # hot path: one dict lookup per aggregate key, no per-counter calls
    site = row((w, d, b, k, "", "", ""))
    s.events += 1
    site[EVENTS] += 1
    etype = ev.event_type
    row((w, d, b, k, "event_type", etype, ""))[EVENTS] += 1
    if etype == "custom" and ev.name:
        row((w, d, b, k, "custom_event", ev.name, ""))[EVENTS] += 1
    if etype in ENGAGING:
        s.engaged = True
    ms, eid = ev.received_at_ms, ev.event_id
    if ms < s.first_ms or (ms == s.first_ms and eid < s.first_eid):
        s._take_dims(ev)
    if ms > s.last_ms:
        s.last_ms = ms
    cc = ev.country or ""
    by_country = row((w, d, b, k, "country", cc, ""))
    by_country[EVENTS] += 1
    if etype != "page_view":
        return
    path = ev.path
    grp = ev.content_group or ""
    s.pageviews += 1
    site[PAGEVIEWS] += 1
    by_country[PAGEVIEWS] += 1
    page = row((w, d, b, k, "page", path, grp))
    page[PAGEVIEWS] += 1
    if cc:
        row((w, d, b, k, PAGE_IN + cc, path, grp))[PAGEVIEWS] += 1
    pg = (path, grp)
    if pg not in s.seen_pages:
        s.seen_pages.add(pg)
        page[UNIQUE] += 1
    if grp:
        cg = row((w, d, b, k, "content_group", grp, ""))
        cg[PAGEVIEWS] += 1
        if grp not in s.seen_groups:
            s.seen_groups.add(grp)
            cg[UNIQUE] += 1
    key = (ms, eid)
    if s.landing_ms is None or key < (s.landing_ms, s.landing_eid or ""):
        s.landing_ms, s.landing_eid, s.landing_path, s.landing_group = ms, eid, path, grp
    if s.exit_ms is None or key > (s.exit_ms, s.exit_eid or ""):
        s.exit_ms, s.exit_eid, s.exit_path, s.exit_group = ms, eid, path, grp


def add_contribution(acc: Deltas, s: Session, sign: int = 1) -> None:
    """acc += sign * (the session-level figures `s` adds to the aggregates; module doc).

    Written against `Deltas.row` directly (no intermediate Deltas): the stream calls
    it twice per touched session and batch, the rebuild once per session."""
    row = acc.row
    w, d, b, k = s.website_id, s.day, s.is_bot, s.kpart
    base = row((w, d, b, k, "", "", ""))
    country = row((w, d, b, k, "country", s.country, ""))
    if s.first_of_day:
        base[VISITORS] += sign
        country[VISITORS] += sign
    if s.pageviews < 1:
        return  # not a visit: no visit-level figures
    bounce = sign if s.pageviews == 1 and not s.engaged else 0
    # Whole seconds, floored: 61,999 ms -> 61 s. Bounces count as 0.
    dur = 0 if bounce else sign * ((s.last_ms - s.first_ms) // 1000)
    if s.country:
        # Unique pageviews by country = visits (of that country) that viewed the page.
        page_in = PAGE_IN + s.country
        for path, grp in s.seen_pages:
            row((w, d, b, k, page_in, path, grp))[UNIQUE] += sign
    for r in (base, country, row((w, d, b, k, "channel", s.channel, ""))):
        r[VISITS] += sign
        r[BOUNCES] += bounce
        r[DURATION] += dur
    if s.referrer_domain:
        row((w, d, b, k, "referrer", s.referrer_domain, ""))[VISITS] += sign
    if s.utm_source or s.utm_medium or s.utm_campaign:
        triple = "\x1f".join(v or "" for v in (s.utm_source, s.utm_medium, s.utm_campaign))
        row((w, d, b, k, "utm", triple, ""))[VISITS] += sign
    row((w, d, b, k, "device", s.device_type, ""))[VISITS] += sign
    row((w, d, b, k, "browser", s.browser_family, ""))[VISITS] += sign
    row((w, d, b, k, "os", s.os_family, ""))[VISITS] += sign
    row((w, d, b, k, "screen", s.screen_bucket, ""))[VISITS] += sign
    landing = row((w, d, b, k, "page", s.landing_path or "", s.landing_group or ""))
    landing[ENTRIES] += sign
    landing[BOUNCES] += bounce
    landing[DURATION] += dur
    row((w, d, b, k, "page", s.exit_path or "", s.exit_group or ""))[EXITS] += sign
    if s.landing_group:
        row((w, d, b, k, "content_group", s.landing_group, ""))[ENTRIES] += sign


def add_change(acc: Deltas, before: Session | None, after: Session) -> None:
    """acc += contribution(after) - contribution(before)."""
    if before is not None:
        add_contribution(acc, before, -1)
    add_contribution(acc, after, 1)


def assign_sessions(
    live: Iterable[Enriched], latest: dict[SessionKey, Session | None], deltas: Deltas,
) -> list[Session]:
    """THE session assignment (stream batch and bulk load; the rebuild only folds the
    session ids stored by it). Each event of `live` (not excluded, in arrival order)
    joins its key's latest session when `joins` says so, else starts a new one (with
    `first_of_day` when the key had none). Stamps `e.session_id`, adds the per-event
    figures and, per touched session, contribution(after) - contribution(before) to
    `deltas`.

    `latest`: session key -> the key's latest committed session (None or missing:
    none yet); updated in place with the new latest sessions. A committed session is
    copied when first touched, so the caller's store keeps the committed state until
    it publishes. Returns the touched sessions (new ones and the copies), in the
    order first touched. Example: one visitor's events at 10:00, 10:20, 10:55 with no
    stored session -> two sessions (10:00-10:20 counts the visitor, then 10:55)."""
    touched: dict[str, Session] = {}
    get = latest.get
    for e in live:
        k = (e.website_id, e.visitor_id, day_of(e.received_at_ms), e.is_bot,
             e.kafka_partition)  # = session_key(e), inlined on the hot path
        s = get(k)
        if s is not None and joins(s, e):
            if s.session_id not in touched:  # a stored session, first touched now
                add_contribution(deltas, s, -1)
                s = latest[k] = s.copy()
                touched[s.session_id] = s
        else:  # a new visit starts after the latest one, so it becomes the latest
            s = new_session(e, new_session_id(), first_of_day=s is None)
            touched[s.session_id] = s
            latest[k] = s
        e.session_id = s.session_id
        apply_event(s, e, deltas)
    for s in touched.values():
        add_contribution(deltas, s, 1)
    return list(touched.values())
