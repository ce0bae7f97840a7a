"""Metric arithmetic shared by the reports: rates, averages, change percentages.

All rounding is exact decimal arithmetic, half away from zero (never binary-float
banker's rounding), so the API and an independent reference agree to the cent:

  bounce_rate(1, 3)          = 33.33   (100 / 3 = 33.333…)
  bounce_rate(1, 8)          = 12.5    (12.5 exactly)
  avg_duration(5, 2)         = 3       (2.5 s rounds half up to 3)
  avg_duration(4, 3)         = 1       (1.33 s)
  change_pct(185, 172)       = 7.56    ((185 − 172) / 172 × 100 = 7.558…)
  change_pct(42.3, 44.1)     = -4.08
  change_pct(5, 0)           = None    (no previous value to compare with)
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

_CENT = Decimal("0.01")
_ONE = Decimal("1")


def _num(value: Decimal) -> float | int:
    """2-decimal Decimal -> the JSON number (int when whole, e.g. 100 rather than 100.0)."""
    return int(value) if value == value.to_integral_value() else float(value)


def bounce_rate(bounces: int, visits: int) -> float | int:
    """Percent of visits that bounced, 2 decimals; 0 when there are no visits."""
    if visits <= 0:
        return 0
    return _num((Decimal(bounces) * 100 / Decimal(visits)).quantize(_CENT, ROUND_HALF_UP))


def avg_duration(duration_sec: int, visits: int) -> int:
    """Mean visit duration in whole seconds, half up; 0 when there are no visits."""
    if visits <= 0:
        return 0
    return int((Decimal(duration_sec) / Decimal(visits)).quantize(_ONE, ROUND_HALF_UP))


def percent(part: int, whole: int) -> float | int:
    """part / whole × 100, 2 decimals; 0 when `whole` is 0."""
    return bounce_rate(part, whole)


def change_pct(value: float | int, previous: float | int) -> float | int | None:
    """round((value − previous) / previous × 100, 2); None when previous is 0."""
    if previous == 0:
        return None
    v, p = Decimal(str(value)), Decimal(str(previous))
    return _num(((v - p) * 100 / p).quantize(_CENT, ROUND_HALF_UP))
