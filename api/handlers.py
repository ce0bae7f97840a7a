"""`ProtectedHandler`: the base of every `X-API-KEY` route (admin endpoints and reports).

`prepare()` runs, in order: method check (405 before auth, so a wrong method is
never reported as 401), authentication (429 with `Retry-After` first when the client
IP failed authentication too often, see api/authlimit.py; then 401), per-key rate
limit (429 with `Retry-After`; fails open when Redis is down). Handlers then call
`require_admin()` (403) and `load_website()` (400/404, cross-account -> 404).

Two database failures are not internal errors but "retry later": each answers 503
`SERVICE_UNAVAILABLE` with `Retry-After` (`api_retry_after_seconds`) in the envelope,
is logged as one warning line naming the route (method and path; never the query
string; no traceback) and counted:
- a query Postgres cancels (`statement_timeout`, SQLSTATE 57014), in
  `tinytrail_api_queries_cancelled_total{handler}`;
- Postgres unreachable or gone mid-request (`tinytrail.db.database_unavailable`: pool
  timeout, connection failure or loss, admin/crash shutdown, starting up), in
  `tinytrail_api_database_unavailable_total{handler}`. Authentication reads the
  database too, so a request with a key gets this 503 (never 401) while Postgres is
  down. Redis down stays fail-open (api/authlimit.py, tinytrail/ratelimit.py).

CORS: API routes never send `Access-Control-Allow-*` headers, so browsers do not
let other origins read them (with or without credentials). Only the collector
speaks CORS.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import tornado.web
from prometheus_client import Counter
from psycopg.errors import QueryCanceled

from api import keys
from api.authlimit import AuthFailureLimit
from api.deps import ApiDeps
from tinytrail.db import database_unavailable
from tinytrail.envelope import ApiError
from tinytrail.ids import canonical_uuid
from tinytrail.ratelimit import FixedWindowLimiter
from tinytrail.web import BaseHandler

log = logging.getLogger("tinytrail.api")

_METHODS = ("get", "post", "put", "patch", "delete", "head", "options")
QUERIES_CANCELLED = Counter(
    "tinytrail_api_queries_cancelled_total",
    "Requests answered 503 because Postgres cancelled their query (statement_timeout)",
    ["handler"],
)
DATABASE_UNAVAILABLE = Counter(
    "tinytrail_api_database_unavailable_total",
    "Requests answered 503 because Postgres could not be reached or dropped the connection",
    ["handler"],
)
UNAVAILABLE_MESSAGE = "database unavailable, retry later"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the API key's user, its account and role (`admin` or `user`)."""

    user_id: str
    account_id: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def parse_uuid(value: str, what: str = "id") -> str:
    """Canonical lower-case UUID string (tinytrail.ids.canonical_uuid), or 400
    INVALID_PAYLOAD naming the field."""
    canonical = canonical_uuid(value)
    if canonical is None:
        raise ApiError(400, f"{what} must be a UUID")
    return canonical


