"""`KpartTable`'s partition-count check (streams/consumer.py), without a broker.

A key's changelog partition is its raw partition (field 1 of the key), which is only
true while the changelog has as many partitions as the raw topic. Faust's own tables
check that on the first write from a source topic; `KpartTable` makes the same check
against the raw topic before Faust writes a key (`partition_for_key`) and before the
session store writes changelog records itself (`verify_partitions`).

The app is the worker's real `WorkerApp` with its tables declared by `add_kpart_table`
(store `memory://`, nothing connects: the socket guard below fails any attempt); only
the consumer is replaced, by one whose `topic_partitions` answers from a dict and
counts the questions.
"""

from __future__ import annotations

import socket
import uuid
from typing import Any

import orjson
import pytest

from streams.consumer import PartitionsMismatch, WorkerApp, add_kpart_table
from streams.session_state import SessionTable, dump_value
from streams.sessions import Deltas, Session, apply_event, new_session
from tests.streams.test_sessions import mk

RAW = "tt-unit.events.raw"
CLOSED = "127.0.0.1:9"
KEY = "site|2|visitor|20000|0"  # field 1: raw partition 2


@pytest.fixture(autouse=True)
def _no_sockets(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: socket.socket, address: Any) -> None:
        raise AssertionError(f"a pure unit test connected to {address}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)


class Counts:
    """What `KpartTable` reads of Faust's consumer: partitions per topic (None: the
    consumer does not know yet), every question recorded."""

    def __init__(self, partitions: dict[str, int | None]) -> None:
        self.partitions = partitions
        self.asked: list[str] = []

    def topic_partitions(self, topic: str) -> int | None:
        self.asked.append(topic)
        return self.partitions.get(topic)


def worker_app() -> WorkerApp:
    return WorkerApp(f"tt-unit-{uuid.uuid4().hex[:6]}", broker=f"kafka://{CLOSED}",
                     store="memory://")


def table_with(counts: dict[str, int | None] | None = None, name: str = "rt_windows") -> Any:
    """A `KpartTable` of 4 partitions over `RAW`; `counts` maps "raw" / "changelog" to
    the partitions the consumer reports."""
    app = worker_app()
    table = add_kpart_table(app, name, 4, RAW)
    counts = counts or {}
    app.consumer = Counts({RAW: counts.get("raw"),  # type: ignore[assignment]
                           table.changelog_topic_name: counts.get("changelog")})
    return table


def test_a_changelog_with_other_partitions_than_the_raw_topic_is_refused() -> None:
    table = table_with({"raw": 4, "changelog": 3})
    changelog = table.changelog_topic_name
    assert changelog.endswith("rt_windows-changelog")
    with pytest.raises(PartitionsMismatch) as info:
        table.partition_for_key(KEY)
    msg = str(info.value)
    assert RAW in msg and changelog in msg, msg
    assert "has 3 partitions" in msg and "has 4" in msg, msg
    # Refused every time, not only the first: a mismatch is never recorded as checked.
    with pytest.raises(PartitionsMismatch):
        table.verify_partitions()
    with pytest.raises(PartitionsMismatch):
        table.partition_for_key(KEY)


def test_faust_write_path_refuses_before_anything_is_written() -> None:
    """`table[key] = value` (how the realtime windows are written) asks
    `partition_for_key` before it sends or stores anything."""
    table = table_with({"raw": 4, "changelog": 8})
    with pytest.raises(PartitionsMismatch):
        table[KEY] = {"page_view": 1}
    assert KEY not in table.data


def test_equal_counts_pass_and_are_checked_once() -> None:
    table = table_with({"raw": 4, "changelog": 4})
    asked = table.app.consumer.asked
    assert table.partition_for_key(KEY) == 2
    assert sorted(asked) == sorted([RAW, table.changelog_topic_name])
    for p in range(4):
        assert table.partition_for_key(f"site|{p}|v|20000|1") == p
    table.verify_partitions()
    assert len(asked) == 2  # not asked again


@pytest.mark.parametrize("unknown", ["raw", "changelog", "both"])
def test_unknown_counts_are_not_cached_as_checked(unknown: str) -> None:
    """Before the consumer has the topics' metadata it cannot tell: the key's partition
    is used, and the check runs again on the next write until both counts are known."""
    known = {"raw": 4, "changelog": 4}
    counts = {k: (None if unknown in (k, "both") else v) for k, v in known.items()}
    table = table_with(counts)
    consumer = table.app.consumer
    assert table.partition_for_key(KEY) == 2
    first = len(consumer.asked)
    assert first >= 1
    assert table.partition_for_key(KEY) == 2
    assert len(consumer.asked) == 2 * first  # asked again: nothing was cached
    # The metadata arrives, with a mismatch: the next write is refused.
    consumer.partitions = {RAW: 4, table.changelog_topic_name: 2}
    with pytest.raises(PartitionsMismatch):
        table.partition_for_key(KEY)
    # ... or with equal counts: checked, then never asked again.
    consumer.partitions = {RAW: 4, table.changelog_topic_name: 4}
    assert table.partition_for_key(KEY) == 2
    asked = len(consumer.asked)
    assert table.partition_for_key(KEY) == 2 and len(consumer.asked) == asked


def test_no_source_topic_no_check() -> None:
    table = table_with({"raw": 4, "changelog": 3})
    table.source_topic = None
    assert table.partition_for_key(KEY) == 2
    assert table.app.consumer.asked == []


class Producer:
    """Records what the session store would send (aiokafka's producer API it uses)."""

    def __init__(self) -> None:
        self.batches = 0

    def create_batch(self) -> Any:
        self.batches += 1
        raise AssertionError("nothing may be written to a mismatched changelog")


async def test_the_session_store_refuses_to_write_a_mismatched_changelog() -> None:
    """The session store writes its changelog records itself (module doc of
    streams/session_state.py), so Faust's own check never runs for it: it checks
    first, and writes nothing when the counts differ."""
    app = worker_app()
    store = SessionTable(app, 4, CLOSED, RAW)
    app.consumer = Counts({RAW: 4, store.table.changelog_topic_name: 5})  # type: ignore[assignment]
    prod = Producer()
    store.producer = prod  # type: ignore[assignment]  # no broker here: stand in for it
    with pytest.raises(PartitionsMismatch) as info:
        await store._write({2: [(KEY, None)]})
    assert "sessions-changelog" in str(info.value) and RAW in str(info.value)
    assert prod.batches == 0
    await store._write({})  # nothing to write: nothing checked, nothing raised


def test_the_session_table_reads_sessions_back_from_its_changelog() -> None:
    """Faust's recovery json-decodes changelog values and passes them to `_to_value`:
    the session table turns the arrays back into `Session`s, the realtime table keeps
    its dicts."""
    app = worker_app()
    store = SessionTable(app, 4, CLOSED, RAW)
    windows = add_kpart_table(app, "rt_windows", 4, RAW)
    ev = mk(1, 7, 1000, "page_view", "/g/1")
    s = new_session(ev, "sid-1", first_of_day=False)
    apply_event(s, ev, Deltas())
    back = store.table._to_value(orjson.loads(dump_value(s)))
    assert isinstance(back, Session) and back == s
    assert back.seen_pages == {("/g/1", "G")}
    assert store.table._to_value({"next": 5, "floor": 20000}) == {"next": 5, "floor": 20000}
    assert windows._to_value({"page_view": 3}) == {"page_view": 3}
