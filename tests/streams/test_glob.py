"""Content-group globs (streams/enrich/glob.py): the answers of a textbook matcher, the
pattern of finding 2 answered (not timed) on a long path, the matcher's steps within the
documented cost, and canonical patterns (tinytrail/paths.py)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.enrich.glob import Glob, char_masks
from streams.enrich.website import WebsiteInfo
from tinytrail.limits import glob_search_cost
from tinytrail.paths import canonical_path, canonical_pattern


def reference(pattern: str, text: str) -> bool:
    """Dynamic programming over (pattern prefix, text prefix): obviously right, O(n*m)."""
    m, n = len(pattern), len(text)
    row = [True] + [False] * n  # pattern[:0] matches only text[:0]
    for i in range(1, m + 1):
        p = pattern[i - 1]
        new = [row[0] and p == "*"] + [False] * n
        for j in range(1, n + 1):
            if p == "*":
                new[j] = new[j - 1] or row[j]
            else:
                new[j] = row[j - 1] and (p == "?" or p == text[j - 1])
        row = new
    return row[n]


@pytest.mark.parametrize("pattern, text, expected", [
    pytest.param("/blog/*", "/blog/", True, id="star-empty"),
    pytest.param("/blog/*", "/blog/a/b", True, id="star-slashes"),
    pytest.param("/blog/*", "/blo", False, id="too-short"),
    pytest.param("/docs/v?/*", "/docs/v2/intro", True, id="question"),
    pytest.param("/docs/v?/*", "/docs/v10/intro", False, id="question-is-one-char"),
    pytest.param("*", "", True, id="star-only"),
    pytest.param("/a*b*c", "/abc", True, id="adjacent"),
    pytest.param("/a*b*c", "/acb", False, id="order"),
    pytest.param("/a*a", "/a", False, id="head-tail-no-overlap"),
    pytest.param("/?*?", "/\u4e00\U0001f600", True, id="code-points"),
    pytest.param("/[a]", "/[a]", True, id="brackets-literal"),
    pytest.param("/x.y", "/xzy", False, id="dot-literal"),
    pytest.param("/a\nb", "/a\nb", True, id="newline-literal"),
])
def test_glob_table(pattern: str, text: str, expected: bool) -> None:
    assert Glob.compile(pattern).matches(text) is expected
    assert reference(pattern, text) is expected


_alphabet = st.sampled_from("ab/?*")


@settings(max_examples=400)
@given(pattern=st.text(_alphabet, max_size=12), text=st.text(st.sampled_from("ab/"), max_size=14))
def test_glob_equals_the_reference(pattern: str, text: str) -> None:
    assert Glob.compile(pattern).matches(text) == reference(pattern, text)


def test_finding_2_pathological_pattern_on_a_long_path_is_answered() -> None:
    """Finding 2: `/*a*a*a*a*a*a*a*a*b` against `/` + a long run of `a`s made the
    backtracking regex run for hours. The answer is asserted (no timing assert): with
    the linear matcher this test simply finishes; the old regex would not."""
    pattern = "/*a*a*a*a*a*a*a*a*b"
    path = "/" + "a" * 20_000
    glob = Glob.compile(pattern)
    assert glob.matches(path) is False
    assert glob.matches(path + "b") is True
    assert glob.matches("/" + "ab" * 10_000) is True
    site = WebsiteInfo.from_row("s", "e.example", [
        {"name": "Evil", "pattern": pattern},
        {"name": "All", "pattern": "/*"},
    ])
    assert site.group_of(path) == "All"  # the pathological group is tried first, and fails
    assert site.group_of(path + "b") == "Evil"


class CountingMasks(dict[str, int]):
    """`char_masks` that counts the matcher's steps (one `get` per step)."""

    steps = 0

    def get(self, key: str, default: int = 0, /) -> int:  # type: ignore[override]
        CountingMasks.steps += 1
        return super().get(key, default)


@settings(max_examples=400)
@given(pattern=st.text(_alphabet, max_size=16), text=st.text(st.sampled_from("ab/"), max_size=40))
def test_steps_never_exceed_the_documented_cost(pattern: str, text: str) -> None:
    """The budget's formula (`limits.glob_search_cost`) bounds the matcher's work on any
    path, and the answer with the caller's masks is the reference's."""
    CountingMasks.steps = 0
    masks = CountingMasks(char_masks(text))
    assert Glob.compile(pattern).matches(text, masks) == reference(pattern, text)
    assert CountingMasks.steps <= glob_search_cost(pattern)


