"""Local path router: one base URL (http://localhost:8000) for the whole contract.

In Kubernetes the Ingress sends `/api/v1/collect` and `/js/` to the collector and
everything else to the API; `tinytrail run` starts this small proxy to do the
same on a laptop. It appends the client address to `X-Forwarded-For`, so the
collector must trust 127.0.0.1 as a proxy (`run` sets that).

Bodies pass through as the upstream sent them: the client's `Accept-Encoding` goes up
unchanged and the answer comes back with its `Content-Encoding` (the collector serves the
tracker gzipped), as an Ingress does; decoding here would send the tracker uncompressed.
A HEAD answer keeps the upstream's `Content-Length` (the length a GET would get).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import tornado.httpclient
import tornado.web

log = logging.getLogger("tinytrail.router")

COLLECTOR_PREFIXES = ("/api/v1/collect", "/js/")
_HOP_HEADERS = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "upgrade",
    "host",
    "proxy-connection",
    "content-length",
}


def upstream_for(path: str, collector: str, api: str) -> str:
    return collector if path.startswith(COLLECTOR_PREFIXES) else api


class ProxyHandler(tornado.web.RequestHandler):
    SUPPORTED_METHODS = ("GET", "POST", "PATCH", "DELETE", "OPTIONS", "HEAD", "PUT")

    def initialize(
        self, collector: str, api: str, client: tornado.httpclient.AsyncHTTPClient
    ) -> None:
        self.collector, self.api, self.client = collector, api, client

    async def _forward(self) -> None:
        req = self.request
        base = upstream_for(req.path, self.collector, self.api)
        headers = {k: v for k, v in req.headers.get_all() if k.lower() not in _HOP_HEADERS}
        prior = req.headers.get("X-Forwarded-For")
        headers["X-Forwarded-For"] = f"{prior}, {req.remote_ip}" if prior else str(req.remote_ip)
        body = req.body if req.method in ("POST", "PATCH", "PUT") else None
        if req.method in ("POST", "PATCH", "PUT") and body is None:
            body = b""
        try:
            resp = await self.client.fetch(
                base + req.uri,
                method=req.method,
                headers=headers,
                body=body,
                raise_error=False,
                follow_redirects=False,
                request_timeout=30,
                allow_nonstandard_methods=True,
                decompress_response=False,  # pass encodings through (see module docstring)
            )
        except Exception as exc:  # upstream down: a clear 502
            self.set_status(502)
            self.finish({"status": "error", "error": {"code": "BAD_GATEWAY", "message": str(exc)}})
            return
        self.set_status(resp.code, resp.reason)
        self._headers = tornado.httputil.HTTPHeaders()
        for k, v in resp.headers.get_all():
            if k.lower() not in _HOP_HEADERS:
                self.add_header(k, v)
        if req.method == "HEAD":
            # No body, but the length of the one a GET would get (Tornado would say 0).
            length = resp.headers.get("Content-Length")
            if length is not None and resp.code not in (204, 304):
                self.set_header("Content-Length", length)
        elif resp.body and resp.code not in (204, 304):
            self.write(resp.body)
        self.finish()

    get = post = patch = delete = options = head = put = _forward

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        """Like Tornado's, minus the request summary (client address, query string)."""
        if isinstance(value, tornado.web.HTTPError) and value.status_code < 500:
            return
        log.error("unhandled error in %s %s", self.request.method, self.request.path,
                  exc_info=(typ, value, tb))


def log_request(handler: tornado.web.RequestHandler) -> None:
    """Access log without the client address or query string (Tornado's default writes
    both for every 4xx/5xx; a query string can carry a visitor's URL)."""
    status = handler.get_status()
    level = logging.ERROR if status >= 500 else logging.INFO if status >= 400 else logging.DEBUG
    logging.getLogger("tornado.access").log(
        level, "%d %s %s %.1fms", status, handler.request.method, handler.request.path,
        1000.0 * handler.request.request_time(),
    )


def make_app(collector: str, api: str) -> tornado.web.Application:
    client = tornado.httpclient.AsyncHTTPClient(max_clients=200)
    return tornado.web.Application(
        [(r"/.*", ProxyHandler, {"collector": collector, "api": api, "client": client})],
        log_function=log_request,
    )


def main(port: int, collector: str, api: str) -> int:
    async def serve() -> None:
        make_app(collector, api).listen(port, address="127.0.0.1", xheaders=False)
        log.info("router on http://localhost:%s", port)
        await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())
    return 0
