"""Settings of the `api` process (`tinytrail api`), read from `TINYTRAIL_*` variables."""

from __future__ import annotations

from pydantic import Field, field_validator

from tinytrail.settings import SecretSettings, parse_cidrs


class ApiSettings(SecretSettings):
    """Where the API listens, its per-key rate limit, and which proxies may set X-Forwarded-*."""

    api_host: str = "0.0.0.0"
    api_port: int = Field(default=8002, ge=1, le=65535)
    api_rate_limit: int = Field(default=60, ge=1, le=1_000_000)  # requests per window per key
    api_rate_window: int = Field(default=60, ge=1, le=86_400)  # seconds
    # Failed authentications (invalid API keys) per window per client IP (IPv6: per /64);
    # past it, 429 before any key lookup (api/authlimit.py).
    api_auth_fail_limit: int = Field(default=20, ge=1, le=1_000_000)
    api_auth_fail_window: int = Field(default=60, ge=1, le=86_400)  # seconds
    # Prometheus /metrics on a port of its own (never on the public routes); 0 = off.
    api_metrics_port: int = Field(default=8004, ge=0, le=65535)
    # Slow clients: a connection idle (or sending its headers) longer than this, or a
    # body that takes longer than that to arrive, is closed by Tornado.
    api_idle_timeout: float = Field(default=75.0, gt=0, le=3600)
    api_body_timeout: float = Field(default=30.0, gt=0, le=3600)
    # statement_timeout of the API's Postgres sessions (reports, rebuilds), seconds; a
    # runaway report query is cancelled instead of holding its connection. 0 = none.
    api_statement_timeout: float = Field(default=30.0, ge=0, le=3600)
    # Retry-After (seconds) of the API's 503s: a query that timeout cancelled, or Postgres
    # unreachable or gone mid-request (api/handlers.py).
    api_retry_after_seconds: int = Field(default=5, ge=1, le=3600)
    # Comma-separated CIDRs of the reverse proxies in front of the API. Empty: the API is
    # reached directly and X-Forwarded-* headers are ignored (Tornado's xheaders stay off).
    trusted_proxies: str = ""

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, v: str) -> str:
        parse_cidrs(v)  # raises ValueError naming the bad entry
        return v
