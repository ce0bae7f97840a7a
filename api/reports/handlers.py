"""Thin Tornado handlers: parse, authorise, compute, answer JSON (with ETag) or CSV.

`ProtectedHandler.prepare()` (api/handlers.py) authenticates and rate-limits;
`load_website` answers 400/404 in the envelope for a bad id or a website outside
the caller's account. Each report module supplies `compute(pool, params, extra)`,
`csv_rows(data)` and its CSV columns; this module does the rest once.

JSON answers carry a strong ETag (BLAKE2b of the body) and `Cache-Control:
private, no-cache`; a matching `If-None-Match` gets 304 with no body, so a
dashboard polling an unchanged report downloads nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import replace
from types import ModuleType
from typing import Any

import orjson

from api.handlers import ProtectedHandler
from api.reports import (
    csv,
    custom_events,
    devices,
    flow,
    funnel,
    locations,
    pages,
    realtime,
    sources,
    summary,
    timeseries,
)
from api.reports.params import (
    DateRange,
    ReportParams,
    parse_params,
    parse_website_id,
    wants_all_start,
)
from api.reports.store import first_day
from tinytrail.envelope import ApiError, success


def etag_of(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


class ReportHandler(ProtectedHandler):
    """GET one report. Subclasses set `report` to the report's module."""

    report: ModuleType
    deps: Any

    def query(self, name: str) -> str | None:
        """The query parameter `name` exactly as sent (no whitespace stripped, so `DE%0A`
        is not `DE`), or None when absent; raises ApiError(400) when it is given twice."""
        values = self.get_query_arguments(name, strip=False)
        if len(values) > 1:
            raise ApiError(400, f"{name} must be given once")
        return values[0] if values else None

    def parse_extra(self) -> Any:
        parse = getattr(self.report, "parse_extra", None)
        return parse(self.query) if parse else None

    async def params(self) -> ReportParams:
        website_id = parse_website_id(self.query)
        await self.load_website(website_id)  # 400 / 404 (other account) in the envelope
        today = self.deps.clock().astimezone(dt.UTC).date()
        all_start = await first_day(self.deps.pool, website_id) if wants_all_start(
            self.query) else None
        p = parse_params(self.query, today, all_start)
        if p.content_group is not None and not getattr(self.report, "ALLOWS_CONTENT_GROUP", True):
            raise ApiError(400, f"content_group is not available for the {self.report.NAME} report")
        if p.country is not None and not getattr(self.report, "ALLOWS_COUNTRY", False):
            raise ApiError(400, f"country is not available for the {self.report.NAME} report")
        return p

    async def get(self) -> None:
        p = await self.params()
        extra = self.parse_extra()
        data = await self.report.compute(self.deps.pool, p, extra)
        self.answer(data, p, extra)

    def csv_columns(self, extra: Any) -> tuple[str, ...]:
        columns = getattr(self.report, "csv_columns", None)
        return tuple(columns(extra) if columns else self.report.CSV_COLUMNS)

    def answer(self, data: dict[str, Any], p: ReportParams, extra: Any) -> None:
        if p.format == "csv":
            body = csv.render(self.csv_columns(extra), self.report.csv_rows(data))
            name = csv.filename(self.report.NAME, p.range.start.isoformat(),
                                p.range.end.isoformat())
            self.set_header("Content-Type", "text/csv; charset=utf-8")
            self.set_header("Content-Disposition", f'attachment; filename="{name}"')
            self.finish(body)
            return
        body = orjson.dumps(success(data))
        self.set_header("Etag", etag_of(body))
        self.set_header("Cache-Control", "private, no-cache")
        if self.check_etag_header():
            self.set_status(304)
            self.finish()
            return
        self.finish(body)


class SummaryHandler(ReportHandler):
    report = summary


class PagesHandler(ReportHandler):
    report = pages


class SourcesHandler(ReportHandler):
    report = sources


class DevicesHandler(ReportHandler):
    report = devices


class FlowHandler(ReportHandler):
    report = flow


class CustomEventsHandler(ReportHandler):
    report = custom_events


class TimeseriesHandler(ReportHandler):
    report = timeseries


class LocationsHandler(ReportHandler):
    report = locations


class FunnelHandler(ReportHandler):
    report = funnel

    def parse_extra(self) -> Any:
        return funnel.parse_extra(self.get_query_arguments)


class RealtimeHandler(ReportHandler):
    report = realtime

    async def get(self) -> None:
        p = await self.params()
        now = self.deps.clock().astimezone(dt.UTC)
        data = await realtime.compute_realtime(self.deps.redis, p.website_id, now)
        # The CSV file is named after the day of the snapshot.
        self.answer(data, replace(p, range=DateRange(now.date(), now.date())), None)


HANDLERS: dict[str, type[ReportHandler]] = {
    "summary": SummaryHandler,
    "pages": PagesHandler,
    "sources": SourcesHandler,
    "devices": DevicesHandler,
    "flow": FlowHandler,
    "funnel": FunnelHandler,
    "realtime": RealtimeHandler,
    "custom-events": CustomEventsHandler,
    "timeseries": TimeseriesHandler,
    "locations": LocationsHandler,
}
