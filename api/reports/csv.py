"""CSV export: RFC 4180, UTF-8, header row, formula-injection guard.

Cells starting with `=`, `+`, `-`, `@`, tab or CR get a leading `'` so that spreadsheets
do not evaluate them (DECISIONS.md; OWASP's CSV-injection list: some spreadsheets drop a
leading tab or CR and then read the formula behind it). Numbers are written as numbers: a negative
change_pct such as -4.08 is data, not a formula, and is left alone; the guard
applies to text cells only. None is an empty cell, booleans are true/false.
Lines end with CRLF; a cell is quoted when it holds a comma, quote, CR or LF.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value) if isinstance(value, float) else str(value)
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def render(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([cell(v) for v in row])
    return buf.getvalue().encode("utf-8")


def filename(report: str, start: str, end: str) -> str:
    return f"{report}-{start}-{end}.csv"
