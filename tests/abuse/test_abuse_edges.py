"""Path tricks on /js/, CORS per route, CSV formula injection end to end, slow clients."""

from __future__ import annotations

import csv
import http.client
import io
import json
import socket
import time

import pytest
import requests

from tests.system_harness import System, event
from tests.system_services import wait_for

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


def _closed_by_server(port: int, send: list[bytes], within: float) -> float:
    """Send `send` pieces one per second, then idle; seconds until the server hangs up."""
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=within) as s:
        for piece in send:
            s.sendall(piece)
            time.sleep(1)
        s.settimeout(within)
        try:
            while s.recv(4096):
                pass
        except ConnectionResetError:
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
def test_slow_clients_are_disconnected(system: System, server: str, kind: str) -> None:
    port = system.collector_port if server == "collector" else system.api_port
    path = "/api/v1/collect" if server == "collector" else "/api/v1/accounts"
    pieces: dict[str, list[bytes]] = {
        "idle": [],
        "slow-headers": [f"POST {path} HTTP/1.1\r\n".encode(), b"Host: x\r\n", b"X-A: 1\r\n"],
        "slow-body": [f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n"
                      "Content-Type: text/plain\r\n\r\n".encode(), b"{", b'"a'],
    }
    pid = system.procs[server].popen.pid  # type: ignore[union-attr]
    before = _open_connections(pid)
    # Timeouts are 3 s here (the harness's settings); the collector sweeps every 3 s.
    took = _closed_by_server(port, pieces[kind], within=20)
    assert took < 20
    wait_for(lambda: _open_connections(pid) <= before, 10, "the server to release the socket")
    # And it still serves.
    base = system.collector_url if server == "collector" else system.api_url
    assert requests.get(f"{base}/health", timeout=5).status_code == 200


