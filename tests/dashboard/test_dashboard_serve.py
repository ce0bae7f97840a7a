"""How the API process serves the dashboard (no services needed): headers, the
redirect from `/`, cache rules, and a clear 503 when the build is missing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import tornado.httpserver
import tornado.netutil
import tornado.web
from tornado.httpclient import AsyncHTTPClient, HTTPResponse

from api.dashboard import CSP, DIST, dashboard_routes


@pytest.fixture
async def serve(tmp_path: Path) -> AsyncIterator[tuple[str, Path]]:
    (tmp_path / "app-ABC.js").write_text("console.log(1)")
    (tmp_path / "index.html").write_text("<!doctype html><title>t</title>")
    server = tornado.httpserver.HTTPServer(tornado.web.Application(dashboard_routes(tmp_path)))
    sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
    server.add_sockets(sockets)
    try:
        yield f"http://127.0.0.1:{sockets[0].getsockname()[1]}", tmp_path
    finally:
        server.stop()


async def fetch(url: str) -> HTTPResponse:
    client = AsyncHTTPClient(force_instance=True)
    try:
        return await client.fetch(url, raise_error=False, follow_redirects=False)
    finally:
        client.close()


def test_the_policy_is_strict() -> None:
    directives = dict(d.split(" ", 1) for d in CSP.split("; "))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert directives["connect-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in CSP
    assert DIST.name == "dashboard_dist"


async def test_headers_redirect_and_cache(serve: tuple[str, Path]) -> None:
    base, _ = serve
    root = await fetch(base + "/")
    assert root.code == 302 and root.headers["Location"] == "/dashboard/"
    bare = await fetch(base + "/dashboard?site=x")
    assert bare.code == 302 and bare.headers["Location"] == "/dashboard/?site=x"
    page = await fetch(base + "/dashboard/?site=abc&period=30d")
    assert page.code == 200 and b"<title>t</title>" in page.body
    assert page.headers["Content-Security-Policy"] == CSP
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["Cache-Control"] == "no-cache"
    asset = await fetch(base + "/dashboard/app-ABC.js")
    assert asset.code == 200 and "immutable" in asset.headers["Cache-Control"]
    assert asset.headers["Content-Security-Policy"] == CSP
    missing = await fetch(base + "/dashboard/nope.js")
    assert missing.code == 404 and missing.headers["X-Frame-Options"] == "DENY"
    escape = await fetch(base + "/dashboard/..%2f..%2fetc%2fpasswd")
    assert escape.code in (403, 404)


async def test_a_missing_build_says_how_to_build(serve: tuple[str, Path]) -> None:
    base, dist = serve
    (dist / "index.html").unlink()
    resp = await fetch(base + "/dashboard/")
    assert resp.code == 503
    assert b"npm ci && npm run build" in resp.body
    assert resp.headers["Content-Type"].startswith("text/plain")


ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "dashboard" / "src"


def test_sources_never_write_markup() -> None:
    """Text from the open internet must stay text: no HTML-parsing sink in the app."""
    sinks = ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(",
             "new Function", "setAttribute('style'", 'setAttribute("style"')
    for path in SRC.glob("*.js"):
        text = path.read_text()
        found = [s for s in sinks if s in text]
        assert not found, (path.name, found)


def test_the_build_runs_in_bootstrap_and_in_the_image() -> None:
    boot = (ROOT / "infra" / "bootstrap.sh").read_text()
    assert "npm ci" in boot and "npm run build" in boot
    assert '"$dash/package-lock.json" -nt' in boot  # npm ci keyed on the lockfile
    docker = (ROOT / "infra" / "Dockerfile").read_text()
    assert "AS dashboard" in docker and "RUN npm ci" in docker and "RUN npm run build" in docker
    assert "COPY --from=dashboard /src/api/dashboard_dist ./api/dashboard_dist" in docker
    assert docker.index("COPY --from=dashboard") < docker.index("RUN pip wheel")
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    assert "!dashboard/package-lock.json" in ignore and "!dashboard/src/" in ignore
    assert "api/dashboard_dist/" in (ROOT / ".gitignore").read_text().splitlines()
    lock = (ROOT / "dashboard" / "package-lock.json").read_text()
    assert '"node_modules/uplot"' in lock and '"node_modules/esbuild"' in lock


def test_the_local_router_sends_the_dashboard_to_the_api() -> None:
    from cli.router import upstream_for

    for path in ("/", "/dashboard", "/dashboard/", "/dashboard/app-X.js"):
        assert upstream_for(path, "collector", "api") == "api"


async def test_the_served_bundle_carries_uplots_licence() -> None:
    """uPlot is MIT: its copyright notice must reach whoever gets the bundle. Its header
    is a plain comment esbuild drops, so the build serves its LICENSE beside the bundle
    and the bundle (and the CSS, which holds uPlot's) names it on its first line."""
    assert (DIST / "index.html").is_file(), "cd dashboard && npm ci && npm run build"
    server = tornado.httpserver.HTTPServer(tornado.web.Application(dashboard_routes(DIST)))
    sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
    server.add_sockets(sockets)
    base = f"http://127.0.0.1:{sockets[0].getsockname()[1]}/dashboard/"
    try:
        page = (await fetch(base)).body.decode()
        js = page.split('<script defer src="', 1)[1].split('"', 1)[0]
        css = page.split('<link rel="stylesheet" href="', 1)[1].split('"', 1)[0]
        for asset in (js, css):
            first = (await fetch(base + asset)).body.decode().split("\n", 1)[0]
            assert "uPlot" in first and "Copyright" in first and "uplot-LICENSE.txt" in first, (
                asset, first)
        licence = await fetch(base + "uplot-LICENSE.txt")
        assert licence.code == 200, licence.code
        text = licence.body.decode()
        assert "Copyright (c)" in text and "Leon Sorokin" in text and "MIT" in text
    finally:
        server.stop()
