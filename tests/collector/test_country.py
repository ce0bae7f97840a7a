"""The collector's IP -> country lookup (collector/country.py) on the bundled database.

Expected codes are what the bundled DB-IP Lite file (collector/data/README.md, June 2026)
lists for well-known public networks: root name servers, national registries, big
operators' announced ranges. If a database update moves one of them, check it against
the new file and change the row (the rule tests below must not change).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from collector.country import (
    BUNDLED_DB,
    CountryDbError,
    CountryLookup,
    _code_of,
    open_country_db,
)
from collector.settings import CollectorSettings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def db() -> CountryLookup:
    return open_country_db(str(BUNDLED_DB))


@pytest.mark.parametrize(("ip", "code"), [
    pytest.param("81.2.69.160", "GB", id="v4-gb"),
    pytest.param("193.99.144.80", "DE", id="v4-de-heise"),
    pytest.param("202.12.27.33", "JP", id="v4-jp-m-root"),
    pytest.param("200.160.2.3", "BR", id="v4-br-nic"),
    pytest.param("41.206.32.1", "KE", id="v4-ke"),
    pytest.param("139.130.4.5", "AU", id="v4-au"),
    pytest.param("77.88.8.8", "RU", id="v4-ru"),
    pytest.param("2a00:1450:4001:80b::200e", "DE", id="v6-de"),
    pytest.param("2a02:2e0:3fe:1001:302::", "DE", id="v6-de-heise"),
    pytest.param("2001:200::1", "JP", id="v6-jp-wide"),
    pytest.param("2a02:6b8::2:242", "RU", id="v6-ru"),
    pytest.param("::ffff:81.2.69.160", "GB", id="v4-mapped-v6"),
    pytest.param("::ffff:5102:45a0", "GB", id="v4-mapped-v6-hex"),
])
def test_public_addresses_listed_in_the_database(db: CountryLookup, ip: str, code: str) -> None:
    assert db.lookup(ip) == code


@pytest.mark.parametrize("ip", [
    pytest.param("10.1.2.3", id="private-10"),
    pytest.param("172.16.5.4", id="private-172"),
    pytest.param("192.168.1.1", id="private-192"),
    pytest.param("127.0.0.1", id="loopback"),
    pytest.param("::1", id="loopback-v6"),
    pytest.param("169.254.10.1", id="link-local"),
    pytest.param("fe80::1", id="link-local-v6"),
    pytest.param("fd12:3456::1", id="unique-local-v6"),
    pytest.param("100.64.0.1", id="shared-cgnat"),
    pytest.param("192.0.2.10", id="doc-test-net-1"),
    pytest.param("198.51.100.7", id="doc-test-net-2"),
    pytest.param("203.0.113.9", id="doc-test-net-3"),
    pytest.param("2001:db8::1", id="doc-v6"),
    pytest.param("240.0.0.1", id="reserved"),
    pytest.param("0.0.0.0", id="unspecified"),
    pytest.param("224.0.0.1", id="multicast"),
    pytest.param("::ffff:10.0.0.1", id="v4-mapped-private"),
    pytest.param("::ffff:127.0.0.1", id="v4-mapped-loopback"),
    pytest.param("not-an-address", id="junk"),
    pytest.param("", id="empty"),
])
def test_addresses_without_a_country(db: CountryLookup, ip: str) -> None:
    assert db.lookup(ip) is None


@pytest.mark.parametrize(("record", "code"), [
    pytest.param({"country_code": "DE"}, "DE", id="ip-location-db-shape"),
    pytest.param({"country": {"iso_code": "FR", "names": {"en": "France"}}}, "FR",
                 id="geoip2-shape"),
    pytest.param({"registered_country": {"iso_code": "FR"}}, None, id="registered-only"),
    pytest.param({"country_code": "ZZ"}, None, id="zz-unknown"),
    pytest.param({"country_code": "de"}, None, id="lower-case"),
    pytest.param({"country_code": "DEU"}, None, id="alpha-3"),
    pytest.param({"country_code": 49}, None, id="not-a-string"),
    pytest.param(None, None, id="no-record"),
    pytest.param("DE", None, id="not-a-map"),
])
def test_record_shapes(record: object, code: str | None) -> None:
    assert _code_of(record) == code


def test_lookups_are_cached(db: CountryLookup) -> None:
    lookup = CountryLookup(BUNDLED_DB, cache_size=2)
    assert lookup.lookup("81.2.69.160") == "GB"
    assert lookup.lookup("81.2.69.160") == "GB"
    info = lookup.lookup.cache_info()  # type: ignore[attr-defined]
    assert (info.hits, info.misses, info.maxsize) == (1, 1, 2)
    lookup.lookup("193.99.144.80")
    lookup.lookup("77.88.8.8")  # evicts the least recently used
    assert lookup.lookup.cache_info().currsize == 2  # type: ignore[attr-defined]


def test_database_metadata(db: CountryLookup) -> None:
    assert db.info.ip_version == 6
    assert db.info.built.isoformat() == "2026-06-01"  # the date docs/COUNTRIES.md names


def test_missing_and_bad_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(CountryDbError, match="not found"):
        CountryLookup(tmp_path / "missing.mmdb")
    junk = tmp_path / "junk.mmdb"
    junk.write_bytes(b"this is not a MaxMind DB\n" * 100)
    with pytest.raises(CountryDbError, match="not a readable MaxMind DB"):
        CountryLookup(junk)
    with pytest.raises(ValueError, match="country database not found"):
        CollectorSettings(country_db=tmp_path / "missing.mmdb")
    assert CollectorSettings(country_db=BUNDLED_DB).country_db_path == str(BUNDLED_DB)
    assert CollectorSettings().country_db_path == str(BUNDLED_DB)


@pytest.mark.parametrize("name", ["missing.mmdb", "junk.mmdb"])
def test_collector_start_up_fails_with_one_line(tmp_path: Path, name: str) -> None:
    """`tinytrail collector` with a bad TINYTRAIL_COUNTRY_DB exits 2 before it touches any
    service, with one line on stderr naming the variable and the file."""
    path = tmp_path / name
    if name == "junk.mmdb":
        path.write_bytes(b"\x00junk" * 50)
    env = dict(os.environ, TINYTRAIL_COUNTRY_DB=str(path), PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-m", "cli", "collector"], env=env,
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert "TINYTRAIL_COUNTRY_DB" in lines[0] and str(path) in lines[0]
