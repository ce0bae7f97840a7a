"""Property-based bodies and query strings on every write route: the answer is 2xx or
4xx (never 5xx) and always the envelope."""

from __future__ import annotations

import datetime as dt
import urllib.parse
from typing import Any

import pytest
from apisupport import World, assert_envelope
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

FUZZ = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])

scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**63, 2**64 - 1),
                    st.floats(allow_nan=False), st.text(max_size=40))
json_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)),
    max_leaves=12)


def _field_values() -> st.SearchStrategy[Any]:
    """Values that are sometimes right, often almost right, sometimes anything."""
    return st.one_of(
        json_values,
        st.sampled_from(["user", "admin", "example.com", "Ex-ample.org", "10.0.0.0/8",
                         "2026-01-01", "2026-02-30", "9999-12-31", "", " ", "/blog/*"]),
        st.lists(st.fixed_dictionaries({"name": st.text(max_size=8),
                                        "pattern": st.text(max_size=8)}), max_size=3),
        st.lists(st.sampled_from(["1.2.3.4", "::1", "10.0.0.0/33", "x", "fe80::/10"]),
                 max_size=3),
        st.uuids().map(str),
    )


def bodies(fields: list[str]) -> st.SearchStrategy[bytes]:
    """Raw request bodies: objects over the route's fields, other JSON, and junk bytes."""
    import orjson

    objects = st.dictionaries(st.sampled_from([*fields, "extra"]), _field_values(), max_size=5)
    return st.one_of(
        objects.map(orjson.dumps),
        json_values.map(orjson.dumps),
        st.binary(max_size=64),
        st.text(max_size=64).map(str.encode),
        st.sampled_from([b'{"name": 1e999}', b'{"domain": 123456789012345678901234567890}',
                         b'{"a":' * 40 + b"1" + b"}" * 40, b"\xff\xfe", b"null"]),
    )


queries = st.one_of(
    st.dictionaries(st.text(max_size=10), st.text(max_size=20), max_size=4).map(
        lambda d: urllib.parse.urlencode(d)),
    st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=40).map(
        lambda s: urllib.parse.quote(s, safe="=&")),
)
segments = st.one_of(st.uuids().map(str), st.text(min_size=1, max_size=40)).map(
    lambda s: urllib.parse.quote(s, safe=""))


def _check(resp: Any) -> None:
    assert 200 <= resp.status < 500, (resp.status, resp.body)
    assert_envelope(resp)


@FUZZ
@given(body=bodies(["name"]), query=queries)
def test_post_accounts(world: World, body: bytes, query: str) -> None:
    _check(world.api.request("POST", "/api/v1/accounts", raw=body, query=query,
                             key=world.admin_key))


@FUZZ
@given(body=bodies(["account_id", "role", "email"]), query=queries)
def test_post_users(world: World, body: bytes, query: str) -> None:
    _check(world.api.request("POST", "/api/v1/users", raw=body, query=query,
                             key=world.admin_key))


@FUZZ
@given(body=bodies(["domain", "content_groups", "excluded_ips", "account_id"]), query=queries,
       as_admin=st.booleans())
def test_post_websites(world: World, body: bytes, query: str, as_admin: bool) -> None:
    key = world.admin_key if as_admin else world.user_a["apiKey"]
    _check(world.api.request("POST", "/api/v1/websites", raw=body, query=query, key=key))


@pytest.fixture(scope="module")
def fuzz_site(_world: World) -> dict[str, Any]:
    return _world.new_site(_world.account_a)


@FUZZ
@given(body=bodies(["domain", "content_groups", "excluded_ips"]), query=queries,
       segment=st.one_of(st.just("SITE"), segments))
def test_patch_website(world: World, fuzz_site: dict[str, Any], body: bytes, query: str,
                       segment: str) -> None:
    seg = fuzz_site["id"] if segment == "SITE" else segment
    _check(world.api.request("PATCH", f"/api/v1/websites/{seg}", raw=body, query=query,
                             key=world.user_a["apiKey"]))


@FUZZ
@given(collection=st.sampled_from(["accounts", "users", "websites"]), segment=segments,
       query=queries, body=st.binary(max_size=32))
def test_delete_routes(world: World, collection: str, segment: str, query: str,
                       body: bytes) -> None:
    resp = world.api.request("DELETE", f"/api/v1/{collection}/{segment}", raw=body or None,
                             query=query, key=world.admin_key)
    _check(resp)
    assert resp.status != 200  # random ids never name a real object


@FUZZ
@given(body=st.one_of(bodies(["date"]), st.builds(
    lambda d: f'{{"date": "{d.isoformat()}"}}'.encode(),
    st.dates(dt.date(2025, 1, 1), dt.date(2027, 12, 31)))), query=queries)
def test_post_aggregate(world: World, body: bytes, query: str) -> None:
    _check(world.api.request("POST", "/api/v1/admin/aggregate", raw=body, query=query,
                             key=world.admin_key))


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(["/api/v1/accounts", "/api/v1/users", "/api/v1/websites",
                             "/api/v1/openapi.json"]), query=queries)
def test_get_routes_ignore_odd_query_strings(world: World, path: str, query: str) -> None:
    resp = world.api.request("GET", path, query=query, key=world.admin_key)
    assert resp.status == 200
    if path != "/api/v1/openapi.json":
        assert_envelope(resp)
