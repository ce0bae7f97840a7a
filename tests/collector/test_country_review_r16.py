"""Review of issue 16 (countries): lookup edge cases found by a fresh reviewer.

6to4 (2002::/16) and the deprecated IPv4-compatible form (::a.b.c.d, ::/96) are
looked up as plain IPv6 in the bundled DB-IP file. The file lists 2002::/16 as "US",
so every 6to4 visitor is reported as a US visitor whatever the IPv4 address embedded in
it says (193.99.144.80 is German). The issue asks for "none for private, reserved and
unknown addresses" (or, at most, the country of the embedded IPv4 address); a wrong
country is worse than none. 6to4 is now looked up as its IPv4 address and ::/96 gives none.
"""

from __future__ import annotations

import pytest

from collector.country import BUNDLED_DB, CountryLookup


@pytest.fixture(scope="module")
def db() -> CountryLookup:
    return CountryLookup(BUNDLED_DB)


def test_reference_addresses(db: CountryLookup) -> None:
    # the IPv4 address embedded in the cases below is German in the bundled file
    assert db.lookup("193.99.144.80") == "DE"


@pytest.mark.parametrize("ip", ["2002:c163:9050::1", "2002:c163:9050:1::5"])
def test_6to4_is_not_reported_as_us(db: CountryLookup, ip: str) -> None:
    # 2002:c163:9050:: embeds 193.99.144.80 (DE): looked up as that IPv4 address
    assert db.lookup(ip) == "DE"


def test_6to4_of_a_private_ipv4_has_no_country(db: CountryLookup) -> None:
    # 2002:c0a8:0101:: embeds 192.168.1.1
    assert db.lookup("2002:c0a8:101::1") is None


def test_ipv4_compatible_form_has_no_country(db: CountryLookup) -> None:
    # deprecated and not routable on the Internet; docs/COUNTRIES.md: reserved -> none
    assert db.lookup("::193.99.144.80") is None


def test_openapi_locations_lists_only_parameters_it_takes() -> None:
    from api.openapi import build_document

    op = build_document()["paths"]["/api/v1/reports/locations"]["get"]
    names = {p["name"] for p in op["parameters"]}
    assert "content_group" not in names and {"website_id", "page", "per_page"} <= names
    assert "TINYTRAIL_COUNTRY_DB" in op["description"]
