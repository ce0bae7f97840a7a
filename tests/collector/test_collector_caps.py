"""Hostile input at the limits: every text field's caps in characters and UTF-8 bytes,
control characters, lone surrogates (issue 12 "caps", issue 13 item 15a).

Pure units on `validate` (no network), plus one Postgres test that stores the largest
row the caps allow in the real tables, so the caps are proved against the real
indexes rather than against the arithmetic in tinytrail/limits.py.
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any

import orjson
import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.validate import MAX_HOST, validate
from tinytrail import limits
from tinytrail.envelope import ApiError

WID = "550e8400-e29b-41d4-a716-446655440000"
GOOD: dict[str, Any] = {"website_id": WID, "event_type": "page_view",
                        "url": "https://example.com/a", "path": "/a"}

# One character of each UTF-8 width, from several planes: ASCII, Latin-1 supplement
# (2 bytes), CJK in the BMP (3), an emoji and a plane-2 ideograph (4), plane 14 and 15.
CHARS = {
    1: "a",
    2: "é",
    3: "中",
    4: "😀",
}
PLANE_CHARS = ["\u00e9", "\u4e2d", "\U0001f600", "\U00020000", "\U000e0100", "\U000f0000",
               "\U0010fffd"]


def body(**changes: Any) -> dict[str, Any]:
    out = dict(GOOD)
    out.update(changes)
    return out


def fill(width: int, n_bytes: int, prefix: str = "") -> str:
    """`prefix` + characters of `width` UTF-8 bytes, exactly `n_bytes` bytes in all
    (padded with ASCII when `n_bytes - len(prefix)` is not a multiple of `width`)."""
    room = n_bytes - len(prefix.encode())
    count, rest = divmod(room, width)
    return prefix + CHARS[width] * count + "a" * rest


def refused(payload: dict[str, Any], *fragments: str) -> ApiError:
    with pytest.raises(ApiError) as info:
        validate(payload)
    assert info.value.status == 400 and info.value.code == "INVALID_PAYLOAD"
    for fragment in fragments:
        assert fragment in info.value.message, info.value.message
    return info.value


def custom(name: str) -> dict[str, Any]:
    return body(event_type="custom", properties={"name": name})


# (field, payload builder, char cap, byte cap): what each text field is checked as.
FIELDS = [
    pytest.param("path", lambda v: body(path=v), limits.PATH.chars,
                 limits.PATH.bytes, "/", id="path"),
    pytest.param("url", lambda v: body(url=v), limits.URL.chars, limits.URL.bytes,
                 "https://e.com/", id="url"),
    pytest.param("referrer", lambda v: body(referrer=v), limits.REFERRER.chars,
                 limits.REFERRER.bytes, "https://e.com/", id="referrer"),
    pytest.param("utm_source", lambda v: body(utm_source=v), limits.UTM.chars,
                 limits.UTM.bytes, "", id="utm_source"),
    pytest.param("utm_medium", lambda v: body(utm_medium=v), limits.UTM.chars,
                 limits.UTM.bytes, "", id="utm_medium"),
    pytest.param("utm_campaign", lambda v: body(utm_campaign=v), limits.UTM.chars,
                 limits.UTM.bytes, "", id="utm_campaign"),
    pytest.param("properties.name", custom, limits.EVENT_NAME.chars, limits.EVENT_NAME.bytes, "",
                 id="name"),
]


@pytest.mark.parametrize("field,make,max_chars,max_bytes,prefix", FIELDS)
@pytest.mark.parametrize("width", [1, 2, 3, 4])
def test_byte_cap_exactly_at_and_one_over(field: str, make: Any, max_chars: int,
                                          max_bytes: int, prefix: str, width: int) -> None:
    """At the byte cap (when the character cap allows it) → accepted; one byte more →
    400 naming the field. Characters of 1, 2, 3 and 4 UTF-8 bytes."""
    at = fill(width, max_bytes, prefix)
    if len(at) > max_chars:  # the character cap binds first for this width
        at = prefix + CHARS[width] * (max_chars - len(prefix))
        assert len(at.encode()) <= max_bytes
        validate(make(at))
        refused(make(at + CHARS[width]), field, f"longer than {max_chars} characters")
        return
    validate(make(at))
    over = at + "a"
    if len(over) > max_chars:
        refused(make(over), field, "characters")
    else:
        refused(make(over), field, f"longer than {max_bytes} bytes")
    # One more character of the same width: over as well.
    refused(make(at + CHARS[width]), field)


@pytest.mark.parametrize("field,make,max_chars,max_bytes,prefix", FIELDS)
def test_character_cap_exactly_at_and_one_over(field: str, make: Any, max_chars: int,
                                               max_bytes: int, prefix: str) -> None:
    if max_chars > max_bytes:  # every character is a byte at least: bytes bind first
        validate(make(prefix + "a" * (max_bytes - len(prefix))))
        refused(make(prefix + "a" * (max_bytes + 1 - len(prefix))), field, "bytes")
        return
    at = prefix + "a" * (max_chars - len(prefix))
    validate(make(at))
    refused(make(at + "a"), field, f"longer than {max_chars} characters")


def test_the_reported_case_cjk_path_is_refused() -> None:
    """Issue 12 finding 1: `/` + 2,000 CJK characters got 202, then stalled the worker."""
    refused(body(path="/" + "中" * 2000), "path")


def test_long_referrer_host_is_refused() -> None:
    """Finding 1's other case: a referrer host of ~2,000 CJK characters (an aggregate key)."""
    refused(body(referrer="https://" + "中" * 600 + ".example/"), "referrer host")
    refused(body(referrer="https://" + "a" * (MAX_HOST.chars + 1) + "/"),
            "referrer host", "characters")
    host = "a" * MAX_HOST.chars
    assert validate(body(referrer=f"https://{host}/x")).referrer == f"https://{host}/x"


