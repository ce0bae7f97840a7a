"""Per-visitor session state: a Faust table, kept exact against Postgres.

The sink asks a session store for the visitor's latest session of the day
(`SessionKey` = website, visitor, UTC day, is_bot, kpart). Two stores:

* `SessionTable` (the worker): a Faust table `sessions`, key
  "<website>|<kpart>|<visitor>|<day>|<bot>", changelog partition <kpart> (the raw
  partition: `KpartTable`), so the worker that owns raw partition p holds, and recovers
  on assignment, exactly the sessions of p (docs/RULES.md, "Co-partitioned state").
  Values are `Session`s, serialised by the `tt_session` codec (`dump_value`,
  `load_value`). The Faust side (the table class, the codec registry) is
  `streams/consumer.py`'s; this module holds the store's logic.
* `SessionStore`: what the sink needs of a store (tests use a dict-backed one).

Postgres stays the source of truth: a batch's events, aggregate deltas and offsets
commit in ONE transaction (streams/sink.py) and every stored event carries its
`session_id`, so any session can be rebuilt by folding its stored events. The table
is written only AFTER that commit, and is therefore never ahead of Postgres; it can
be behind (a kill -9 between the commit and the changelog write). To know, the table
holds one mark per partition, key "~|<p>|mark", value {"next": offset, "floor": day}:
* `next`: Postgres' `next_offset` of p when the table last matched it. After a batch
  the sessions it touched and then the mark go to changelog partition p from ONE
  idempotent producer, which keeps a partition's records in order; so a mark that
  survived means every session write before it did.
  When the sink finds `next` != the stored offset (a crash lost the tail of the
  changelog, or another worker wrote p meanwhile) it reloads p's sessions from the
  events table inside its transaction (`reload`) before it uses any of them.
* `floor`: the first UTC day for which the table is complete, so that a miss means "no
  session yet" and needs no query. Days before it were expired (`expire`, one day behind
  the newest day seen in the partition) or never loaded; a (rare) event of such a day is
  looked up in the events table (`lookup`).

Writes. Faust's own table writes (`table[key] = value`) cost ~75 us per key here (a
FutureMessage, the producer buffer, a callback, one aiokafka send each): more than the
whole rest of a batch. So the store updates the table's in-memory data directly and
writes the changelog records itself, in bulk: one aiokafka record batch per partition
(`create_batch` / `send_batch`), in the format Faust's recovery reads (json key, the
session as a json array, `None` to delete). Faust still declares the changelog topic,
assigns its partitions with the raw topic's and recovers the table from it. The check
Faust's own writes make is made here too (`KpartTable.verify_partitions`): a changelog
with another partition count than the raw topic's is never written (`PartitionsMismatch`,
logged by the sink; the partitions are then reloaded from Postgres on every batch).
"""

from __future__ import annotations

import dataclasses
import logging
import operator
import time
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

import orjson
import psycopg
from aiokafka import AIOKafkaProducer
from prometheus_client import Counter
from psycopg.rows import tuple_row

from streams.consumer import WorkerApp, add_kpart_table, register_codec
from streams.sessions import Deltas, Session, SessionKey, apply_event, new_session
from streams.stored import STORED_COLUMNS, enriched_from_tuple
from tinytrail.days import day_of, day_start

log = logging.getLogger("tinytrail.streams.sessions")

RELOADS = Counter("tinytrail_session_reloads_total",
                  "Partitions whose sessions were reloaded from Postgres", ["why"])
LOOKUPS = Counter("tinytrail_session_lookups_total",
                  "Sessions looked up in Postgres (days before the table's floor)")
EXPIRED = Counter("tinytrail_sessions_expired_total", "Sessions dropped from the table")

_FIELDS = tuple(f.name for f in dataclasses.fields(Session))
_VALUES = operator.attrgetter(*_FIELDS)  # one C-level call for every field, in order
_PAGES = _FIELDS.index("seen_pages")
_GROUPS = _FIELDS.index("seen_groups")
NO_FLOOR = 1 << 30  # a day no event reaches: nothing is known complete


def dump_value(obj: Any) -> bytes:
    """A changelog value: a `Session` as the JSON array of its fields (sets as sorted
    lists); a mark as its JSON object."""
    if isinstance(obj, Session):
        vals = list(_VALUES(obj))
        vals[_PAGES] = sorted(obj.seen_pages)
        vals[_GROUPS] = sorted(obj.seen_groups)
        return orjson.dumps(vals)
    return orjson.dumps(obj)


