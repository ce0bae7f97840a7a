"""CSV export: RFC 4180, UTF-8, header row, formula-injection guard.

Cells starting with `=`, `+`, `-`, `@`, tab or CR get a leading `'` so that spreadsheets
do not evaluate them (docs/RULES.md; OWASP's CSV-injection list: some spreadsheets drop a
leading tab or CR and then read the formula behind it). So do cells where one of those
four comes after leading blanks: whitespace of any kind (space, NBSP, LF, ideographic
space) and invisible format characters (zero-width space, BOM; Unicode categories Z* and
Cf), since spreadsheets trim some of them on import and a reader cannot see them.
Numbers are written as numbers: a negative change_pct such as -4.08 is data, not a
formula, and is left alone; the guard applies to text cells only. None is an empty cell,
booleans are true/false.
Lines end with CRLF; a cell is quoted when it holds a comma, quote, CR or LF.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_CHARS = "=+-@"


def _blank(ch: str) -> bool:
    """Whitespace or an invisible format character (ZWSP, BOM, word joiner, ...)."""
    return ch.isspace() or unicodedata.category(ch) in ("Zs", "Zl", "Zp", "Cf")


def _formula(text: str) -> bool:
    if text.startswith(_FORMULA_START):
        return True
    if not text or not _blank(text[0]):
        return False
    for ch in text:
        if not _blank(ch):
            return ch in _FORMULA_CHARS
    return False


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value) if isinstance(value, float) else str(value)
    text = str(value)
    return "'" + text if _formula(text) else text


def render(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([cell(v) for v in row])
    return buf.getvalue().encode("utf-8")


def filename(report: str, start: str, end: str) -> str:
    return f"{report}-{start}-{end}.csv"
