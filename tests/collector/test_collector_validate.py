"""Validation of collect bodies: table-driven rules plus a Hypothesis never-500 invariant."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.validate import validate
from tinytrail.envelope import ApiError
from tinytrail.paths import canonical_path

WID = "550e8400-e29b-41d4-a716-446655440000"
GOOD: dict[str, Any] = {"website_id": WID, "event_type": "page_view",
                        "url": "https://example.com/a?utm_source=x", "path": "/a"}


def body(**changes: Any) -> dict[str, Any]:
    out = dict(GOOD)
    for k, v in changes.items():
        if v is ...:
            out.pop(k, None)
        else:
            out[k] = v
    return out


@pytest.mark.parametrize(
    "payload,fragment",
    [
        pytest.param([], "JSON object", id="array-body"),
        pytest.param("x", "JSON object", id="string-body"),
        pytest.param(body(website_id=...), "website_id is required", id="no-website"),
        pytest.param(body(website_id="nope"), "UUID", id="website-not-uuid"),
        pytest.param(body(website_id=5), "must be a string", id="website-number"),
        pytest.param(body(event_type=...), "event_type is required", id="no-type"),
        pytest.param(body(event_type="click"), "event_type must be one of", id="unknown-type"),
        pytest.param(body(url=...), "url is required", id="no-url"),
        pytest.param(body(url="ftp://e.com/"), "http(s)", id="ftp-url"),
        pytest.param(body(url="javascript:alert(1)"), "http(s)", id="js-url"),
        pytest.param(body(url="/relative"), "http(s)", id="relative-url"),
        pytest.param(body(url="https://e.com/" + "a" * 2048), "longer than 2048", id="long-url"),
        pytest.param(body(path="a"), "start with /", id="path-no-slash"),
        pytest.param(body(path=...), "path is required", id="no-path"),
        pytest.param(body(path=["/"]), "must be a string", id="path-list"),
        pytest.param(body(referrer=3), "must be a string", id="referrer-number"),
        pytest.param(body(screen_width="1920"), "must be a number", id="width-string"),
        pytest.param(body(screen_width=True), "must be a number", id="width-bool"),
        pytest.param(body(screen_height=-1), "between", id="height-negative"),
        pytest.param(body(screen_height=10**9), "between", id="height-huge"),
        pytest.param(body(properties=[1]), "must be an object", id="properties-list"),
        pytest.param(body(properties={"x": "y" * 5000}), "4096", id="properties-too-big"),
        pytest.param(body(event_type="custom"), "properties.name", id="custom-no-name"),
        pytest.param(body(event_type="custom", properties={"name": ""}), "properties.name",
                     id="custom-empty-name"),
        pytest.param(body(event_type="custom", properties={"name": "x" * 201}), "properties.name",
                     id="custom-long-name"),
        pytest.param(body(event_type="custom", properties={"name": 7}), "properties.name",
                     id="custom-number-name"),
        pytest.param(body(utm_source="s" * 201), "longer than 200", id="utm-too-long"),
        pytest.param(body(utm_medium=1), "must be a string", id="utm-number"),
    ],
)
def test_invalid_bodies_are_400(payload: Any, fragment: str) -> None:
    with pytest.raises(ApiError) as info:
        validate(payload)
    assert info.value.status == 400
    assert info.value.code == "INVALID_PAYLOAD"
    assert fragment in info.value.message


@pytest.mark.parametrize(
    "payload,check",
    [
        pytest.param(GOOD, lambda p: p.event_type == "page_view" and p.path == "/a", id="minimal"),
        pytest.param(body(website_id=WID.upper()), lambda p: p.website_id == WID,
                     id="uuid-canonicalised"),
        pytest.param(body(event_type="custom", properties={"name": "signup", "plan": "pro"}),
                     lambda p: p.name == "signup" and p.properties["plan"] == "pro", id="custom"),
        pytest.param(body(screen_width=1920.0, screen_height=1080),
                     lambda p: (p.screen_width, p.screen_height) == (1920, 1080), id="screen"),
        pytest.param(body(utm_source="news", referrer=""),
                     lambda p: p.utm_source == "news" and p.referrer is None, id="utm-empty-ref"),
        pytest.param(body(extra="ignored"), lambda p: p.url == GOOD["url"], id="unknown-field"),
        pytest.param(body(properties={}), lambda p: p.properties is None, id="empty-properties"),
        pytest.param(body(url="HTTP://E.COM/"), lambda p: p.url == "HTTP://E.COM/",
                     id="upper-scheme"),
    ],
)
def test_valid_bodies(payload: dict[str, Any], check: Any) -> None:
    assert check(validate(payload))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
fields = st.sampled_from(["website_id", "event_type", "url", "path", "referrer", "screen_width",
                          "screen_height", "properties", "utm_source", "utm_medium"])


@given(st.dictionaries(fields, json_values, max_size=8) | json_values)
def test_any_json_is_accepted_or_a_400(payload: Any) -> None:
    """No decoded JSON value makes validation fail with anything but a 400."""
    try:
        validate(payload)
    except ApiError as exc:
        assert exc.status == 400


@given(st.sampled_from(["page_view", "close_tab", "scroll_25", "outbound_link"]),
       st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=0, max_size=50)
       .map(lambda s: "/" + s))
def test_valid_paths_round_trip(event_type: str, path: str) -> None:
    """Any path without control characters is accepted, stored in its canonical form."""
    got = validate(body(event_type=event_type, path=path))
    assert (got.event_type, got.path) == (event_type, canonical_path(path))


def test_nul_is_refused_in_strings_and_properties() -> None:
    """Postgres text and jsonb cannot hold NUL: such an event would stall the worker."""
    for extra in ({"path": "/a\x00"}, {"referrer": "x\x00"}, {"utm_source": "\x00"},
                  {"properties": {"k": "v\x00"}}, {"properties": {"\x00": 1}}):
        with pytest.raises(ApiError) as exc:
            validate(body(**extra))
        assert exc.value.status == 400 and "NUL" in exc.value.message
