#!/usr/bin/env python3
"""Benchmark: accepted events per second through POST /api/v1/collect, side by side with a
bare Tornado handler that answers 202 on the same machine.

Each server runs in its own subprocess, both pinned to the same core (the load generator
gets the other cores). Both stay up for the whole run and take turns: a warm-up each,
then `--rounds` measured rounds each, in ABBA order, so that the machine's changing load
hits both alike; the figure per server is the median of its rounds. The load generator
is the same for both: a minimal asyncio-Protocol HTTP/1.1 client with keep-alive
connections and pre-built requests carrying many distinct client IPs in X-Forwarded-For
(the generator is the collector's trusted proxy), loopback only. The collector runs with
its real Postgres (a throwaway database, dropped at the end), Redis (rate limit set high
enough never to refuse) and Kafka (acks=all), so its figure includes every per-event cost.

    python bench/collector.py --rounds 3 --duration 3 --connections 32

Bounded: about 2 x (warm-up + rounds x duration) seconds plus start-up; both servers are
stopped (process group SIGTERM, then SIGKILL) whatever happens. Prints each round, both
medians and, as its last line, `ratio: <collector median / bare median>`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import socket
import statistics
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


# First octets of public IPv4 networks in every region (the country database lists
# them), for --public-ips: the collector's country lookup then does real work. These
# addresses only travel in X-Forwarded-For to the loopback servers; nothing is sent
# to them.
PUBLIC_FIRST_OCTETS = (81, 193, 202, 200, 41, 77, 139, 8, 31, 185, 103, 177)


def client_address(i: int, public: bool) -> str:
    if public:
        first = PUBLIC_FIRST_OCTETS[i % len(PUBLIC_FIRST_OCTETS)]
        return f"{first}.{(i >> 12) & 255}.{(i >> 4) & 255}.{1 + (i & 15)}"
    return f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"


def build_requests(port: int, website_id: str, clients: int,
                   public: bool = False) -> list[bytes]:
    body = orjson.dumps({
        "website_id": website_id, "event_type": "page_view", "path": "/p",
        "url": "https://bench.example/p?utm_source=x", "referrer": "https://t.co/a",
        "screen_width": 1440, "screen_height": 900,
    })
    ua = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/120.0.0.0 Safari/537.36")
    out = []
    for i in range(clients):
        ip = client_address(i, public)
        head = (
            f"POST /api/v1/collect HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"User-Agent: {ua}\r\nContent-Type: text/plain\r\nX-Forwarded-For: {ip}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        out.append(head + body)
    return out


class _LoadConnection(asyncio.Protocol):
    """One keep-alive connection of the load generator: sends a request, waits for the
    whole response (status line, headers, Content-Length body), counts its status, sends
    the next; stops at `stop_at`. A bare Protocol, not StreamReader/Writer, so that the
    generator costs little per request and the bare server's figure is the server's,
    not the generator's."""

    def __init__(self, requests: list[bytes], offset: int, stop_at: float,
                 counts: dict[int, int], done: asyncio.Future[None]) -> None:
        self.requests, self.i, self.stop_at = requests, offset, stop_at
        self.counts, self.done = counts, done
        self.buf = b""
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._send()

    def _send(self) -> None:
        assert self.transport is not None
        self.transport.write(self.requests[self.i % len(self.requests)])
        self.i += 7919  # a prime stride spreads each connection over many client IPs

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buf[:end]
            length = 0
            pos = head.lower().find(b"\r\ncontent-length:")
            if pos >= 0:
                stop = head.find(b"\r\n", pos + 2)
                length = int(head[pos + 17:stop if stop >= 0 else None])
            if len(self.buf) < end + 4 + length:
                return
            status = int(head[9:12])
            self.counts[status] = self.counts.get(status, 0) + 1
            self.buf = self.buf[end + 4 + length:]
            if self.loop.time() >= self.stop_at:
                assert self.transport is not None
                self.transport.close()
                return
            self._send()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


async def drive(port: int, requests: list[bytes], connections: int,
                duration: float) -> tuple[float, dict[int, int]]:
    """Closed-loop load for `duration` seconds: (elapsed, {status: count})."""
    loop = asyncio.get_running_loop()
    counts: dict[int, int] = {}
    start = loop.time()
    stop_at = start + duration
    waits = []
    for c in range(connections):
        done: asyncio.Future[None] = loop.create_future()
        await loop.create_connection(
            lambda c=c, done=done: _LoadConnection(requests, c * 997, stop_at, counts, done),
            "127.0.0.1", port)
        waits.append(done)
    # Bounded: a connection that stops answering is abandoned after a grace period.
    await asyncio.wait(waits, timeout=duration + 10)
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


