"""Period arithmetic and common-parameter validation (pure units, injected `today`)."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.reports.params import (
    DateRange,
    parse_params,
    period_range,
    previous_range,
    too_long,
    wants_all_start,
    years_before,
    yoy_range,
)
from tinytrail.envelope import ApiError

D = dt.date.fromisoformat
SITE = "550e8400-e29b-41d4-a716-446655440000"


def getter(**values: str):
    return lambda name: values.get(name)


@pytest.mark.parametrize(
    ("period", "today", "start", "end"),
    [
        pytest.param("today", "2026-03-01", "2026-03-01", "2026-03-01", id="today"),
        pytest.param("yesterday", "2026-03-01", "2026-02-28", "2026-02-28", id="yesterday"),
        pytest.param("yesterday", "2026-01-01", "2025-12-31", "2025-12-31", id="yesterday-newyear"),
        pytest.param("7d", "2026-03-01", "2026-02-23", "2026-03-01", id="7d"),
        pytest.param("30d", "2026-03-01", "2026-01-31", "2026-03-01", id="30d"),
        pytest.param("90d", "2026-03-01", "2025-12-02", "2026-03-01", id="90d"),
        pytest.param("7d", "2024-03-02", "2024-02-25", "2024-03-02", id="7d-over-leap-day"),
        pytest.param("12m", "2026-03-01", "2025-03-02", "2026-03-01", id="12m"),
        pytest.param("12m", "2024-02-29", "2023-03-01", "2024-02-29", id="12m-on-leap-day"),
        pytest.param("12m", "2025-03-01", "2024-03-02", "2025-03-01", id="12m-spanning-leap-day"),
        pytest.param("12m", "2024-12-31", "2024-01-01", "2024-12-31", id="12m-leap-year-end"),
        pytest.param("ytd", "2026-03-01", "2026-01-01", "2026-03-01", id="ytd"),
        pytest.param("ytd", "2026-01-01", "2026-01-01", "2026-01-01", id="ytd-new-year"),
    ],
)
def test_period_ranges(period: str, today: str, start: str, end: str) -> None:
    assert period_range(period, D(today)) == DateRange(D(start), D(end))


def test_12m_lengths_follow_the_calendar() -> None:
    assert period_range("12m", D("2025-03-01")).days == 365
    assert period_range("12m", D("2024-12-31")).days == 366
    assert period_range("12m", D("2024-02-29")).days == 366


def test_all_starts_at_the_first_day_and_never_after_today() -> None:
    assert period_range("all", D("2026-03-01"), D("2025-07-04")) == DateRange(
        D("2025-07-04"), D("2026-03-01"))
    assert period_range("all", D("2026-03-01"), D("2026-05-01")).start == D("2026-03-01")


@pytest.mark.parametrize(
    ("start", "end", "prev_start", "prev_end", "yoy_start", "yoy_end"),
    [
        pytest.param("2026-02-23", "2026-03-01", "2026-02-16", "2026-02-22",
                     "2025-02-23", "2025-03-01", id="7d"),
        pytest.param("2024-02-29", "2024-02-29", "2024-02-28", "2024-02-28",
                     "2023-02-28", "2023-02-28", id="leap-day"),
        pytest.param("2024-02-01", "2024-02-29", "2024-01-03", "2024-01-31",
                     "2023-02-01", "2023-02-28", id="leap-february"),
        pytest.param("2026-01-01", "2026-01-01", "2025-12-31", "2025-12-31",
                     "2025-01-01", "2025-01-01", id="new-year"),
    ],
)
def test_comparison_ranges(start: str, end: str, prev_start: str, prev_end: str,
                           yoy_start: str, yoy_end: str) -> None:
    r = DateRange(D(start), D(end))
    assert previous_range(r) == DateRange(D(prev_start), D(prev_end))
    assert yoy_range(r) == DateRange(D(yoy_start), D(yoy_end))


@given(st.dates(min_value=dt.date(1990, 1, 1), max_value=dt.date(2100, 1, 1)),
       st.integers(min_value=1, max_value=1000))
def test_previous_period_has_equal_length_and_ends_the_day_before(start: dt.date, n: int) -> None:
    r = DateRange(start, start + dt.timedelta(days=n - 1))
    prev = previous_range(r)
    assert prev.days == r.days
    assert prev.end + dt.timedelta(days=1) == r.start


@given(st.dates(min_value=dt.date(1990, 1, 1), max_value=dt.date(2100, 1, 1)))
def test_years_before_keeps_month_and_day_except_leap_day(day: dt.date) -> None:
    before = years_before(day, 1)
    assert before.year == day.year - 1 and before.month == day.month
    assert before.day == (28 if (day.month, day.day) == (2, 29) else day.day)


@pytest.mark.parametrize(
    ("start", "end", "refused"),
    [
        pytest.param("2023-03-02", "2026-03-01", False, id="exactly-3-years"),
        pytest.param("2023-03-01", "2026-03-01", True, id="3-years-and-a-day"),
        pytest.param("2021-02-28", "2024-02-29", True, id="leap-end-clamped-refused"),
        pytest.param("2021-03-01", "2024-02-29", False, id="leap-end-clamped-ok"),
    ],
)
def test_three_year_limit(start: str, end: str, refused: bool) -> None:
    assert too_long(DateRange(D(start), D(end))) is refused


def test_defaults() -> None:
    p = parse_params(getter(website_id=SITE), D("2026-03-01"))
    assert p.range == DateRange(D("2026-02-23"), D("2026-03-01"))
    assert (p.compare, p.compare_range) == (None, None)
    assert (p.include_bots, p.content_group) == (False, None)
    assert (p.page, p.per_page, p.format, p.offset, p.bot_flags) == (1, 50, "json", 0, [False])


def test_country_is_kept_as_given() -> None:
    assert parse_params(getter(website_id=SITE, country="DE"), D("2026-03-01")).country == "DE"
    assert parse_params(getter(website_id=SITE), D("2026-03-01")).country is None


def test_custom_dates_override_period_and_compare() -> None:
    p = parse_params(getter(website_id=SITE, period="90d", start_date="2026-02-23",
                            end_date="2026-03-01", compare="previous_period",
                            include_bots="true", page="3", per_page="500", format="csv",
                            content_group="Blog"), D("2026-03-01"))
    assert p.range == DateRange(D("2026-02-23"), D("2026-03-01"))
    assert p.compare_range == DateRange(D("2026-02-16"), D("2026-02-22"))
    assert (p.include_bots, p.bot_flags, p.page, p.per_page, p.offset) == (
        True, [False, True], 3, 500, 1000)
    assert (p.format, p.content_group) == ("csv", "Blog")


def test_wants_all_start_only_for_period_all_without_dates() -> None:
    assert wants_all_start(getter(period="all"))
    assert not wants_all_start(getter(period="7d"))
    assert not wants_all_start(getter(period="all", start_date="2026-01-01"))


@pytest.mark.parametrize(
    ("values", "names"),
    [
        pytest.param({}, "website_id", id="website-missing"),
        pytest.param({"website_id": "nope"}, "website_id", id="website-not-uuid"),
        pytest.param({"period": "2w"}, "period", id="period"),
        pytest.param({"period": ""}, "period", id="period-empty"),
        pytest.param({"start_date": "2026-01-01"}, "end_date", id="end-missing"),
        pytest.param({"end_date": "2026-01-01"}, "start_date", id="start-missing"),
        pytest.param({"start_date": "2026-1-1", "end_date": "2026-01-02"}, "start_date",
                     id="start-format"),
        pytest.param({"start_date": "2026-01-01", "end_date": "2026-02-30"}, "end_date",
                     id="end-not-a-day"),
        pytest.param({"start_date": "2026-01-02", "end_date": "2026-01-01"}, "start_date",
                     id="start-after-end"),
        pytest.param({"start_date": "2020-01-01", "end_date": "2026-01-01"}, "start_date",
                     id="longer-than-3-years"),
        pytest.param({"compare": "lastweek"}, "compare", id="compare"),
        pytest.param({"include_bots": "yes"}, "include_bots", id="include-bots"),
        pytest.param({"content_group": ""}, "content_group", id="content-group-empty"),
        pytest.param({"page": "0"}, "page", id="page-zero"),
        pytest.param({"page": "-1"}, "page", id="page-negative"),
        pytest.param({"page": "x"}, "page", id="page-text"),
        pytest.param({"per_page": "0"}, "per_page", id="per-page-zero"),
        pytest.param({"per_page": "501"}, "per_page", id="per-page-too-big"),
        pytest.param({"per_page": "1.5"}, "per_page", id="per-page-float"),
        pytest.param({"format": "xml"}, "format", id="format"),
        pytest.param({"country": "de"}, "country", id="country-lower-case"),
        pytest.param({"country": "DEU"}, "country", id="country-alpha-3"),
        pytest.param({"country": "D"}, "country", id="country-one-letter"),
        pytest.param({"country": ""}, "country", id="country-empty"),
        pytest.param({"country": "D1"}, "country", id="country-digit"),
        pytest.param({"country": "DE\n"}, "country", id="country-newline"),
        pytest.param({"country": "ÄÖ"}, "country", id="country-non-ascii"),
    ],
)
def test_invalid_parameters_are_400_naming_the_parameter(
    values: dict[str, str], names: str
) -> None:
    if values and "website_id" not in values:
        values = {"website_id": SITE, **values}
    with pytest.raises(ApiError) as exc:
        parse_params(getter(**values), D("2026-03-01"))
    assert exc.value.status == 400 and exc.value.code == "INVALID_PAYLOAD"
    assert exc.value.message.startswith(names)
