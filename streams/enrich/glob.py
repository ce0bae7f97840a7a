"""Content-group globs matched without backtracking and with a bounded amount of work:
`*` = any run of characters (also none), `?` = exactly one character, everything else
literal; the whole path must match.

A regex such as `/.*a.*a.*a.*b` backtracks: against a long path of `a`s it tries every
way of splitting the path between the stars (polynomial in the path length, of the
degree of the number of stars: seconds to hours). A glob has a simpler structure that
allows a greedy match: split the pattern at the stars into segments,
`head * mid1 * mid2 * ... * tail`. The path must start with `head` and end with `tail`
(both fixed lengths), and in between each middle segment can be taken at its LEFTMOST
occurrence after the previous one: any later occurrence leaves less room for the rest,
never more.

Finding the leftmost occurrence of a middle segment (which may hold `?`) is where the
work is. Searching character by character (`str.find`, a regex) costs up to
(path length x segment length) comparisons: 1,600 x 200 per segment, ~50 ms per event
for a website of 100 such patterns (the issue-12 review). Instead the path is turned
once into one bit mask per distinct character (`char_masks`: bit i of `masks[c]` is set
when `path[i] == c`), and the start positions of a segment are the AND of the masks of
its literal characters, each shifted by the character's offset in the segment (the
Shift-And idea). So a segment costs ONE big-integer AND/shift per literal character
(`?` costs nothing), whatever the path holds: a **step** below. On a 1,600-character
path one step is an operation on 25 machine words (measured 0.1-0.5 µs, see
bench/content_groups.py).

Work per event, the formula the API's budget uses (`tinytrail.limits.glob_search_cost`,
summed over a website's groups, at most `MAX_GROUPS_SEARCH_COST` = 2,000): a pattern
costs as many steps as it has literal characters between its first and its last `*`;
the head and the tail are compared in place (`str.startswith`, at most their length, in
C), and building the masks costs one step per path character, once per path. Worked
example: `/docs/*/api/v?/*` has head `/docs/`, one middle segment `/api/v?/` (7 literal
characters: cost 7 steps) and an empty tail.

Worked example of a match: `/*a*a*b` on `/xaab` -> head `/` and tail `b` fit; the
masks are `a`: bits {2, 3}, `x`: {1}, `b`: {4}, `/`: {0}; the first `a` starts at the
lowest set bit of `a`'s mask at or after 1 -> 2; the next `a` at or after 3 -> 3; it
ends at 4 <= 4 where the tail starts -> match.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass


def char_masks(text: str) -> dict[str, int]:
    """One bit mask per distinct character of `text`: bit i set when `text[i]` is it.
    One pass over `text` (one step per character)."""
    masks: dict[str, int] = {}
    get = masks.get
    for i, ch in enumerate(text):
        masks[ch] = get(ch, 0) | (1 << i)
    return masks


def _segment_regex(segment: str) -> re.Pattern[str] | None:
    """A fixed-length regex for a head or tail holding `?` (None when it holds none)."""
    if "?" not in segment:
        return None
    return re.compile("".join("." if ch == "?" else re.escape(ch) for ch in segment),
                      re.DOTALL)


def _at(segment: str, rx: re.Pattern[str] | None, text: str, pos: int) -> bool:
    """Does the head or tail `segment` match `text` exactly at `pos`?"""
    if rx is None:
        return text.startswith(segment, pos)
    return rx.match(text, pos) is not None


def _literals(segment: str) -> tuple[tuple[int, str], ...]:
    """(offset, character) of the literal characters of a middle segment: the first
    occurrence of each distinct character first (a character the path lacks, or a rare
    one, ends the search soonest), then the others in order."""
    first: dict[str, int] = {}
    rest: list[tuple[int, str]] = []
    for j, ch in enumerate(segment):
        if ch == "?":
            continue
        if ch in first:
            rest.append((j, ch))
        else:
            first[ch] = j
    return tuple((j, ch) for ch, j in first.items()) + tuple(rest)


@dataclass(frozen=True)
class Glob:
    """A compiled glob; `matches(text)` is True when the whole `text` matches."""

    pattern: str
    head: str
    tail: str
    # Middle segments: (length, literal characters with their offsets).
    mids: tuple[tuple[int, tuple[tuple[int, str], ...]], ...]
    _rx: tuple[re.Pattern[str] | None, re.Pattern[str] | None]  # head, tail
    star: bool  # the pattern holds at least one `*`

    @classmethod
    def compile(cls, pattern: str) -> Glob:
        parts = pattern.split("*")
        star = len(parts) > 1
        head, tail = parts[0], (parts[-1] if star else "")
        mids = tuple((len(p), _literals(p)) for p in parts[1:-1] if p)
        return cls(pattern, head, tail, mids, (_segment_regex(head), _segment_regex(tail)),
                   star)

    @property
    def needs_masks(self) -> bool:
        """Does matching search middle segments (and so need `char_masks` of the text)?"""
        return bool(self.mids)

    def matches(self, text: str, masks: Mapping[str, int] | None = None) -> bool:
        """Whole-text match. `masks`: `char_masks(text)`, when the caller already has them
        (several patterns, one path); built here when needed and not given. Work: at most
        `glob_search_cost(pattern)` steps (`masks.get` calls, each one big-integer AND and
        shift) plus comparisons of the head and the tail in place."""
        head, tail = self.head, self.tail
        if not self.star:
            return len(text) == len(head) and _at(head, self._rx[0], text, 0)
        end = len(text) - len(tail)  # where the tail must start
        if end < len(head):
            return False
        if not _at(head, self._rx[0], text, 0) or not _at(tail, self._rx[1], text, end):
            return False
        pos = len(head)
        if not self.mids:
            return True
        if masks is None:
            masks = char_masks(text)
        get = masks.get
        for length, literals in self.mids:
            last = end - length  # the last start that leaves room for the segment
            if last < pos:
                return False
            # Candidate starts: bits pos..last.
            starts = ((1 << (last - pos + 1)) - 1) << pos
            for offset, ch in literals:
                starts &= get(ch, 0) >> offset
                if not starts:
                    return False
            pos = (starts & -starts).bit_length() - 1 + length  # leftmost start, then past it
        return True
