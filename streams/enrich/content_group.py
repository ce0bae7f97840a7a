"""Content group: the first of the website's glob patterns that matches the path; else None.

The match is cached per website settings object and path (`WebsiteInfo.group_of`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from streams.models import Enriched

if TYPE_CHECKING:
    from streams.enrich import EnrichContext


def step(ev: Enriched, ctx: EnrichContext) -> Enriched:
    ev.content_group = ctx.website.group_of(ev.path) if ctx.website is not None else None
    return ev