@pytest.mark.parametrize("pattern, cost", [
    ("/blog/*", 0), ("*/amp", 0), ("/exact", 0), ("*", 0), ("**", 0),
    ("/docs/*/api/v?/*", 7), ("/*a*a*a*a*a*a*a*b", 7), ("*??*", 0), ("/*x?y*z", 2),
])
def test_search_cost_formula(pattern: str, cost: int) -> None:
    """Literal characters between the first and the last `*` (docs/API.md's examples)."""
    assert glob_search_cost(pattern) == cost


# Canonical patterns (tinytrail/paths.py): a pattern names a page as the stored path does.

@pytest.mark.parametrize("raw, canonical", [
    pytest.param("/caf%C3%A9/*", "/caf\u00e9/*", id="escapes"),
    pytest.param("/cafe\u0301/*", "/caf\u00e9/*", id="nfc"),
    pytest.param("/100%/*", "/100%25/*", id="lone-percent"),
    pytest.param("/#!/app/*", "/#/app/*", id="hash-bang"),
    pytest.param("/#!*", "/#*", id="hash-bang-wildcard"),
    pytest.param("/app#*", "/app#*", id="route-wildcard"),
    pytest.param("/a#faq", "/a", id="in-page-fragment-cut"),
    pytest.param("/#/", "/", id="home-route"),
    pytest.param("/search?x", "/search?x", id="question-is-a-wildcard"),
    pytest.param("/x/%3F/*", "/x/%3F/*", id="kept-escape"),
    pytest.param("/a%20b/*", "/a b/*", id="space"),
    pytest.param("/%e4%b8%80?/*%C3%A9", "/\u4e00?/*\u00e9", id="runs-between-wildcards"),
])
def test_canonical_pattern(raw: str, canonical: str) -> None:
    assert canonical_pattern(raw) == canonical
    assert canonical_pattern(canonical) == canonical  # idempotent


def test_a_kept_escape_is_not_joined_to_a_combining_mark() -> None:
    """Found by the Hypothesis test below: `/%ae` + U+0301 (a non-UTF-8 escape, kept, then
    a combining acute) was canonicalised to `/%AÉ` (NFC joined the hex digit E with the
    accent), which the next pass reads as `/%25AÉ`. NFC now stops at kept escapes."""
    raw = "/%ae\u0301"
    assert canonical_path(raw) == "/%AE\u0301"
    assert canonical_path(canonical_path(raw)) == canonical_path(raw)
    assert canonical_pattern(canonical_pattern(raw)) == canonical_pattern(raw)


def test_a_pattern_that_would_decode_to_a_star_is_refused() -> None:
    with pytest.raises(ValueError, match="%2A"):
        canonical_pattern("/a%2Ab/*")


_path_chars = st.sampled_from(["a", "/", "#", "!", "%", "%C3%A9", "%2F", "%41", "e\u0301",
                               "\u00e9", "%E9", "%2", "%25", "%3F", " ", "\u0301", "%ae"])


@settings(max_examples=400)
@given(st.lists(_path_chars, max_size=12).map(lambda parts: "/" + "".join(parts)))
def test_a_pattern_without_wildcards_is_canonical_as_a_path(raw: str) -> None:
    """Without `*` or `?` a pattern is a path, and canonicalises exactly as one; so it
    matches the page it names. The one exception: a `*` the path decodes to (`%2A`) would
    be a wildcard in a pattern: such a pattern is refused."""
    if "*" in canonical_path(raw):
        with pytest.raises(ValueError, match="%2A"):
            canonical_pattern(raw)
        return
    assert canonical_pattern(raw) == canonical_path(raw)
    assert canonical_pattern(canonical_pattern(raw)) == canonical_pattern(raw)
    assert Glob.compile(canonical_pattern(raw)).matches(canonical_path(raw))


@settings(max_examples=300)
@given(st.lists(st.one_of(_path_chars, st.sampled_from(["*", "?"])), max_size=12)
       .map(lambda parts: "/" + "".join(parts)))
def test_canonical_pattern_is_idempotent(raw: str) -> None:
    try:
        once = canonical_pattern(raw)
    except ValueError:
        return
    assert canonical_pattern(once) == once
