#!/usr/bin/env python3
"""Benchmark: accepted events per second through POST /api/v1/collect, side by side with a
bare Tornado handler that answers 202 on the same machine.

Each server runs in its own subprocess pinned to one core (the load generator gets the
other cores). The load generator is a minimal raw-socket HTTP/1.1 client: keep-alive
connections, pre-built requests carrying many distinct client IPs in X-Forwarded-For
(the generator is the collector's trusted proxy), loopback only. The collector runs with
its real Postgres (a throwaway database), Redis (rate limit set high enough never to
refuse) and Kafka (acks=all), so its figure includes every per-event cost.

    python bench/collector.py --duration 5 --connections 32

Prints the two rates and, as its last line, `ratio: <collector / bare>`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]

BARE_SERVER = r"""
import asyncio, sys, tornado.web, tornado.httpserver
class H(tornado.web.RequestHandler):
    def post(self):
        self.set_status(202)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(b'{"status":"accepted"}')
    def get(self):
        self.finish(b'{"status":"ok"}')
async def main():
    app = tornado.web.Application([(r"/api/v1/collect", H), (r"/health", H)])
    server = tornado.httpserver.HTTPServer(app)
    server.listen(int(sys.argv[1]), address="127.0.0.1")
    await asyncio.Event().wait()
asyncio.run(main())
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pinned(cpu: int | None):  # type: ignore[no-untyped-def]
    def pin() -> None:
        os.setsid()
        if cpu is not None and hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, {cpu})
    return pin


def wait_health(port: int, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                if r.status == 200:
                    return
        except Exception:
            time.sleep(0.3)
    raise SystemExit(f"server on port {port} did not become healthy")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def build_requests(port: int, website_id: str, clients: int) -> list[bytes]:
    body = orjson.dumps({
        "website_id": website_id, "event_type": "page_view", "path": "/p",
        "url": "https://bench.example/p?utm_source=x", "referrer": "https://t.co/a",
        "screen_width": 1440, "screen_height": 900,
    })
    ua = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/120.0.0.0 Safari/537.36")
    out = []
    for i in range(clients):
        ip = f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"
        head = (
            f"POST /api/v1/collect HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"User-Agent: {ua}\r\nContent-Type: text/plain\r\nX-Forwarded-For: {ip}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        out.append(head + body)
    return out


async def one_connection(port: int, requests: list[bytes], offset: int, stop_at: float,
                         counts: dict[int, int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    loop = asyncio.get_running_loop()
    i = offset
    try:
        while loop.time() < stop_at:
            writer.write(requests[i % len(requests)])
            i += 7919  # a prime stride spreads each connection over many client IPs
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if length:
                await reader.readexactly(length)
            counts[status] = counts.get(status, 0) + 1
    finally:
        writer.close()


async def drive(port: int, requests: list[bytes], connections: int, duration: float,
                warmup: float) -> tuple[float, dict[int, int]]:
    loop = asyncio.get_running_loop()
    warm: dict[int, int] = {}
    await asyncio.gather(*(one_connection(port, requests, c * 997, loop.time() + warmup, warm)
                           for c in range(connections)))
    counts: dict[int, int] = {}
    start = loop.time()
    await asyncio.gather(*(one_connection(port, requests, c * 997, start + duration, counts)
                           for c in range(connections)))
    return loop.time() - start, counts


def make_database(server_dsn: str) -> tuple[str, str]:
    import psycopg

    from tinytrail.migrate import apply_migrations

    name = f"tt_bench_{os.getpid()}_{secrets.token_hex(3)}"
    with psycopg.connect(server_dsn, autocommit=True) as conn:
        conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(name)))
    dsn = server_dsn.rsplit("/", 1)[0] + "/" + name
    apply_migrations(dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        acc = conn.execute("INSERT INTO accounts (name) VALUES ('bench') RETURNING id").fetchone()
        site = conn.execute("INSERT INTO websites (account_id, domain) VALUES (%s, 'bench.example')"
                            " RETURNING id::text", (acc[0],)).fetchone()  # type: ignore[index]
    return name, str(site[0])  # type: ignore[index]


def drop_database(server_dsn: str, name: str) -> None:
    import psycopg

    with psycopg.connect(server_dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                     (name,))
        conn.execute(psycopg.sql.SQL("DROP DATABASE IF EXISTS {}").format(
            psycopg.sql.Identifier(name)))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=5.0, help="measured seconds per server")
    p.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds first")
    p.add_argument("--connections", type=int, default=32, help="keep-alive connections")
    p.add_argument("--clients", type=int, default=5000, help="distinct client IPs")
    p.add_argument("--cpu", type=int, default=0, help="core each server is pinned to")
    args = p.parse_args(argv)

    env = dict(os.environ)
    server_dsn = env.get("TINYTRAIL_DATABASE_URL",
                         "postgresql://tinytrail:tinytrail@127.0.0.1:54329/tinytrail")
    if hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) > 1:
        others = os.sched_getaffinity(0) - {args.cpu}
        os.sched_setaffinity(0, others)  # the load generator stays off the servers' core
    dbname, website_id = make_database(server_dsn)
    env.update(
        TINYTRAIL_DATABASE_URL=server_dsn.rsplit("/", 1)[0] + "/" + dbname,
        TINYTRAIL_TOPIC_PREFIX=f"tt-bench-{uuid.uuid4().hex[:8]}",
        TINYTRAIL_EVENTS_PARTITIONS="4",
        TINYTRAIL_COLLECTOR_HOST="127.0.0.1",
        TINYTRAIL_TRUSTED_PROXIES="127.0.0.1/32",
        TINYTRAIL_COLLECT_RATE_LIMIT="1000000000",  # measure throughput, not refusals
        TINYTRAIL_LOG_FORMAT="text",
        TINYTRAIL_LOG_LEVEL="WARNING",
    )
    results: dict[str, tuple[float, dict[int, int]]] = {}
    try:
        for name in ("bare", "collector"):
            port = free_port()
            if name == "bare":
                cmd = [sys.executable, "-c", BARE_SERVER, str(port)]
            else:
                cmd = [sys.executable, "-m", "tinytrail.cli", "collector", "--port", str(port)]
            proc = subprocess.Popen(cmd, env=env, cwd=str(ROOT), preexec_fn=pinned(args.cpu))
            try:
                wait_health(port)
                reqs = build_requests(port, website_id, args.clients)
                results[name] = asyncio.run(
                    drive(port, reqs, args.connections, args.duration, args.warmup))
            finally:
                stop(proc)
    finally:
        drop_database(server_dsn, dbname)

    rates = {}
    for name, (elapsed, counts) in results.items():
        rates[name] = counts.get(202, 0) / elapsed
        print(f"{name:9s}: {rates[name]:8.0f} accepted/s  over {elapsed:.1f}s, "
              f"statuses {dict(sorted(counts.items()))}")
    print(f"ratio: {rates['collector'] / rates['bare']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
