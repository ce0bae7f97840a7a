"""Records the worker works on: the enriched event and the typed drop reason.

`Enriched` is the working copy of one decoded `RawEvent` plus its Kafka
coordinates; the enrichment steps fill in the derived fields. Nothing here is
pickled: raw messages are JSON bytes decoded by `RawEvent.from_bytes`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tinytrail.event import RawEvent
from tinytrail.limits import USER_AGENT, cut

NIL_SESSION = "00000000-0000-0000-0000-000000000000"  # excluded events belong to no session


@dataclass(slots=True)
class Enriched:
    event_id: str
    received_at_ms: int
    website_id: str
    visitor_id: str
    event_type: str
    url: str
    path: str
    referrer: str | None
    user_agent: str
    screen_width: int | None
    screen_height: int | None
    name: str | None
    properties: dict[str, Any] | None
    utm_source: str | None
    utm_medium: str | None
    utm_campaign: str | None
    is_bot: bool
    is_excluded: bool
    kafka_partition: int
    kafka_offset: int
    browser_family: str = "Other"
    os_family: str = "Other"
    device_type: str = "other"
    referrer_domain: str | None = None
    referrer_channel: str = "Direct"
    content_group: str | None = None
    screen_bucket: str = "unknown"
    session_id: str = NIL_SESSION
    country: str | None = None  # ISO 3166-1 alpha-2 from the collector, or None

    @classmethod
    def from_raw(cls, raw: RawEvent, partition: int, offset: int) -> Enriched:
        return cls(
            event_id=raw.event_id,
            received_at_ms=raw.received_at_ms,
            website_id=raw.website_id,
            visitor_id=raw.visitor_id,
            event_type=raw.event_type,
            url=raw.url,
            path=raw.path,
            referrer=raw.referrer,
            # Not stored, only parsed: capped here, so the parser's families stay short.
            user_agent=cut(raw.user_agent or "", USER_AGENT),
            screen_width=raw.screen_width,
            screen_height=raw.screen_height,
            name=raw.name,
            properties=raw.properties,
            utm_source=raw.utm_source,
            utm_medium=raw.utm_medium,
            utm_campaign=raw.utm_campaign,
            is_bot=bool(raw.is_bot),
            is_excluded=bool(raw.is_excluded),
            kafka_partition=partition,
            kafka_offset=offset,
            country=raw.country,
        )


@dataclass(frozen=True, slots=True)
class Drop:
    """An enrichment step's verdict that the event must not be stored."""

    reason: str  # e.g. "unknown_website"
