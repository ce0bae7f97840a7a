"""An LRU cache whose memory is bounded although its keys come from the network.

`functools.lru_cache` bounds the number of entries, not their size: fed attacker-chosen
referrers, URLs or user agents (each up to a few KB), a 65,536-entry cache could hold
hundreds of MB. `short_key_cache(maxsize, max_chars)` caches only calls whose string
arguments together have at most `max_chars` characters; longer calls are computed each
time (they are rare in real traffic: browsers send a cross-site referrer as its origin,
and user agents are 100-300 characters). So one entry holds at most `max_chars`
characters of key (4 bytes each at worst, CPython's widest string) plus its result, and
the whole cache at most `maxsize` of those; each use states its bound (docs/STREAMS.md).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache, wraps
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


def short_key_cache(maxsize: int, max_chars: int) -> Callable[[F], F]:
    """Decorator: `lru_cache(maxsize)` for calls whose str arguments total <= max_chars."""

    def wrap(fn: F) -> F:
        cached = lru_cache(maxsize=maxsize)(fn)

        @wraps(fn)
        def call(*args: Any) -> Any:
            size = 0
            for arg in args:
                if isinstance(arg, str):
                    size += len(arg)
            if size > max_chars:
                return fn(*args)
            return cached(*args)

        call.cache_info = cached.cache_info  # type: ignore[attr-defined]
        call.cache_clear = cached.cache_clear  # type: ignore[attr-defined]
        return call  # type: ignore[return-value]

    return wrap
