"""The dead-letter record: a raw message the worker could not store, with its reason.

Made by the batch path (`streams/batch.py`: decode failures, an enrichment step that
raised, an event Postgres refused, isolated by bisection), sent before the COMMIT
that moves its offset past it (`streams/sink.py`, at least once), and produced to
`<prefix>.events.deadletter` by `streams.runtime.Runtime.send_dead` as
`{partition, offset, topic, error, value_b64}` under the original key.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class DeadLetter:
    """Raw partition and offset, the original key and value, and why (`error`: a prefix
    naming the step, "decode: …", "error: <step>: …", "sink: <Class> [<SQLSTATE>]: …")."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    error: str


DeadLetterSender = Callable[[Sequence[DeadLetter]], Awaitable[None]]
