"""UTM source/medium/campaign from the URL's query string; values from the body win.

Values taken from the URL are derived, not sent as fields, so they are not refused: each
is cut to `tinytrail.limits.UTM` (200 characters AND 400 UTF-8 bytes, at a code-point
boundary) like the body's own (which the collector already refused over the caps)."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from streams.models import Enriched
from tinytrail.boundedcache import short_key_cache
from tinytrail.limits import UTM, cut

if TYPE_CHECKING:
    from streams.enrich import EnrichContext

def from_url(url: str) -> tuple[str | None, str | None, str | None]:
    """UTM source/medium/campaign of a URL's query (first non-blank value of each, cut to
    200 characters and 400 bytes); only URLs that carry `utm_` reach the cache."""
    if "utm_" not in url:
        return None, None, None
    return _from_url(url)


# 4,096 URLs of at most 512 characters: <= ~20 MB at worst (4-byte characters and three
# 200-character values each), a few MB for ASCII (docs/STREAMS.md).
@short_key_cache(maxsize=4096, max_chars=512)
def _from_url(url: str) -> tuple[str | None, str | None, str | None]:
    try:
        query = urlsplit(url).query
    except ValueError:
        return None, None, None
    if "utm_" not in query:
        return None, None, None
    q = parse_qs(query)

    def first(name: str) -> str | None:
        vals = [v.strip() for v in q.get(name, []) if v.strip()]
        return cut(vals[0], UTM) if vals else None

    return first("utm_source"), first("utm_medium"), first("utm_campaign")


def _clean(v: str | None) -> str | None:
    if v is None:
        return None
    v = v.strip()
    return cut(v, UTM) if v else None


def step(ev: Enriched, ctx: EnrichContext) -> Enriched:
    src, med, camp = from_url(ev.url)
    ev.utm_source = _clean(ev.utm_source) or src
    ev.utm_medium = _clean(ev.utm_medium) or med
    ev.utm_campaign = _clean(ev.utm_campaign) or camp
    return ev
