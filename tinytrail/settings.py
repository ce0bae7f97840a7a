"""Typed settings for every process, read from `TINYTRAIL_*` environment variables.

One frozen pydantic-settings class per process, all sharing `CoreSettings`; the
processes that hold the website cache (collector, worker) share `WebsiteCacheSettings`
too, so one setting has one name everywhere. They are validated at start-up: a bad value
stops the process with a one-line error (see `load_settings`). A renamed variable is
still read for one release under its old name (`RENAMED_ENV`), and `load_settings`
prints a warning naming the new one. Tests build settings explicitly instead of patching
the environment.
"""

from __future__ import annotations

import ipaddress
import os
import sys
from collections.abc import Mapping
from typing import Any, Literal, TypeVar

from pydantic import AliasChoices, Field, ValidationError, field_validator
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


# Old environment name -> its new name. The old one is still read for one release (the
# new one wins when both are set) and `load_settings` warns about it at start-up.
RENAMED_ENV = {
    # The collector's names before both cache holders shared `WebsiteCacheSettings`.
    "TINYTRAIL_WEBSITE_REFRESH_SECONDS": "TINYTRAIL_WEBSITE_REFRESH_INTERVAL",
    "TINYTRAIL_WEBSITE_NEGATIVE_CACHE_SECONDS": "TINYTRAIL_WEBSITE_NEGATIVE_TTL",
}


def _env(field: str) -> AliasChoices:
    """The environment names of `field`: `TINYTRAIL_<FIELD>`, then its old names."""
    name = f"TINYTRAIL_{field.upper()}"
    return AliasChoices(name, *(old for old, new in RENAMED_ENV.items() if new == name))


class WebsiteCacheSettings(CoreSettings):
    """The website cache (tinytrail/websites.py) of the processes that hold one: the
    collector (unknown ids, excluded IPs) and the worker (content groups). One default
    for both: the rule is the same (docs/RULES.md: website changes take effect within
    5 s), and a refresh is one small query, so neither process needs a slower one."""

    # Settings built in code (tests) name the fields; the environment uses `_env`.
    model_config = SettingsConfigDict(validate_by_name=True)

    # Seconds between whole refreshes (the collector's loop; the worker's copy is
    # refreshed at a batch when this old). <= 5 s: changes take effect within 5 s.
    website_refresh_interval: float = Field(
        default=2.0, gt=0, le=5, validation_alias=_env("website_refresh_interval"))
    # An id the cache does not hold is looked up in Postgres (before a 204 / before its
    # events are dropped); one found absent is not looked up again for this many
    # seconds. <= 5 s, so even a website whose id was seen before it existed is
    # collectable within 5 s.
    website_negative_ttl: float = Field(
        default=1.0, ge=0, le=5, validation_alias=_env("website_negative_ttl"))


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


def renamed_in_use(cls: type[BaseSettings],
                   environ: Mapping[str, str] = os.environ) -> list[tuple[str, str]]:
    """(old, new) of each renamed variable of `cls` that `environ` sets under its old
    name (any case, as pydantic-settings reads it)."""
    present = {name.upper() for name in environ}
    aliases = {a for f in cls.model_fields.values()
               if isinstance(f.validation_alias, AliasChoices)
               for a in f.validation_alias.choices if isinstance(a, str)}
    return [(old, new) for old, new in RENAMED_ENV.items()
            if old in present and old in aliases]


def load_settings(cls: type[S], **overrides: Any) -> S:
    """Build settings from the environment; on a bad value print one line and exit 2.
    Prints one warning line per variable set under its old name (`RENAMED_ENV`)."""
    try:
        settings = cls(**overrides)
    except ValidationError as exc:
        problems = "; ".join(f"{_env_name(err['loc'])}: {err['msg']}" for err in exc.errors())
        print(f"tinytrail: invalid settings: {problems}", file=sys.stderr)
        raise SystemExit(2) from None
    # Logging is not set up yet (its format is a setting): one line on stderr, like the
    # error above.
    for old, new in renamed_in_use(cls):
        also = f" ({new} is set too and wins)" if new in {n.upper() for n in os.environ} else ""
        print(f"tinytrail: warning: {old} is deprecated, use {new}; the old name is read"
              f" until the next release{also}", file=sys.stderr)
    return settings


def _env_name(loc: tuple[int | str, ...]) -> str:
    """The variable an error location names: a field (`batch_size`) or, for a field with
    environment aliases, already the variable (`TINYTRAIL_WEBSITE_NEGATIVE_TTL`)."""
    name = "_".join(str(p) for p in loc).upper()
    return name if name.startswith("TINYTRAIL_") else f"TINYTRAIL_{name}"
