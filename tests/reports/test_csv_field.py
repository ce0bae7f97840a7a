"""Issue 13 item 15: CSV cells that start with a tab or CR are prefixed with `'` too
(some spreadsheets drop the leading whitespace and then evaluate the formula)."""

from __future__ import annotations

import csv
import io

import pytest

from api.reports.csv import cell, render


@pytest.mark.parametrize(("value", "expected"), [
    pytest.param("\t=cmd|' /C calc'!A0", "'\t=cmd|' /C calc'!A0", id="tab"),
    pytest.param("\r=1+1", "'\r=1+1", id="cr"),
    pytest.param("\t", "'\t", id="tab-only"),
    pytest.param("a\tb", "a\tb", id="tab-inside"),
    pytest.param("a =1", "a =1", id="formula-char-later-left-alone"),
    pytest.param(" ", " ", id="space-only-left-alone"),
    pytest.param(" hello", " hello", id="space-then-text-left-alone"),
])
def test_tab_and_cr_are_prefixed(value: str, expected: str) -> None:
    assert cell(value) == expected


def test_prefixed_cr_cell_survives_a_csv_reader() -> None:
    body = render(["path"], [["\r=HYPERLINK(\"x\")"]]).decode()
    assert list(csv.reader(io.StringIO(body, newline=""))) == [["path"],
                                                               ["'\r=HYPERLINK(\"x\")"]]


@pytest.mark.parametrize("value", [
    pytest.param(" =1+1", id="space"),
    pytest.param("\u00a0=1+1", id="nbsp"),
    pytest.param("\u200b=HYPERLINK(\"x\")", id="zero-width-space"),
    pytest.param("\ufeff+1", id="bom"),
    pytest.param("\u3000-1", id="ideographic-space"),
    pytest.param("\n@SUM(A1)", id="lf"),
    pytest.param("  \u00a0 \u200b=1", id="several"),
])
def test_blanks_before_a_formula_are_prefixed(value: str) -> None:
    """OWASP CSV injection: leading whitespace (and invisible characters) do not make a
    formula safe; spreadsheets may trim them on import."""
    assert cell(value) == "'" + value
