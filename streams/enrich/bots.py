"""Bot verdict: the collector's flag OR the shared deeper check (`tinytrail.bots`).

The verdict depends on the user agent only (plus the collector's flag, which
also derives from it), and the visitor id hashes the user agent, so it is
constant for one visitor: a visitor's sessions are all bot or all human.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from streams.models import Enriched
from tinytrail.bots import is_bot

if TYPE_CHECKING:
    from streams.enrich import EnrichContext


def step(ev: Enriched, ctx: EnrichContext) -> Enriched:
    if ev.is_bot or ev.device_type == "bot" or is_bot(ev.user_agent):
        ev.is_bot = True
        ev.device_type = "bot"
    return ev
