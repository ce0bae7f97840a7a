"""HTTP handlers: collect (with CORS), health and the tracker script.

The collect path, in order: size (413) → client IP → daily salt → rate limit
(429) → JSON + validation (400) → website cache (unknown: 204) → bot / excluded
verdicts → visitor id → publish and wait for the ack (503 on failure) → 202, or
204 for bot and excluded traffic (published all the same).
"""

from __future__ import annotations

import hashlib
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import tornado.web
from prometheus_client import Counter

from collector.clientip import client_ip
from collector.identity import ratelimit_identity, visitor_id
from collector.publisher import Unavailable
from collector.validate import validate
from tinytrail import __version__
from tinytrail.bots import is_bot
from tinytrail.envelope import ApiError
from tinytrail.event import RawEvent
from tinytrail.web import BaseHandler

if TYPE_CHECKING:
    from collector.app import CollectorDeps

MAX_USER_AGENT = 1024

REQUESTS = Counter(
    "tinytrail_collector_requests_total", "Collect requests by outcome", ["outcome"]
)
ACCEPTED = b'{"status":"accepted"}'


class CollectHandler(BaseHandler):
    SUPPORTED_METHODS = ("POST", "OPTIONS")

    def initialize(self, deps: CollectorDeps) -> None:
        self.deps = deps

    def set_default_headers(self) -> None:
        super().set_default_headers()
        # Credentials are allowed, so the origin is echoed rather than "*" (browsers refuse
        # "*" with credentials); Vary keeps caches from mixing origins.
        origin = self.request.headers.get("Origin")
        self.set_header("Access-Control-Allow-Origin", origin or "*")
        self.set_header("Access-Control-Allow-Credentials", "true")
        self.set_header("Vary", "Origin")

    def options(self) -> None:
        self.set_header("Access-Control-Allow-Methods", "POST, OPTIONS")
        self.set_header("Access-Control-Allow-Headers", "Content-Type")
        self.set_header("Access-Control-Max-Age", "86400")
        self.set_status(204)
        self.finish()

    def _drop(self, outcome: str) -> None:
        REQUESTS.labels(outcome).inc()
        self.set_status(204)
        self.finish()

    def fail(self, outcome: str, error: ApiError) -> ApiError:
        REQUESTS.labels(outcome).inc()
        return error

    async def post(self) -> None:
        deps = self.deps
        settings = deps.settings
        received_at_ms = int(time.time() * 1000)
        if len(self.request.body) > settings.max_body_bytes:
            raise self.fail("too_large", ApiError(
                413, f"request body is larger than {settings.max_body_bytes} bytes"))
        headers = self.request.headers
        ip = client_ip(self.request.remote_ip or "", headers.get("X-Forwarded-For"),
                       deps.trusted)
        salt = await deps.salts.get()
        verdict = await deps.limiter.hit(ratelimit_identity(salt, ip))
        if not verdict.allowed:
            raise self.fail("rate_limited", ApiError(
                429, "rate limit exceeded", headers={"Retry-After": str(verdict.retry_after)}))
        try:
            payload = validate(self.parse_json_body())
        except ApiError as exc:
            raise self.fail("invalid", exc) from None
        site = deps.websites.get(payload.website_id)
        if site is None:
            return self._drop("unknown_website")
        user_agent = headers.get("User-Agent", "")[:MAX_USER_AGENT]
        bot = is_bot(user_agent)
        excluded = site.is_excluded(ip)
        event = RawEvent(
            event_id=str(uuid.uuid4()),
            received_at_ms=received_at_ms,
            website_id=payload.website_id,
            visitor_id=visitor_id(salt, ip, user_agent, payload.website_id),
            event_type=payload.event_type,
            url=payload.url,
            path=payload.path,
            referrer=payload.referrer,
            user_agent=user_agent,
            screen_width=payload.screen_width,
            screen_height=payload.screen_height,
            name=payload.name,
            properties=payload.properties,
            utm_source=payload.utm_source,
            utm_medium=payload.utm_medium,
            utm_campaign=payload.utm_campaign,
            is_bot=bot,
            is_excluded=excluded,
        )
        try:
            await deps.publisher.publish(event.key, event.to_bytes())
        except Unavailable:
            raise self.fail("unavailable", ApiError(
                503, "event store is unavailable; retry later", code="SERVICE_UNAVAILABLE",
                headers={"Retry-After": str(settings.retry_after_seconds)})) from None
        if bot or excluded:
            return self._drop("bot" if bot else "excluded")
        REQUESTS.labels("accepted").inc()
        self.set_status(202)
        self.finish(ACCEPTED)


class HealthHandler(tornado.web.RequestHandler):
    """Contract: 200 {"status":"ok","db":"connected","version":...} or 503 degraded (on
    Postgres); `kafka` and `redis` are extra fields that do not change the status."""

    def initialize(self, deps: CollectorDeps) -> None:
        self.deps = deps

    async def get(self) -> None:
        db, kafka, redis = await self.deps.probe()
        body: dict[str, Any]
        if db:
            body = {"status": "ok", "db": "connected", "version": __version__}
        else:
            body = {"status": "degraded", "db": "disconnected"}
        body["kafka"] = "connected" if kafka else "disconnected"
        body["redis"] = "connected" if redis else "disconnected"
        self.set_status(200 if db else 503)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(orjson.dumps(body))


TRACKER_PATH = Path(__file__).parent / "static" / "tracker.js"


class TrackerHandler(tornado.web.RequestHandler):
    """`GET /js/tracker.js`: cached for a day, revalidated by a content ETag."""

    SUPPORTED_METHODS = ("GET", "HEAD")

    def initialize(self, script: bytes) -> None:
        self.script = script
        self.etag = '"' + hashlib.sha256(script).hexdigest()[:20] + '"'

    def compute_etag(self) -> str:
        return self.etag

    def _set_headers(self) -> None:
        self.set_header("Content-Type", "application/javascript; charset=utf-8")
        self.set_header("Cache-Control", "public, max-age=86400")
        self.set_header("Access-Control-Allow-Origin", "*")
        self.set_header("ETag", self.etag)

    def get(self) -> None:
        self._set_headers()
        if self.check_etag_header():
            self.set_status(304)
            self.finish()
            return
        self.finish(self.script)

    def head(self) -> None:
        self._set_headers()
        self.set_header("Content-Length", str(len(self.script)))
        self.finish()
