"""Viewport width (CSS pixels) -> bucket (docs/RULES.md): <=375, 376-768, 769-1024, 1025-1440,
>=1441; missing -> unknown.

0 is a width, not a missing value: a page in a hidden or pre-rendered tab, or an iframe
laid out at zero width, reports `innerWidth` 0. It goes with the narrowest bucket, like
every width under 320, so that only events without the field count as `unknown`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from streams.models import Enriched

if TYPE_CHECKING:
    from streams.enrich import EnrichContext


def bucket(width: int | None) -> str:
    """The bucket of a viewport width in CSS pixels (the collector admits 0-100,000)."""
    if width is None or isinstance(width, bool) or not isinstance(width, int | float) or width < 0:
        return "unknown"
    if width <= 375:
        return "320-375"  # widths under 320, and 0, too
    if width <= 768:
        return "376-768"
    if width <= 1024:
        return "769-1024"
    if width <= 1440:
        return "1025-1440"
    return "1441+"


def step(ev: Enriched, ctx: EnrichContext) -> Enriched:
    ev.screen_bucket = bucket(ev.screen_width)
    return ev
