"""The website's settings as the worker sees them, and the step that drops unknown sites."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from streams.enrich.glob import Glob
from streams.models import Drop, Enriched

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
        """The first content group whose glob matches `path` (cached, bounded). Linear in
        the path for each pattern (streams/enrich/glob.py): no pattern saved before the
        API's limits existed can stall the worker either."""
        cache = self._groups
        if path in cache:
            return cache[path]
        found = None
        for name, glob in self.content_groups:
            if glob.matches(path):
                found = name
                break
        if len(cache) >= GROUP_CACHE_SIZE:
            cache.clear()
        cache[path] = found
        return found

    @classmethod
    def from_row(cls, id_: str, domain: str, groups: list[dict[str, Any]] | None) -> WebsiteInfo:
        compiled = []
        for g in groups or []:
            if isinstance(g, dict) and isinstance(g.get("name"), str) and isinstance(
                g.get("pattern"), str
            ):
                compiled.append((g["name"], Glob.compile(g["pattern"])))
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
