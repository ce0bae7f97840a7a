"""First load of the dashboard's reports view over 90 days, every panel drawn.

Loads one website with N events over 90 days exactly as `bench/reports.py` does
(its `load`: the workers' own fold, COPY, compaction of closed days), starts the
real API process (`tinytrail api`) on that database, and opens
`/dashboard/?period=90d` with a 3-step funnel in headless Chromium (a fresh
browser context each run: empty cache, as a first visit) at 1440 x 4000 px, so
every panel is on screen and loads at once. The figure is the time from the
start of navigation to the moment the last of the ten panels has drawn its data
(`data-state=ready`), read from the page's own clock. Prints every run, then the
median. A figure printed, not a timed test.

Runs alternate: the odd ones empty the funnel cache first (api/reports/funnel.py: a
funnel nobody asked for yet computes every day of the period), the even ones find
the days before today cached by the run before (a bookmark opened again).

    python bench/dashboard.py --events 1000000      # ~8 minutes of loading on 2 cores
    python bench/dashboard.py --help

Needs the services up (Postgres and Redis; see README), the dashboard built
(`cd dashboard && npm ci && npm run build`) and playwright-core in tests/browser.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
import requests
from psycopg import sql

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from reports import load  # noqa: E402  (bench/reports.py)

from api.bootstrap import create_admin  # noqa: E402
from api.settings import ApiSettings  # noqa: E402
from tests.dashboard.browser import Chromium  # noqa: E402
from tests.system_services import free_port, wait_for  # noqa: E402
from tinytrail.migrate import apply_migrations  # noqa: E402
from tinytrail.settings import CoreSettings  # noqa: E402

PANELS = 10  # locations since the countries report
STEPS = ["/pricing", "/signup", "signup_complete"]
SECRET = "bench-secret-key-that-is-at-least-32-characters-long"

# Records performance.now() (ms since navigation start) when every panel is ready.
WATCH = """
(() => {
  window.__ttPanelReady = {};
  const check = () => {
    const panels = document.querySelectorAll('[data-panel]');
    for (const p of panels) {
      if (p.dataset.state === 'ready' && !(p.dataset.panel in window.__ttPanelReady)) {
        window.__ttPanelReady[p.dataset.panel] = performance.now();
      }
    }
    if (panels.length === %d && [...panels].every((p) => p.dataset.state === 'ready')
        && window.__ttAllReady === undefined) {
      window.__ttAllReady = performance.now();
    }
  };
  new MutationObserver(check).observe(document, { subtree: true, attributes: true,
    attributeFilter: ['data-state'], childList: true });
})();
sessionStorage.setItem('tinytrail.apiKey', %s);
sessionStorage.setItem('tinytrail.role', 'admin');
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=10_000_000, help="events to load (10M)")
    ap.add_argument("--days", type=int, default=90, help="days of history ending today (90)")
    ap.add_argument("--runs", type=int, default=6,
                    help="first loads to time, alternately with the funnel cache emptied (6)")
    ap.add_argument("--server", default=os.environ.get(
        "TINYTRAIL_DATABASE_URL", CoreSettings().database_url), help="Postgres server URL")
    ap.add_argument("--redis", default=os.environ.get(
        "TINYTRAIL_REDIS_URL", CoreSettings().redis_url), help="Redis URL")
    ap.add_argument("--keep", action="store_true", help="keep the benchmark database")
    ap.add_argument("--reuse", metavar="DBNAME", default=None,
                    help="measure on a database kept by an earlier --keep run (no loading)")
    ap.add_argument("--seed", type=int, default=1)
    return ap.parse_args(argv)


