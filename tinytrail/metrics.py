"""Prometheus metrics plumbing: a Tornado handler for `/metrics` and a tiny
standalone HTTP server for processes without one (the worker)."""

from __future__ import annotations

import prometheus_client
import tornado.web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest


class MetricsHandler(tornado.web.RequestHandler):
    def get(self) -> None:
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.finish(generate_latest(REGISTRY))


def start_metrics_server(port: int, host: str = "0.0.0.0") -> None:
    """Serve `/metrics` from a background thread (used by the Faust worker)."""
    prometheus_client.start_http_server(port, addr=host)
