"""Sessions and contributions (pure): the stream's deltas equal the batch fold, whatever
the batch split and arrival order; each event lands in exactly one realtime window."""

from __future__ import annotations

import hashlib
import random
import uuid

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.models import Enriched
from streams.rebuild import SessionFolder
from streams.sessions import (
    BOUNCES,
    EXITS,
    VISITS,
    Deltas,
    Session,
    add_change,
    apply_event,
    day_of,
    joins,
    new_session,
    session_key,
)
from streams.windows import count_windows, window_key
from tinytrail.event import RawEvent

SITE = str(uuid.UUID(int=1))
BASE = 1_700_000_000_000 - 1_700_000_000_000 % 86_400_000 + 22 * 3600 * 1000  # 22:00 UTC


def mk(i: int, visitor: int, t: int, etype: str, path: str) -> Enriched:
    raw = RawEvent(event_id=str(uuid.UUID(int=i + 10)), received_at_ms=BASE + t, website_id=SITE,
                   visitor_id=f"{visitor:064x}", event_type=etype, url="https://x/", path=path,
                   name="n" if etype == "custom" else None,
                   # mostly the visitor's country; every 7th event another one (the
                   # collector's database changed mid-visit): figures must stay exact
                   country=("DE", "FR", None)[visitor % 3] if i % 7 else ("US", None)[i % 2])
    e = Enriched.from_raw(raw, visitor % 3, i)
    e.content_group = "G" if path.startswith("/g") else None
    return e


def stream_fold(events: list[Enriched], cuts: list[int]) -> Deltas:
    """What the sink does in memory: per batch, join/create sessions, add deltas."""
    latest: dict[tuple, Session] = {}
    acc = Deltas()
    bounds = sorted({0, len(events), *[c % (len(events) + 1) for c in cuts]})
    n = 0
    for lo, hi in zip(bounds, bounds[1:], strict=False):
        before: dict[str, Session | None] = {}
        work: dict[str, Session] = {}
        for e in events[lo:hi]:
            k = session_key(e)
            s = latest.get(k)
            if s is not None and s.session_id not in work:
                before[s.session_id] = s
                s = work[s.session_id] = s.copy()
                latest[k] = s
            if not joins(s, e):
                n += 1
                # ids in no particular order, as the sink's random ones: the rebuild,
                # which reads sessions by id, must not depend on their order
                sid = hashlib.sha256(str(n).encode()).hexdigest()
                s = new_session(e, sid, first_of_day=s is None)
                before[s.session_id] = None
                work[s.session_id] = s
                latest[k] = s
            e.session_id = s.session_id
            apply_event(s, e, acc)
        for sid, s in work.items():
            add_change(acc, before[sid], s)
    return acc


event_st = st.tuples(
    st.integers(0, 4),  # visitor
    st.integers(0, 4 * 3600 * 1000),  # time offset (crosses midnight at 2 h)
    st.sampled_from(["page_view", "page_view", "scroll_25", "custom", "outbound_link",
                     "close_tab"]),
    st.sampled_from(["/", "/a", "/g/1", "/g/2"]),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(event_st, min_size=1, max_size=60), st.lists(st.integers(0, 60), max_size=6),
       st.randoms(use_true_random=False))
def test_stream_deltas_equal_rebuild_fold(spec: list, cuts: list[int], rnd: random.Random) -> None:
    events = [mk(i, *s) for i, s in enumerate(spec)]
    rnd.shuffle(events)  # arrival order is not time order
    for n, e in enumerate(events):
        e.kafka_offset = n  # but it is offset order (one partition's messages, in order)
    acc = stream_fold(events, cuts)
    folder = SessionFolder()
    for e in sorted(events, key=lambda e: e.session_id):
        folder.add(e)
    folder.flush()
    assert acc.nonzero() == folder.deltas.nonzero()
    # Every session stays inside one UTC day.
    days: dict[str, set[int]] = {}
    for e in events:
        days.setdefault(e.session_id, set()).add(day_of(e.received_at_ms))
    assert all(len(d) == 1 for d in days.values())


def test_second_pageview_turns_a_bounce_into_a_visit_and_moves_the_exit() -> None:
    a, b = mk(1, 1, 0, "page_view", "/a"), mk(2, 1, 61_999, "page_view", "/b")
    s = new_session(a, "s", True)
    acc = Deltas()
    apply_event(s, a, acc)
    add_change(acc, None, s)
    before = s.copy()
    step = Deltas()
    apply_event(s, b, step)
    add_change(step, before, s)
    site = (SITE, s.day, False, s.kpart, "", "", "")
    assert step[site][VISITS] == 0 and step[site][BOUNCES] == -1
    assert step[(SITE, s.day, False, s.kpart, "page", "/a", "")][EXITS] == -1
    assert step[(SITE, s.day, False, s.kpart, "page", "/b", "")][EXITS] == 1
    assert step[site][7] == 61  # duration: 61,999 ms -> 61 whole seconds


def test_thirty_minute_gap_on_event_time() -> None:
    a = mk(1, 1, 0, "page_view", "/")
    s = new_session(a, "s", True)
    assert joins(s, mk(2, 1, 30 * 60 * 1000, "page_view", "/"))
    assert not joins(s, mk(3, 1, 30 * 60 * 1000 + 1, "page_view", "/"))
    assert joins(s, mk(4, 1, -3600 * 1000, "page_view", "/"))  # late event joins
    assert not joins(s, mk(5, 1, 2 * 3600 * 1000 + 1, "page_view", "/"))  # next UTC day


@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 3 * 3600 * 1000),
                          st.sampled_from(["page_view", "custom"]), st.just("/")), max_size=80))
def test_each_event_lands_in_exactly_one_window(spec: list) -> None:
    events = [mk(i, *s) for i, s in enumerate(spec)]
    windows = count_windows(events)
    assert sum(sum(c.values()) for c in windows.values()) == len(events)
    for e in events:
        start = int(window_key(e).rsplit("|", 1)[1]) * 60_000
        assert start <= e.received_at_ms < start + 60_000


def test_new_session_ids_are_distinct_version_4_uuids() -> None:
    from streams.sessions import new_session_id

    ids = [new_session_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    for i in ids[:200]:
        u = uuid.UUID(i)
        assert (str(u), u.version, u.variant) == (i, 4, uuid.RFC_4122)
