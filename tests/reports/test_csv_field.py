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
    pytest.param(" =1", " =1", id="space-left-alone"),
])
def test_tab_and_cr_are_prefixed(value: str, expected: str) -> None:
    assert cell(value) == expected


def test_prefixed_cr_cell_survives_a_csv_reader() -> None:
    body = render(["path"], [["\r=HYPERLINK(\"x\")"]]).decode()
    assert list(csv.reader(io.StringIO(body, newline=""))) == [["path"],
                                                               ["'\r=HYPERLINK(\"x\")"]]
