"""Size and character rules for every text field of an event: the collector refuses (400)
and the worker re-checks (dead letter) with exactly these numbers and functions.

Each field has a cap in CHARACTERS (Unicode code points, `len(str)`) and one in UTF-8
BYTES (`len(str.encode())`); a value must be within both. The byte caps exist because
Postgres' btree indexes hold at most 2,704 bytes per entry, and incompressible text
(e.g. random CJK, 3 bytes a character) is not shrunk by TOAST compression first:
  * `events_funnel_idx` holds path + event_name + content_group (+ ~100 bytes of uuids,
    times and headers): 1,600 + 400 + 400 + 100 = 2,500 <= 2,704;
  * `agg_dim_daily`'s primary key holds one dimension value (a path, a referrer host, a
    UTM value, a custom event name) + a content group name (+ ~70 bytes):
    at most 2,048 + 400 + 70 = 2,518 <= 2,704.
Worked example: "/" + 2,000 CJK characters is 2,001 characters (under 2,048) but
6,001 bytes (over 1,600): refused.

Control characters (`CONTROL`: C0, DEL and C1, Unicode category Cc) are refused in every
text field; `properties` values may hold them, but never NUL (jsonb cannot store it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TextCap:
    """Maximum length of one text field: `chars` code points AND `bytes` UTF-8 bytes."""

    chars: int
    bytes: int


URL = TextCap(chars=2048, bytes=4096)  # not indexed; bounded for row size only
PATH = TextCap(chars=2048, bytes=1600)  # in events_funnel_idx and agg_dim_daily's key
REFERRER = TextCap(chars=2048, bytes=2048)  # its host becomes an agg_dim_daily key
UTM = TextCap(chars=200, bytes=400)  # utm_source / utm_medium / utm_campaign: agg keys
EVENT_NAME = TextCap(chars=200, bytes=400)  # custom event name (properties.name)
CONTENT_GROUP_NAME = TextCap(chars=100, bytes=400)  # a website's content group name
USER_AGENT = TextCap(chars=1024, bytes=4096)  # not stored; parsed into families
# browser_family / os_family parsed from the user agent: stored and aggregate keys; a
# parser may copy up to the whole agent into them (a Latin-1 agent gave a 2,020-byte
# family), so they are cut to this (`cut`).
UA_FAMILY = TextCap(chars=100, bytes=400)
MAX_GLOB_CHARS = 200  # a content-group pattern, characters (its canonical form)
MAX_GLOB_WILDCARDS = 8  # `*` and `?` together, per content-group pattern
# Matching work per event for one website's content groups: the sum over its patterns of
# `glob_search_cost` (big-integer steps on the path's bit masks, streams/enrich/glob.py),
# at most this. Refused with 400 at save time; the worker still matches websites saved
# before the budget existed (<= 100 x 200 steps), only more slowly.
MAX_GROUPS_SEARCH_COST = 2000
MAX_PROPERTIES_BYTES = 4096  # `properties` as compact JSON (orjson), in bytes
MAX_SCREEN = 100_000  # screen_width / screen_height, CSS pixels

# Event fields and their caps (the RawEvent attribute names).
EVENT_TEXT_CAPS: dict[str, TextCap] = {
    "url": URL, "path": PATH, "referrer": REFERRER, "name": EVENT_NAME,
    "utm_source": UTM, "utm_medium": UTM, "utm_campaign": UTM,
}

CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # Unicode category Cc


def utf8_len(value: str) -> int:
    """Length of `value` in UTF-8 bytes (ASCII fast path: one byte a character).

    Raises UnicodeEncodeError for a lone surrogate (not encodable, so never storable)."""
    return len(value) if value.isascii() else len(value.encode("utf-8"))


def text_problem(field: str, value: str, cap: TextCap) -> str | None:
    """Why `value` may not be stored in `field` (a short reason naming the field and the
    unit), or None when it is within `cap` and holds no control character.

    >>> text_problem("path", "/" + "\u4e00" * 2000, PATH)
    'path is longer than 1600 bytes (UTF-8)'
    """
    if len(value) > cap.chars:
        return f"{field} is longer than {cap.chars} characters"
    try:
        size = utf8_len(value)
    except UnicodeEncodeError:
        return f"{field} is not valid Unicode (lone surrogate)"
    if size > cap.bytes:
        return f"{field} is longer than {cap.bytes} bytes (UTF-8)"
    if CONTROL.search(value):
        return f"{field} must not contain control characters"
    return None


def cut(value: str, cap: TextCap) -> str:
    """`value` cut to at most `cap.chars` characters AND `cap.bytes` UTF-8 bytes, at a
    code-point boundary (never half a character); unchanged when within both.

    >>> cut("\u4e00" * 250, UTM) == "\u4e00" * 133  # 133 x 3 = 399 bytes <= 400
    True
    """
    value = value[:cap.chars]
    if value.isascii():
        return value[:cap.bytes]
    data = value.encode("utf-8", "surrogatepass")
    if len(data) <= cap.bytes:
        return value
    # Dropping the continuation bytes (10xxxxxx) at the cut leaves whole characters.
    end = cap.bytes
    while end > 0 and data[end] & 0xC0 == 0x80:
        end -= 1
    return data[:end].decode("utf-8", "surrogatepass")


def glob_search_cost(pattern: str) -> int:
    """Steps one match of a content-group `pattern` may take on a path (besides the
    path's bit masks, built once per path): its literal characters (not `?`, not `*`)
    between its first and its last `*`; the head before the first `*` and the tail after
    the last are compared in place and cost nothing here. A website's groups together
    may cost at most `MAX_GROUPS_SEARCH_COST`.

    >>> glob_search_cost("/docs/*/api/v?/*"), glob_search_cost("/blog/*")
    (7, 0)
    """
    parts = pattern.split("*")
    return sum(len(p) - p.count("?") for p in parts[1:-1])
