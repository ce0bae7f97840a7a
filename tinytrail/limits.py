"""Size caps on every text an event carries: one module, read by the collector (400)
and by the worker's re-check, so that nothing answered 202 can be refused later.

Every text field has two caps: characters (what a person would count, and what the
contract talks about) and UTF-8 bytes (what Postgres stores and indexes). A
character is 1 to 4 bytes in UTF-8, so a cap in characters alone lets a field grow
4x in bytes: `/` + 2,000 CJK characters is ~6 KB, and a btree index row holds at
most 2,704 bytes (a third of an 8 KiB page, minus headers). Postgres compresses an
index value only when it compresses: random text does not, so the budget below
assumes none.

The byte budgets, per index that holds these values as keys (see tinytrail/migrations):

- `events_funnel_idx` (website_id, event_type, path, received_at) INCLUDE (session_id,
  event_name, is_bot, is_excluded, content_group): INCLUDE columns count too, so
  path 1,536 + event name 600 + content-group name 400 = 2,536 bytes, plus ~110 bytes
  of tuple header, fixed-width columns, varlena headers and alignment = ~2,650 < 2,704.
  (A test stores such a row in the real table.)
- `agg_dim_daily` primary key (website_id, day, is_bot, dim, key, grp, kpart):
  `page` key=path (1,536) + grp=content group (400); `utm` key=source \\x1f medium \\x1f
  campaign = 3 x 600 + 2 = 1,802; `referrer` key=referrer host (≤ 1,012, below);
  `custom_event` key=event name (600). All well under 2,704 with the ~60 fixed bytes.

Caps are checked on the value that is stored (the canonical path, after decoding),
so a percent-encoded path may arrive longer than it is stored.
"""

from __future__ import annotations

# --- URL (events.url; no index) ----------------------------------------------------
MAX_URL_CHARS = 2048
"""Characters in `url` (the contract's limit)."""
MAX_URL_BYTES = 8192
"""UTF-8 bytes in `url`: 4 per character at most; no index holds the URL, this only
bounds the message and the row."""

# --- path (events.path, funnel index key, `page` aggregate key) ---------------------
MAX_PATH_CHARS = 1024
"""Characters in the canonical path (after percent-decoding and NFC)."""
MAX_PATH_BYTES = 1536
"""UTF-8 bytes in the canonical path: the largest share of the funnel index budget
(module docstring). An ASCII path can use all 1,024 characters; a CJK one ~512."""
MAX_RAW_PATH_CHARS = MAX_URL_CHARS
"""Characters in `path` as sent, before decoding (a pathname is part of the URL)."""

# --- referrer (events.referrer; its host is the `referrer` aggregate key) -----------
MAX_REFERRER_CHARS = 2048
"""Characters in `referrer` (same as `url`)."""
MAX_REFERRER_BYTES = 8192
"""UTF-8 bytes in `referrer` (4 per character; not indexed itself)."""
MAX_HOST_CHARS = 253
"""Characters in the referrer's host: the DNS limit (RFC 1035). A punycode (xn--)
host decodes to at most as many code points as it has characters."""
MAX_HOST_BYTES = 1012
"""UTF-8 bytes in the referrer's host (253 x 4), also after IDNA decoding."""

# --- UTM values (events.utm_*; the `utm` aggregate key joins all three) -------------
MAX_UTM_CHARS = 200
"""Characters in each of utm_source / utm_medium / utm_campaign."""
MAX_UTM_BYTES = 600
"""UTF-8 bytes in each UTM value: 3 x 600 + 2 separators = 1,802 bytes of key."""

# --- custom event name (events.event_name: funnel index INCLUDE, `custom_event` key) -
MAX_NAME_CHARS = 200
"""Characters in `properties.name` of a custom event."""
MAX_NAME_BYTES = 600
"""UTF-8 bytes in the event name (funnel index budget, module docstring)."""

# --- content-group name (set through the API; funnel INCLUDE and `page` grp) --------
MAX_GROUP_NAME_CHARS = 100
"""Characters in a content group's name (api/validation.py refuses more)."""
MAX_GROUP_NAME_BYTES = 400
"""UTF-8 bytes in a content group's name (100 x 4: the character cap implies it)."""

# --- other fields --------------------------------------------------------------------
MAX_WEBSITE_ID_CHARS = 64
"""Characters in `website_id` as sent (a UUID in any of its spellings; ASCII)."""
MAX_EVENT_TYPE_CHARS = 32
"""Characters in `event_type` as sent (it must then be one of the known types)."""
MAX_USER_AGENT_CHARS = 1024
"""Characters kept of the User-Agent header (a header, so cut rather than refused;
Tornado decodes headers as Latin-1, so at most 2 UTF-8 bytes each: 2,048 bytes)."""
MAX_PROPERTIES_BYTES = 4096
"""Bytes of `properties` as compact JSON (DECISIONS: at most 4 KiB)."""
