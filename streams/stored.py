"""Reading stored events back for the fold (rebuild, session reloads): the columns and
the positional row -> `Enriched` conversion, shared so that both read the same fields."""

from __future__ import annotations

from typing import Any

from streams.models import Enriched

# The fields sessions and aggregates read; the event time as epoch ms computed in SQL
# (no datetime per row).
STORED_COLUMNS = (
    "event_id::text, (extract(epoch FROM received_at) * 1000)::bigint, website_id::text,"
    " visitor_id, session_id::text, event_type, event_name, path, referrer_domain,"
    " referrer_channel, utm_source, utm_medium, utm_campaign, screen_bucket, browser_family,"
    " os_family, device_type, content_group, is_bot, kafka_partition, country, kafka_offset"
)


def enriched_from_tuple(r: tuple[Any, ...]) -> Enriched:
    """`STORED_COLUMNS` row -> the fields sessions and aggregates read (positional: fast)."""
    return Enriched(
        r[0], r[1], r[2], r[3], r[5], "", r[7], None, "", None, None, r[6], None, r[10],
        r[11], r[12], r[18], False, r[19], r[21], r[14], r[15], r[16], r[8], r[9], r[17], r[13],
        r[4], r[20],
    )
