"""Review 13 (13d): the enrichment caches cannot be filled with attacker-chosen long keys.
Each cache keeps only short calls (tinytrail/boundedcache.py), so its memory is bounded by
entries x key size (the bounds are in docs/STREAMS.md)."""

from __future__ import annotations

import pytest

from streams.enrich import referrer, useragent, utm
from tinytrail import bots, paths
from tinytrail.boundedcache import short_key_cache


def test_long_calls_are_computed_but_not_kept() -> None:
    calls = []

    @short_key_cache(maxsize=4, max_chars=10)
    def f(a: str, b: str | None = None) -> int:
        calls.append(a)
        return len(a)

    assert f("short") == 5 and f("short") == 5
    assert f("x" * 11) == 11 and f("x" * 11) == 11
    assert calls == ["short", "x" * 11, "x" * 11]
    assert f.cache_info().currsize == 1  # type: ignore[attr-defined]
    assert f("abcdef", "ghijk") == 6 and f.cache_info().currsize == 1  # type: ignore[attr-defined]


@pytest.mark.parametrize(("cached", "call"), [
    pytest.param(referrer.classify,
                 lambda i: referrer.classify(f"https://a{i}.example/" + "p" * 2000, None, "x.test"),
                 id="referrer"),
    pytest.param(utm._from_url,
                 lambda i: utm.from_url(f"https://x.test/?utm_source={i}&q=" + "q" * 2000),
                 id="utm"),
    pytest.param(useragent.classify,
                 lambda i: useragent.classify(f"Mozilla/5.0 ({i}) " + "u" * 1000), id="agent"),
    pytest.param(bots._reason, lambda i: bots.bot_reason(f"Mozilla/5.0 ({i}) " + "u" * 900),
                 id="bots"),
    pytest.param(paths.canonical_path, lambda i: paths.canonical_path(f"/{i}" + "p" * 2000),
                 id="path"),
])
def test_attacker_keys_do_not_fill_the_caches(cached: object, call: object) -> None:
    before = cached.cache_info().currsize  # type: ignore[attr-defined]
    for i in range(300):
        call(i)  # type: ignore[operator]
    assert cached.cache_info().currsize == before  # type: ignore[attr-defined]


def test_utm_free_urls_skip_the_cache() -> None:
    before = utm._from_url.cache_info().currsize  # type: ignore[attr-defined]
    for i in range(100):
        assert utm.from_url(f"https://x.test/p{i}") == (None, None, None)
    assert utm._from_url.cache_info().currsize == before  # type: ignore[attr-defined]
