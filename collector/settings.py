"""The collector's settings (env prefix TINYTRAIL_), validated at start-up."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator

from collector.country import BUNDLED_DB, CountryDbError, open_country_db
from tinytrail.settings import WebsiteCacheSettings, parse_cidrs


class CollectorSettings(WebsiteCacheSettings):
    """The collector's own settings; the website cache's are `WebsiteCacheSettings`."""

    collector_host: str = "0.0.0.0"
    collector_port: int = Field(default=8001, ge=0, le=65535)
    # Prometheus /metrics on a port of its own, never on the public one; 0 = off.
    collector_metrics_port: int = Field(default=8005, ge=0, le=65535)
    # Peers whose X-Forwarded-For we believe, comma-separated IPs/CIDRs ("" = none).
    trusted_proxies: str = ""
    collect_rate_limit: int = Field(default=10, ge=1)
    collect_rate_window: int = Field(default=10, ge=1, le=3600)
    # A connection whose current request began longer ago than this is closed (idle
    # keep-alive, slowloris headers or body); see collector/server.py.
    connection_timeout: float = Field(default=75.0, gt=0, le=3600)
    max_body_bytes: int = Field(default=32768, ge=1024, le=1_048_576)
    # Kafka producer: acks=all and idempotence are fixed; these tune batching. Linger is
    # how long a new group of events waits for company before it goes to the producer
    # (collector/publisher.py); 0 = the rest of the event-loop turn. Groups also grow by
    # themselves while the previous produce request is in flight; 2 ms more roughly
    # halves the produce requests (and their syscalls) at a latency no beacon notices.
    kafka_linger_ms: int = Field(default=2, ge=0, le=1000)
    kafka_max_batch_bytes: int = Field(default=262_144, ge=16_384)
    kafka_request_timeout_ms: int = Field(default=30_000, ge=1000)
    kafka_compression: str | None = Field(default=None, pattern=r"^(gzip|lz4|zstd|snappy)$")
    # How long a request waits for the broker's ack before answering 503.
    kafka_send_timeout: float = Field(default=5.0, gt=0, le=60)
    # Events waiting for an ack at once; beyond this the collector answers 503 at once,
    # so memory stays bounded (at most this many bodies of max_body_bytes).
    max_in_flight: int = Field(default=2000, ge=1, le=100_000)
    retry_after_seconds: int = Field(default=5, ge=1, le=3600)
    # Start-up: how long to wait for Kafka to create topics and connect the producer.
    kafka_startup_timeout: float = Field(default=60.0, gt=0)

    # IP-to-country database (MaxMind DB format); None = the bundled DB-IP Lite file
    # (docs/COUNTRIES.md). Opened and checked here, so a missing or bad file stops
    # start-up with one line naming it.
    country_db: Path | None = Field(default=None, validate_default=True)

    @field_validator("country_db")
    @classmethod
    def _country_db(cls, v: Path | None) -> Path | None:
        try:
            open_country_db(str(v or BUNDLED_DB))
        except CountryDbError as exc:
            raise ValueError(str(exc)) from None
        return v

    @property
    def country_db_path(self) -> str:
        return str(self.country_db or BUNDLED_DB)

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, v: str) -> str:
        parse_cidrs(v)  # raises ValueError naming the bad entry
        return v

    @property
    def trusted_networks(self):  # type: ignore[no-untyped-def]
        return parse_cidrs(self.trusted_proxies)
