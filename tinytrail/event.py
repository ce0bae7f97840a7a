"""The raw event as it travels from the collector to the workers on Kafka.

The collector builds a `RawEvent` from a validated request, the worker decodes it
with `RawEvent.from_bytes` (the one choke point that validates messages: anything
it rejects goes to the dead-letter topic). JSON via orjson, never pickle. Decoding
also canonicalises `event_id` and `website_id` (lower case, hyphenated): every
store downstream (the website cache, the events table, the sessions) knows one
spelling of an id.

The message key is `website_id:visitor_id`, so that every event of one visitor
lands in one partition and the worker that owns the partition sees the whole
visit in order. The raw client IP is never part of the message: only the country
code the collector derived from it (`country`, optional).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import orjson
from aiokafka.partitioner import murmur2

from tinytrail.ids import canonical_uuid
from tinytrail.limits import (
    EVENT_TEXT_CAPS,
    MAX_PROPERTIES_BYTES,
    MAX_SCREEN,
    text_problem,
)

EVENT_TYPES: frozenset[str] = frozenset(
    {"page_view", "close_tab", "scroll_25", "scroll_50", "scroll_75", "outbound_link", "custom"}
)
WIRE_VERSION = 1


class DecodeError(ValueError):
    """A message that is not a valid RawEvent (sent to the dead-letter topic)."""


@dataclass(frozen=True, slots=True)
class RawEvent:
    event_id: str  # uuid, assigned by the collector; idempotency key downstream
    received_at_ms: int  # server receive time, epoch milliseconds (event time)
    website_id: str
    visitor_id: str  # HMAC-SHA256(daily salt, ip|ua|website) hex: never the IP
    event_type: str
    url: str
    path: str
    referrer: str | None = None
    user_agent: str = ""
    screen_width: int | None = None
    screen_height: int | None = None
    name: str | None = None  # custom event name (properties.name)
    properties: dict[str, Any] | None = None
    utm_source: str | None = None
    utm_medium: str | None = None
    utm_campaign: str | None = None
    is_bot: bool = False  # collector's verdict
    is_excluded: bool = False
    # ISO 3166-1 alpha-2 code the collector looked the client address up to, or None
    # (collector/country.py). Optional: messages written before it existed decode as None.
    country: str | None = None
    v: int = field(default=WIRE_VERSION)

    @property
    def key(self) -> bytes:
        return event_key(self.website_id, self.visitor_id)

    def to_bytes(self) -> bytes:
        return orjson.dumps(self)  # orjson serialises dataclasses natively, ~10x asdict

    @classmethod
    def from_bytes(cls, data: bytes) -> RawEvent:
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise DecodeError(f"not JSON: {exc}") from None
        if not isinstance(obj, dict):
            raise DecodeError("not a JSON object")
        return cls.from_dict(obj)

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> RawEvent:
        try:
            ev = cls(**obj)
        except TypeError as exc:
            raise DecodeError(f"bad fields: {exc}") from None
        return ev.check()

    def check(self) -> RawEvent:
        """Validation of a decoded message, the same rules as the collector's
        (`tinytrail.limits`): types, UUIDs, every text field within its character AND
        UTF-8 byte cap and free of control characters, `properties` at most
        `MAX_PROPERTIES_BYTES` of JSON without NUL, screen sizes 0-100,000, the event time
        a positive epoch-ms integer before year 10,000. Raises DecodeError whose message
        names the field (the dead letter's reason).

        Returns the event with `event_id` and `website_id` in canonical spelling
        (`tinytrail.ids.canonical_uuid`): itself, or a copy when a producer wrote an id
        another way `uuid.UUID` takes ('{...}', upper case, 'urn:uuid:...', 32 bare hex
        digits). The website cache knows canonical ids only: an existing website's event
        under another spelling would otherwise be dropped as `unknown_website`."""
        event_id = canonical_uuid(self.event_id)
        website_id = canonical_uuid(self.website_id)
        if event_id is None or website_id is None:
            raise DecodeError("event_id and website_id must be UUIDs")
        ms = self.received_at_ms
        if type(ms) is not int or not 0 < ms < MAX_EPOCH_MS:
            raise DecodeError("received_at_ms must be a positive integer (epoch ms)")
        if self.event_type not in EVENT_TYPES:
            raise DecodeError(f"unknown event_type {str(self.event_type)[:40]!r}")
        if not isinstance(self.visitor_id, str) or not _HEX64.fullmatch(self.visitor_id):
            raise DecodeError("visitor_id must be a 64-char hex digest")
        if not isinstance(self.path, str) or not self.path.startswith("/"):
            raise DecodeError("path must start with /")
        if not isinstance(self.url, str):
            raise DecodeError("url must be a string")
        if self.event_type == "custom" and not self.name:
            raise DecodeError("custom events need a name")
        if self.country is not None and not (
            isinstance(self.country, str) and _COUNTRY.fullmatch(self.country)
        ):
            raise DecodeError("country must be two upper-case letters (ISO 3166-1 alpha-2)")
        if self.v != WIRE_VERSION:
            raise DecodeError(f"unsupported wire version {str(self.v)[:20]}")
        if not isinstance(self.user_agent, str):
            raise DecodeError("user_agent must be a string")
        if type(self.is_bot) is not bool or type(self.is_excluded) is not bool:
            raise DecodeError("is_bot and is_excluded must be booleans")
        for name in ("screen_width", "screen_height"):
            size = getattr(self, name)
            if size is not None and (type(size) is not int or not 0 <= size <= MAX_SCREEN):
                raise DecodeError(f"{name} must be an integer from 0 to {MAX_SCREEN}")
        for name, cap in EVENT_TEXT_CAPS.items():
            value = getattr(self, name)
            if value is None:
                continue
            if not isinstance(value, str):
                raise DecodeError(f"{name} must be a string")
            why = text_problem(name, value, cap)
            if why is not None:
                raise DecodeError(why)
        props = self.properties
        if props is not None:
            if not isinstance(props, dict):
                raise DecodeError("properties must be an object")
            try:
                size = len(orjson.dumps(props))
            except (TypeError, orjson.JSONEncodeError) as exc:  # e.g. nested too deep
                raise DecodeError(f"properties cannot be stored: {exc}") from None
            if size > MAX_PROPERTIES_BYTES:
                raise DecodeError(f"properties is larger than {MAX_PROPERTIES_BYTES} bytes"
                                  " of JSON")
            # Postgres jsonb cannot hold NUL, in keys or values.
            if _has_nul(props):
                raise DecodeError("properties must not contain NUL characters")
        if event_id != self.event_id or website_id != self.website_id:
            return dataclasses.replace(self, event_id=event_id, website_id=website_id)
        return self


def event_key(website_id: str, visitor_id: str) -> bytes:
    """The message key: b"<website_id>:<visitor_id>" (one visitor, one partition)."""
    return f"{website_id}:{visitor_id}".encode()


def encode(
    *, event_id: str, received_at_ms: int, website_id: str, visitor_id: str,
    event_type: str, url: str, path: str, referrer: str | None, user_agent: str,
    screen_width: int | None, screen_height: int | None, name: str | None,
    properties: dict[str, Any] | None, utm_source: str | None, utm_medium: str | None,
    utm_campaign: str | None, is_bot: bool, is_excluded: bool, country: str | None,
) -> bytes:
    """The wire bytes of the `RawEvent` with these fields, without building one (a frozen
    dataclass costs ~10 us to construct; this ~1 us: the collector's hot path). Same
    keys in the same order, same values as `RawEvent(...).to_bytes()` (tested)."""
    return orjson.dumps({
        "event_id": event_id, "received_at_ms": received_at_ms, "website_id": website_id,
        "visitor_id": visitor_id, "event_type": event_type, "url": url, "path": path,
        "referrer": referrer, "user_agent": user_agent, "screen_width": screen_width,
        "screen_height": screen_height, "name": name, "properties": properties,
        "utm_source": utm_source, "utm_medium": utm_medium, "utm_campaign": utm_campaign,
        "is_bot": is_bot, "is_excluded": is_excluded, "country": country,
        "v": WIRE_VERSION,
    })


@lru_cache(maxsize=16384)
def _key_hash(key: bytes) -> int:
    """murmur2 of the key, positive: the pure-Python hash is the costliest step of
    partitioning, and a visitor's events (page view, scrolls, close) share a key."""
    return int(murmur2(key)) & 0x7FFFFFFF


def partition_for(key: bytes, partitions: list[int]) -> int:
    """The raw-topic partition of a message key: aiokafka's `DefaultPartitioner`
    (Java's murmur2), `partitions` sorted by id. The collector picks partitions itself
    (it builds one record batch per partition); the worker's per-partition sessions
    rely on one key always landing in one partition."""
    return partitions[_key_hash(key) % len(partitions)]


MAX_EPOCH_MS = 253_402_300_800_000  # 10000-01-01T00:00:00Z: Python datetimes end before
_HEX64 = re.compile(r"[0-9a-f]{64}")


_COUNTRY = re.compile(r"[A-Z]{2}")


def _has_nul(value: Any) -> bool:
    """True when a NUL character hides in a string, a key, or anything nested."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False