def test_path_caps_apply_to_the_canonical_path() -> None:
    """A percent-encoded path is judged by what is stored (340 é: 2,041 characters
    sent, 341 characters / 681 bytes stored), and as sent only by the URL's cap."""
    encoded = "/" + "%C3%A9" * 340
    assert validate(body(path=encoded)).path == "/" + "é" * 340
    refused(body(path="/" + "%C3%A9" * 342), "path", "longer than 2048 characters")
    # 534 中 (1,603 bytes with the /) are over the byte cap once decoded; 533 fit exactly.
    assert limits.PATH.bytes == 1600
    refused(body(path="/" + "中" * 520 + "%E4%B8%AD" * 14), "path", "1600 bytes")
    assert validate(body(path="/" + "中" * 520 + "%E4%B8%AD" * 13)).path == "/" + "中" * 533


@pytest.mark.parametrize("char", PLANE_CHARS, ids=lambda c: f"U+{ord(c):04X}")
def test_every_plane_is_accepted(char: str) -> None:
    p = validate(body(path="/" + char, utm_source=char, referrer="https://e.com/" + char,
                      event_type="custom", properties={"name": char, "v": char}))
    assert (p.path, p.utm_source, p.name) == ("/" + char, char, char)


CONTROLS = [chr(c) for c in range(0x20)] + ["\x7f"] + [chr(c) for c in range(0x80, 0xA0)]
TEXT_FIELDS = [
    pytest.param("path", lambda v: body(path="/a" + v), id="path"),
    pytest.param("url", lambda v: body(url="https://e.com/" + v), id="url"),
    pytest.param("referrer", lambda v: body(referrer="https://r.com/" + v), id="referrer"),
    pytest.param("utm_source", lambda v: body(utm_source="x" + v + "y"), id="utm_source"),
    pytest.param("utm_medium", lambda v: body(utm_medium=v), id="utm_medium"),
    pytest.param("utm_campaign", lambda v: body(utm_campaign=v), id="utm_campaign"),
    pytest.param("properties.name", lambda v: custom("n" + v), id="name"),
    pytest.param("properties key", lambda v: body(properties={"k" + v: 1}), id="prop-key"),
    pytest.param("properties key", lambda v: body(properties={"a": [{"k" + v: 1}]}),
                 id="nested-prop-key"),
    pytest.param("website_id", lambda v: body(website_id=WID + v), id="website_id"),
    pytest.param("event_type", lambda v: body(event_type="page_view" + v), id="event_type"),
]


@pytest.mark.parametrize("field,make", TEXT_FIELDS)
@pytest.mark.parametrize("char", CONTROLS, ids=lambda c: f"U+{ord(c):04X}")
def test_control_characters_are_refused(field: str, make: Any, char: str) -> None:
    """C0 (incl. NUL, TAB, LF, \\x1f), DEL and C1 in every field but properties values."""
    with pytest.raises(ApiError) as info:
        validate(make(char))
    assert info.value.status == 400
    if field not in ("website_id", "event_type"):  # those fail as "not a UUID / type"
        # NUL anywhere in properties is caught first, naming `properties`.
        named = "properties" if char == "\x00" and field.startswith("properties") else field
        assert named in info.value.message, info.value.message


@pytest.mark.parametrize("char", [c for c in CONTROLS if c != "\x00"],
                         ids=lambda c: f"U+{ord(c):04X}")
def test_properties_values_may_hold_control_characters(char: str) -> None:
    p = validate(body(properties={"note": f"a{char}b", "list": [char]}))
    assert p.properties == {"note": f"a{char}b", "list": [char]}


def test_utm_separator_cannot_masquerade() -> None:
    """Issue 13 item 15: `\\x1f` joins the utm key's fields; in a value it would make
    one value look like two. Refused in the body and in the URL's query alike."""
    refused(body(utm_source="google\x1fcpc"), "utm_source", "control")
    refused(body(url="https://e.com/?utm_source=google%1Fcpc"), "url's utm_source", "control")
    refused(body(url="https://e.com/?utm_campaign=a%0Ab"), "url's utm_campaign")
    ok = validate(body(url="https://e.com/?utm_source=google&utm_medium=cpc&x=%1F"))
    assert ok.url.endswith("%1F")  # other parameters are not fields


@pytest.mark.parametrize("raw", [b'"\\ud800"', b'"\\udfff"', b'"a\\ud83d"', b'"\\ude00\\ud83d"'],
                         ids=["high", "low", "trailing-high", "swapped-pair"])
