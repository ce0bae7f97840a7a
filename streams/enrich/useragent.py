"""User agent -> browser_family, os_family, device_type (ua-parser + ua-parser-rs, LRU cached)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ua_parser import parse

from streams.models import Enriched
from tinytrail.bots import crawler_name
from tinytrail.boundedcache import short_key_cache
from tinytrail.limits import UA_FAMILY, cut

if TYPE_CHECKING:
    from streams.enrich import EnrichContext

_DESKTOP_OS = frozenset(
    {"Windows", "Mac OS X", "macOS", "Linux", "Ubuntu", "Chrome OS", "ChromeOS", "Fedora",
     "Debian", "FreeBSD", "OpenBSD", "NetBSD", "Solaris", "Arch Linux", "Linux Mint"}
)
_MOBILE_OS = frozenset({"iOS", "Android", "Windows Phone", "BlackBerry OS", "KaiOS", "Tizen"})
_OS_NAMES = {"Mac OS X": "macOS"}  # the contract's examples say "macOS"


# 8,192 agents of at most 512 characters: <= ~20 MB at worst, ~4 MB for real agents
# (100-300 ASCII characters); longer ones are parsed each time (docs/STREAMS.md).
@short_key_cache(maxsize=8192, max_chars=512)
def classify(ua: str) -> tuple[str, str, str]:
    """(browser_family, os_family, device_type) of one user agent string; the families
    cut to `tinytrail.limits.UA_FAMILY` (100 characters, 400 UTF-8 bytes)."""
    if not ua.strip():
        return "Other", "Other", "other"
    res = parse(ua)
    browser = res.user_agent.family if res.user_agent else "Other"
    os_raw = res.os.family if res.os else "Other"
    dev_family = res.device.family if res.device else "Other"
    low = ua.lower()
    if dev_family == "Spider":
        device = "bot"
    elif "ipad" in low or "tablet" in low or (os_raw == "Android" and "mobile" not in low):
        device = "tablet"
    elif os_raw in _MOBILE_OS or "mobile" in low:
        device = "mobile"
    elif os_raw in _DESKTOP_OS:
        device = "desktop"
    else:
        device = "other"
    if device in ("bot", "other") and ("/" in browser or browser == "Other"):
        # ua-parser has no name for this agent, or took a URL's tail for one ("com/bot"):
        # an agent of the maintained crawler list is a bot, named as the list matched it.
        name = crawler_name(ua)
        if name:
            browser, device = name, "bot"
    # Stored and aggregate keys: a parser may copy much of a hostile agent into a family.
    return cut(browser, UA_FAMILY), cut(_OS_NAMES.get(os_raw, os_raw), UA_FAMILY), device


def step(ev: Enriched, ctx: EnrichContext) -> Enriched:
    ev.browser_family, ev.os_family, ev.device_type = classify(ev.user_agent)
    return ev
