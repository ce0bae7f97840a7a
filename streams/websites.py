"""The worker's website cache: `WebsiteInfo` (domain, content groups) over the one core of
`tinytrail/websites.py` (metrics with `process="worker"`).

Enrichment looks websites up through it (`get`), so the steps stay pure. Once per batch
(`streams/batch.py` `know_websites`) the copy is refreshed when `max_age` seconds old
(`maybe_refresh`: a failure keeps the previous copy unless it is empty) and the website
ids it lacks are looked up in Postgres (`recheck`, one query), so a website is
collectable from the moment its 201 is sent (docs/RULES.md). An id Postgres does not
know either is remembered for `negative_ttl` seconds (a stream of events for an unknown
id costs one query per `negative_ttl`, not one per batch); only then are its events
dropped as `unknown_website`. Postgres errors are raised: the batch path retries
them all (an error that is not transient is logged as an ERROR and counted), so an
event is never dropped because Postgres could not be asked.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from streams.enrich.website import WebsiteInfo
from tinytrail.db import Pool
from tinytrail.websites import WebsiteCache

COLUMNS = ("domain", "content_groups")


def website_info(row: dict[str, Any]) -> WebsiteInfo:
    """The `WebsiteInfo` of a row of `COLUMNS` (and its text `id`)."""
    return WebsiteInfo.from_row(row["id"], row["domain"], row["content_groups"])


class WorkerWebsites(WebsiteCache[WebsiteInfo]):
    """Website id -> `WebsiteInfo`, refreshed whole every `max_age` seconds; misses are
    re-checked in Postgres (`recheck`) with a negative cache of `negative_ttl` seconds."""

    def __init__(self, pool: Pool, max_age: float = 5.0, negative_ttl: float = 2.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(pool, process="worker", columns=COLUMNS, build=website_info,
                         refresh_seconds=max_age, negative_seconds=negative_ttl,
                         clock=clock)  # the core's negative-cache bound (10,000 ids)