@pytest.mark.parametrize("field", ["path", "utm_source", "referrer"])
def test_lone_surrogates_via_json_escapes_never_pass(raw: bytes, field: str) -> None:
    """orjson refuses a lone surrogate escape (→ 400 "not valid JSON" in the handler);
    a decoded dict holding one (any other decoder) is refused by validation."""
    document = b'{"website_id":"%s","event_type":"page_view","url":"https://e.com/",' \
               b'"path":"/","%s":%s}' % (WID.encode(), field.encode(), raw)
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(document)
    value = raw.decode("unicode_escape")[1:-1]
    refused(body(**{field: ("/" if field == "path" else "") + value}), field)


def test_lone_surrogate_in_properties_or_name() -> None:
    refused(body(properties={"k": "\ud800"}), "properties")
    refused(custom("\udc00"), "properties")


def test_surrogate_pair_escape_is_one_character() -> None:
    payload = orjson.loads(b'{"website_id":"%s","event_type":"page_view",'
                           b'"url":"https://e.com/","path":"/\\ud83d\\ude00"}' % WID.encode())
    assert validate(payload).path == "/😀"


@settings(max_examples=200, deadline=None)
@given(st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=700))
def test_any_accepted_path_fits_its_caps(text: str) -> None:
    """Whatever is accepted is within both caps (the property the worker relies on)."""
    try:
        p = validate(body(path="/" + text))
    except ApiError as exc:
        assert exc.status == 400 and "path" in exc.message
        return
    assert len(p.path) <= limits.PATH.chars
    assert len(p.path.encode()) <= limits.PATH.bytes


def _incompressible(n_bytes: int, seed: int) -> str:
    """Random 4-byte characters (plane 2 ideographs), `n_bytes` of UTF-8 (n % 4 == 0):
    pglz cannot shrink them, so the index sees every byte."""
    rng = secrets.SystemRandom(seed)
    return "".join(chr(0x20000 + rng.randrange(0xA6D0)) for _ in range(n_bytes // 4))


@pytest.mark.postgres
def test_largest_accepted_event_fits_every_index(pg_dsn: str) -> None:
    """The largest path, event name, content-group name and UTM values the caps allow,
    as incompressible text, stored in `events` (funnel index) and `agg_dim_daily`
    (primary key: page, utm, referrer, custom_event keys): Postgres takes them all."""
    path = "/" + _incompressible(limits.PATH.bytes - 4, 1) + "abc"
    name = _incompressible(limits.EVENT_NAME.bytes, 2)
    group = _incompressible(limits.CONTENT_GROUP_NAME.bytes, 3)
    utm = [_incompressible(limits.UTM.bytes, s) for s in (4, 5, 6)]
    host = _incompressible(MAX_HOST.bytes, 7)
    assert len(path.encode()) == limits.PATH.bytes
    assert len(path) <= limits.PATH.chars and len(name) <= limits.EVENT_NAME.chars
    # What the collector accepts: the same values pass validation.
    validate(body(event_type="custom", path=path, properties={"name": name},
                  utm_source=utm[0], utm_medium=utm[1], utm_campaign=utm[2]))
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        account = conn.execute("INSERT INTO accounts (name) VALUES ('caps') RETURNING id"
                               ).fetchone()[0]  # type: ignore[index]
        site = conn.execute("INSERT INTO websites (account_id, domain) VALUES (%s, %s) "
                            "RETURNING id", (account, f"caps-{uuid.uuid4().hex[:8]}.example")
                            ).fetchone()[0]  # type: ignore[index]
        conn.execute("SELECT tinytrail_ensure_event_partitions(CURRENT_DATE, 1)")
        conn.execute(
            "INSERT INTO events (event_id, received_at, website_id, session_id, visitor_id, "
            "event_type, event_name, url, path, referrer, referrer_domain, referrer_channel, "
            "utm_source, utm_medium, utm_campaign, screen_bucket, browser_family, os_family, "
            "device_type, content_group, is_bot, is_excluded, kafka_partition, kafka_offset) "
            "VALUES (%s, now(), %s, %s, %s, 'custom', %s, %s, %s, %s, %s, 'Referral', %s, %s, "
            "%s, 'unknown', 'Other', 'Other', 'other', %s, false, false, 0, 0)",
            (uuid.uuid4(), site, uuid.uuid4(), "v" * 64, name, "https://e.com/", path,
             "https://x/", host, utm[0], utm[1], utm[2], group))
        keys = [("page", path, group), ("utm", "\x1f".join(utm), ""),
                ("referrer", host, ""), ("custom_event", name, "")]
        for dim, key, grp in keys:
            conn.execute("INSERT INTO agg_dim_daily (website_id, day, is_bot, dim, key, grp, "
                         "kpart) VALUES (%s, CURRENT_DATE, false, %s, %s, %s, 0)",
                         (site, dim, key, grp))
        stored = conn.execute("SELECT count(*) FROM agg_dim_daily WHERE website_id = %s",
                              (site,)).fetchone()[0]  # type: ignore[index]
        assert stored == len(keys)
