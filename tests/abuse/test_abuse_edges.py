"""Path tricks on /js/, CORS per route, CSV formula injection end to end, slow clients."""

from __future__ import annotations

import csv
import http.client
import io
import json
import socket
import time
from collections.abc import Iterator

import pytest
import requests

from tests.system_harness import System, event
from tests.system_services import Proc, free_port, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis, pytest.mark.kafka]


def raw_get(port: int, path: str, method: str = "GET",
            headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """A request whose path goes on the wire byte for byte (no client normalisation)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for k, v in (headers or {}).items():
            conn.putheader(k, v)
        conn.endheaders()
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


@pytest.mark.parametrize("path", [
    "/js/../pyproject.toml",
    "/js/%2e%2e/pyproject.toml",
    "/js/%2E%2E%2Fpyproject.toml",
    "/js/..%2f..%2fpyproject.toml",
    "/js/%252e%252e%252fpyproject.toml",
    "/js/tracker.js/../../pyproject.toml",
    "/js/....//pyproject.toml",
    "/js/..\\..\\pyproject.toml",
    "/js/tracker.js%00.txt",
    "/js/tracker.js?/../../pyproject.toml=1",
    "/js//etc/passwd",
    "/js/",
    "/js/collector/app.py",
    "/js/static/tracker.js",
    "/js/TRACKER.JS",
])
def test_js_path_tricks_answer_404(system: System, path: str) -> None:
    status, headers, body = raw_get(system.collector_port, path)
    if path.startswith("/js/tracker.js?"):
        assert status == 200 and b"[project]" not in body  # the query string is ignored
        return
    assert status in (400, 404), (path, status)
    assert b"[project]" not in body and b"root:" not in body and b"import " not in body
    envelope = json.loads(body)
    assert envelope["status"] == "error" and envelope["error"]["code"] in (
        "NOT_FOUND", "INVALID_PAYLOAD")


# --- CORS ------------------------------------------------------------------------------

ORIGIN = "https://evil.example"


def test_collection_routes_are_open_to_any_origin(system: System) -> None:
    pre = requests.options(f"{system.collector_url}/api/v1/collect", timeout=10, headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "POST"})
    assert pre.status_code == 204
    assert pre.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert pre.headers["Access-Control-Allow-Credentials"] == "true"
    post = system.collect(event(system.website_id, "/cors"), ip="198.51.100.201",
                          headers={"Origin": ORIGIN})
    assert post.status_code == 202
    assert post.headers["Access-Control-Allow-Origin"] == ORIGIN


def _api_requests(system: System) -> list[tuple[str, str]]:
    doc = requests.get(f"{system.api_url}/api/v1/openapi.json", timeout=10).json()
    out = []
    for path, item in doc["paths"].items():
        if path.startswith(("/api/v1/collect", "/js/")):
            continue
        concrete = path.replace("{id}", system.website_id)
        out.append(("OPTIONS", concrete))
        out.extend((m.upper(), concrete) for m in item if m in {"get", "post", "patch"})
    return out


@pytest.mark.parametrize("with_key", [True, False], ids=["with-key", "no-key"])
def test_api_routes_send_no_cors_headers(system: System, with_key: bool) -> None:
    checked = 0
    for method, path in _api_requests(system):
        headers = {"Origin": ORIGIN, "Access-Control-Request-Method": "GET",
                   "Access-Control-Request-Headers": "x-api-key"}
        if with_key:
            headers["X-API-KEY"] = system.admin_key
        if method in {"POST", "PATCH"}:
            path = path.replace(system.website_id, "00000000-0000-0000-0000-000000000000")
        status, got, _ = raw_get(system.api_port, path + "?website_id=" + system.website_id,
                                 method, headers)
        assert status < 500, (method, path, status)
        leaked = {k for k in got if k.startswith("access-control-")}
        assert not leaked, f"{method} {path} sends {leaked}"
        checked += 1
    assert checked > 20


# --- CSV formula injection ---------------------------------------------------------------

FORMULAS = ["=HYPERLINK(\"https://evil.example\",\"x\")", "+1+cmd|' /C calc'!A0",
            "-2+3", "@SUM(1,1)"]


def test_csv_formula_injection_through_the_whole_pipeline(system: System) -> None:
    paths = set()
    for i, name in enumerate(FORMULAS):
        path = f"/ft/csv/{i}"
        paths.add(path)
        body = event(system.website_id, path, "custom", properties={"name": name})
        assert system.collect(body, ip=f"198.51.100.{210 + i}").status_code == 202
    system.wait_stored(paths, "/ft/csv/")
    resp = system.api("GET", "/api/v1/reports/custom-events", params={
        "website_id": system.website_id, "period": "today", "format": "csv",
        "per_page": "500"})
    assert resp.status_code == 200, resp.text
    assert resp.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(resp.content.decode("utf-8"))))
    cells = [c for row in rows[1:] for c in row]
    for c in cells:
        if c[:1] in ("=", "+", "-", "@"):
            float(c)  # only a number may start so (a negative change, say)
    names = {row[0] for row in rows[1:]}
    assert {"'" + f for f in FORMULAS} <= names, names


# --- slow clients ----------------------------------------------------------------------------

# The collector's connection timeout (its sweep runs as often) and the API's idle and
# body timeouts, for a collector and an API of this module's own on the system's
# services (the harness's own processes have 3 s): each case waits one out.
SLOW_TIMEOUT = 1.0
TRICKLE = 0.3  # seconds between the pieces a slow client sends


@pytest.fixture(scope="module")
def impatient(system: System) -> Iterator[dict[str, tuple[Proc, int]]]:
    """A collector and an API with SLOW_TIMEOUT, up and healthy: name -> (process, port)."""
    procs: dict[str, tuple[Proc, int]] = {}
    for name, proc, timeouts in (
            ("collector", system._collector(), ["TINYTRAIL_CONNECTION_TIMEOUT"]),
            ("api", system._api(), ["TINYTRAIL_API_IDLE_TIMEOUT", "TINYTRAIL_API_BODY_TIMEOUT"])):
        port = free_port()
        proc.name, proc.argv = f"{name}-impatient", [name, "--port", str(port)]
        proc.env = {**proc.env, **dict.fromkeys(timeouts, str(SLOW_TIMEOUT)),
                    f"TINYTRAIL_{name.upper()}_METRICS_PORT": str(free_port())}
        proc.log = system.logs / f"{name}-impatient.log"
        system.procs[proc.name] = proc  # the leftover check covers it while it runs
        procs[name] = (proc, port)
        proc.start()
    try:
        for name, (_, port) in procs.items():
            wait_for(lambda p=port: requests.get(f"http://127.0.0.1:{p}/health", timeout=3).ok,
                     90, f"the impatient {name}")
        yield procs
    finally:
        for proc, _ in procs.values():
            proc.stop()  # SIGTERM, SIGKILL if need be: gone
            assert not proc.alive
            del system.procs[proc.name]  # the suites after this one see the system's own


def _closed_by_server(port: int, send: list[bytes], within: float) -> float:
    """Send `send` pieces one per TRICKLE, then idle; seconds until the server hangs up
    (during the trickle, too: a refused piece is the server's hang-up)."""
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=within) as s:
        try:
            for piece in send:
                s.sendall(piece)
                time.sleep(TRICKLE)
            s.settimeout(within)
            while s.recv(4096):
                pass
        except (ConnectionResetError, BrokenPipeError):
            pass
        except TimeoutError:
            raise AssertionError(f"connection still open after {within} s") from None
    return time.monotonic() - start


def _open_connections(pid: int) -> int:
    """Established TCP sockets of one process (from /proc: fds pointing at sockets)."""
    import os

    n = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:"):
                n += 1
        except OSError:
            continue
    return n


@pytest.mark.parametrize("server", ["collector", "api"])
@pytest.mark.parametrize("kind", ["idle", "slow-headers", "slow-body"])
def test_slow_clients_are_disconnected(impatient: dict[str, tuple[Proc, int]], server: str,
                                      kind: str) -> None:
    proc, port = impatient[server]
    path = "/api/v1/collect" if server == "collector" else "/api/v1/accounts"
    pieces: dict[str, list[bytes]] = {
        "idle": [],
        "slow-headers": [f"POST {path} HTTP/1.1\r\n".encode(), b"Host: x\r\n", b"X-A: 1\r\n"],
        "slow-body": [f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n"
                      "Content-Type: text/plain\r\n\r\n".encode(), b"{", b'"a'],
    }
    pid = proc.popen.pid  # type: ignore[union-attr]
    before = _open_connections(pid)
    # Timeouts are SLOW_TIMEOUT here; the collector sweeps as often.
    took = _closed_by_server(port, pieces[kind], within=20)
    assert took < 20
    wait_for(lambda: _open_connections(pid) <= before, 10, "the server to release the socket")
    # And it still serves.
    assert requests.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200


