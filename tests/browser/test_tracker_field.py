"""Issue 13's tracker items, each as a site owner would meet it: the real tracker in
headless Chromium on a page the test serves (with vue + vue-router from npm for the
router cases), sending to the real collector; the tests assert what the page sent
(as Chromium saw it) and what the collector published to Kafka."""

from __future__ import annotations

import gzip
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import tornado.httpclient
import tornado.httpserver
import tornado.netutil

from cli import router
from collector.app import RunningCollector
from tinytrail.settings import CoreSettings

sys.path.insert(0, str(Path(__file__).resolve().parent))
from browserlib import PageServer, new_site, published, run_scenario, sentinel  # noqa: E402

TRACKER = Path(__file__).resolve().parents[2] / "collector" / "static" / "tracker.js"
MAX_TRACKER_GZIP = 1450  # bytes, gzip level 9 (issue 13)

pytestmark = [pytest.mark.browser, pytest.mark.kafka, pytest.mark.redis, pytest.mark.postgres]

TRACKING = 'data-allow-localhost data-respect-dnt="false"'
TALL = '<div style="height:5000px">tall</div>'
LOADED = "window.analytics && !window.analytics.q && document.readyState === 'complete'"


def page(site: str, src: str, *, attrs: str = TRACKING, head: str = "", body: str = "",
         copies: int = 1, app: str = "") -> str:
    tag = f'<script defer data-id="{site}" {attrs} src="{src}"></script>'
    return (f"<!doctype html><html><head><meta charset=utf-8><title>TinyTrail test</title>"
            f"{head}{tag * copies}</head><body style='margin:0;font:20px sans-serif'>"
            f"{body}{app}</body></html>")


def tracker_src(col: RunningCollector) -> str:
    return f"http://127.0.0.1:{col.port}/js/tracker.js"


def kinds(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e for e in events if e["event_type"] == kind]


def view_paths(events: list[dict[str, Any]]) -> list[str]:
    return [e["path"] for e in kinds(events, "page_view")]


