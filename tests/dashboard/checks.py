"""What the dashboard tests compare: each panel's figures, read from the page, against
the reference API's answer to the same query (`check_*`), and the query builders."""

from __future__ import annotations

import decimal
import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.dashboard.browser import Chromium
from tests.dashboard.stack import (
    Stack,
)
from tests.dashboard.ui import cells as C
from tests.dashboard.ui import duration, num, pct, read

ROOT = Path(__file__).resolve().parents[2]
SHOTS = Path(os.environ.get("TINYTRAIL_SCREENSHOTS", ROOT / ".local" / "screenshots"))
R = "/api/v1/reports/"
PER_PAGE = 10



def q(site: str, **extra: Any) -> dict[str, Any]:
    return {"website_id": site, "period": "7d", **extra}


def paged(site: str, **extra: Any) -> dict[str, Any]:
    return q(site, page=1, per_page=PER_PAGE, **extra)


async def check_summary(b: Chromium, stack: Stack, query: dict[str, Any]) -> dict[str, Any]:
    want = stack.get(R + "summary", query)
    got = await read(b, "summary")
    assert got["period"] == f"{want['period']['start']} to {want['period']['end']} (UTC)"
    for key, m in want["metrics"].items():
        assert json.loads(got["metrics"][key]["value"]) == m["value"], (key, got, m)
        shown = {"bounce_rate": pct, "avg_session_duration_sec": duration}.get(key, num)
        assert got["metrics"][key]["text"] == shown(m["value"]), (key, got["metrics"][key], m)
        if "change_pct" in m:
            change = got["metrics"][key]["change"]
            assert (change == "" if m["change_pct"] is None
                    else float(change) == m["change_pct"]), (key, change, m)
        else:
            assert got["metrics"][key]["change"] is None
    assert (got["comparison"] or None) == (f"Compared with {want['comparison']}"
                                          if want.get("comparison") else None)
    return want


async def check_series(b: Chromium, stack: Stack, query: dict[str, Any]) -> list[Any]:
    want = stack.get(R + "timeseries", query)
    got = await read(b, "timeseries")
    fmt = {"bounce_rate": pct, "avg_session_duration": duration}.get(want["metric"], num)
    assert got["rows"] == [{"date": p["date"], "value": fmt(p["value"])} for p in want["series"]]
    return want["series"]  # type: ignore[no-any-return]


async def check_pages(b: Chromium, stack: Stack, query: dict[str, Any]) -> list[Any]:
    want = stack.get(R + "pages", query)["rows"]
    got = await read(b, "pages")
    assert got["rows"] == C(want, {"path": None, "contentGroup": None, "pageviews": num,
                                   "uniquePageviews": num})
    return want  # type: ignore[no-any-return]


SOURCE_COLS = {"channel": {"channel": None, "visits": num},
               "domain": {"referrer": None, "visits": num},
               "utm": {"utmSource": None, "utmMedium": None, "utmCampaign": None, "visits": num}}
DEVICE_LISTS = {"types": ("device_types", "deviceType"), "browsers": ("browsers", "browserFamily"),
                "os": ("os_families", "osFamily"), "screens": ("screen_resolutions", "bucket")}


async def check_sources(b: Chromium, stack: Stack, query: dict[str, Any], by: str) -> list[Any]:
    want = stack.get(R + "sources", {**query, "group_by": by})["rows"]
    got = await read(b, "sources")
    assert got["pressed"] == [by]
    assert got["rows"] == C(want, SOURCE_COLS[by])
    return want  # type: ignore[no-any-return]


async def check_devices(b: Chromium, stack: Stack, query: dict[str, Any], tab: str) -> None:
    want = stack.get(R + "devices", query)
    got = await read(b, "devices")
    lst, key = DEVICE_LISTS[tab]
    assert got["pressed"] == [tab]
    assert got["rows"] == C(want[lst][:PER_PAGE], {key: None, "visits": num})


async def check_flow(b: Chromium, stack: Stack, query: dict[str, Any]) -> None:
    want = stack.get(R + "flow", query)
    got = await read(b, "flow")
    assert got["lists"]["landing"] == C(want["landing_pages"], {"path": None, "entries": num})
    assert got["lists"]["exit"] == C(want["exit_pages"], {"path": None, "exits": num})


async def check_events(b: Chromium, stack: Stack, query: dict[str, Any]) -> list[Any]:
    want = stack.get(R + "custom-events", query)["rows"]
    got = await read(b, "events")
    assert got["rows"] == C(want, {"name": None, "count": num})
    return want  # type: ignore[no-any-return]


def share(visits: int, total: int) -> str:
    """The share column: JavaScript's toFixed(1) of the same double (half up, exact)."""
    if not total:
        return "—"
    exact = decimal.Decimal(100 * visits / total)
    return f"{exact.quantize(decimal.Decimal('0.1'), decimal.ROUND_HALF_UP)}%"


async def check_locations(b: Chromium, stack: Stack, query: dict[str, Any]) -> list[Any]:
    """The locations table equals the API's locations answer; each share is the row's
    visits over the summary's visits for the same period (no group, no country)."""
    want = stack.get(R + "locations", query)["rows"]
    total_q = {k: v for k, v in query.items() if k not in ("page", "per_page")}
    total = stack.get(R + "summary", total_q)["metrics"]["visits"]["value"]
    got = await read(b, "locations")
    assert got["rows"] == [{
        "countryName": "Not known" if r["country"] is None else (r["countryName"] or "—"),
        "country": r["country"] or "—", "visits": num(r["visits"]),
        "share": share(r["visits"], total)} for r in want], (got["rows"], want, total)
    return want  # type: ignore[no-any-return]


async def check_realtime(b: Chromium, stack: Stack, site: str) -> dict[str, Any]:
    got = await read(b, "realtime")
    want = stack.get(R + "realtime", {"website_id": site})
    assert got["big"] == str(want["active_visitors"])
    assert got["lists"]["top_pages"] == C(want["top_pages"], {"path": None, "visitors": num})
    assert got["lists"]["events_by_type"] == C(want["events_by_type"],
                                               {"eventType": None, "count": num})
    return want  # type: ignore[no-any-return]


async def check_funnel(b: Chromium, stack: Stack, query: dict[str, Any]) -> list[Any]:
    want = stack.get(R + "funnel", query)["funnel"]
    got = await read(b, "funnel")
    assert got["funnel"] == [{"step": f["step"], "sessions": num(f["sessions"]),
                              "conversion_rate": pct(f["conversion_rate"])} for f in want]
    widths = await b("eval", expr="[...document.querySelectorAll('.bars .fill')]"
                                  ".map((f) => f.style.width)")
    first = want[0]["sessions"]
    assert [float(w.rstrip("%")) for w in widths] == pytest.approx(
        [100 * f["sessions"] / first if first else 0 for f in want], abs=0.01)
    return want  # type: ignore[no-any-return]

