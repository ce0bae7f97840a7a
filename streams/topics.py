"""The Faust topics of the worker: raw events in, dead letters out (raw bytes, never pickle)."""

from __future__ import annotations

import faust

from tinytrail.settings import CoreSettings
from tinytrail.topics import deadletter_topic, raw_events_topic


def raw_topic(app: faust.App, settings: CoreSettings) -> faust.TopicT:
    # Created by `tinytrail migrate` (tinytrail.topics); the worker never re-declares it.
    return app.topic(
        raw_events_topic(settings),
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        internal=False,
    )


def dlq_topic(app: faust.App, settings: CoreSettings) -> faust.TopicT:
    return app.topic(
        deadletter_topic(settings),
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        internal=False,
    )
