"""HTTP handlers: collect (with CORS), health and the tracker script.

The collect path, in order: size (413, from the declared length before the body is
read, or counted while it streams in) → client IP → daily salt → rate limit (429;
IPv6 clients by their /64) → JSON + validation (400) → website cache, re-checked in
Postgres on a miss (unknown: 204; Postgres unreachable: 503) → bot / excluded
verdicts → country code (collector/country.py) → visitor id → publish and wait
for the ack (503 on failure) → 202, or 204 for bot and excluded traffic (published
all the same).
"""

from __future__ import annotations

import gzip
import hashlib
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import tornado.web
from prometheus_client import Counter

from collector.clientip import client_ip
from collector.identity import event_id, ratelimit_identity, visitor_id
from collector.publisher import Unavailable
from collector.validate import CollectPayload, validate
from collector.websites import LookupUnavailable
from tinytrail import __version__, limits
from tinytrail.bots import is_bot
from tinytrail.envelope import ApiError
from tinytrail.event import WIRE_VERSION
from tinytrail.ratelimit import client_bucket
from tinytrail.web import BaseHandler

if TYPE_CHECKING:
    from collector.app import CollectorDeps


REQUESTS = Counter(
    "tinytrail_collector_requests_total", "Collect requests by outcome", ["outcome"]
)
ACCEPTED = b'{"status":"accepted"}'


# Declared bodies above `max_body_bytes` but at most this are read and thrown away
# before the 413, so the answer arrives on a clean keep-alive connection (a client still
# sending when the server closes would see a reset, not the 413). Larger ones are
# answered at once and the connection is closed after the answer.
DRAIN_LIMIT = 8 * 1024 * 1024

_OUTCOMES = {o: REQUESTS.labels(o) for o in (
    "accepted", "too_large", "rate_limited", "invalid", "unknown_website", "bot", "excluded",
    "unavailable")}


@tornado.web.stream_request_body
class CollectHandler(BaseHandler):
    """Streams the body (so that size is checked before it is read), then the collect path."""

    SUPPORTED_METHODS = ("POST", "OPTIONS")

    def initialize(self, deps: CollectorDeps) -> None:
        self.deps = deps
        self._chunks: list[bytes] = []
        self._size = 0
        self._too_large = False

    def set_default_headers(self) -> None:
        super().set_default_headers()
        # Credentials are allowed, so the origin is echoed rather than "*" (browsers refuse
        # "*" with credentials); Vary keeps caches from mixing origins.
        origin = self.request.headers.get("Origin")
        self.set_header("Access-Control-Allow-Origin", origin or "*")
        self.set_header("Access-Control-Allow-Credentials", "true")
        self.set_header("Vary", "Origin")

    def prepare(self) -> None:
        """Runs once the headers are in, before the body is read: a declared size over
        the limit is known now, whatever the server-wide body limit."""
        if self.request.method != "POST":
            return
        limit = self.deps.settings.max_body_bytes
        declared = self.request.headers.get("Content-Length")
        if declared is None:  # chunked: counted in data_received, drained up to the cap
            self.request.connection.set_max_body_size(DRAIN_LIMIT)  # type: ignore[union-attr]
            return
        try:
            length = int(declared)
        except ValueError:
            return  # Tornado refuses a malformed Content-Length itself
        if length > limit:
            if length > DRAIN_LIMIT:
                raise self._too_big()
            self._too_large = True
            self.request.connection.set_max_body_size(length)  # type: ignore[union-attr]

    def data_received(self, chunk: bytes) -> None:
        self._size += len(chunk)
        if self._too_large:
            return
        if self._size > self.deps.settings.max_body_bytes:
            self._too_large = True
            self._chunks = []
        else:
            self._chunks.append(chunk)

    def _too_big(self) -> ApiError:
        limit = self.deps.settings.max_body_bytes
        return self.fail("too_large", ApiError(413, f"request body is larger than {limit} bytes"))

    def options(self) -> None:
        self.set_header("Access-Control-Allow-Methods", "POST, OPTIONS")
        self.set_header("Access-Control-Allow-Headers", "Content-Type")
        self.set_header("Access-Control-Max-Age", "86400")
        self.set_status(204)
        self.finish()

    def _drop(self, outcome: str) -> None:
        _OUTCOMES[outcome].inc()
        self.set_status(204)
        self.finish()

    def fail(self, outcome: str, error: ApiError) -> ApiError:
        _OUTCOMES[outcome].inc()
        return error

    async def post(self) -> None:
        self.deps.active += 1  # shutdown answers requests in progress before closing
        try:
            await self._collect()
        finally:
            self.deps.active -= 1

    async def _collect(self) -> None:
        if self._too_large:
            raise self._too_big()
        deps = self.deps
        received_at_ms = int(time.time() * 1000)
        chunks = self._chunks
        self.request.body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        headers = self.request.headers
        ip = client_ip(self.request.remote_ip or "", headers.get("X-Forwarded-For"),
                       deps.trusted)
        salt = deps.salts.cached() or await deps.salts.get()
        verdict = await deps.limiter.hit(ratelimit_identity(salt, client_bucket(ip)))
        if not verdict.allowed:
            raise self.fail("rate_limited", ApiError(
                429, "rate limit exceeded", headers={"Retry-After": str(verdict.retry_after)}))
        try:
            payload = validate(self.parse_json_body())
        except ApiError as exc:
            raise self.fail("invalid", exc) from None
        site = deps.websites.get(payload.website_id)
        if site is None:  # maybe created a moment ago: ask Postgres before any 204
            try:
                site = await deps.websites.lookup(payload.website_id)
            except LookupUnavailable:
                raise self.fail("unavailable", ApiError(
                    503, "cannot check the website now; retry later",
                    code="SERVICE_UNAVAILABLE",
                    headers={"Retry-After": str(deps.settings.retry_after_seconds)})) from None
            if site is None:
                return self._drop("unknown_website")
        # A header: cut (chars and bytes, at a code-point boundary), never refused.
        user_agent = limits.cut(headers.get("User-Agent", ""), limits.USER_AGENT)
        bot = is_bot(user_agent)
        excluded = site.is_excluded(ip)
        country = deps.country_of(ip)  # before the address is hashed and forgotten
        vid = visitor_id(salt, ip, user_agent, payload.website_id)
        value = encode_event(payload, event_id=event_id(), received_at_ms=received_at_ms,
                             visitor_id=vid, user_agent=user_agent, is_bot=bot,
                             is_excluded=excluded, country=country)
        try:
            await deps.publisher.publish(f"{payload.website_id}:{vid}".encode(), value)
        except Unavailable:
            raise self.fail("unavailable", ApiError(
                503, "event store is unavailable; retry later", code="SERVICE_UNAVAILABLE",
                headers={"Retry-After": str(deps.settings.retry_after_seconds)})) from None
        if bot or excluded:
            return self._drop("bot" if bot else "excluded")
        _OUTCOMES["accepted"].inc()
        self.set_status(202)
        self.finish(ACCEPTED)


