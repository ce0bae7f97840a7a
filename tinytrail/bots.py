"""Bot detection shared by the collector (to answer 204) and the worker (to enrich).

The data source is the maintained crawler list of the PyPI package
`crawler-user-agents` (MIT, Martin Monperrus et al.; one regex pattern per
crawler, ~1,500 patterns). Its ~1,500 patterns are joined into one compiled
regex, and a few rules of our own cover what such a list cannot: headless
browsers and automation drivers, and empty or implausible agents. A search of
the joined regex costs ~0.7 ms, so verdicts are kept in an LRU cache: real
traffic repeats a small set of agents.
"""

from __future__ import annotations

import re

import crawleruseragents

from tinytrail.boundedcache import short_key_cache

MAX_PLAUSIBLE_LENGTH = 1000  # real browsers send 60-400 characters

_CRAWLER_RE = re.compile("|".join(p["pattern"] for p in crawleruseragents.CRAWLER_USER_AGENTS_DATA))

# Headless and automation markers the crawler list misses or only lists partly.
_HEADLESS_RE = re.compile(
    r"headless|phantomjs|selenium|webdriver|puppeteer|playwright|electron/|slimerjs|"
    r"lighthouse|chrome-lighthouse|httpclient|okhttp|go-http-client|libwww|wget|"
    r"^java/|scrapy|node-fetch|axios/|undici",
    re.IGNORECASE,
)
# A plausible browser agent names a product with a version, e.g. "Mozilla/5.0 (...)".
_PRODUCT_RE = re.compile(r"[A-Za-z][A-Za-z0-9._-]*/\d")


def bot_reason(user_agent: str | None) -> str | None:
    """Why this user agent is a bot (`empty`, `implausible`, `headless`, `crawler`), or None."""
    return _reason(user_agent or "")


@short_key_cache(maxsize=8192, max_chars=512)  # <= ~20 MB at worst (docs/STREAMS.md)
def _reason(ua: str) -> str | None:
    stripped = ua.strip()
    if not stripped:
        return "empty"
    if (
        len(stripped) > MAX_PLAUSIBLE_LENGTH
        or len(stripped) < 10
        or not _PRODUCT_RE.search(stripped)
        or any(ord(ch) < 32 for ch in stripped)
    ):
        return "implausible"
    if _HEADLESS_RE.search(stripped):
        return "headless"
    if _CRAWLER_RE.search(stripped):
        return "crawler"
    return None


def crawler_name(user_agent: str) -> str | None:
    """The text of `user_agent` that the crawler list matched (`ChatGPT-User`, `GPTBot`),
    or None: a bot's name when ua-parser has none (it reads `ChatGPT-User/1.0;
    +https://openai.com/bot` as a browser named "com/bot")."""
    found = _CRAWLER_RE.search(user_agent)
    return found.group(0) if found else None


def is_bot(user_agent: str | None) -> bool:
    """True for crawlers, headless browsers, empty or implausible agents."""
    return _reason(user_agent or "") is not None
