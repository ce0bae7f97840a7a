"""Settings of the stream worker process (`tinytrail worker`), and the folders they name
(`make_dirs`)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from tinytrail.settings import WebsiteCacheSettings


class WorkerSettings(WebsiteCacheSettings):
    """Everything the Faust worker reads from `TINYTRAIL_*` at start-up (the website
    cache's two settings are shared with the collector: `WebsiteCacheSettings`)."""

    worker_metrics_port: int = Field(default=8003, ge=0, le=65535)  # 0 = no metrics server
    worker_web_port: int = Field(default=0, ge=0, le=65535)  # Faust's web server; 0 = off
    worker_heartbeat_file: str = "/tmp/tinytrail/worker.heartbeat"
    worker_heartbeat_interval: float = Field(default=5.0, gt=0, le=60)
    # A batch in flight longer than this stops the heartbeat (the liveness probe then
    # fails): seconds, including its retries of transient errors.
    worker_batch_stuck_seconds: float = Field(default=120.0, gt=0, le=3600)
    # statement_timeout of the worker's Postgres sessions, seconds (0 = none).
    worker_statement_timeout: float = Field(default=60.0, ge=0, le=3600)
    # After SIGTERM, the process ends within this many seconds even if Kafka or Postgres
    # do not answer (Kubernetes kills at 30 s). Postgres' offsets make a hard stop safe.
    worker_shutdown_timeout: float = Field(default=20.0, gt=0, le=300)
    worker_data_dir: str = "/tmp/tinytrail/worker-data"
    batch_size: int = Field(default=5000, ge=1, le=100_000)
    batch_window: float = Field(default=0.5, gt=0, le=1.0)  # seconds; aggregates every <= 1 s
    retention_interval: float = Field(default=3600.0, gt=0)
    partitions_ahead_days: int = Field(default=8, ge=1, le=60)
    broker_session_timeout: float = Field(default=30.0, gt=0)
    broker_heartbeat_interval: float = Field(default=3.0, gt=0)


def make_dirs(settings: WorkerSettings) -> None:
    """Create the worker's data folder and the heartbeat file's folder, parents included
    (Faust's own `mkdir` does not create parents: a fresh machine without `/tmp/tinytrail`
    crashed at start-up). Raises SystemExit with one line when one cannot be made."""
    for folder in (Path(settings.worker_data_dir), Path(settings.worker_heartbeat_file).parent):
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SystemExit(f"tinytrail worker: cannot create {folder}: {exc.strerror}") from None