class ProtectedHandler(BaseHandler):
    """Authenticated, rate-limited, envelope-speaking handler."""

    deps: ApiDeps
    principal: Principal

    def initialize(self, deps: ApiDeps) -> None:
        self.deps = deps

    @classmethod
    def implemented_methods(cls) -> list[str]:
        """HTTP methods this handler defines (used for 405 + Allow, and by the route tests)."""
        base = tornado.web.RequestHandler
        return [m.upper() for m in _METHODS if getattr(cls, m) is not getattr(base, m)]

    def api_error_of(self, exc: BaseException | None) -> ApiError | None:
        if isinstance(exc, QueryCanceled):
            return self.retry_later("the query took too long and was cancelled; retry later")
        if database_unavailable(exc):
            return self.retry_later(UNAVAILABLE_MESSAGE)
        return super().api_error_of(exc)

    def retry_later(self, message: str) -> ApiError:
        wait = self.deps.settings.api_retry_after_seconds
        return ApiError(503, message, headers={"Retry-After": str(wait)})

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        """Like Tornado's, minus the request summary: it carries the client address."""
        if isinstance(value, ApiError) or (
            isinstance(value, tornado.web.HTTPError) and value.status_code < 500
        ):
            return
        if isinstance(value, QueryCanceled):  # expected under load: one line, no traceback
            QUERIES_CANCELLED.labels(type(self).__name__).inc()
            log.warning("query cancelled (statement_timeout %s s) in %s %s: answered 503",
                        self.deps.settings.api_statement_timeout, self.request.method,
                        self.request.path)
            return
        if database_unavailable(value):  # Postgres down or restarting: one line, no traceback
            DATABASE_UNAVAILABLE.labels(type(self).__name__).inc()
            state = f" {value.sqlstate}" if getattr(value, "sqlstate", None) else ""
            log.warning("database unavailable (%s%s) in %s %s: answered 503",
                        type(value).__name__, state, self.request.method, self.request.path)
            return
        log.error("unhandled error in %s %s", self.request.method, self.request.path,
                  exc_info=(typ, value, tb))

    async def prepare(self) -> None:
        allowed = self.implemented_methods()
        if self.request.method not in allowed:
            raise ApiError(
                405,
                f"{self.request.method} is not allowed on {self.request.path}",
                headers={"Allow": ", ".join(allowed)},
            )
        self.principal = await self.authenticate()
        await self.rate_limit()

    def auth_failures(self) -> AuthFailureLimit:
        s = self.deps.settings
        return AuthFailureLimit(self.deps.redis, s.secret_key, s.api_auth_fail_limit,
                                s.api_auth_fail_window,
                                clock=lambda: self.deps.clock().timestamp())

    async def authenticate(self) -> Principal:
        """The caller of the request's `X-API-KEY`. Raises 401 (missing or invalid key;
        an invalid one counts against the client IP) or 429 with Retry-After when the
        client IP failed too often (api/authlimit.py), before any database lookup."""
        supplied = self.request.headers.get("X-API-KEY", "").strip()
        if not supplied:
            raise ApiError(401, "missing X-API-KEY header")
        failures = self.auth_failures()
        ip = self.request.remote_ip or ""
        wait = await failures.retry_after(ip)
        if wait is not None:
            raise ApiError(429, "too many failed authentication attempts from this address",
                           headers={"Retry-After": str(wait)})
        if not keys.looks_like_key(supplied):
            await failures.failed(ip)
            raise ApiError(401, "invalid API key")
        digest = keys.key_hash(self.deps.settings.secret_key, supplied)
        async with self.deps.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT id, account_id, role, api_key_hash FROM users WHERE api_key_hash = %s",
                (digest,),
            )
            row = await cur.fetchone()
        # The index lookup finds the row; the constant-time compare is the actual check.
        if row is None or not keys.hashes_equal(bytes(row["api_key_hash"]), digest):
            await failures.failed(ip)
            raise ApiError(401, "invalid API key")
        return Principal(str(row["id"]), str(row["account_id"]), row["role"])

    async def rate_limit(self) -> None:
        s = self.deps.settings
        limiter = FixedWindowLimiter(
            self.deps.redis,
            "api",
            s.api_rate_limit,
            s.api_rate_window,
            clock=lambda: self.deps.clock().timestamp(),
        )
        # Keyed by user id (one key per user), so no key material is written to Redis.
        verdict = await limiter.hit(self.principal.user_id)
        if not verdict.allowed:
            raise ApiError(
                429,
                f"rate limit of {s.api_rate_limit} requests per {s.api_rate_window} s exceeded",
                headers={"Retry-After": str(verdict.retry_after)},
            )

    def require_admin(self) -> None:
        if not self.principal.is_admin:
            raise ApiError(403, "this endpoint requires the admin role")

    def json_object(self, *, optional: bool = False) -> dict[str, Any]:
        """The body as a JSON object (400 otherwise); `{}` for an empty optional body."""
        if optional and not self.request.body.strip():
            return {}
        body = self.parse_json_body()
        if not isinstance(body, dict):
            raise ApiError(400, "request body must be a JSON object")
        return body

    async def load_website(self, website_id: str) -> dict[str, Any]:
        """The website row (ids as strings), or 400 (not a UUID) / 404 (absent or not yours)."""
        wid = parse_uuid(website_id, "website_id")
        async with self.deps.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT id, account_id, domain, content_groups, excluded_ips, created_at "
                "FROM websites WHERE id = %s",
                (wid,),
            )
            row = await cur.fetchone()
        if row is None or (
            not self.principal.is_admin and str(row["account_id"]) != self.principal.account_id
        ):
            raise ApiError(404, "website not found")
        row["id"], row["account_id"] = str(row["id"]), str(row["account_id"])
        return row
