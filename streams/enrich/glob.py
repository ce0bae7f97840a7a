"""Content-group globs matched without backtracking: `*` = any run of characters (also
none), `?` = exactly one character, everything else literal; the whole path must match.

A regex such as `/.*a.*a.*a.*b` backtracks: against a long path of `a`s it tries every
way of splitting the path between the stars (polynomial in the path length, of the
degree of the number of stars: seconds to hours). A glob has a simpler structure that
allows a greedy match: split the pattern at the stars into literal segments,
`head * mid1 * mid2 * ... * tail`. The path must start with `head` and end with `tail`
(both fixed lengths), and in between each middle segment can be taken at its LEFTMOST
occurrence after the previous one: any later occurrence leaves less room for the rest,
never more. Each segment is searched once, from where the previous one ended, so the
work is at most (path length x segment length) character comparisons in total, done by
`str.find` (or a fixed-length regex without repetition when the segment holds `?`).

Worked example: `/*a*a*b` on `/aaaa` -> head `/`, mids `a`, `a`, tail `b`: `/aaaa` does
not end with `b` -> no match, decided before any search. On `/xaab`: head ok, tail ok,
`a` found at 2, next `a` at 3, the tail starts at 4 >= 4 -> match.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


def _segment_regex(segment: str) -> re.Pattern[str] | None:
    """A fixed-length regex for a segment holding `?` (None when it holds none)."""
    if "?" not in segment:
        return None
    return re.compile("".join("." if ch == "?" else re.escape(ch) for ch in segment),
                      re.DOTALL)


def _at(segment: str, rx: re.Pattern[str] | None, text: str, pos: int) -> bool:
    """Does `segment` match `text` exactly at `pos` (`text` long enough is checked)?"""
    if rx is None:
        return text.startswith(segment, pos)
    return rx.match(text, pos) is not None


@dataclass(frozen=True)
class Glob:
    """A compiled glob; `matches(text)` is True when the whole `text` matches."""

    pattern: str
    head: str
    tail: str
    mids: tuple[str, ...]
    _rx: tuple[re.Pattern[str] | None, ...]  # head, tail, mids...
    star: bool  # the pattern holds at least one `*`

    @classmethod
    def compile(cls, pattern: str) -> Glob:
        parts = pattern.split("*")
        star = len(parts) > 1
        head, tail = parts[0], (parts[-1] if star else "")
        mids = tuple(p for p in parts[1:-1] if p)
        rx = (_segment_regex(head), _segment_regex(tail), *(_segment_regex(m) for m in mids))
        return cls(pattern, head, tail, mids, rx, star)

    def matches(self, text: str) -> bool:
        """Whole-text match; time at most (len(text) x len(pattern)) comparisons."""
        head, tail = self.head, self.tail
        if not self.star:
            return len(text) == len(head) and _at(head, self._rx[0], text, 0)
        end = len(text) - len(tail)  # where the tail must start
        if end < len(head):
            return False
        if not _at(head, self._rx[0], text, 0) or not _at(tail, self._rx[1], text, end):
            return False
        pos = len(head)
        for seg, rx in zip(self.mids, self._rx[2:], strict=True):
            if rx is None:
                i = text.find(seg, pos, end)
                if i < 0:
                    return False
            else:
                m = rx.search(text, pos, end)
                if m is None:
                    return False
                i = m.start()
            pos = i + len(seg)
        return True
