"""Validation of a `POST /api/v1/collect` body: a pure function, every rule in one place.

Anything that is not exactly what the contract and docs/RULES.md allow raises
`ApiError(400, INVALID_PAYLOAD)` naming the field, so no body can cause a 500.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

from tinytrail import limits
from tinytrail.envelope import ApiError
from tinytrail.event import EVENT_TYPES
from tinytrail.ids import canonical_uuid
from tinytrail.paths import canonical_path

# The caps live in tinytrail/limits.py (the worker re-checks with the same numbers, so the
# collector must never accept more); the checks below use these short names, and the
# path and referrer checks use `limits.PATH` / `limits.REFERRER` directly (characters
# and bytes).
MAX_URL = limits.URL.chars
MAX_UTM = limits.UTM.chars
MAX_NAME = limits.EVENT_NAME.chars
MAX_PROPERTIES_BYTES = limits.MAX_PROPERTIES_BYTES
MAX_SCREEN = limits.MAX_SCREEN
# Collector-only, stricter than the worker needs (a stricter collector is always safe):
MAX_RAW_PATH_CHARS = limits.URL.chars
"""Characters of `path` as sent, before decoding (a pathname is part of the URL)."""
MAX_HOST = limits.TextCap(chars=253, bytes=253 * 4)
"""The referrer's host, an aggregate key: the DNS limit (RFC 1035) in characters, 4
bytes each. A punycode (xn--) host decodes to at most as many code points as it has
characters, so the Unicode form the worker stores fits as well."""
MAX_WEBSITE_ID_CHARS = 64  # a UUID in any spelling `uuid.UUID` takes
MAX_EVENT_TYPE_CHARS = 32  # then it must be one of EVENT_TYPES anyway

# Control characters (C0, DEL, C1: Unicode category Cc) and lone surrogates (only a
# decoded dict can hold one: orjson refuses them in JSON text). One C-level scan per field.
_BAD_CHARS = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
# In properties' compact JSON: a backslash escape (C0 controls are written \n, \u0001...),
# DEL, or a C1 character's UTF-8 bytes. Only then are the keys walked (properties values
# may hold control characters; keys may not).
_MAYBE_BAD_JSON = re.compile(b"\\\\|\x7f|\xc2[\x80-\x9f]")



@dataclass(frozen=True, slots=True)
class CollectPayload:
    website_id: str  # canonical lower-case UUID
    event_type: str
    url: str
    path: str
    referrer: str | None = None
    screen_width: int | None = None
    screen_height: int | None = None
    properties: dict[str, Any] | None = None
    name: str | None = None
    utm_source: str | None = None
    utm_medium: str | None = None
    utm_campaign: str | None = None


def _bad(message: str) -> ApiError:
    return ApiError(400, message)


def _bad_char(field: str, text: str) -> None:
    """400 when `text` holds a control character or a lone surrogate."""
    found = _BAD_CHARS.search(text)
    if found is None:
        return
    ch = found.group(0)
    if ch == "\x00":  # Postgres text cannot hold NUL
        raise _bad(f"{field} must not contain NUL characters")
    if "\ud800" <= ch <= "\udfff":
        raise _bad(f"{field} must be valid Unicode (a lone surrogate U+{ord(ch):04X})")
    raise _bad(f"{field} must not contain control characters (U+{ord(ch):04X})")


def check_size(field: str, value: str, max_chars: int, max_bytes: int) -> None:
    """400 naming `field` when `value` is over `max_chars` characters or `max_bytes`
    UTF-8 bytes. Cheap on the hot path: a string of n characters is at most 4n bytes,
    so nothing more is done when 4n is within the cap; else an ASCII string is n bytes
    (`str.isascii` is O(1) in CPython) and only other strings are encoded."""
    n = len(value)
    if n > max_chars:
        raise _bad(f"{field} is longer than {max_chars} characters")
    if n * 4 > max_bytes:  # else it fits whatever its characters
        try:
            size = n if value.isascii() else len(value.encode())
        except UnicodeEncodeError:  # a lone surrogate
            raise _bad(f"{field} must be valid Unicode") from None
        if size > max_bytes:
            raise _bad(f"{field} is longer than {max_bytes} bytes of UTF-8")


def _string(body: dict[str, Any], field: str, *, max_len: int, required: bool,
            max_bytes: int | None = None) -> str | None:
    """The field as a string (None when absent, null or "" and not required), checked
    for type, size (characters and UTF-8 bytes) and control characters; else 400."""
    value = body.get(field)
    if value is None:
        if required:
            raise _bad(f"{field} is required")
        return None
    if not isinstance(value, str):
        raise _bad(f"{field} must be a string")
    if required and not value:
        raise _bad(f"{field} must not be empty")
    if max_bytes is None:
        max_bytes = max_len * 4
    n = len(value)
    if n > max_len or n * 4 > max_bytes:  # the common short value skips the call
        check_size(field, value, max_len, max_bytes)
    if _BAD_CHARS.search(value) is not None:
        _bad_char(field, value)
    return value or None


def _path(body: dict[str, Any]) -> str:
    """The canonical path (tinytrail/paths.py); the caps apply to what is stored."""
    raw = _string(body, "path", max_len=MAX_RAW_PATH_CHARS, required=True)
    assert raw is not None
    if not raw.startswith("/"):
        raise _bad("path must start with /")
    path = canonical_path(raw)
    check_size("path", path, limits.PATH.chars, limits.PATH.bytes)
    return path


def _referrer(body: dict[str, Any]) -> str | None:
    referrer = _string(body, "referrer", max_len=limits.REFERRER.chars, required=False,
                       max_bytes=limits.REFERRER.bytes)
    # Its host becomes an aggregate key: a referrer of at most 253 characters cannot have
    # a longer host, so only longer ones are parsed.
    if referrer is not None and len(referrer) > MAX_HOST.chars:
        try:
            host = urlsplit(referrer.strip()).hostname
        except ValueError:  # the worker finds no host either
            host = None
        if host:
            check_size("referrer host", host, MAX_HOST.chars, MAX_HOST.bytes)
    return referrer


def _url_utm(query: str) -> None:
    """UTM values in the URL's query become fields too (the worker parses them when the
    body has none): no control characters there either (`%1F` is the utm key's
    separator, so one value could pass for two fields)."""
    if "utm_" in query:
        field = _url_utm_problem(query)
        if field is not None:
            _bad_char(field[0], field[1])


@lru_cache(maxsize=8192)  # a page's URL (and its campaign links) repeats a lot
def _url_utm_problem(query: str) -> tuple[str, str] | None:
    """(field name, value) of the first UTM value in `query` that holds a control
    character or a lone surrogate, else None."""
    for name, values in parse_qs(query).items():
        if name in ("utm_source", "utm_medium", "utm_campaign"):
            for value in values:
                if _BAD_CHARS.search(value) is not None:
                    return f"url's {name}", value
    return None


def _properties_keys(properties: dict[str, Any]) -> None:
    """400 when a key anywhere in `properties` holds a control character."""
    stack: list[Any] = [properties]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                _bad_char("properties key", key)
                stack.append(value)
        elif isinstance(item, list):
            stack.extend(item)


def _screen(body: dict[str, Any], field: str) -> int | None:
    value = body.get(field)
    if value is None:
        return None
    # bool is an int in Python; JSON true is not a width.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _bad(f"{field} must be a number")
    if value != value or not 0 <= value <= MAX_SCREEN:  # NaN or out of range
        raise _bad(f"{field} must be between 0 and {MAX_SCREEN}")
    return int(value)


def validate(body: Any) -> CollectPayload:
    """The checked collect payload of a decoded JSON body; raises `ApiError(400,
    INVALID_PAYLOAD)` naming the field for anything docs/RULES.md does not allow: types,
    sizes in characters and UTF-8 bytes (tinytrail/limits.py), control characters
    (anywhere but in `properties` values). `path` comes back canonical
    (tinytrail/paths.py)."""
    if not isinstance(body, dict):
        raise _bad("request body must be a JSON object")
    # Unknown fields are ignored (forward compatibility with newer trackers).

    raw_id = _string(body, "website_id", max_len=MAX_WEBSITE_ID_CHARS, required=True)
    assert raw_id is not None
    website_id = canonical_uuid(raw_id)
    if website_id is None:
        raise _bad("website_id must be a UUID")

    event_type = _string(body, "event_type", max_len=MAX_EVENT_TYPE_CHARS,
                         required=True)
    if event_type not in EVENT_TYPES:
        raise _bad(f"event_type must be one of {', '.join(sorted(EVENT_TYPES))}")

    url = _string(body, "url", max_len=MAX_URL, required=True,
                  max_bytes=limits.URL.bytes)
    assert url is not None
    try:
        parts = urlsplit(url)
    except ValueError:
        raise _bad("url is not a valid URL") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise _bad("url must be an absolute http(s) URL")
    _url_utm(parts.query)

    path = _path(body)
    referrer = _referrer(body)

    properties = body.get("properties")
    name: str | None = None
    if properties is not None:
        if not isinstance(properties, dict):
            raise _bad("properties must be an object")
        try:
            encoded = orjson.dumps(properties)
        except orjson.JSONEncodeError:  # a lone surrogate (or a non-string key)
            raise _bad("properties must be valid Unicode JSON") from None
        if len(encoded) > MAX_PROPERTIES_BYTES:
            raise _bad(f"properties is larger than {MAX_PROPERTIES_BYTES} bytes of JSON")
        if b"\\u0000" in encoded:  # jsonb rejects NUL in keys and values alike
            raise _bad("properties must not contain NUL characters")
        if _MAYBE_BAD_JSON.search(encoded):
            _properties_keys(properties)
        if not properties:
            properties = None
    if event_type == "custom":
        raw_name = (properties or {}).get("name")
        if not isinstance(raw_name, str) or not raw_name:
            raise _bad(f"custom events need properties.name, a string of 1-{MAX_NAME} characters")
        check_size("properties.name", raw_name, MAX_NAME, limits.EVENT_NAME.bytes)
        _bad_char("properties.name", raw_name)
        name = raw_name

    utm_bytes = limits.UTM.bytes
    return CollectPayload(
        website_id=website_id,
        event_type=event_type,
        url=url,
        path=path,
        referrer=referrer,
        screen_width=_screen(body, "screen_width"),
        screen_height=_screen(body, "screen_height"),
        properties=properties,
        name=name,
        utm_source=_string(body, "utm_source", max_len=MAX_UTM, required=False,
                           max_bytes=utm_bytes),
        utm_medium=_string(body, "utm_medium", max_len=MAX_UTM, required=False,
                           max_bytes=utm_bytes),
        utm_campaign=_string(body, "utm_campaign", max_len=MAX_UTM, required=False,
                             max_bytes=utm_bytes),
    )
