"""Content group: the first of the website's glob patterns that matches the path; else None."""

from __future__ import annotations

from typing import TYPE_CHECKING

from streams.models import Enriched

if TYPE_CHECKING:
    from streams.enrich import EnrichContext


def step(ev: Enriched, ctx: EnrichContext) -> Enriched:
    ev.content_group = None
    if ctx.website is not None:
        for name, rx in ctx.website.content_groups:
            if rx.fullmatch(ev.path):
                ev.content_group = name
                break
    return ev
