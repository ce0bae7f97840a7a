"""Typed settings for every process, read from `TINYTRAIL_*` environment variables.

One frozen pydantic-settings class per process, all sharing `CoreSettings`. They
are validated at start-up: a bad value stops the process with a one-line error
(see `load_settings`). Tests build settings explicitly instead of patching the
environment.
"""

from __future__ import annotations

import ipaddress
import sys
from typing import Any, Literal, TypeVar

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LOCAL_PG_PORT = 54329
LOCAL_REDIS_PORT = 63799
LOCAL_KAFKA_PORT = 19092


class CoreSettings(BaseSettings):
    """What every process needs: where the backing services are and how to log."""

    model_config = SettingsConfigDict(env_prefix="TINYTRAIL_", frozen=True, extra="ignore")

    database_url: str = f"postgresql://tinytrail:tinytrail@127.0.0.1:{LOCAL_PG_PORT}/tinytrail"
    redis_url: str = f"redis://127.0.0.1:{LOCAL_REDIS_PORT}/0"
    kafka_bootstrap: str = f"127.0.0.1:{LOCAL_KAFKA_PORT}"
    topic_prefix: str = Field(default="tinytrail", pattern=r"^[A-Za-z0-9._-]{1,100}$")
    events_partitions: int = Field(default=12, ge=1, le=1024)
    topic_replication: int = Field(default=1, ge=1, le=7)
    log_format: Literal["auto", "json", "text"] = "auto"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    db_pool_min: int = Field(default=1, ge=0, le=100)
    db_pool_max: int = Field(default=10, ge=1, le=200)
    db_connect_timeout: float = Field(default=10.0, gt=0)
    # Seconds a statement may run on a pool of a process without a setting of its own
    # (collector, CLI tools); the worker and the API have theirs. 0 = no limit.
    db_statement_timeout: float = Field(default=60.0, ge=0, le=86_400)
    # Event partitions older than this many days are dropped by the worker; the admin
    # rebuild refuses such days (it could not recompute them). Aggregates are kept.
    retention_days: int = Field(default=400, ge=1, le=36_500)

    @field_validator("database_url")
    @classmethod
    def _dsn(cls, v: str) -> str:
        if not v.startswith(("postgresql://", "postgres://")):
            raise ValueError("must start with postgresql://")
        return v

    @field_validator("redis_url")
    @classmethod
    def _redis(cls, v: str) -> str:
        if not v.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis:// or rediss://")
        return v


class SecretSettings(CoreSettings):
    """Processes that handle API keys need the server secret."""

    secret_key: str = Field(min_length=32, description="server secret; encrypts API keys")


def parse_cidrs(
    value: str | list[str],
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """'10.0.0.0/8, 127.0.0.1' -> networks; raises ValueError naming the bad entry."""
    items = value.split(",") if isinstance(value, str) else value
    nets = []
    for raw in items:
        item = raw.strip()
        if not item:
            continue
        try:
            nets.append(ipaddress.ip_network(item, strict=False))
        except ValueError as exc:
            raise ValueError(f"not an IP address or CIDR range: {item!r}") from exc
    return tuple(nets)


S = TypeVar("S", bound=BaseSettings)


def load_settings(cls: type[S], **overrides: Any) -> S:
    """Build settings from the environment; on a bad value print one line and exit 2."""
    try:
        return cls(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"TINYTRAIL_{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
            for err in exc.errors()
        )
        print(f"tinytrail: invalid settings: {problems}", file=sys.stderr)
        raise SystemExit(2) from None