async def first_loads(base: str, key: str, site: str, runs: int,
                      dsn: str) -> list[dict[str, Any]]:
    query = "&".join([f"site={site}", "period=90d", *(f"step={s}" for s in STEPS)])
    b = await Chromium.start()
    out = []
    try:
        for n in range(runs):
            cache = "empty" if n % 2 == 0 else "kept"
            if cache == "empty":
                with psycopg.connect(dsn, autocommit=True) as conn:
                    conn.execute("DELETE FROM funnel_cache WHERE website_id = %s", (site,))
            await b("open", width=1440, height=4000, init=WATCH % (PANELS, json.dumps(key)))
            await b("goto", url=f"{base}/dashboard/?{query}")
            await b("waitFn", expr="window.__ttAllReady !== undefined", timeout=120_000)
            ready = await b("eval", expr="window.__ttAllReady")
            each = await b("eval", expr="window.__ttPanelReady")
            others = max(t for p, t in each.items() if p != "funnel")
            nav = await b("eval", expr="performance.getEntriesByType('navigation')[0]"
                                       ".domContentLoadedEventEnd")
            states = await b("eval", expr="[...document.querySelectorAll('[data-panel]')]"
                                          ".map((p) => p.dataset.state)")
            assert states == ["ready"] * PANELS, states
            log = await b("log")
            assert not log["errors"], log["errors"]
            api = [r for r in log["requests"] if "/api/" in r["url"]]
            # Each API request's start and end on the page's clock (Resource Timing).
            timing = await b("eval", expr="performance.getEntriesByType('resource')"
                             ".filter((e) => e.name.includes('/api/')).map((e) => "
                             "[new URL(e.name).pathname.split('/').pop(), e.startTime, "
                             "e.responseEnd])")
            slowest = max(timing, key=lambda t: t[2] - t[1])
            out.append({"ready": ready, "dom": nav, "requests": len(api), "others": others,
                        "cache": cache})
            await b("clearLog")
            print(f"  first load, funnel cache {cache:5}: every panel drawn in {ready:7.0f} ms,"
                  f" all but the funnel in "
                  f"{others:5.0f} ms "
                  f"(page ready at {nav:4.0f} ms, {len(api)} API requests; slowest "
                  f"{slowest[0]} {slowest[2] - slowest[1]:.0f} ms; "
                  + ", ".join(f"{n} {e - s:.0f}" for n, s, e in timing) + ")", flush=True)
    finally:
        await b.close()
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    today = dt.datetime.now(dt.UTC).date()
    if not (ROOT / "api" / "dashboard_dist" / "index.html").is_file():
        print("the dashboard is not built: cd dashboard && npm ci && npm run build")
        return 1
    name = args.reuse or f"tt_bench_{uuid.uuid4().hex[:8]}"
    dsn = args.server.rsplit("/", 1)[0] + "/" + name
    settings = CoreSettings(database_url=dsn, redis_url=args.redis)
    if not args.reuse:
        with psycopg.connect(args.server, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    api = None
    try:
        if args.reuse:
            with psycopg.connect(dsn) as conn:
                site = str(conn.execute("SELECT id FROM websites WHERE domain = "
                                        "'bench.example'").fetchone()[0])  # type: ignore[index]
                args.events = conn.execute("SELECT count(*) FROM events").fetchone()[0]  # type: ignore[index]
        else:
            apply_migrations(dsn)
            t0 = time.perf_counter()
            site = asyncio.run(load(settings, args.events, args.days, today, args.seed))
            with psycopg.connect(dsn, autocommit=True) as conn:
                for table in ("events", "agg_site_daily", "agg_dim_daily"):
                    conn.execute(sql.SQL("VACUUM ANALYZE {}").format(sql.Identifier(table)))
            print(f"loaded in {time.perf_counter() - t0:.0f} s into {name}", flush=True)
        key = asyncio.run(create_admin(ApiSettings(**settings.model_dump(), secret_key=SECRET),
                                       "bench", None))["api_key"]
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("TINYTRAIL_")}
        env |= {"PYTHONPATH": str(ROOT), "TINYTRAIL_DATABASE_URL": dsn,
                "TINYTRAIL_REDIS_URL": args.redis, "TINYTRAIL_SECRET_KEY": SECRET,
                "TINYTRAIL_API_HOST": "127.0.0.1", "TINYTRAIL_LOG_LEVEL": "WARNING",
                "TINYTRAIL_API_METRICS_PORT": "0",
                # Several first loads in one minute: the per-key limit is not measured here.
                "TINYTRAIL_API_RATE_LIMIT": "100000"}
        api = subprocess.Popen([sys.executable, "-m", "cli", "api", "--port",
                                str(port)], env=env, cwd=ROOT)
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: requests.get(base + "/health", timeout=2).ok, 60, "the API")
        runs = asyncio.run(first_loads(base, key, site, args.runs, dsn))
    finally:
        if api is not None:
            api.terminate()
            api.wait(timeout=20)
        if not args.keep and not args.reuse:
            with psycopg.connect(args.server, autocommit=True) as conn:
                conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                             " WHERE datname = %s", (name,))
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
    print()
    print(f"reports view, 90 days, {args.events:,} events, {PANELS} panels, "
          f"{runs[0]['requests']} API requests per first load")
    for cache in ("empty", "kept"):
        ready = [r["ready"] for r in runs if r["cache"] == cache]
        if ready:
            print(f"every panel drawn, funnel cache {cache}: median "
                  f"{statistics.median(ready):.0f} ms, min {min(ready):.0f} ms, "
                  f"max {max(ready):.0f} ms over {len(ready)} first loads")
    others = [r["others"] for r in runs]
    print(f"every panel but the funnel: median {statistics.median(others):.0f} ms, "
          f"min {min(others):.0f} ms, max {max(others):.0f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