def start_server(name: str, port: int, env: dict[str, str],
                 cpu: int | None) -> subprocess.Popen[bytes]:
    if name == "bare":
        cmd = [sys.executable, "-c", BARE_SERVER, str(port)]
    else:
        cmd = [sys.executable, "-m", "cli", "collector", "--port", str(port)]
    return subprocess.Popen(cmd, env=env, cwd=str(ROOT), preexec_fn=pinned(cpu))


def median(values: list[float]) -> float:
    return statistics.median(values)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3, help="measured rounds per server")
    p.add_argument("--duration", type=float, default=3.0, help="seconds per round")
    p.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds first, each")
    p.add_argument("--connections", type=int, default=32, help="keep-alive connections")
    p.add_argument("--clients", type=int, default=5000, help="distinct client IPs")
    p.add_argument("--cpu", type=int, default=0, help="core both servers are pinned to")
    p.add_argument("--public-ips", action="store_true",
                   help="public client addresses (countries looked up) instead of 10.x")
    args = p.parse_args(argv)
    if not 1 <= args.rounds <= 20 or not 0.5 <= args.duration <= 60:
        p.error("--rounds must be 1-20 and --duration 0.5-60 (the bench is bounded)")

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
        TINYTRAIL_COLLECTOR_METRICS_PORT="0",  # no second listener (ports are shared)
        TINYTRAIL_TRUSTED_PROXIES="127.0.0.1/32",
        TINYTRAIL_COLLECT_RATE_LIMIT="1000000000",  # measure throughput, not refusals
        TINYTRAIL_LOG_FORMAT="text",
        TINYTRAIL_LOG_LEVEL="WARNING",
    )
    names = ("bare", "collector")
    procs: dict[str, subprocess.Popen[bytes]] = {}
    rates: dict[str, list[float]] = {n: [] for n in names}
    per_cpu: dict[str, list[float]] = {n: [] for n in names}  # accepted per CPU-second
    statuses: dict[str, dict[int, int]] = {n: {} for n in names}
    try:
        ports = {n: free_port() for n in names}
        # Both servers stay up for the whole run, on the same core, and take turns under
        # the same load, so that a change in the machine's load hits both alike.
        for n in names:
            procs[n] = start_server(n, ports[n], env, args.cpu)
        for n in names:
            wait_health(ports[n])
        reqs = {n: build_requests(ports[n], website_id, args.clients, args.public_ips)
                for n in names}
        for n in names:
            asyncio.run(drive(ports[n], reqs[n], args.connections, args.warmup))
        for r in range(args.rounds):
            order = names if r % 2 == 0 else names[::-1]  # ABBA: neither always goes first
            for n in order:
                cpu0 = cpu_seconds(procs[n].pid)
                elapsed, counts = asyncio.run(
                    drive(ports[n], reqs[n], args.connections, args.duration))
                busy = (cpu_seconds(procs[n].pid) - cpu0) / elapsed
                rate = counts.get(202, 0) / elapsed
                rates[n].append(rate)
                per_cpu[n].append(rate / busy if busy > 0 else 0.0)
                for code, k in counts.items():
                    statuses[n][code] = statuses[n].get(code, 0) + k
                # CPU share of its core the server used: near 100% means the figure is
                # the server's own cost; well below, it was waiting (Kafka, Redis, load).
                print(f"round {r + 1} {n:9s}: {rate:8.0f} accepted/s, server CPU {busy:4.0%}",
                      flush=True)
    finally:
        for proc in procs.values():
            stop(proc)
        drop_database(server_dsn, dbname)

    for n in names:
        print(f"{n:9s}: median {median(rates[n]):8.0f} accepted/s over {args.rounds} rounds "
              f"of {args.duration:g}s ({median(per_cpu[n]):.0f} per CPU-second of the server), "
              f"statuses {dict(sorted(statuses[n].items()))}")
    # The CPU-normalised ratio compares what one request costs each server on its core,
    # whatever share of the core the machine left it; the last line is the plain one.
    if median(per_cpu["bare"]) > 0:
        print(f"ratio per CPU-second: "
              f"{median(per_cpu['collector']) / median(per_cpu['bare']):.2f}")
    print(f"ratio: {median(rates['collector']) / median(rates['bare']):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
