"""Metric rounding and the CSV writer (pure units)."""

from __future__ import annotations

import csv as stdcsv
import io
import unicodedata
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.reports.csv import cell, filename, render
from api.reports.figures import avg_duration, bounce_rate, change_pct
from tests.reports.aggdata import half_up


@pytest.mark.parametrize(
    ("bounces", "visits", "expected"),
    [
        pytest.param(1, 3, 33.33, id="third"),
        pytest.param(2, 3, 66.67, id="two-thirds"),
        pytest.param(1, 8, 12.5, id="exact"),
        pytest.param(1, 1, 100, id="all"),
        pytest.param(0, 0, 0, id="no-visits"),
        pytest.param(1, 200000, 0.0, id="tiny"),
        pytest.param(1, 400, 0.25, id="quarter"),
    ],
)
def test_bounce_rate(bounces: int, visits: int, expected: float) -> None:
    assert bounce_rate(bounces, visits) == expected


@given(st.integers(0, 10**9), st.integers(1, 10**9))
def test_bounce_rate_matches_exact_rational_rounding(b: int, v: int) -> None:
    assert bounce_rate(b, v) == float(half_up(Fraction(100 * b, v), 2))


@given(st.integers(0, 10**12), st.integers(1, 10**9))
def test_avg_duration_is_whole_seconds_half_up(d: int, v: int) -> None:
    assert avg_duration(d, v) == int(half_up(Fraction(d, v), 0))


@pytest.mark.parametrize(
    ("value", "previous", "expected"),
    [
        pytest.param(12450, 11200, 11.16, id="visits"),
        pytest.param(9870, 8930, 10.53, id="visitors"),
        pytest.param(34200, 30100, 13.62, id="pageviews"),
        pytest.param(42.3, 44.1, -4.08, id="bounce-rate"),
        pytest.param(185, 172, 7.56, id="duration"),
        pytest.param(5, 0, None, id="previous-zero"),
        pytest.param(0, 5, -100, id="to-zero"),
        pytest.param(1, 8, -87.5, id="negative-half"),
    ],
)
def test_change_pct(value: float, previous: float, expected: float | None) -> None:
    assert change_pct(value, previous) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("=SUM(A1)", "'=SUM(A1)", id="equals"),
        pytest.param("+1", "'+1", id="plus"),
        pytest.param("-2+3", "'-2+3", id="minus"),
        pytest.param("@cmd", "'@cmd", id="at"),
        pytest.param("/blog", "/blog", id="path"),
        pytest.param(None, "", id="none"),
        pytest.param(-4.08, "-4.08", id="negative-number-is-data"),
        pytest.param(42.3, "42.3", id="float"),
        pytest.param(7, "7", id="int"),
    ],
)
def test_cells(value: object, expected: str) -> None:
    assert cell(value) == expected


def test_rfc4180_quoting_and_crlf() -> None:
    body = render(("path", "n"), [('/a,"b"', 1), ("/line\nbreak", 2), ("/é", None)])
    assert body == 'path,n\r\n"/a,""b""",1\r\n"/line\nbreak",2\r\n/é,\r\n'.encode()
    assert filename("pages", "2026-02-23", "2026-03-01") == "pages-2026-02-23-2026-03-01.csv"


def _guarded(s: str) -> str:
    """docs/REPORTS.md's rule, restated: a cell starting with = + - @ tab or CR, or whose
    first character that is not a blank (white space, or an invisible Unicode space or
    format character: categories Zs, Zl, Zp, Cf) is = + - or @, gets a leading '."""
    blanks = [c.isspace() or unicodedata.category(c) in ("Zs", "Zl", "Zp", "Cf") for c in s]
    first = next((c for c, blank in zip(s, blanks, strict=True) if not blank), "")
    starts = s[:1] in ("=", "+", "-", "@", "\t", "\r")
    return "'" + s if starts or (blanks[:1] == [True] and first in "=+-@" and first) else s


@given(st.lists(st.tuples(st.text(), st.integers()), max_size=20))
def test_csv_round_trips_through_a_reader(rows: list[tuple[str, int]]) -> None:
    body = render(("name", "count"), rows).decode("utf-8")
    parsed = list(stdcsv.reader(io.StringIO(body, newline="")))
    assert parsed[0] == ["name", "count"]
    expected = [[_guarded(s), str(n)] for s, n in rows]
    assert parsed[1:] == expected
