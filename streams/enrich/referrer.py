"""Referrer -> channel and referrer domain, from a maintained referrer database.

Channels, first rule that matches wins (contract + DECISIONS.md):
  Paid Search     referrer is a search engine and utm_medium contains cpc, ppc or paid
  Organic Search  referrer is a search engine
  Social          referrer is a social network
  Email           utm_medium is "email", or the referrer is a webmail provider
  Referral        any other external referrer
  Direct          no referrer (or only internal navigation)
A referrer on the website's own domain (or a subdomain of it) is internal
navigation, not a source: it yields no referrer domain. The domain is the
referrer host, lower case, without a leading "www.".

Data: `data/referrers.json` (host -> medium), see `data/README.md`.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from streams.models import Enriched

if TYPE_CHECKING:
    from streams.enrich import EnrichContext


def _load() -> dict[str, str]:
    raw = json.loads((resources.files("streams.enrich") / "data" / "referrers.json").read_text())
    return {host.lower(): entry.get("medium", "unknown") for host, entry in raw.items()}


MEDIUMS: dict[str, str] = _load()
PAID_MARKERS = ("cpc", "ppc", "paid")


@lru_cache(maxsize=65536)
def medium_of(host: str) -> str | None:
    """The database's medium for a host, trying parent domains (m.facebook.com -> facebook.com)."""
    labels = host.split(".")
    for i in range(len(labels) - 1):
        medium = MEDIUMS.get(".".join(labels[i:]))
        if medium is not None:
            return medium
    return None


def referrer_host(referrer: str | None) -> str | None:
    if not referrer:
        return None
    try:
        host = urlsplit(referrer.strip()).hostname
    except ValueError:
        return None
    if not host:
        return None
    return host.rstrip(".").lower() or None


@lru_cache(maxsize=65536)
def classify(
    referrer: str | None, utm_medium: str | None, own_domain: str
) -> tuple[str, str | None]:
    """(channel, referrer_domain) for one event (cached: referrers repeat a lot)."""
    host = referrer_host(referrer)
    domain = host.removeprefix("www.") if host else None
    if domain and own_domain and (domain == own_domain or domain.endswith("." + own_domain)):
        domain = None  # internal navigation is not a source
    medium = medium_of(domain) if domain else None
    utm = (utm_medium or "").lower()
    if medium == "search":
        if any(m in utm for m in PAID_MARKERS):
            return "Paid Search", domain
        return "Organic Search", domain
    if medium == "social":
        return "Social", domain
    if utm == "email" or medium == "email":
        return "Email", domain
    if domain:
        return "Referral", domain
    return "Direct", None


def step(ev: Enriched, ctx: EnrichContext) -> Enriched:
    own = ctx.website.domain if ctx.website is not None else ""
    ev.referrer_channel, ev.referrer_domain = classify(ev.referrer, ev.utm_medium, own)
    return ev
