"""The built-in dashboard: static files under `/dashboard/`, and `GET /` redirecting there.

The files are built from `dashboard/` (npm + esbuild) into `api/dashboard_dist/`, which
git ignores; `make dev` / `make test` (infra/bootstrap.sh) and the image's build stage
build them. A missing build is answered with 503 and the command that fixes it, never
with a blank page.

Every answer carries a strict Content-Security-Policy: scripts and styles only from
this origin (no inline script, no `unsafe-eval`, no inline style attributes), requests
only to this origin, no framing. Hashed assets (`app-<hash>.js`) are cached for a year;
`index.html` is revalidated every time so a new build is picked up at once.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import tornado.web

log = logging.getLogger("tinytrail.api")

DIST = Path(__file__).resolve().parent / "dashboard_dist"
CSP = "; ".join([
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "font-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
])
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
NOT_BUILT = (
    "The TinyTrail dashboard is not built. Build it with:\n"
    "    cd dashboard && npm ci && npm run build\n"
    "(make dev and make test do this for you; the container image builds it too.)\n"
)


def secure(handler: tornado.web.RequestHandler) -> None:
    for name, value in SECURITY_HEADERS.items():
        handler.set_header(name, value)


class DashboardHandler(tornado.web.StaticFileHandler):
    """Serves the built files; `/dashboard/` is `index.html` whatever its query string."""

    def set_default_headers(self) -> None:
        secure(self)

    async def get(self, path: str, include_body: bool = True) -> None:
        if not (Path(self.root) / "index.html").is_file():
            self.set_status(503)
            self.set_header("Content-Type", "text/plain; charset=utf-8")
            self.set_header("Cache-Control", "no-store")
            self.finish(NOT_BUILT)
            return
        await super().get(path, include_body)

    def set_extra_headers(self, path: str) -> None:
        if path in ("", "index.html") or path.endswith(".txt"):  # unhashed names
            self.set_header("Cache-Control", "no-cache")
        else:
            self.set_header("Cache-Control", "public, max-age=31536000, immutable")

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish(f"{status_code} {self._reason}\n")

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        """Like Tornado's, minus the request summary: it carries the client address
        (no raw IPs in logs). A refused or missing file (403, 404) is the access log's
        business; an unexpected error is logged with the method and path only."""
        if isinstance(value, tornado.web.HTTPError) and value.status_code < 500:
            return
        log.error("unhandled error in %s %s", self.request.method, self.request.path,
                  exc_info=(typ, value, tb))


class ToDashboard(tornado.web.RequestHandler):
    """`GET /` and `GET /dashboard` -> 302 `/dashboard/` (the query string is kept)."""

    def set_default_headers(self) -> None:
        secure(self)

    def get(self) -> None:
        query = self.request.query
        self.redirect("/dashboard/" + (f"?{query}" if query else ""))


def dashboard_routes(dist: Path = DIST) -> list[tuple[str, type, dict[str, Any]]]:
    if not (dist / "index.html").is_file():
        log.warning("dashboard not built (%s missing): /dashboard/ answers 503 until "
                    "`cd dashboard && npm ci && npm run build`", dist / "index.html")
    return [
        (r"/", ToDashboard, {}),
        (r"/dashboard", ToDashboard, {}),
        (r"/dashboard/(.*)", DashboardHandler,
         {"path": str(dist), "default_filename": "index.html"}),
    ]
