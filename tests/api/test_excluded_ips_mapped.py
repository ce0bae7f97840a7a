"""Issue 13 item 15: `excluded_ips` are saved in canonical form, IPv4-mapped IPv6 as IPv4,
through the real API (and the pure validator)."""

from __future__ import annotations

import uuid

import pytest
from apisupport import World

from api.validation import excluded_ips
from tinytrail.envelope import ApiError


@pytest.mark.parametrize(("given", "saved"), [
    pytest.param("::ffff:203.0.113.7", "203.0.113.7", id="address"),
    pytest.param("::FFFF:cb00:7107", "203.0.113.7", id="address-hex"),
    pytest.param("::ffff:10.9.9.9/104", "10.0.0.0/8", id="range"),
    pytest.param("::ffff:10.1.2.3/128", "10.1.2.3/32", id="range-one"),
    pytest.param("::ffff:0:0/95", "::fffe:0:0/95", id="wider-stays-ipv6"),
    pytest.param("2001:db8::1", "2001:db8::1", id="plain-ipv6"),
    pytest.param("203.0.113.7", "203.0.113.7", id="plain-ipv4"),
])
def test_validator_unmaps(given: str, saved: str) -> None:
    assert excluded_ips([given]) == [saved]


@pytest.mark.postgres
@pytest.mark.redis
def test_api_saves_mapped_addresses_as_ipv4(world: World) -> None:
    api, key = world.api, world.user_a["apiKey"]
    body = {"domain": f"m{uuid.uuid4().hex[:10]}.example",
            "excluded_ips": ["::ffff:203.0.113.7", "::ffff:10.9.9.9/104"]}
    resp = api.request("POST", "/api/v1/websites", body, key=key)
    assert resp.status == 201, resp.body
    made = resp.json["data"]
    assert made["excludedIps"] == ["203.0.113.7", "10.0.0.0/8"]
    resp = api.request("PATCH", f"/api/v1/websites/{made['id']}",
                       {"excluded_ips": ["::ffff:198.51.100.1"]}, key=key)
    assert resp.status == 200 and resp.json["data"]["excludedIps"] == ["198.51.100.1"]


@pytest.mark.parametrize("given", [
    pytest.param("::ffff:1.2.3.4/96", id="mapped-96-is-all-ipv4"),
    pytest.param("0.0.0.0/0", id="ipv4-0"),
    pytest.param("203.0.113.7/0", id="ipv4-host-bits-0"),
    pytest.param("::/0", id="ipv6-0"),
    pytest.param("2001:db8::/0", id="ipv6-host-bits-0"),
])
def test_a_range_of_every_address_is_refused(given: str) -> None:
    with pytest.raises(ApiError) as err:
        excluded_ips(["198.51.100.1", given])
    assert err.value.status == 400 and "excluded_ips[1]" in err.value.message
    assert "every" in err.value.message


def test_narrow_mapped_ranges_still_unmap() -> None:
    assert excluded_ips(["::ffff:1.2.3.4/97"]) == ["0.0.0.0/1"]


def test_duplicates_after_normalising_are_kept_once() -> None:
    assert excluded_ips(["10.0.0.1", "::ffff:10.0.0.1", "10.0.0.1/32", "10.1.2.3/8",
                         "10.0.0.0/8", "2001:DB8::1", "2001:db8::1"]) == [
        "10.0.0.1", "10.0.0.0/8", "2001:db8::1"]
