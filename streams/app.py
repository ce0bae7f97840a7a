"""The stream worker: builds the Faust app around `streams.runtime.Runtime`.

One event's way through the worker: `streams/consumer.py` (Faust's consumer,
overridden) hands each fetch of the raw topic over as one `RawBatch` to
`Runtime.deliver`, which puts it into an in-memory channel; the agent below
(concurrency 1) takes up to `FETCHES_PER_BATCH` of them within `batch_window` and
calls `Runtime.handle_batches`, which runs the batch path of `streams/batch.py`:
decode -> enrich -> sessions + sink (one Postgres transaction: `streams/sink.py`) ->
realtime. Faust's signals and timers call `Runtime` methods; nothing else happens here.
"""

from __future__ import annotations

import logging
from typing import Any, cast

from streams.consumer import (
    BatchingConsumer,
    BoundedWorker,
    RawBatch,
    StreamT,
    WorkerApp,
    check_faust_version,
    raw_topic,
)
from streams.offsets import STALL_TICKS
from streams.runtime import FETCHES_PER_BATCH, Runtime
from streams.settings import WorkerSettings, make_dirs

__all__ = ["FETCHES_PER_BATCH", "STALL_TICKS", "Runtime", "build_app", "main"]

log = logging.getLogger("tinytrail.streams")


def build_app(settings: WorkerSettings) -> tuple[WorkerApp, Runtime]:
    app = WorkerApp(
        f"{settings.topic_prefix}-worker",
        broker=f"kafka://{settings.kafka_bootstrap}",
        store="memory://",
        topic_partitions=settings.events_partitions,
        topic_replication_factor=settings.topic_replication,
        # No standby copies of the tables: a standby reads every changelog message of
        # the other workers' partitions one by one (Faust's per-message path), which
        # would cost each worker as much as the sessions it writes itself. A partition
        # that moves recovers its changelog instead (docs/STREAMS.md).
        table_standby_replicas=0,
        broker_session_timeout=settings.broker_session_timeout,
        broker_heartbeat_interval=settings.broker_heartbeat_interval,
        consumer_auto_offset_reset="earliest",
        web_enabled=settings.worker_web_port > 0,
        web_port=settings.worker_web_port or 6066,
        web_bind="127.0.0.1",
        datadir=settings.worker_data_dir,
        value_serializer="raw",
        key_serializer="raw",
        # A fetch returns at most batch_size / FETCHES_PER_BATCH records; the agent
        # joins up to FETCHES_PER_BATCH of them into one Postgres transaction.
        broker_max_poll_records=max(1, settings.batch_size // FETCHES_PER_BATCH),
        consumer_max_fetch_size=16 * 1024 * 1024,
        # The changelog of the realtime table: a few ms of linger batches a batch's
        # window writes into one produce request per partition.
        producer_linger=0.005,
    )
    rt = Runtime(app, settings)  # declares the tables `sessions` and `rt_windows`
    topic = raw_topic(app, settings)
    app.topics.add(topic)  # subscribed (assignment, co-partitioned tables), read in bulk
    consumer = cast(BatchingConsumer, app.consumer)  # WorkerApp builds this class
    consumer.bind(topic.get_topic_name(), rt.deliver, rt.after_seek)

    @app.agent(rt.fetched, concurrency=1)
    async def process(stream: StreamT[RawBatch]) -> None:
        rt.agent_started.set()  # the stream is subscribed to the channel by now
        async for batches in stream.take(FETCHES_PER_BATCH, within=settings.batch_window):
            await rt.handle_batches(batches)

    @app.task
    async def _start() -> None:
        await rt.start()

    @app.on_before_shutdown.connect
    def _phases(sender: Any, /, *args: Any, **kw: Any) -> None:
        rt.log_phases()

    @app.on_partitions_revoked.connect
    async def _revoked(sender: Any, /, *args: Any, **kw: Any) -> None:
        await rt.on_revoked()

    @app.on_partitions_assigned.connect
    async def _assigned(sender: Any, assigned: Any = (), /, *args: Any, **kw: Any) -> None:
        rt.on_assigned(assigned)

    # Timers: the heartbeat file the liveness probe reads; Kafka's committed offsets (lag
    # monitoring only); the stall check; expiry of realtime windows and sessions; retention.
    @app.timer(settings.worker_heartbeat_interval)
    async def _heartbeat() -> None:
        rt.beat()

    @app.timer(5.0)
    async def _commit_applied() -> None:
        await rt.commit_applied()

    @app.timer(1.0)
    async def _stall_check() -> None:
        await rt.check_stalled()

    @app.timer(60.0)
    async def _expire() -> None:
        await rt.expire()

    @app.timer(settings.retention_interval, on_leader=False)
    async def _retention() -> None:
        await rt.retention()

    app.tt_agent = process  # type: ignore[attr-defined]
    return app, rt


def main() -> int:
    """`tinytrail worker`: run until SIGTERM/SIGINT; exit code."""
    from tinytrail.logs import setup_logging
    from tinytrail.metrics import start_metrics_server
    from tinytrail.settings import load_settings

    settings = load_settings(WorkerSettings)
    setup_logging(settings.log_format, settings.log_level, process="worker")
    try:
        check_faust_version()
    except RuntimeError as exc:  # the test suite refuses it; a running worker warns
        log.warning("%s", exc)
    make_dirs(settings)
    if settings.worker_metrics_port:
        start_metrics_server(settings.worker_metrics_port)
    app, rt = build_app(settings)
    worker = BoundedWorker(app, loglevel=settings.log_level.lower(), override_logging=False,
                           redirect_stdouts=False,
                           shutdown_timeout=settings.worker_shutdown_timeout)
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 0
    else:
        code = 0
    return code
