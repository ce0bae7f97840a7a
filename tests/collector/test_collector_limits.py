"""Body size, connection reaping and the coalesced rate limiter, on real services."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import orjson
import pytest
import redis.asyncio as aioredis
from collector_testlib import event_body
from test_collector_service import collector_settings

from collector.app import RunningCollector
from collector.ratelimit import CoalescingLimiter
from collector.server import ReapingHTTPServer
from tinytrail.ratelimit import RATE_LIMIT_FAIL_OPEN
from tinytrail.settings import CoreSettings


def services(fn):  # type: ignore[no-untyped-def]
    """The markers of a test that runs the whole collector."""
    return pytest.mark.postgres(pytest.mark.redis(pytest.mark.kafka(fn)))


@pytest.fixture
async def running(core_settings: CoreSettings) -> AsyncIterator[RunningCollector]:
    col = await RunningCollector.start(collector_settings(core_settings))
    yield col
    await col.stop()


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 20)
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
    body = await asyncio.wait_for(reader.readexactly(int(headers.get("content-length", 0))), 20)
    return int(lines[0].split()[1]), headers, body


def collect_head(port: int, extra: str) -> bytes:
    return (f"POST /api/v1/collect HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Origin: https://shop.example\r\nContent-Type: text/plain\r\n{extra}\r\n").encode()


@services
@pytest.mark.parametrize(
    "size,kept_alive",
    [
        pytest.param(40_000, True, id="40KiB"),
        pytest.param(5 * 1024 * 1024, True, id="5MiB-drained"),
        pytest.param(20 * 1024 * 1024, False, id="20MiB-answered-at-once"),
    ],
)
async def test_oversized_body_gets_413_in_the_envelope(
    running: RunningCollector, size: int, kept_alive: bool,
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", running.port)
    try:
        head = collect_head(running.port, f"Content-Length: {size}\r\n")
        if kept_alive:
            writer.write(head + b"{" + b" " * (size - 2) + b"}")
        else:
            # A client that sends the headers and waits (as with Expect: 100-continue):
            # the answer must come before any of the body is read.
            writer.write(head)
        await writer.drain()
        status, headers, body = await read_response(reader)
        assert status == 413
        assert orjson.loads(body)["error"]["code"] == "PAYLOAD_TOO_LARGE"
        assert headers["access-control-allow-origin"] == "https://shop.example"
        if kept_alive:  # the same connection serves the next request
            nxt = orjson.dumps(event_body("00000000-0000-4000-8000-000000000000"))
            writer.write(collect_head(running.port, f"Content-Length: {len(nxt)}\r\n") + nxt)
            status, _, _ = await read_response(reader)
            assert status == 204  # unknown website, answered normally
        else:
            assert await asyncio.wait_for(reader.read(), 20) == b""  # closed after the answer
    finally:
        writer.close()


@services
async def test_chunked_body_over_the_limit_is_413(running: RunningCollector) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", running.port)
    try:
        chunk = b"x" * 16_384
        writer.write(collect_head(running.port, "Transfer-Encoding: chunked\r\n"))
        for _ in range(4):  # 64 KiB in four chunks, over the 32 KiB limit
            writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        writer.write(b"0\r\n\r\n")
        status, _, body = await read_response(reader)
        assert status == 413 and orjson.loads(body)["status"] == "error"
    finally:
        writer.close()


async def test_reaper_closes_connections_stuck_in_a_request() -> None:
    """A client that sends half its headers and goes quiet is closed by the sweep, a busy
    keep-alive connection is not. (No service needed; the server is bare.)"""
    import tornado.web

    class Ok(tornado.web.RequestHandler):
        def get(self) -> None:
            self.finish(b"ok")

    clock = {"now": 1000.0}
    server = ReapingHTTPServer(tornado.web.Application([(r"/", Ok)]), reap_after=75.0,
                               sweep_seconds=3600)
    server._clock = lambda: clock["now"]  # injected clock; sweeps are called by hand
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    sock.setblocking(False)
    server.add_sockets([sock])
    port = sock.getsockname()[1]
    try:
        r1, w1 = await asyncio.open_connection("127.0.0.1", port)
        w1.write(b"GET / HTTP/1.1\r\nHost: x\r\n")  # never finishes its headers
        r2, w2 = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(50):  # bounded: both connections accepted
            if len(server._connections) == 2:
                break
            await asyncio.sleep(0.02)
        assert len(server._connections) == 2
        clock["now"] += 60
        w2.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # the second one stays busy
        status, _, body = await read_response(r2)
        assert (status, body) == (200, b"ok")
        assert server.sweep() == 0  # 60 s: nobody is stale yet
        clock["now"] += 30  # the first began 90 s ago, the second's request 30 s ago
        assert server.sweep() == 1
        assert await asyncio.wait_for(r1.read(), 5) == b""  # closed
        w2.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await read_response(r2))[0] == 200  # still served
        w1.close()
        w2.close()
    finally:
        server.stop()
        await asyncio.wait_for(server.close_all_connections(), 5)


@pytest.mark.redis
async def test_coalesced_limiter_counts_exactly_under_concurrency(redis_url: str) -> None:
    client = aioredis.from_url(redis_url, socket_timeout=2)
    try:
        limiter = CoalescingLimiter(client, "t-coalesce", 5, 60, clock=lambda: 6_000_030.0)
        verdicts = await asyncio.gather(*(limiter.hit(f"id{i % 3}") for i in range(30)))
        allowed = [sum(v.allowed for v, i in zip(verdicts, range(30), strict=True)
                       if i % 3 == k) for k in range(3)]
        assert allowed == [5, 5, 5]  # 10 hits per identity, 5 allowed each
        refused = [v for v in verdicts if not v.allowed]
        assert refused and all(v.retry_after == 30 for v in refused)  # window ends at +30 s
        key = "tt:rl:t-coalesce:id0:100000"  # floor(6,000,030 / 60)
        assert int(await client.get(key)) == 10
        assert 110 <= await client.ttl(key) <= 120  # 2 windows, as the shared limiter sets
    finally:
        await client.aclose()


async def test_coalesced_limiter_fails_open_when_redis_is_down() -> None:
    dead = aioredis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    try:
        limiter = CoalescingLimiter(dead, "t-dead", 1, 10)
        before = RATE_LIMIT_FAIL_OPEN.labels("t-dead")._value.get()
        verdicts = await asyncio.gather(*(limiter.hit("x") for _ in range(20)))
        assert all(v.allowed and not v.checked for v in verdicts)
        assert RATE_LIMIT_FAIL_OPEN.labels("t-dead")._value.get() == before + 20
    finally:
        await dead.aclose()
