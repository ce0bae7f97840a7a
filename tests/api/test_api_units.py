"""Pure unit tests: keys, validation, serialisation, settings (no network)."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography.exceptions import InvalidTag
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from api import keys, validation
from api.admin import parse_day
from api.handlers import parse_uuid
from api.serialize import iso_ms
from api.settings import ApiSettings
from tinytrail.envelope import ApiError

SECRET = "unit-test-secret-key-of-at-least-32-chars"


def test_generated_keys_have_the_contract_shape_and_differ() -> None:
    made = {keys.generate_key() for _ in range(200)}
    assert len(made) == 200
    assert all(keys.looks_like_key(k) and len(k) == 35 for k in made)


@given(st.text(max_size=64), st.uuids())
def test_encryption_round_trips_and_is_bound_to_user(key: str, user: object) -> None:
    blob = keys.encrypt_key(SECRET, key, str(user))
    assert keys.decrypt_key(SECRET, blob, str(user)) == key
    with pytest.raises(InvalidTag):
        keys.decrypt_key(SECRET, blob, "another-user")
    with pytest.raises(InvalidTag):
        keys.decrypt_key(SECRET + "x", blob, str(user))


def test_ciphertext_does_not_contain_the_key() -> None:
    for _ in range(50):
        k = keys.generate_key()
        blob = keys.encrypt_key(SECRET, k, "u")
        assert k.encode() not in blob and k[3:].encode() not in blob


def test_key_hash_is_keyed() -> None:
    k = keys.generate_key()
    assert keys.key_hash(SECRET, k) == keys.key_hash(SECRET, k)
    assert keys.key_hash(SECRET, k) != keys.key_hash(SECRET + "x", k)
    assert keys.hashes_equal(keys.key_hash(SECRET, k), keys.key_hash(SECRET, k))


@pytest.mark.parametrize("value", [
    pytest.param("", id="empty"), pytest.param("tt_short", id="short"),
    pytest.param("tt_" + "a" * 33, id="long"), pytest.param("xx_" + "a" * 32, id="prefix"),
    pytest.param("tt_" + "a" * 31 + "!", id="symbol"), pytest.param("tt_" + "é" * 32, id="utf8"),
])
def test_malformed_keys_are_rejected_before_any_lookup(value: str) -> None:
    assert not keys.looks_like_key(value)


@pytest.mark.parametrize("raw, expected", [
    pytest.param("Example.COM", "example.com", id="lowercased"),
    pytest.param("  sub.example.co.uk ", "sub.example.co.uk", id="trimmed"),
    pytest.param("localhost", "localhost", id="single-label"),
    pytest.param("xn--bcher-kva.example", "xn--bcher-kva.example", id="punycode"),
    pytest.param("a" * 63 + ".com", "a" * 63 + ".com", id="63-char-label"),
])
def test_valid_domains(raw: str, expected: str) -> None:
    assert validation.domain(raw) == expected


@pytest.mark.parametrize("raw", [
    pytest.param("", id="empty"), pytest.param("https://example.com", id="scheme"),
    pytest.param("example.com/path", id="path"), pytest.param("example.com:8080", id="port"),
    pytest.param("-bad.com", id="leading-hyphen"), pytest.param("bad-.com", id="trailing-hyphen"),
    pytest.param("a..b", id="empty-label"), pytest.param("ex ample.com", id="space"),
    pytest.param("bücher.de", id="non-ascii"), pytest.param("a" * 64 + ".com", id="long-label"),
    pytest.param(("a" * 60 + ".") * 5, id="over-255"), pytest.param(42, id="number"),
    pytest.param("under_score.com", id="underscore"),
])
def test_invalid_domains(raw: object) -> None:
    with pytest.raises(ApiError) as info:
        validation.domain(raw)
    assert info.value.status == 400 and "domain" in info.value.message


@pytest.mark.parametrize("groups", [
    pytest.param([{"name": "Blog", "pattern": "/blog/*"}], id="star"),
    pytest.param([{"name": "Doc", "pattern": "/docs/v?/*"}, {"name": "All", "pattern": "*"}],
                 id="question-and-catch-all"),
    pytest.param([], id="empty"),
    pytest.param([{"name": "Eight", "pattern": "/*a*a*a*a*a*a*a*b"}], id="eight-wildcards"),
    pytest.param([{"name": "\u4e00" * 100, "pattern": "/" + "a" * 199}], id="at-the-caps"),
])
def test_valid_content_groups(groups: list[dict[str, str]]) -> None:
    assert validation.content_groups(groups) == groups


@pytest.mark.parametrize("groups, needle", [
    pytest.param({"name": "x"}, "array", id="not-a-list"),
    pytest.param(["/blog/*"], "content_groups[0]", id="not-an-object"),
    pytest.param([{"name": "Blog"}], "name and pattern", id="no-pattern"),
    pytest.param([{"name": "", "pattern": "/b"}], "content_groups[0].name", id="empty-name"),
    pytest.param([{"name": "B", "pattern": ""}], "content_groups[0].pattern", id="empty-pattern"),
    pytest.param([{"name": "B", "pattern": "blog/*"}], "start with '/'", id="relative"),
    pytest.param([{"name": "B", "pattern": "/a b"}], "spaces", id="space"),
    pytest.param([{"name": "B", "pattern": 7}], "pattern must be a string", id="number"),
    pytest.param([{"name": "B", "pattern": "/a", "x": 1}], "unknown field", id="extra-key"),
    pytest.param([{"name": "B", "pattern": "/a"}] * 101, "at most", id="too-many"),
    pytest.param([{"name": "B", "pattern": "/*a*a*a*a*a*a*a*a*b"}], "at most 8 wildcards",
                 id="nine-stars"),
    pytest.param([{"name": "B", "pattern": "/????/*/?/*/??"}], "at most 8 wildcards",
                 id="nine-mixed"),
    pytest.param([{"name": "B", "pattern": "/" + "a" * 200}], "1-200 characters",
                 id="201-chars"),
    pytest.param([{"name": "\u4e00" * 100 + "\U0001f600", "pattern": "/a"}], "name",
                 id="name-101-chars"),
])
def test_invalid_content_groups(groups: object, needle: str) -> None:
    with pytest.raises(ApiError) as info:
        validation.content_groups(groups)
    assert info.value.status == 400 and needle in info.value.message


@pytest.mark.parametrize("raw, stored", [
    pytest.param("/caf%C3%A9/*", "/caf\u00e9/*", id="escapes-decoded"),
    pytest.param("/cafe\u0301/*", "/caf\u00e9/*", id="nfc"),
    pytest.param("/100%/*", "/100%25/*", id="lone-percent"),
    pytest.param("/#!/app/*", "/#/app/*", id="hash-bang"),
    pytest.param("/my%20page/*", "/my page/*", id="space-escape"),
    pytest.param("/" + "%C3%A9" * 40, "/" + "\u00e9" * 40, id="241-chars-raw-41-canonical"),
])
def test_content_group_patterns_are_stored_canonical(raw: str, stored: str) -> None:
    """Issue-12 review finding 2: a pattern is stored as the path it names is stored
    (tinytrail/paths.py), so that it can match; its caps apply to that form."""
    assert validation.content_groups([{"name": "G", "pattern": raw}]) == [
        {"name": "G", "pattern": stored}]


@pytest.mark.parametrize("raw, needle", [
    pytest.param("/a%2Ab/*", "%2A decodes to '*'", id="escaped-star"),
    pytest.param("/" + "a" * 195 + "%/*", "1-200 characters in canonical form", id="grows"),
    pytest.param("/" + "a" * 2048, "1-200 characters", id="raw-over-the-path-cap"),
])
def test_patterns_without_a_canonical_form_within_the_caps_are_refused(raw: str,
                                                                      needle: str) -> None:
    with pytest.raises(ApiError) as info:
        validation.content_groups([{"name": "G", "pattern": raw}])
    assert info.value.status == 400 and needle in info.value.message
    assert "content_groups[0].pattern" in info.value.message


def test_content_groups_search_cost_budget() -> None:
    """The sum of `limits.glob_search_cost` over the groups is at most 2,000: exactly the
    budget is accepted, one step more is refused with the formula in the message."""
    pattern = "/*" + "a" * 100 + "*"  # cost 100
    at_budget = [{"name": f"g{i}", "pattern": pattern} for i in range(20)]
    assert validation.content_groups(at_budget) == at_budget
    over = [*at_budget, {"name": "x", "pattern": "/*b*"}]
    with pytest.raises(ApiError) as info:
        validation.content_groups(over)
    assert info.value.status == 400
    assert "search cost is 2001, at most 2000" in info.value.message
    assert "'/docs/*/api/v?/*' costs 7" in info.value.message
    # Prefixes and suffixes cost nothing: 100 long groups of the usual shapes pass.
    usual = [{"name": f"g{i}", "pattern": f"/{'section' * 20}{i}/*"} for i in range(50)]
    usual += [{"name": f"s{i}", "pattern": f"*/{'suffix' * 20}{i}"} for i in range(50)]
    assert validation.content_groups(usual) == usual


@pytest.mark.parametrize("ips, expected", [
    pytest.param(["203.0.113.7"], ["203.0.113.7"], id="ipv4"),
    pytest.param(["2001:DB8::1"], ["2001:db8::1"], id="ipv6-normalised"),
    pytest.param(["10.1.2.3/8"], ["10.0.0.0/8"], id="cidr-host-bits"),
    pytest.param(["2001:db8::/32", " 192.168.0.0/16 "], ["2001:db8::/32", "192.168.0.0/16"],
                 id="mixed"),
])
def test_valid_excluded_ips(ips: list[str], expected: list[str]) -> None:
    assert validation.excluded_ips(ips) == expected


@pytest.mark.parametrize("ips", [
    pytest.param("10.0.0.1", id="not-a-list"), pytest.param(["10.0.0.256"], id="octet"),
    pytest.param(["10.0.0.0/33"], id="prefix"), pytest.param(["example.com"], id="name"),
    pytest.param([None], id="null"), pytest.param(["fe80::1%eth0"], id="scope-id"),
    pytest.param([""], id="empty"),
])
def test_invalid_excluded_ips(ips: object) -> None:
    with pytest.raises(ApiError) as info:
        validation.excluded_ips(ips)
    assert info.value.status == 400 and "excluded_ips" in info.value.message


@pytest.mark.parametrize("value, expected", [
    pytest.param(dt.datetime(2026, 1, 15, 10, 30, tzinfo=dt.UTC), "2026-01-15T10:30:00.000Z",
                 id="whole-second"),
    pytest.param(dt.datetime(2026, 1, 15, 10, 30, 0, 123999, tzinfo=dt.UTC),
                 "2026-01-15T10:30:00.123Z", id="truncated-not-rounded"),
    pytest.param(dt.datetime(2026, 1, 15, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=2))),
                 "2026-01-15T10:00:00.000Z", id="converted-to-utc"),
])
def test_iso_ms(value: dt.datetime, expected: str) -> None:
    assert iso_ms(value) == expected


@pytest.mark.parametrize("raw", [
    pytest.param("2026-02-30", id="not-a-day"), pytest.param("2026-3-1", id="short"),
    pytest.param("20260301", id="basic-format"), pytest.param(20260301, id="number"),
    pytest.param("2026-03-02", id="future"), pytest.param("2026-03-01T00:00", id="datetime"),
])
def test_aggregate_dates_refused(raw: object) -> None:
    with pytest.raises(ApiError) as info:
        parse_day(raw, dt.date(2026, 3, 1))
    assert info.value.status == 400 and "date" in info.value.message


def test_aggregate_date_accepted() -> None:
    assert parse_day("2026-03-01", dt.date(2026, 3, 1)) == dt.date(2026, 3, 1)


def test_parse_uuid_canonicalises_and_refuses() -> None:
    assert parse_uuid("550E8400-E29B-41D4-A716-446655440000") == (
        "550e8400-e29b-41d4-a716-446655440000")
    with pytest.raises(ApiError):
        parse_uuid("550e8400")


def test_settings_defaults_match_the_contract() -> None:
    s = ApiSettings(secret_key="k" * 32)
    assert (s.api_host, s.api_port, s.api_rate_limit, s.api_rate_window) == (
        "0.0.0.0", 8002, 60, 60)


@pytest.mark.parametrize("extra", [
    pytest.param({"secret_key": "short"}, id="short-secret"),
    pytest.param({"secret_key": "k" * 32, "trusted_proxies": "10.0.0.0/8, nope"},
                 id="bad-proxy"),
    pytest.param({"secret_key": "k" * 32, "api_port": 0}, id="port"),
])
def test_bad_settings_refused(extra: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        ApiSettings(**extra)
