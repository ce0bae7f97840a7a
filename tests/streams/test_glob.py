"""Content-group globs (streams/enrich/glob.py): the answers of a textbook matcher, and
the pattern of finding 2 answered (not timed) on a long path."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.enrich.glob import Glob
from streams.enrich.website import WebsiteInfo


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
