"""The session store's pure parts: the changelog codec, table keys, and the fold that
reloads sessions from stored events (it must give back exactly the sessions the stream
built, whatever the arrival order, or a reload would change later figures)."""

from __future__ import annotations

import random
import uuid
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.models import Enriched
from streams.session_state import (
    SESSION_CODEC,
    fold_sessions,
    from_json,
    mark_key,
    parse_key,
    table_key,
)
from streams.sessions import Deltas, Session, apply_event, joins, new_session, session_key
from tests.streams.test_sessions import event_st, mk


def stream_sessions(events: list[Enriched]) -> dict[tuple[Any, ...], Session]:
    """What the sink keeps per key, event by event in arrival order: the latest session."""
    latest: dict[tuple[Any, ...], Session] = {}
    scratch = Deltas()
    for n, e in enumerate(events):
        k = session_key(e)
        s = latest.get(k)
        if not joins(s, e):
            s = latest[k] = new_session(e, str(uuid.UUID(int=n + 1)), first_of_day=s is None)
        e.session_id = s.session_id
        apply_event(s, e, scratch)
    return latest


def stored_row(e: Enriched) -> tuple[Any, ...]:
    """`STORED_COLUMNS` order: what the events table gives back for `e`."""
    return (e.event_id, e.received_at_ms, e.website_id, e.visitor_id, e.session_id,
            e.event_type, e.name, e.path, e.referrer_domain, e.referrer_channel,
            e.utm_source, e.utm_medium, e.utm_campaign, e.screen_bucket, e.browser_family,
            e.os_family, e.device_type, e.content_group, e.is_bot, e.kafka_partition,
            e.country, e.kafka_offset)


def comparable(s: Session) -> dict[str, Any]:
    # Every field, `first_of_day` included: a reloaded first visit that loses it stops
    # moving its visitor between countries (tests/streams/test_reload_country.py).
    return {f: getattr(s, f) for f in s.__slots__}  # type: ignore[attr-defined]


@settings(max_examples=150, deadline=None)
@given(st.lists(event_st, min_size=1, max_size=40), st.randoms(use_true_random=False))
def test_fold_of_stored_events_gives_back_the_streams_sessions(
    spec: list[tuple[int, int, str, str]], rnd: random.Random
) -> None:
    events = [mk(i, v, t, et, p) for i, (v, t, et, p) in enumerate(spec)]
    rnd.shuffle(events)  # arrival order: any (times out of order)...
    for n, e in enumerate(events):
        e.kafka_offset = n  # ...but a partition delivers in offset order
    latest = stream_sessions(events)
    rows = [stored_row(e) for e in events]
    rnd.shuffle(rows)  # the events table returns rows in any order
    folded = fold_sessions(rows)
    assert set(folded) == set(latest)
    for k, s in latest.items():
        assert comparable(folded[k]) == comparable(s), k


def test_codec_round_trip_keeps_every_field_and_the_sets() -> None:
    a = mk(1, 7, 1000, "page_view", "/g/1")
    b = mk(2, 7, 2000, "custom", "/a")
    s = new_session(a, "sid-1", first_of_day=True)
    apply_event(s, a, Deltas())
    apply_event(s, b, Deltas())
    back = SESSION_CODEC._loads(SESSION_CODEC._dumps(s))
    assert isinstance(back, Session)
    assert {f: getattr(back, f) for f in s.__slots__} == {  # type: ignore[attr-defined]
        f: getattr(s, f) for f in s.__slots__}  # type: ignore[attr-defined]
    assert back.seen_pages == {("/g/1", "G")} and isinstance(back.seen_pages, set)
    # Faust's recovery hands the table json-decoded values: arrays become sessions,
    # the partition marks (objects) stay as they are.
    import orjson

    assert comparable(from_json(orjson.loads(SESSION_CODEC._dumps(s)))) == comparable(s)
    assert from_json({"next": 5, "floor": 20000}) == {"next": 5, "floor": 20000}


def test_table_keys_name_their_partition_and_round_trip() -> None:
    k = (str(uuid.UUID(int=3)), "ab" * 32, 20_000, True, 7)
    key = table_key(k)
    assert key.split("|")[1] == "7"  # KpartTable: the changelog partition is field 1
    assert parse_key(key) == k
    assert mark_key(7).split("|")[1] == "7" and parse_key(mark_key(7)) is None
