"""`POST /api/v1/admin/aggregate` (admin): rebuild one UTC day's aggregates from events.

Uses `streams.rebuild.rebuild_days`, the same code path as the stream workers'
batch rebuild and `tinytrail aggregate`; idempotent (a rebuild replaces the day's rows).
A day past the event retention, or whose event partition is gone, is refused with 400
and nothing is deleted (docs/RULES.md: a rebuild never deletes figures it cannot recompute).
"""

from __future__ import annotations

import datetime as dt
import re

from api import validation
from api.handlers import ProtectedHandler
from tinytrail.envelope import ApiError

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_day(value: object, today: dt.date) -> dt.date:
    if not isinstance(value, str) or not _DATE.match(value):
        raise ApiError(400, "date must be a YYYY-MM-DD string")
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        raise ApiError(400, f"date is not a calendar date: {value}") from None
    if day > today:
        raise ApiError(400, "date must not be in the future (UTC)")
    return day


class AggregateHandler(ProtectedHandler):
    async def post(self) -> None:
        self.require_admin()
        body = self.json_object(optional=True)
        validation.reject_unknown(body, {"date"})
        today = self.deps.clock().astimezone(dt.UTC).date()
        day = parse_day(body["date"], today) if body.get("date") is not None else (
            today - dt.timedelta(days=1)
        )
        # lazy: the API does not load Faust otherwise
        from streams.rebuild import RebuildRefused, rebuild_days

        try:
            await rebuild_days(self.deps.pool, day, day,
                               retention_days=self.deps.settings.retention_days, today=today)
        except RebuildRefused as exc:  # nothing was deleted
            raise ApiError(400, str(exc)) from None
        self.send_success({"message": f"Aggregation completed for {day.isoformat()}"})
