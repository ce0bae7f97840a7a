"""Enrichment: one named, ordered pipeline of pure steps `(event, ctx) -> event | Drop`.

Each step fills in derived fields of the worker's own working copy of the event
(`Enriched`) and returns it, or returns a `Drop` with a typed reason. Lookups
(the website's settings, the UA parser) arrive through `EnrichContext`, so the
steps do no I/O and are tested table-driven without services. Every step is
timed under its name in `tinytrail_enrich_step_seconds`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from prometheus_client import Counter, Histogram

from streams.enrich import bots, content_group, referrer, screen, useragent, utm
from streams.enrich.website import WebsiteInfo, known_website
from streams.models import Drop, Enriched

STEP_SECONDS = Histogram(
    "tinytrail_enrich_step_seconds",
    "Time spent in one enrichment step per batch (per chunk of a worker batch)",
    ["step"],
    buckets=(0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0),
)
# Events enriched between two yields to the event loop (`enrich_batch_async`). Worst
# case per event ~1-2 ms (a website at the content-group budget, a 1,600-character path,
# no cache hit; bench/content_groups.py), so a chunk holds the loop ~0.2-0.4 s at most.
ENRICH_CHUNK = 200
DROPPED = Counter("tinytrail_events_dropped_total", "Events dropped by enrichment", ["reason"])


@dataclass(frozen=True)
class EnrichContext:
    """What the steps may look up: the event's website (None = unknown/deleted)."""

    website: WebsiteInfo | None


Step = Callable[[Enriched, EnrichContext], "Enriched | Drop"]

PIPELINE: tuple[tuple[str, Step], ...] = (
    ("website", known_website),
    ("useragent", useragent.step),
    ("bots", bots.step),
    ("utm", utm.step),
    ("referrer", referrer.step),
    ("content_group", content_group.step),
    ("screen", screen.step),
)


def enrich_batch(
    events: Sequence[Enriched], websites: Callable[[str], WebsiteInfo | None]
) -> tuple[list[Enriched], list[tuple[Enriched, Drop]]]:
    """Run the pipeline step by step over a batch, timing each step once per batch.

    Returns (kept events, [(event, Drop)]). A step that raises drops that event alone
    with the reason `error: <step>: <exception>`; the worker dead-letters those."""
    contexts: dict[str, EnrichContext] = {}  # one per website and batch, not per event
    live: list[tuple[Enriched, EnrichContext]] = []
    for ev in events:
        ctx = contexts.get(ev.website_id)
        if ctx is None:
            ctx = contexts[ev.website_id] = EnrichContext(websites(ev.website_id))
        live.append((ev, ctx))
    dropped: list[tuple[Enriched, Drop]] = []
    for name, step in PIPELINE:
        t0 = time.perf_counter()
        kept: list[tuple[Enriched, EnrichContext]] = []
        for ev, ctx in live:
            try:
                out = step(ev, ctx)
            except Exception as exc:  # noqa: BLE001 - one event's problem: dead-lettered
                out = Drop(f"error: {name}: {type(exc).__name__}: {exc}"[:400])
            if isinstance(out, Drop):
                dropped.append((ev, out))
                DROPPED.labels(out.reason).inc()
            else:
                kept.append((out, ctx))
        live = kept
        STEP_SECONDS.labels(name).observe(time.perf_counter() - t0)
    return [ev for ev, _ in live], dropped


async def enrich_batch_async(
    events: Sequence[Enriched], websites: Callable[[str], WebsiteInfo | None],
    chunk: int = ENRICH_CHUNK,
) -> tuple[list[Enriched], list[tuple[Enriched, Drop]]]:
    """`enrich_batch` over chunks of `chunk` events, yielding to the event loop
    (`await asyncio.sleep(0)`) between two chunks, so that a slow batch (5,000 events,
    a costly website) never holds the loop for longer than one chunk: the worker's
    heartbeats, metrics and timers run in between. Same result, same order."""
    kept: list[Enriched] = []
    dropped: list[tuple[Enriched, Drop]] = []
    for start in range(0, len(events), chunk):
        if start:
            await asyncio.sleep(0)
        k, d = enrich_batch(events[start:start + chunk], websites)
        kept.extend(k)
        dropped.extend(d)
    return kept, dropped
