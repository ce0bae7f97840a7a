"""The hot path's shortcuts give exactly what the plain code gives: IPv4 fast path vs
`ipaddress`, keyed-HMAC copies vs `hmac.new`, dict wire encoding vs `RawEvent`, the
UUID fast path vs `uuid.UUID`, our partitioner vs aiokafka's, the cached salt."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import ipaddress
import uuid

import pytest
from aiokafka.partitioner import DefaultPartitioner
from hypothesis import given
from hypothesis import strategies as st

from collector.clientip import client_ip, parse_ip
from collector.identity import event_id, ratelimit_identity, visitor_id
from collector.salt import DailySalt
from collector.validate import validate
from tinytrail.event import RawEvent, encode, partition_for
from tinytrail.settings import parse_cidrs

TRUST = parse_cidrs("10.0.0.0/8, 127.0.0.1, 192.0.2.0/24, ::1")
CHROME = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/120.0.0.0 Safari/537.36")


def slow_client_ip(peer: str, xff: str | None, trusted: tuple) -> str:
    """The general algorithm alone (what `client_ip` did before its IPv4 fast path)."""
    peer_addr = parse_ip(peer)
    if peer_addr is None:
        return peer

    def is_trusted(a: object) -> bool:
        return any(a.version == n.version and a in n for n in trusted)  # type: ignore[attr-defined]

    if not xff or not trusted or not is_trusted(peer_addr):
        return str(peer_addr)
    client = peer_addr
    for hop in reversed(xff.split(",")):
        addr = parse_ip(hop)
        if addr is None:
            break
        client = addr
        if not is_trusted(addr):
            break
    return str(client)


ipv4 = st.builds(lambda n: str(ipaddress.IPv4Address(n)), st.integers(0, 2**32 - 1))
near_trusted = st.sampled_from(["10.0.0.2", "127.0.0.1", "192.0.2.77", "10.255.255.255",
                                "11.0.0.1", "192.0.3.1", "010.0.0.2", "10.0.0.2:80", " 10.0.0.2",
                                "::1", "::ffff:10.0.0.2", "", "garbage", "1.2.3"])
hop = st.one_of(ipv4, near_trusted)


@given(peer=hop, hops=st.lists(hop, max_size=3), spaces=st.booleans(),
       trusted=st.sampled_from([TRUST, (), parse_cidrs("127.0.0.1")]))
def test_client_ip_fast_path_matches_general_walk(peer: str, hops: list[str], spaces: bool,
                                                  trusted: tuple) -> None:
    xff = (", " if spaces else ",").join(hops) if hops else None
    assert client_ip(peer, xff, trusted) == slow_client_ip(peer, xff, trusted)


@given(salt=st.binary(min_size=32, max_size=32), ip=ipv4, ua=st.text(max_size=50))
def test_keyed_hmac_copies_match_hmac_new(salt: bytes, ip: str, ua: str) -> None:
    msg = f"{ip}|{ua}|w".encode()
    assert visitor_id(salt, ip, ua, "w") == hmac.new(salt, msg, hashlib.sha256).hexdigest()
    rl = hmac.new(salt, f"rl|{ip}".encode(), hashlib.sha256).hexdigest()[:32]
    assert ratelimit_identity(salt, ip) == rl


def test_event_ids_are_random_version4_uuids() -> None:
    ids = [event_id() for _ in range(500)]
    assert len(set(ids)) == 500
    for value in ids:
        parsed = uuid.UUID(value)
        assert (parsed.version, parsed.variant, str(parsed)) == (4, uuid.RFC_4122, value)


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param({}, id="page-view"),
        pytest.param({"event_type": "custom", "properties": {"name": "buy", "n": [1, 2.5]},
                      "utm_source": "s", "utm_medium": "m", "utm_campaign": "c"}, id="custom"),
        pytest.param({"referrer": "", "screen_width": 1.9, "properties": {}}, id="nulls"),
    ],
)
@pytest.mark.parametrize("flags", [(False, False), (True, False), (False, True)])
def test_dict_encoding_equals_raw_event_bytes(extra: dict, flags: tuple[bool, bool]) -> None:
    body = {"website_id": "550E8400-E29B-41D4-A716-446655440000", "event_type": "page_view",
            "url": "https://example.com/a", "path": "/a", "referrer": "https://r.example/",
            "screen_width": 1280, "screen_height": 800, **extra}
    p = validate(body)
    eid, vid = event_id(), "ab" * 32
    ours = encode(
        event_id=eid, received_at_ms=1_700_000_000_123, website_id=p.website_id,
        visitor_id=vid, event_type=p.event_type, url=p.url, path=p.path, referrer=p.referrer,
        user_agent=CHROME, screen_width=p.screen_width, screen_height=p.screen_height,
        name=p.name, properties=p.properties, utm_source=p.utm_source,
        utm_medium=p.utm_medium, utm_campaign=p.utm_campaign, is_bot=flags[0],
        is_excluded=flags[1], country=None)
    reference = RawEvent(
        event_id=eid, received_at_ms=1_700_000_000_123, website_id=p.website_id,
        visitor_id=vid, event_type=p.event_type, url=p.url, path=p.path, referrer=p.referrer,
        user_agent=CHROME, screen_width=p.screen_width, screen_height=p.screen_height,
        name=p.name, properties=p.properties, utm_source=p.utm_source,
        utm_medium=p.utm_medium, utm_campaign=p.utm_campaign, is_bot=flags[0],
        is_excluded=flags[1],
    )
    assert ours == reference.to_bytes()  # byte for byte: same keys, order and values
    assert RawEvent.from_bytes(ours) == reference


@given(st.uuids().map(str), st.booleans(),
       st.sampled_from(["{%s}", "urn:uuid:%s", "%s", "nohyphens"]))
def test_website_id_fast_path_matches_uuid(value: str, upper: bool, form: str) -> None:
    raw = value.upper() if upper else value
    raw = raw.replace("-", "") if form == "nohyphens" else form % raw
    body = {"website_id": raw, "event_type": "page_view", "url": "https://e.example/",
            "path": "/"}
    assert validate(body).website_id == str(uuid.UUID(raw))


@given(st.binary(min_size=1, max_size=120), st.integers(1, 12))
def test_partitioner_is_aiokafkas_default(key: bytes, n: int) -> None:
    parts = list(range(n))
    assert partition_for(key, parts) == DefaultPartitioner()(key, parts, parts)


@pytest.mark.redis
async def test_cached_salt_is_todays_and_only_today(redis_url: str) -> None:
    import redis.asyncio as aioredis

    t = {"now": dt.datetime(2031, 5, 4, 23, 59, 58, tzinfo=dt.UTC).timestamp()}
    client = aioredis.from_url(redis_url, socket_timeout=2)
    try:
        salts = DailySalt(client, clock=lambda: t["now"])
        assert salts.cached() is None  # nothing fetched yet
        today = await salts.get()
        assert salts.cached() == today
        t["now"] += 2  # 2031-05-05T00:00:00Z: a new day, the cache no longer answers
        assert salts.cached() is None
        tomorrow = await salts.get()
        assert tomorrow != today and salts.cached() == tomorrow
        await client.delete("tt:salt:2031-05-04", "tt:salt:2031-05-05")
    finally:
        await client.aclose()


class _StuckProducer:
    """A producer stand-in whose `send_batch` never returns (a broker that is away), for
    the publisher's own bookkeeping; the real broker is in the service and outage tests."""

    class _Cluster:
        @staticmethod
        def partitions_for_topic(topic: str) -> set[int]:
            return {0, 1}

    class _Client:
        cluster = None

    class _Batch:
        def append(self, **kw: object) -> object:
            return object()

        def close(self) -> None:
            pass

    def __init__(self) -> None:
        self.client = self._Client()
        self.client.cluster = self._Cluster()
        self.calls = 0

    def create_batch(self) -> object:
        return self._Batch()

    async def send_batch(self, batch: object, topic: str, *, partition: int) -> object:
        self.calls += 1
        await asyncio.Event().wait()  # never: cancelled by Publisher.close()