def from_json(v: Any) -> Any:
    """A decoded changelog value -> `Session` (arrays) or the mark (objects) as is."""
    if not isinstance(v, list):
        return v
    sess = Session(*v)
    sess.seen_pages = {(p, g) for p, g in v[_PAGES]}
    sess.seen_groups = set(v[_GROUPS])
    return sess


def load_value(s: bytes) -> Any:
    """`dump_value`'s bytes -> `Session` or mark."""
    return from_json(orjson.loads(s))


SESSION_CODEC = register_codec("tt_session", dump_value, load_value)


def table_key(k: SessionKey) -> str:
    return f"{k[0]}|{k[4]}|{k[1]}|{k[2]}|{int(k[3])}"


def mark_key(p: int) -> str:
    return f"~|{p}|mark"


def parse_key(key: str) -> SessionKey | None:
    """Table key -> SessionKey; None for a mark."""
    w, p, v, d, b = key.split("|") if not key.startswith("~") else ("", "", "", "", "")
    if not w:
        return None
    return (w, v, int(d), b == "1", int(p))


def fold_sessions(rows: Iterable[tuple[Any, ...]]) -> dict[SessionKey, Session]:
    """Stored event rows (`STORED_COLUMNS`, any order, every event of each key's day) ->
    the latest session per key, as the stream left it, `first_of_day` included: the
    session holding the key's first event in partition order (lowest Kafka offset; time
    and event id break ties, as in the rebuild's `SessionFolder.flush`) is the one the
    stream created first and counts the visitor. It matters when that session grows after
    a reload: a late event stamped earlier can change its `country`, and the visitor must
    move with it (`add_contribution`), as the rebuild counts it."""
    by_id: dict[str, Session] = {}
    first: dict[SessionKey, tuple[tuple[int, int, str], str]] = {}  # key -> (mark, sid)
    scratch = Deltas()
    for row in rows:
        ev = enriched_from_tuple(row)
        s = by_id.get(ev.session_id)
        if s is None:
            s = by_id[ev.session_id] = new_session(ev, ev.session_id, first_of_day=False)
        apply_event(s, ev, scratch)
        scratch.clear()
        mark = (ev.kafka_offset, ev.received_at_ms, ev.event_id)
        best = first.get(s.key)
        if best is None or mark < best[0]:
            first[s.key] = (mark, ev.session_id)
    latest: dict[SessionKey, Session] = {}
    for s in by_id.values():
        cur = latest.get(s.key)
        if cur is None or (s.last_ms, s.session_id) > (cur.last_ms, cur.session_id):
            latest[s.key] = s
    for k, s in latest.items():
        s.first_of_day = first[k][1] == s.session_id
    return latest


async def load_partition(
    cur: psycopg.AsyncCursor[Any], kpart: int, since_day: int
) -> dict[SessionKey, Session]:
    """Every session of raw partition `kpart` from UTC day `since_day` on, from the events."""
    rows = cur.connection.cursor(row_factory=tuple_row)
    await rows.execute(
        f"SELECT {STORED_COLUMNS} FROM events WHERE received_at >= %s"  # noqa: S608
        " AND kafka_partition = %s AND NOT is_excluded",
        (_day_start(since_day), kpart),
    )
    return fold_sessions(await rows.fetchall())


async def lookup(
    cur: psycopg.AsyncCursor[Any], keys: Iterable[SessionKey]
) -> dict[SessionKey, Session]:
    """The latest stored session of each key (keys of any days), in one query."""
    keys = list(keys)
    if not keys:
        return {}
    LOOKUPS.inc(len(keys))
    days = [k[2] for k in keys]
    rows = cur.connection.cursor(row_factory=tuple_row)
    await rows.execute(
        f"SELECT {STORED_COLUMNS} FROM events WHERE received_at >= %s"  # noqa: S608
        " AND received_at < %s AND NOT is_excluded AND (website_id, visitor_id) IN"
        " (SELECT * FROM unnest(%s::uuid[], %s::text[]))",
        (_day_start(min(days)), _day_start(max(days) + 1),
         [k[0] for k in keys], [k[1] for k in keys]),
    )
    found = fold_sessions(await rows.fetchall())
    wanted = set(keys)
    return {k: s for k, s in found.items() if k in wanted}