async def visit(core_settings: CoreSettings, col: RunningCollector, site: str, url: str,
                steps: list[dict[str, Any]], **extra: Any
                ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Run the visit; (what Chromium saw, what the collector published)."""
    result = await run_scenario({"url": url, "steps": steps,
                                 "sentinel": sentinel(col.port, site), **extra})
    assert result["errors"] == [], result["log"]
    assert result["failed"] == [], result["log"]
    return result, await published(core_settings, site)


# --- 1. early calls are queued by the stub and replayed in order --------------------------

STUB = ("<script>window.analytics = window.analytics || "
        "{q: [], track: function () { this.q.push(arguments) }};"
        "analytics.track('first', {n: 1}); analytics.track('second', {n: 2});"
        "analytics.track('third');</script>")


async def test_stub_queue_is_replayed_in_order(
    live_collector: RunningCollector, pages: PageServer, core_settings: CoreSettings,
    pg_dsn: str,
) -> None:
    site = await new_site(pg_dsn, live_collector)
    pages.html = page(site, tracker_src(live_collector), head=STUB)
    sent, stored = await visit(core_settings, live_collector, site, pages.url("/shop"),
                               [{"wait": LOADED}])
    names = [b["properties"]["name"] for b in sent["posted"] if b["event_type"] == "custom"]
    assert names == ["first", "second", "third"], sent["log"]
    customs = {e["name"]: e["properties"] for e in kinds(stored, "custom")}
    assert customs == {"first": {"n": 1, "name": "first"}, "second": {"n": 2, "name": "second"},
                       "third": {"name": "third"}}
    assert view_paths(stored) == ["/shop"]


# --- 2. analytics.track exists (and does nothing) when the tracker does not track ----------

BUY = ("<button id=buy onclick=\"analytics.track('purchase'); checkout()\">Buy</button>"
       "<script>function checkout() { window.checkedOut = (window.checkedOut || 0) + 1 }"
       "</script>")


@pytest.mark.parametrize("case", ["dnt", "localhost", "file", "app.localhost", "0.0.0.0"])
async def test_track_is_a_no_op_when_not_tracking(
    case: str, live_collector: RunningCollector, pages: PageServer,
    core_settings: CoreSettings, pg_dsn: str, tmp_path: Path,
) -> None:
    site = await new_site(pg_dsn, live_collector)
    attrs = "data-allow-localhost" if case == "dnt" else ""
    pages.html = page(site, tracker_src(live_collector), attrs=attrs, body=BUY)
    # `*.localhost` is loopback (RFC 6761) and 0.0.0.0 reaches this machine: local as well
    url = pages.url("/cart", host="127.0.0.1" if case in ("dnt", "file") else case)
    if case == "file":
        (tmp_path / "cart.html").write_text(pages.html)
        url = (tmp_path / "cart.html").as_uri()
    sent, stored = await visit(
        core_settings, live_collector, site, url,
        [{"wait": "document.readyState === 'complete'"}, {"click": "#buy"}],
        privacy={"dnt": case == "dnt"},
        report="[window.checkedOut, typeof analytics.track]")
    assert sent["report"] == [1, "function"], sent["log"]  # checkout() ran after track()
    assert sent["posted"] == [] and stored == []


# --- 3. a second copy of the snippet does not initialise ----------------------------------

async def test_second_copy_counts_nothing_twice(
    live_collector: RunningCollector, pages: PageServer, core_settings: CoreSettings,
    pg_dsn: str,
) -> None:
    site = await new_site(pg_dsn, live_collector)
    pages.html = page(site, tracker_src(live_collector), copies=2, body=TALL)
    _, stored = await visit(core_settings, live_collector, site, pages.url("/one"), [
        {"wait": LOADED},
        {"eval": "history.pushState({}, '', '/two')"},
        {"scroll": [800, 1800, 2800, 3800, 5000]},
        {"eval": "analytics.track('signup')"},
        {"hide": True},
    ])
    assert view_paths(stored) == ["/one", "/two"]
    counts = {k: len(kinds(stored, k)) for k in
              ("scroll_25", "scroll_50", "scroll_75", "custom", "close_tab")}
    assert counts == dict.fromkeys(counts, 1), stored


# --- 4. routers: vue-router (npm) in hash mode and in history mode -------------------------

VUE = ("<script src='/node_modules/vue/dist/vue.global.prod.js'></script>"
       "<script src='/node_modules/vue-router/dist/vue-router.global.prod.js'></script>")
APP = """<div id=app><nav><router-link id=to-home to="/">Home</router-link> |
<router-link id=to-about to="/about">About</router-link> |
<router-link id=to-pricing to="/pricing">Pricing</router-link></nav>
<main style="padding:1em"><router-view></router-view></main></div>
<script>
// Started after the deferred tracker, so the router's first replaceState (/ -> /#/ in hash
// mode) is one the tracker sees.
document.addEventListener('DOMContentLoaded', function () {
  var view = function (t) { return { template: '<h1 id=title>' + t + '</h1>' }; };
  window.router = VueRouter.createRouter({
    history: VueRouter.%s(),
    routes: [{ path: '/', component: view('Home') }, { path: '/about', component: view('About') },
             { path: '/pricing', component: view('Pricing') }]
  });
  Vue.createApp({}).use(window.router).mount('#app');
});
</script>"""


def title_is(text: str) -> dict[str, str]:
    return {"wait": f"(document.getElementById('title') || {{}}).textContent === '{text}'"}


async def test_vue_router_hash_mode_routes_are_pages(
    live_collector: RunningCollector, pages: PageServer, core_settings: CoreSettings,
    pg_dsn: str, tmp_path: Path,
) -> None:
    site = await new_site(pg_dsn, live_collector)
    pages.html = page(site, tracker_src(live_collector), head=VUE,
                      app=APP % "createWebHashHistory")
    shot = tmp_path / "vue-hash.png"
    sent, stored = await visit(core_settings, live_collector, site, pages.url("/"), [
        title_is("Home"), {"wait": "location.hash === '#/'"},
        {"click": "#to-about"}, title_is("About"),
        {"click": "#to-pricing"}, title_is("Pricing"),
        # Same route, other query: not a new page.
        {"eval": "router.push('/pricing?plan=pro')"}, {"wait": "location.hash.includes('plan')"},
        # Same URL, new state: not a new page.
        {"eval": "history.replaceState(Object.assign({}, history.state, {x: 1}), '')"},
        {"eval": "history.back()"}, {"wait": "location.hash === '#/pricing'"},
        {"eval": "history.back()"}, title_is("About"),
    ], screenshot=str(shot))
    assert view_paths(stored) == ["/", "/#/about", "/#/pricing", "/#/about"], sent["log"]
    assert all(e["url"].startswith(pages.url("/")) for e in stored)
    assert shot.stat().st_size > 0
    print("screenshot:", shot)


async def test_vue_router_history_mode_routes_are_pages(
    live_collector: RunningCollector, pages: PageServer, core_settings: CoreSettings,
    pg_dsn: str,
) -> None:
    site = await new_site(pg_dsn, live_collector)
    pages.html = page(site, tracker_src(live_collector), head=VUE,
                      app=APP % "createWebHistory")
    sent, stored = await visit(core_settings, live_collector, site, pages.url("/"), [
        title_is("Home"),
        {"click": "#to-about"}, title_is("About"),
        {"click": "#to-pricing"}, title_is("Pricing"),
        # Same pathname, other query (a filter, a tab): not a new page.
        {"eval": "router.replace({query: {tab: '2'}})"}, {"wait": "location.search === '?tab=2'"},
        {"eval": "history.back()"}, title_is("About"),
    ])
    assert view_paths(stored) == ["/", "/about", "/pricing", "/about"], sent["log"]


# --- 5. in-page anchors send nothing (and do not reset scroll depth) -----------------------

ANCHORS = ("<a id=to-faq href='#faq'>FAQ</a>" + TALL +
           "<h2 id=faq>FAQ</h2><a id=to-top href='#top'>top</a><div style='height:600px'></div>")


async def test_in_page_anchor_is_not_a_page_view(
    live_collector: RunningCollector, pages: PageServer, core_settings: CoreSettings,
    pg_dsn: str,
) -> None:
    site = await new_site(pg_dsn, live_collector)
    pages.html = page(site, tracker_src(live_collector), body=ANCHORS)
    sent, stored = await visit(core_settings, live_collector, site, pages.url("/help"), [
        {"wait": LOADED},
        {"scroll": [900, 1900, 2900, 3900, 5600]},
        {"click": "#to-top"}, {"wait": "location.hash === '#top'"},
        {"eval": "window.scrollTo(0, 0)"},
        {"click": "#to-faq"}, {"wait": "location.hash === '#faq'"},
        # A hashbang route is a page, though.
        {"eval": "location.hash = '#!/legacy'"},
    ])
    sent_views = [e["path"] for e in sent["posted"] if e["event_type"] == "page_view"]
    assert sent_views == ["/help", "/help#!/legacy"], sent["log"]
    # The collector may store a hashbang route in its canonical form, `#/` (docs/RULES.md).
    assert [p.replace("#!/", "#/") for p in view_paths(stored)] == ["/help", "/help#/legacy"]
    scrolls = [(e["event_type"], e["path"]) for e in stored if e["event_type"].startswith("scroll")]
    assert sorted(scrolls) == [("scroll_25", "/help"), ("scroll_50", "/help"),
                               ("scroll_75", "/help")]


# --- 6. screen_width is the viewport width --------------------------------------------------

async def test_screen_width_is_the_viewport(
    live_collector: RunningCollector, pages: PageServer, core_settings: CoreSettings,
    pg_dsn: str,
) -> None:
    site = await new_site(pg_dsn, live_collector)
    pages.html = page(site, tracker_src(live_collector))
    sent, stored = await visit(core_settings, live_collector, site, pages.url("/"),
                               [{"wait": LOADED}], viewport={"width": 800, "height": 500},
                               screen={"width": 1920, "height": 1080},
                               report="[screen.width, innerWidth]")
    assert sent["report"] == [1920, 800]  # the two really differ in this browser
    (view,) = kinds(stored, "page_view")
    assert (view["screen_width"], view["screen_height"]) == (800, 500)


# --- 7. nothing is sent from file: pages, even with data-allow-localhost -------------------

async def test_file_page_sends_nothing(
    live_collector: RunningCollector, pages: PageServer, core_settings: CoreSettings,
    pg_dsn: str, tmp_path: Path,
) -> None:
    site = await new_site(pg_dsn, live_collector)
    html = tmp_path / "page.html"
    html.write_text(page(site, tracker_src(live_collector), body=TALL))
    sent, stored = await visit(core_settings, live_collector, site, html.as_uri(), [
        {"wait": "document.readyState === 'complete'"},
        {"scroll": [900, 2900, 5000]}, {"eval": "analytics.track('x')"}, {"hide": True},
    ], report="typeof analytics.track")
    assert sent["report"] == "function"
    assert sent["posted"] == [] and stored == []


# --- 8. Global Privacy Control is honoured like DNT -----------------------------------------

@pytest.mark.parametrize(("signals", "attrs", "tracked"), [
    pytest.param({"gpc": True}, "data-allow-localhost", False, id="gpc"),
    pytest.param({"dnt": True}, "data-allow-localhost", False, id="dnt"),
    pytest.param({"gpc": True}, TRACKING, True, id="gpc-respect-false"),
    pytest.param({"gpc": True, "dnt": True}, TRACKING, True, id="both-respect-false"),
    pytest.param({}, "data-allow-localhost", True, id="none"),
])
async def test_global_privacy_control(
    signals: dict[str, bool], attrs: str, tracked: bool, live_collector: RunningCollector,
    pages: PageServer, core_settings: CoreSettings, pg_dsn: str,
) -> None:
    site = await new_site(pg_dsn, live_collector)
    pages.html = page(site, tracker_src(live_collector), attrs=attrs)
    sent, stored = await visit(core_settings, live_collector, site, pages.url("/gpc"), [
        {"wait": "document.readyState === 'complete' && window.analytics"},
        {"eval": "analytics.track('consent-check')"},
    ], privacy=signals, report="navigator.globalPrivacyControl === true")
    assert sent["report"] is bool(signals.get("gpc"))
    want = [("page_view", "/gpc"), ("custom", "/gpc")] if tracked else []
    assert [(e["event_type"], e["path"]) for e in stored] == want


# --- 9. the local router (:8000) passes the tracker's gzip through --------------------------

async def test_router_passes_content_encoding_through(
    live_collector: RunningCollector, pages: PageServer, core_settings: CoreSettings,
    pg_dsn: str,
) -> None:
    site = await new_site(pg_dsn, live_collector)
    sock = tornado.netutil.bind_sockets(0, address="127.0.0.1", family=socket.AF_INET)
    port = sock[0].getsockname()[1]
    server = tornado.httpserver.HTTPServer(router.make_app(
        f"http://127.0.0.1:{live_collector.port}", "http://127.0.0.1:9"))
    server.add_sockets(sock)
    try:
        client = tornado.httpclient.AsyncHTTPClient()
        direct, routed = [await client.fetch(
            f"http://127.0.0.1:{p}/js/tracker.js", headers={"Accept-Encoding": "gzip"},
            decompress_response=False) for p in (live_collector.port, port)]
        assert routed.headers.get("Content-Encoding") == "gzip"
        assert routed.body == direct.body and gzip.decompress(routed.body) == TRACKER.read_bytes()
        assert len(direct.body) <= MAX_TRACKER_GZIP  # what visitors download
        plain = await client.fetch(f"http://127.0.0.1:{port}/js/tracker.js",
                                   decompress_response=False)  # no Accept-Encoding
        assert "Content-Encoding" not in plain.headers and plain.body == TRACKER.read_bytes()

        pages.html = page(site, f"http://127.0.0.1:{port}/js/tracker.js")
        sent, stored = await visit(core_settings, live_collector, site, pages.url("/via"),
                                   [{"wait": LOADED}])
        assert sent["tracker"] == {"status": 200, "encoding": "gzip"}, sent["log"]
        assert view_paths(stored) == ["/via"]
    finally:
        server.stop()
        await server.close_all_connections()


async def test_router_answers_head_like_the_collector(live_collector: RunningCollector) -> None:
    """HEAD through the router gives the upstream's Content-Length (and encoding), not 0."""
    sock = tornado.netutil.bind_sockets(0, address="127.0.0.1", family=socket.AF_INET)
    port = sock[0].getsockname()[1]
    server = tornado.httpserver.HTTPServer(router.make_app(
        f"http://127.0.0.1:{live_collector.port}", "http://127.0.0.1:9"))
    server.add_sockets(sock)
    try:
        client = tornado.httpclient.AsyncHTTPClient()
        for accept in ("gzip", "identity"):
            direct, routed = [await client.fetch(
                f"http://127.0.0.1:{p}/js/tracker.js", method="HEAD",
                headers={"Accept-Encoding": accept}, decompress_response=False)
                for p in (live_collector.port, port)]
            assert routed.code == direct.code == 200
            assert routed.body == b""
            length = direct.headers["Content-Length"]
            assert int(length) > 1000, accept
            assert routed.headers["Content-Length"] == length, accept
            assert routed.headers.get("Content-Encoding") == direct.headers.get(
                "Content-Encoding"), accept
    finally:
        server.stop()
        await server.close_all_connections()


# --- the size budget ------------------------------------------------------------------------

def test_tracker_size_budget() -> None:
    """The served script (gzip level 9, no file name in the header) is at most 1,450 bytes."""
    assert len(gzip.compress(TRACKER.read_bytes(), compresslevel=9, mtime=0)) <= MAX_TRACKER_GZIP


def test_served_tracker_is_the_build_of_its_source() -> None:
    """collector/static/tracker.js is what collector/tracker/build.js (terser, pinned in
    package-lock.json) makes of collector/tracker/tracker.js: edit the source, then build."""
    build = TRACKER.parents[1] / "tracker" / "build.js"
    out = subprocess.run(["node", str(build), "--stdout"], capture_output=True, text=True,
                         check=False, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout == TRACKER.read_text(), "stale build: run node collector/tracker/build.js"