async def test_publisher_answers_503_by_the_deadline_while_kafka_is_stuck() -> None:
    from collector.publisher import Publisher, Unavailable
    from collector.settings import CollectorSettings

    settings = CollectorSettings(kafka_send_timeout=0.2, kafka_linger_ms=0, max_in_flight=10)
    producer = _StuckProducer()
    pub = Publisher(producer, settings)  # type: ignore[arg-type]
    try:
        first = asyncio.ensure_future(pub.publish(b"a", b"1"))  # its group gets stuck
        await asyncio.sleep(0.05)
        assert producer.calls == 1
        # Joins the next (open) group; answered 503 when that group's time is up.
        with pytest.raises(Unavailable):
            await asyncio.wait_for(pub.publish(b"b", b"2"), 5)
        with pytest.raises(Unavailable):
            await asyncio.wait_for(first, 5)
        # The open group's time is up and the flusher is still stuck: a new request must
        # not join it (it would have no deadline left), but get its own.
        with pytest.raises(Unavailable):
            await asyncio.wait_for(pub.publish(b"c", b"3"), 5)
        # Slots: "a" is with the producer (held until it gives up), "b" was never handed
        # over (freed when "c" came), "c" is in the expired open group (freed by the next).
        assert pub.in_flight == 2
        with pytest.raises(Unavailable):
            await asyncio.wait_for(pub.publish(b"d", b"4"), 5)
        assert pub.in_flight == 2  # "a" and "d"
        assert producer.calls == 1  # nothing after the stuck batch reached the producer
    finally:
        await pub.close()