def encode_event(payload: CollectPayload, *, event_id: str, received_at_ms: int,
                 visitor_id: str, user_agent: str, is_bot: bool, is_excluded: bool,
                 country: str | None = None) -> bytes:
    """The `RawEvent` wire bytes, built from a dict rather than through the dataclass
    (`RawEvent(...).to_bytes()` goes through `dataclasses.asdict`, ~10x slower). Same
    keys in the same order, same values: a test checks it against `RawEvent`."""
    return orjson.dumps({
        "event_id": event_id,
        "received_at_ms": received_at_ms,
        "website_id": payload.website_id,
        "visitor_id": visitor_id,
        "event_type": payload.event_type,
        "url": payload.url,
        "path": payload.path,
        "referrer": payload.referrer,
        "user_agent": user_agent,
        "screen_width": payload.screen_width,
        "screen_height": payload.screen_height,
        "name": payload.name,
        "properties": payload.properties,
        "utm_source": payload.utm_source,
        "utm_medium": payload.utm_medium,
        "utm_campaign": payload.utm_campaign,
        "is_bot": is_bot,
        "is_excluded": is_excluded,
        "country": country,
        "v": WIRE_VERSION,
    })


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


class TrackerScript:
    """The script, gzipped once at start-up (the app runs without per-response
    compression, which would otherwise cost every collect request a transform)."""

    def __init__(self, script: bytes) -> None:
        self.plain = script
        self.gzipped = gzip.compress(script, compresslevel=9, mtime=0)
        self.etag = '"' + hashlib.sha256(script).hexdigest()[:20] + '"'


class TrackerHandler(tornado.web.RequestHandler):
    """`GET /js/tracker.js`: cached for a day, revalidated by a content ETag, gzipped for
    clients that accept it."""

    SUPPORTED_METHODS = ("GET", "HEAD")

    def initialize(self, script: TrackerScript) -> None:
        self.script = script

    def compute_etag(self) -> str:
        return self.script.etag

    def _body(self) -> bytes:
        self.set_header("Content-Type", "application/javascript; charset=utf-8")
        self.set_header("Cache-Control", "public, max-age=86400")
        self.set_header("Access-Control-Allow-Origin", "*")
        self.set_header("ETag", self.script.etag)
        self.set_header("Vary", "Accept-Encoding")
        if "gzip" in self.request.headers.get("Accept-Encoding", ""):
            self.set_header("Content-Encoding", "gzip")
            return self.script.gzipped
        return self.script.plain

    def get(self) -> None:
        body = self._body()
        if self.check_etag_header():
            self.set_status(304)
            self.clear_header("Content-Encoding")
            self.finish()
            return
        self.finish(body)

    def head(self) -> None:
        self.set_header("Content-Length", str(len(self._body())))
        self.finish()