_day_start = day_start  # day ordinal -> its first instant (UTC)


class SessionStore(Protocol):
    """What the sink needs of a session store (`SessionTable`; tests use a dict-backed
    one): the latest committed session per key, the day below which misses must be
    looked up (`floor`), whether it matches a stored offset (`current`), `reload` under
    the fence's row lock, `publish` after COMMIT, `invalidate` after a failed write."""

    def get(self, key: SessionKey) -> Session | None: ...
    def floor(self, kpart: int) -> int: ...
    def current(self, kpart: int, next_offset: int) -> bool: ...
    async def reload(self, cur: Any, kpart: int, next_offset: int, why: str) -> None: ...
    async def publish(self, sessions: Iterable[Session], ends: Mapping[int, int]) -> None: ...
    def invalidate(self, kparts: Iterable[int]) -> None: ...


class SessionTable:
    """The worker's session store: a Faust table plus one mark per partition."""

    def __init__(self, app: WorkerApp, partitions: int, bootstrap: str,
                 source_topic: str) -> None:
        """Declares the table `sessions` on `app`: `partitions` changelog partitions, as
        many as `source_topic` (the raw topic) has, checked before the first write."""
        self.app = app
        self.bootstrap = bootstrap
        # The changelog producer, started on the first write (`_writer`). A test without
        # a broker sets a stand-in here, as it replaces the dead-letter sender.
        self.producer: AIOKafkaProducer | None = None
        # Faust's recovery decodes changelog values with json; `from_json` turns the
        # session arrays back into `Session`s as they are applied.
        self.table = add_kpart_table(app, "sessions", partitions, source_topic,
                                     value_serializer="tt_session", from_changelog=from_json)
        self._max_day: dict[int, int] = {}  # newest event day written, per partition

    # -- reads (hot path: the store's dict directly, no changelog)
    def get(self, key: SessionKey) -> Session | None:
        return self.table.data.get(table_key(key))

    def mark(self, kpart: int) -> dict[str, int] | None:
        return self.table.data.get(mark_key(kpart))

    def floor(self, kpart: int) -> int:
        m = self.mark(kpart)
        return NO_FLOOR if m is None else int(m["floor"])

    def current(self, kpart: int, next_offset: int) -> bool:
        m = self.mark(kpart)
        return m is not None and int(m["next"]) == next_offset

    # -- writes: the in-memory data, then the changelog records in bulk
    async def _writer(self) -> AIOKafkaProducer:
        """The changelog producer: this store's own idempotent aiokafka producer, started
        on first use. Raises when it cannot start (the sink then invalidates the
        partitions, which are reloaded and rewritten by their next batch)."""
        if self.producer is None:
            prod = AIOKafkaProducer(
                bootstrap_servers=self.bootstrap, acks="all", enable_idempotence=True,
                max_batch_size=1 << 20, linger_ms=0,
            )
            try:
                await prod.start()
            except BaseException:
                await prod.stop()
                raise
            self.producer = prod
        return self.producer

    async def stop(self) -> None:
        if self.producer is not None:
            await self.producer.stop()
            self.producer = None

    async def _write(self, records: Mapping[int, list[tuple[str, Any]]]) -> None:
        """Per partition, in order: (table key, value or None to delete). Returns once
        Kafka acknowledged them all. Raises `PartitionsMismatch`, writing nothing, when
        the changelog's partitions are not the raw topic's (a key's changelog partition
        would not be its raw partition)."""
        if not records:
            return
        self.table.verify_partitions()
        prod = await self._writer()
        topic = self.table.changelog_topic.get_topic_name()
        futs = []
        for p, recs in records.items():
            batch = prod.create_batch()
            for key, value in recs:
                k = orjson.dumps(key)
                v = None if value is None else dump_value(value)
                if batch.append(key=k, value=v, timestamp=None) is None:
                    futs.append(await prod.send_batch(batch, topic, partition=p))
                    batch = prod.create_batch()
                    batch.append(key=k, value=v, timestamp=None)
            futs.append(await prod.send_batch(batch, topic, partition=p))
        for f in futs:
            await f

    def _mark_record(self, kpart: int, next_offset: int, floor: int) -> tuple[str, Any] | None:
        m = {"next": next_offset, "floor": floor}
        if self.mark(kpart) == m:
            return None
        self.table.data[mark_key(kpart)] = m
        return (mark_key(kpart), m)

    async def publish(self, sessions: Iterable[Session], ends: Mapping[int, int]) -> None:
        """After COMMIT: the batch's sessions, then each partition's mark."""
        data = self.table.data
        records: dict[int, list[tuple[str, Any]]] = {}
        for s in sessions:
            key = table_key(s.key)
            data[key] = s
            records.setdefault(s.kpart, []).append((key, s))
            self._saw(s.kpart, s.day)
        for p, n in ends.items():
            rec = self._mark_record(p, n, self.floor(p))
            if rec is not None:
                records.setdefault(p, []).append(rec)
        await self._write(records)

    def _keys_in(self, kparts: Iterable[int]) -> list[str]:
        """The table keys (sessions and marks) of these partitions (field 1 of a key)."""
        want = {str(p) for p in kparts}
        return [k for k in list(self.table.data.keys()) if k.split("|", 2)[1] in want]

    def _saw(self, kpart: int, day: int) -> None:
        if day > self._max_day.get(kpart, -1):
            self._max_day[kpart] = day

    def invalidate(self, kparts: Iterable[int]) -> None:
        """A changelog write failed: these partitions are no longer known to match
        Postgres; the next batch of each reloads it (and rewrites it whole)."""
        for p in kparts:
            self.table.data.pop(mark_key(p), None)

    def forget(self, kparts: Iterable[int]) -> None:
        """Drop these partitions from memory (revoked: their next owner has them)."""
        data = self.table.data
        for key in self._keys_in(kparts):
            del data[key]

    async def reload(self, cur: Any, kpart: int, next_offset: int, why: str) -> None:
        """Make partition `kpart` equal to Postgres (whose `next_offset` is given; the
        caller holds that row's lock): every session from the floor on (or from
        yesterday, UTC, when there is no mark) is folded from the stored events."""
        RELOADS.labels(why).inc()
        t0 = time.perf_counter()
        m = self.mark(kpart)
        today = day_of(int(time.time() * 1000))
        floor = int(m["floor"]) if m is not None and int(m["floor"]) < NO_FLOOR else today - 1
        loaded = await load_partition(cur, kpart, floor)
        data = self.table.data
        recs: list[tuple[str, Any]] = []
        for key in self._keys_in([kpart]):
            sk = parse_key(key)
            if sk is not None and sk[2] >= floor and sk not in loaded:
                del data[key]
                recs.append((key, None))
        for k, s in loaded.items():
            key = table_key(k)
            data[key] = s
            recs.append((key, s))
            self._saw(kpart, s.day)
        data.pop(mark_key(kpart), None)  # so that the mark is written again
        mark = self._mark_record(kpart, next_offset, floor)
        if mark is not None:
            recs.append(mark)
        try:
            await self._write({kpart: recs})
        except Exception:
            # Memory now matches Postgres, the changelog may not: no mark vouches for
            # it, so the next batch of this partition loads (and writes) it again.
            self.invalidate([kpart])
            log.exception("writing the reloaded sessions of partition %d failed", kpart)
        log.info("sessions of partition %d reloaded from Postgres (%s)", kpart, why,
                 extra={"sessions": len(loaded), "floor_day": floor,
                        "seconds": round(time.perf_counter() - t0, 3)})

    async def expire(self) -> int:
        """Drop sessions more than one day behind the newest day seen in their
        partition, and raise the partition's floor to match. Returns sessions dropped."""
        records: dict[int, list[tuple[str, Any]]] = {}
        data = self.table.data
        for p, newest in self._max_day.items():
            m = self.mark(p)
            floor = newest - 1
            if m is None or floor <= int(m["floor"]):
                continue
            recs = records[p] = []
            for key in self._keys_in([p]):
                sk = parse_key(key)
                if sk is not None and sk[2] < floor:
                    del data[key]
                    recs.append((key, None))
            mark = self._mark_record(p, int(m["next"]), floor)
            if mark is not None:
                recs.append(mark)
        await self._write(records)
        dropped = sum(1 for recs in records.values() for _, v in recs if v is None)
        EXPIRED.inc(dropped)
        return dropped

