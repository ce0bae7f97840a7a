"""The website's settings as the worker sees them, and the step that drops unknown sites."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from streams.enrich.glob import Glob, char_masks
from streams.models import Drop, Enriched
from tinytrail.paths import canonical_pattern

if TYPE_CHECKING:
    from streams.enrich import EnrichContext


GROUP_CACHE_SIZE = 4096  # distinct paths remembered per website


@dataclass(frozen=True)
class WebsiteInfo:
    id: str
    domain: str  # lower case, without a leading "www."
    content_groups: tuple[tuple[str, Glob], ...] = ()
    # path -> group, filled lazily; a settings change builds a new WebsiteInfo (refresh)
    _groups: dict[str, str | None] = field(
        default_factory=dict, compare=False, hash=False, repr=False
    )

    def group_of(self, path: str) -> str | None:
        """The first content group whose glob matches `path` (cached, bounded). Work on a
        cache miss: one step per path character (the masks, once) plus at most
        `tinytrail.limits.glob_search_cost(pattern)` steps per pattern tried
        (streams/enrich/glob.py), whatever the path holds; the API keeps their sum per
        website within `tinytrail.limits.MAX_GROUPS_SEARCH_COST`."""
        cache = self._groups
        if path in cache:
            return cache[path]
        found = None
        masks = None  # char_masks(path), built once for all patterns when one needs them
        for name, glob in self.content_groups:
            if masks is None and glob.needs_masks:
                masks = char_masks(path)
            if glob.matches(path, masks):
                found = name
                break
        if len(cache) >= GROUP_CACHE_SIZE:
            cache.clear()
        cache[path] = found
        return found

    @classmethod
    def from_row(cls, id_: str, domain: str, groups: list[dict[str, Any]] | None) -> WebsiteInfo:
        """The website as stored. Content-group patterns are canonicalised here too
        (`canonical_pattern`), so a pattern saved before the API stored them canonical
        (`/caf%C3%A9/*`, `/#!/app/*`) matches the canonical path at once; one that has
        no canonical form (`%2A`) is used as stored."""
        compiled = []
        for g in groups or []:
            if isinstance(g, dict) and isinstance(g.get("name"), str) and isinstance(
                g.get("pattern"), str
            ):
                pattern = g["pattern"]
                with contextlib.suppress(ValueError):
                    pattern = canonical_pattern(pattern)
                compiled.append((g["name"], Glob.compile(pattern)))
        return cls(str(id_), normalise_domain(domain), tuple(compiled))


def normalise_domain(domain: str) -> str:
    d = domain.strip().lower().rstrip(".")
    if "://" in d:
        d = d.split("://", 1)[1]
    d = d.split("/", 1)[0].split(":", 1)[0]
    return d.removeprefix("www.")


def known_website(ev: Enriched, ctx: EnrichContext) -> Enriched | Drop:
    if ctx.website is None:
        return Drop("unknown_website")
    return ev
