"""Common report parameters: parsing, validation and period arithmetic.

Every report takes the contract's common query parameters. `parse_params` turns the
raw query string values into a frozen `ReportParams` or raises 400 INVALID_PAYLOAD
naming the parameter. Period arithmetic (docs/RULES.md "Periods") is pure and takes
`today` from the caller, which reads it from the injected clock.

Worked examples (today = 2026-03-01):
  7d        -> 2026-02-23 .. 2026-03-01 (7 days, today inclusive)
  yesterday -> 2026-02-28 .. 2026-02-28
  12m       -> 2025-03-02 .. 2026-03-01 (the same day a year ago + 1 day)
  ytd       -> 2026-01-01 .. 2026-03-01
  compare=previous_period on 7d -> 2026-02-16 .. 2026-02-22
  compare=yoy on 7d             -> 2025-02-23 .. 2025-03-01
Leap days: "one year before" 2024-02-29 is 2023-02-28 (clamped), so 12m on
2024-02-29 is 2023-03-01 .. 2024-02-29, and yoy of 2024-02-29 is 2023-02-28.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass

from tinytrail.envelope import ApiError
from tinytrail.ids import canonical_uuid

PERIODS = ("yesterday", "today", "7d", "30d", "90d", "12m", "ytd", "all")
COMPARES = ("previous_period", "yoy")
FORMATS = ("json", "csv")
MAX_PER_PAGE = 500
DEFAULT_PER_PAGE = 50
MAX_YEARS = 3
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_INT_RE = re.compile(r"^\d{1,9}$")
_LAST_DAYS = {"7d": 7, "30d": 30, "90d": 90}
_COUNTRY_RE = re.compile(r"[A-Z]{2}")  # fullmatch: "$" would let "DE\n" through


@dataclass(frozen=True, slots=True)
class DateRange:
    """An inclusive range of UTC days."""

    start: dt.date
    end: dt.date

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def label(self) -> dict[str, str]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat()}

    def each_day(self) -> list[dt.date]:
        return [self.start + dt.timedelta(days=i) for i in range(self.days)]


@dataclass(frozen=True, slots=True)
class ReportParams:
    website_id: str
    range: DateRange
    compare: str | None
    compare_range: DateRange | None
    include_bots: bool
    content_group: str | None
    page: int
    per_page: int
    format: str
    country: str | None = None  # ISO 3166-1 alpha-2 filter (summary, pages)

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page

    @property
    def bot_flags(self) -> list[bool]:
        """`is_bot = ANY(...)` values: keeps the aggregate primary key usable."""
        return [False, True] if self.include_bots else [False]


def years_before(day: dt.date, years: int) -> dt.date:
    """The same calendar day `years` earlier; 29 February becomes 28 February."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


def period_range(period: str, today: dt.date, all_start: dt.date | None = None) -> DateRange:
    """The inclusive day range of a named period ending today (yesterday ends yesterday)."""
    one = dt.timedelta(days=1)
    if period == "today":
        return DateRange(today, today)
    if period == "yesterday":
        return DateRange(today - one, today - one)
    if period in _LAST_DAYS:
        return DateRange(today - dt.timedelta(days=_LAST_DAYS[period] - 1), today)
    if period == "12m":
        return DateRange(years_before(today, 1) + one, today)
    if period == "ytd":
        return DateRange(today.replace(month=1, day=1), today)
    if period == "all":
        start = all_start if all_start is not None else today
        return DateRange(min(start, today), today)
    raise ApiError(400, f"period must be one of {', '.join(PERIODS)}")


def previous_range(r: DateRange) -> DateRange:
    """The range of equal length that ends the day before `r.start`."""
    end = r.start - dt.timedelta(days=1)
    return DateRange(end - dt.timedelta(days=r.days - 1), end)


def yoy_range(r: DateRange) -> DateRange:
    """Both ends shifted back one calendar year."""
    return DateRange(years_before(r.start, 1), years_before(r.end, 1))


def too_long(r: DateRange) -> bool:
    """More than 3 years: the start lies on or before the same day 3 years before the end.

    2026-03-01 allows a start of 2023-03-02 at the earliest (3 × `12m`).
    """
    return r.start <= years_before(r.end, MAX_YEARS)


Getter = Callable[[str], str | None]


def wants_all_start(get: Getter) -> bool:
    """True when the request resolves to `period=all` (the caller must look up its start)."""
    return get("start_date") is None and get("end_date") is None and get("period") == "all"


def _date(get: Getter, name: str) -> dt.date | None:
    raw = get(name)
    if raw is None:
        return None
    if not _DATE_RE.match(raw):
        raise ApiError(400, f"{name} must be a date YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise ApiError(400, f"{name} is not a valid calendar date") from None


def _int(get: Getter, name: str, default: int, low: int, high: int) -> int:
    raw = get(name)
    if raw is None:
        return default
    if not _INT_RE.match(raw) or not low <= int(raw) <= high:
        raise ApiError(400, f"{name} must be an integer from {low} to {high}")
    return int(raw)


def _choice(get: Getter, name: str, choices: tuple[str, ...], default: str | None) -> str | None:
    raw = get(name)
    if raw is None:
        return default
    if raw not in choices:
        raise ApiError(400, f"{name} must be one of {', '.join(choices)}")
    return raw


def parse_website_id(get: Getter) -> str:
    raw = get("website_id")
    if raw is None or raw == "":
        raise ApiError(400, "website_id is required")
    website_id = canonical_uuid(raw)
    if website_id is None:
        raise ApiError(400, "website_id must be a UUID")
    return website_id


def parse_params(get: Getter, today: dt.date, all_start: dt.date | None = None) -> ReportParams:
    """Validate the common parameters; raises ApiError(400) naming the first bad one.

    `get(name)` returns the query value or None when absent. `all_start` is the
    website's first day (needed only when `wants_all_start`).
    """
    website_id = parse_website_id(get)
    period = _choice(get, "period", PERIODS, "7d")
    assert period is not None
    start, end = _date(get, "start_date"), _date(get, "end_date")
    if start is not None or end is not None:
        if start is None:
            raise ApiError(400, "start_date is required with end_date")
        if end is None:
            raise ApiError(400, "end_date is required with start_date")
        if start > end:
            raise ApiError(400, "start_date must not be after end_date")
        rng = DateRange(start, end)
        if too_long(rng):
            raise ApiError(400, "start_date: the range must not be longer than 3 years")
    else:
        rng = period_range(period, today, all_start)
    compare = _choice(get, "compare", COMPARES, None)
    compare_range = None
    if compare == "previous_period":
        compare_range = previous_range(rng)
    elif compare == "yoy":
        compare_range = yoy_range(rng)
    bots = _choice(get, "include_bots", ("true", "false"), "false")
    group = get("content_group")
    if group is not None and not 1 <= len(group) <= 200:
        raise ApiError(400, "content_group must be 1 to 200 characters")
    country = get("country")
    if country is not None and not _COUNTRY_RE.fullmatch(country):
        raise ApiError(400, "country must be an ISO 3166-1 alpha-2 code: two upper-case"
                            " letters, e.g. DE")
    return ReportParams(
        website_id=website_id,
        range=rng,
        compare=compare,
        compare_range=compare_range,
        include_bots=bots == "true",
        content_group=group,
        page=_int(get, "page", 1, 1, 10**9),
        per_page=_int(get, "per_page", DEFAULT_PER_PAGE, 1, MAX_PER_PAGE),
        format=_choice(get, "format", FORMATS, "json") or "json",
        country=country,
    )
