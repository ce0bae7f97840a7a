"""The Faust topics of the worker: raw events in, dead letters out (raw bytes, never pickle).

Both are created by `tinytrail migrate` (tinytrail.topics) with their declared partitions
and retention; here they are only bound to the Faust app.
"""

from __future__ import annotations

import faust

from tinytrail.settings import CoreSettings
from tinytrail.topics import deadletter_topic, raw_events_topic


def _bytes_topic(app: faust.App, name: str) -> faust.TopicT:
    return app.topic(
        name,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        internal=False,
    )


def raw_topic(app: faust.App, settings: CoreSettings) -> faust.TopicT:
    return _bytes_topic(app, raw_events_topic(settings))


def dlq_topic(app: faust.App, settings: CoreSettings) -> faust.TopicT:
    return _bytes_topic(app, deadletter_topic(settings))
