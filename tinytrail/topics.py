"""Kafka topics, declared once. `ensure_topics` creates the missing ones.

Names carry the configurable prefix so that tests (and several installs) can
share one broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from tinytrail.days import DAY_MS
from tinytrail.settings import CoreSettings

log = logging.getLogger("tinytrail.topics")


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    retention_ms: int
    cleanup_policy: str = "delete"

    @property
    def configs(self) -> dict[str, str]:
        return {"retention.ms": str(self.retention_ms), "cleanup.policy": self.cleanup_policy}


def raw_events_topic(settings: CoreSettings) -> str:
    return f"{settings.topic_prefix}.events.raw"


def deadletter_topic(settings: CoreSettings) -> str:
    return f"{settings.topic_prefix}.events.deadletter"


def declared_topics(settings: CoreSettings) -> list[TopicSpec]:
    """Every topic TinyTrail's own code produces to. Faust creates its changelogs."""
    return [
        # Keyed by website:visitor; 7 days lets a worker that was down a week catch up.
        TopicSpec(raw_events_topic(settings), settings.events_partitions, 7 * DAY_MS),
        TopicSpec(deadletter_topic(settings), 3, 14 * DAY_MS),
    ]


async def ensure_topics(settings: CoreSettings, *, timeout: float = 60.0) -> list[str]:
    """Create missing topics; returns the names created. Retries until `timeout`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
        try:
            await admin.start()
            existing = set(await admin.list_topics())
            missing = [t for t in declared_topics(settings) if t.name not in existing]
            if missing:
                with contextlib.suppress(TopicAlreadyExistsError):
                    await admin.create_topics(
                        [
                            NewTopic(
                                t.name,
                                t.partitions,
                                settings.topic_replication,
                                topic_configs=t.configs,
                            )
                            for t in missing
                        ]
                    )
            return [t.name for t in missing]
        except KafkaError as exc:
            if loop.time() > deadline:
                raise
            log.warning("kafka not ready yet (%s); retrying", exc)
            await asyncio.sleep(1.0)
        finally:
            await admin.close()
