"""The `tinytrail` command: one subcommand per process plus operator tools.

    tinytrail migrate        apply SQL migrations and create Kafka topics
    tinytrail create-admin   create an account and its first admin; print the key once
    tinytrail collector      run the collector (POST /api/v1/collect, tracker, /health)
    tinytrail worker         run a Faust stream worker
    tinytrail api            run the admin/report API
    tinytrail aggregate      rebuild daily aggregates from stored events
    tinytrail run            run collector, worker, API and a local router on :8000

Process modules are imported lazily so that `--help` stays fast and one process
never imports another's dependencies.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
from collections.abc import Sequence

from tinytrail import __version__


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a YYYY-MM-DD date: {value!r}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tinytrail",
        description="TinyTrail: privacy-first, cookie-less web analytics. "
        "Settings come from TINYTRAIL_* environment variables (see docs/CONFIG.md).",
    )
    parser.add_argument("--version", action="version", version=f"tinytrail {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("migrate", help="apply SQL migrations and create Kafka topics",
                       description="Apply pending SQL migrations (safe to run twice), create "
                       "the event partitions ahead of time, and create missing Kafka topics.")
    p.add_argument("--no-topics", action="store_true", help="skip creating Kafka topics")

    p = sub.add_parser("create-admin", help="create an account and its first admin user",
                       description="Create an account and an admin user in it, and print the "
                       "admin's API key. The key is shown only this once.")
    p.add_argument("--account-name", required=True, help="name of the new account")
    p.add_argument("--email", default=None, help="optional label for the admin user")

    p = sub.add_parser("collector", help="run the event collector",
                       description="Serve POST /api/v1/collect, /js/tracker.js and /health "
                       "(Prometheus /metrics on TINYTRAIL_COLLECTOR_METRICS_PORT only); "
                       "publish accepted events to Kafka.")
    p.add_argument("--port", type=int, default=None, help="override TINYTRAIL_COLLECTOR_PORT")

    sub.add_parser("worker", help="run a stream worker (Faust)",
                   description="Consume raw events, enrich them, build sessions and keep the "
                   "realtime and daily aggregates in Postgres and Redis.")

    p = sub.add_parser("api", help="run the admin and report API",
                       description="Serve accounts, users, websites, admin and report endpoints "
                       "and /health; Prometheus /metrics on TINYTRAIL_API_METRICS_PORT only.")
    p.add_argument("--port", type=int, default=None, help="override TINYTRAIL_API_PORT")

    p = sub.add_parser("aggregate", help="rebuild daily aggregates from stored events",
                       description="Rebuild one day's (or a range of days') aggregates from the "
                       "stored events, with the same code the stream workers use. Idempotent.")
    p.add_argument("--date", type=_date, help="day to rebuild (default: yesterday UTC)")
    p.add_argument("--from", dest="start", type=_date, help="first day of a range")
    p.add_argument("--to", dest="end", type=_date, help="last day of a range (inclusive)")
    p.add_argument("--website", default=None, help="only this website id")

    p = sub.add_parser("run", help="run the whole local system under one supervisor",
                       description="Start collector, worker and API, and a local router on "
                       "http://localhost:8000 that serves the whole contract. A process that "
                       "exits is restarted after a backoff (1 s, doubling to 30 s). "
                       "Ctrl-C stops all.")
    p.add_argument("--port", type=int, default=8000, help="router port (default 8000)")
    p.add_argument("--workers", type=int, default=1, help="number of stream workers")

    p = sub.add_parser("router", help="(internal) local path router used by `run`",
                       description="Route /api/v1/collect and /js/ to the collector and the rest "
                       "to the API, as the Kubernetes Ingress does.")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--collector", default="http://127.0.0.1:8001")
    p.add_argument("--api", default="http://127.0.0.1:8002")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cmd = args.command
    if cmd == "migrate":
        return _migrate(args)
    if cmd == "create-admin":
        from api.bootstrap import create_admin_command

        return create_admin_command(args.account_name, args.email)
    if cmd == "collector":
        from collector.app import main as collector_main

        return collector_main(port=args.port)
    if cmd == "worker":
        from streams.app import main as worker_main

        return worker_main()
    if cmd == "api":
        from api.app import main as api_main

        return api_main(port=args.port)
    if cmd == "aggregate":
        from streams.rebuild import aggregate_command

        if args.date and (args.start or args.end):
            print("tinytrail aggregate: use --date or --from/--to, not both", file=sys.stderr)
            return 2
        if bool(args.start) != bool(args.end):
            print("tinytrail aggregate: --from and --to go together", file=sys.stderr)
            return 2
        if args.start:
            if args.start > args.end:
                print("tinytrail aggregate: --from must not be after --to", file=sys.stderr)
                return 2
            first, last = args.start, args.end
        else:
            first = last = args.date or (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1))
        return aggregate_command(first, last, args.website)
    if cmd == "run":
        from cli.supervisor import run_local

        return run_local(port=args.port, workers=args.workers)
    if cmd == "router":
        from cli.router import main as router_main

        return router_main(args.port, args.collector, args.api)
    raise AssertionError(cmd)


def _migrate(args: argparse.Namespace) -> int:
    from tinytrail.logs import setup_logging
    from tinytrail.migrate import apply_migrations
    from tinytrail.settings import CoreSettings, load_settings

    settings = load_settings(CoreSettings)
    setup_logging(settings.log_format, settings.log_level, process="migrate")
    try:
        applied = apply_migrations(settings.database_url)
    except Exception as exc:  # a clear line, not a traceback, for operators
        print(f"tinytrail migrate: database error: {exc}", file=sys.stderr)
        return 1
    print(f"migrations applied: {', '.join(applied) if applied else 'none (up to date)'}")
    if not args.no_topics:
        from tinytrail.topics import ensure_topics

        try:
            created = asyncio.run(ensure_topics(settings, timeout=60))
        except Exception as exc:
            print(f"tinytrail migrate: kafka error: {exc}", file=sys.stderr)
            return 1
        print(f"topics created: {', '.join(created) if created else 'none (all exist)'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
