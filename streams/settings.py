"""Settings of the stream worker process (`tinytrail worker`)."""

from __future__ import annotations

from pydantic import Field

from tinytrail.settings import CoreSettings


class WorkerSettings(CoreSettings):
    """Everything the Faust worker reads from `TINYTRAIL_*` at start-up."""

    worker_metrics_port: int = Field(default=8003, ge=0, le=65535)  # 0 = no metrics server
    worker_web_port: int = Field(default=0, ge=0, le=65535)  # Faust's web server; 0 = off
    worker_heartbeat_file: str = "/tmp/tinytrail/worker.heartbeat"
    worker_heartbeat_interval: float = Field(default=5.0, gt=0, le=60)
    worker_data_dir: str = "/tmp/tinytrail/worker-data"
    batch_size: int = Field(default=5000, ge=1, le=100_000)
    batch_window: float = Field(default=0.5, gt=0, le=1.0)  # seconds; aggregates every <= 1 s
    website_refresh_interval: float = Field(default=5.0, gt=0, le=5.0)
    retention_days: int = Field(default=400, ge=1)
    retention_interval: float = Field(default=3600.0, gt=0)
    partitions_ahead_days: int = Field(default=8, ge=1, le=60)
    broker_session_timeout: float = Field(default=30.0, gt=0)
    broker_heartbeat_interval: float = Field(default=3.0, gt=0)
