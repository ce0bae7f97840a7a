"""Validation of a `POST /api/v1/collect` body: a pure function, every rule in one place.

Anything that is not exactly what the contract and DECISIONS.md allow raises
`ApiError(400, INVALID_PAYLOAD)` naming the field, so no body can cause a 500.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson

from tinytrail.envelope import ApiError
from tinytrail.event import EVENT_TYPES

MAX_URL = 2048
MAX_PATH = 2048
MAX_REFERRER = 2048
MAX_UTM = 200
MAX_NAME = 200
MAX_PROPERTIES_BYTES = 4096
MAX_SCREEN = 100_000

# The canonical hyphenated form, any case: what trackers send. Other spellings that
# `uuid.UUID` accepts ("{...}", "urn:uuid:...", 32 bare hex digits) take the slow path.
_HEX = "[0-9a-fA-F]"
_UUID_RE = re.compile(f"{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}")


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


def _string(body: dict[str, Any], field: str, *, max_len: int, required: bool) -> str | None:
    value = body.get(field)
    if value is None:
        if required:
            raise _bad(f"{field} is required")
        return None
    if not isinstance(value, str):
        raise _bad(f"{field} must be a string")
    if required and not value:
        raise _bad(f"{field} must not be empty")
    if len(value) > max_len:
        raise _bad(f"{field} is longer than {max_len} characters")
    if "\x00" in value:  # Postgres text cannot hold NUL: the worker could not store it
        raise _bad(f"{field} must not contain NUL characters")
    return value or None


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
    if not isinstance(body, dict):
        raise _bad("request body must be a JSON object")
    # Unknown fields are ignored (forward compatibility with newer trackers).

    raw_id = _string(body, "website_id", max_len=64, required=True)
    assert raw_id is not None
    if _UUID_RE.fullmatch(raw_id):
        website_id = raw_id.lower()  # == str(uuid.UUID(raw_id)), without the object
    else:
        try:
            website_id = str(uuid.UUID(raw_id))
        except ValueError:
            raise _bad("website_id must be a UUID") from None

    event_type = _string(body, "event_type", max_len=32, required=True)
    if event_type not in EVENT_TYPES:
        raise _bad(f"event_type must be one of {', '.join(sorted(EVENT_TYPES))}")

    url = _string(body, "url", max_len=MAX_URL, required=True)
    assert url is not None
    try:
        parts = urlsplit(url)
    except ValueError:
        raise _bad("url is not a valid URL") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise _bad("url must be an absolute http(s) URL")

    path = _string(body, "path", max_len=MAX_PATH, required=True)
    assert path is not None
    if not path.startswith("/"):
        raise _bad("path must start with /")

    referrer = _string(body, "referrer", max_len=MAX_REFERRER, required=False)

    properties = body.get("properties")
    name: str | None = None
    if properties is not None:
        if not isinstance(properties, dict):
            raise _bad("properties must be an object")
        encoded = orjson.dumps(properties)
        if len(encoded) > MAX_PROPERTIES_BYTES:
            raise _bad(f"properties is larger than {MAX_PROPERTIES_BYTES} bytes of JSON")
        if b"\\u0000" in encoded:  # jsonb rejects NUL in keys and values alike
            raise _bad("properties must not contain NUL characters")
        if not properties:
            properties = None
    if event_type == "custom":
        raw_name = (properties or {}).get("name")
        if not isinstance(raw_name, str) or not 1 <= len(raw_name) <= MAX_NAME:
            raise _bad(f"custom events need properties.name, a string of 1-{MAX_NAME} characters")
        name = raw_name

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
        utm_source=_string(body, "utm_source", max_len=MAX_UTM, required=False),
        utm_medium=_string(body, "utm_medium", max_len=MAX_UTM, required=False),
        utm_campaign=_string(body, "utm_campaign", max_len=MAX_UTM, required=False),
    )
