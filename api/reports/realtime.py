"""GET /api/v1/reports/realtime: the last 30 minutes, from the workers' Redis state.

`tinytrail.realtime.read_realtime` (owned by the streams side) returns the
contract's `data` object; this module only supplies the clock's `now` and the CSV
view (`path`, `visitors` of `top_pages`). Period parameters are accepted and
validated like every report's but do not change the answer (always 30 minutes).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

NAME = "realtime"
ALLOWS_CONTENT_GROUP = False
CSV_COLUMNS = ("path", "visitors")


async def compute_realtime(redis: Any, website_id: str, now: dt.datetime) -> dict[str, Any]:
    from tinytrail.realtime import read_realtime  # the streams side's module

    now_ms = int(now.timestamp() * 1000)
    return await read_realtime(redis, website_id, now_ms)


def csv_rows(data: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [(r["path"], r["visitors"]) for r in data.get("top_pages", [])]
