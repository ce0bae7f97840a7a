"""The raw event as it travels from the collector to the workers on Kafka.

The collector builds a `RawEvent` from a validated request, the worker decodes it
with `RawEvent.from_bytes` (the one choke point that validates messages: anything
it rejects goes to the dead-letter topic). JSON via orjson, never pickle.

The message key is `website_id:visitor_id`, so that every event of one visitor
lands in one partition and the worker that owns the partition sees the whole
visit in order. The raw client IP is never part of the message.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson

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
    v: int = field(default=WIRE_VERSION)

    @property
    def key(self) -> bytes:
        return f"{self.website_id}:{self.visitor_id}".encode()

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
        ev.check()
        return ev

    def check(self) -> None:
        """Structural validation of a decoded message; raises DecodeError."""
        if not (_is_uuid(self.event_id) and _is_uuid(self.website_id)):
            raise DecodeError("event_id and website_id must be UUIDs")
        if not isinstance(self.received_at_ms, int) or self.received_at_ms <= 0:
            raise DecodeError("received_at_ms must be a positive integer")
        if self.event_type not in EVENT_TYPES:
            raise DecodeError(f"unknown event_type {self.event_type!r}")
        if not isinstance(self.visitor_id, str) or len(self.visitor_id) != 64:
            raise DecodeError("visitor_id must be a 64-char hex digest")
        if not isinstance(self.path, str) or not self.path.startswith("/"):
            raise DecodeError("path must start with /")
        if not isinstance(self.url, str):
            raise DecodeError("url must be a string")
        if self.event_type == "custom" and not self.name:
            raise DecodeError("custom events need a name")
        if self.v != WIRE_VERSION:
            raise DecodeError(f"unsupported wire version {self.v}")
        for name in ("screen_width", "screen_height"):
            size = getattr(self, name)
            if size is not None and (not isinstance(size, int) or not 0 <= size <= MAX_SCREEN):
                raise DecodeError(f"{name} must be an integer from 0 to {MAX_SCREEN}")
        # Postgres text and jsonb cannot hold NUL: such a message could never be stored.
        if _has_nul([getattr(self, f) for f in _TEXT_FIELDS]):
            raise DecodeError("text fields must not contain NUL characters")
        if self.properties is not None and _has_nul(self.properties):
            raise DecodeError("properties must not contain NUL characters")


MAX_SCREEN = 100_000
_TEXT_FIELDS = ("visitor_id", "url", "path", "referrer", "user_agent", "name",
                "utm_source", "utm_medium", "utm_campaign")


# The canonical form (what the collector writes) checked by a regex; anything else is
# judged by uuid.UUID, so exactly the same strings pass as before, faster.
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _is_uuid(value: Any) -> bool:
    if isinstance(value, str) and _CANONICAL_UUID.fullmatch(value):
        return True
    try:
        uuid.UUID(value)
    except (ValueError, TypeError, AttributeError):
        return False
    return True


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
