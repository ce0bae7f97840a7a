"""Benchmark of content-group matching per event: the matcher before the issue-12 review
(`str.find` / a fixed-length regex search per middle segment, copied below as `OldGlob`
from streams/enrich/glob.py at 57ff25c) beside the current one (bit masks of the path,
`streams.enrich.website.WebsiteInfo.group_of`), side by side, on the same websites and
paths. No services; pure CPU on this machine (numbers vary with the load on the cores).

    python bench/content_groups.py            # ~1 minute on 2 shared cores
    python bench/content_groups.py --paths 50 --rounds 5

Websites:
  * review: the issue-12 review's 100 groups of 200-character patterns with `?`
    segments (`/*?aaa...a<i>b*`): search cost 19,400, refused by the API since the budget
    (MAX_GROUPS_SEARCH_COST = 2,000), but still what a website saved before may hold;
  * review-literal: the same without `?` (`/*aaa...a<i>b*`): str.find's worst case;
  * review-x10: the review's first 10 groups (cost 1,940: within the budget), i.e. what
    the budget alone would have let through with the old matcher;
  * budget-worst: the costliest website the API accepts (21 groups, cost 1,995, every
    step taken: tests/streams/test_r12_review.py);
  * typical: ten usual groups (`/blog/*`, `/docs/*/api/*`, `*/amp`, ...).
Paths: distinct (no cache hit), 1,600 characters (the path's byte cap for ASCII),
built to defeat the website (`/` + `a`... or `/` + `ab`...), or ordinary ones for
`typical`. Each figure: the median over --rounds of (time for --paths events) / --paths,
in ms per event; the last column is the time one 5,000-event batch of such events would
hold the event loop without the chunked enrichment (`enrich_batch_async` now yields every
200 events: the longest hold is 200 x the per-event figure).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from streams.enrich.website import WebsiteInfo  # noqa: E402
from tinytrail.limits import glob_search_cost  # noqa: E402


def _old_segment_regex(segment: str) -> re.Pattern[str] | None:
    if "?" not in segment:
        return None
    return re.compile("".join("." if ch == "?" else re.escape(ch) for ch in segment),
                      re.DOTALL)


def _old_at(segment: str, rx: re.Pattern[str] | None, text: str, pos: int) -> bool:
    if rx is None:
        return text.startswith(segment, pos)
    return rx.match(text, pos) is not None


@dataclass(frozen=True)
class OldGlob:
    """The matcher before the review (57ff25c), unchanged but for its name."""

    pattern: str
    head: str
    tail: str
    mids: tuple[str, ...]
    _rx: tuple[re.Pattern[str] | None, ...]
    star: bool

    @classmethod
    def compile(cls, pattern: str) -> OldGlob:
        parts = pattern.split("*")
        star = len(parts) > 1
        head, tail = parts[0], (parts[-1] if star else "")
        mids = tuple(p for p in parts[1:-1] if p)
        rx = (_old_segment_regex(head), _old_segment_regex(tail),
              *(_old_segment_regex(m) for m in mids))
        return cls(pattern, head, tail, mids, rx, star)

    def matches(self, text: str) -> bool:
        head, tail = self.head, self.tail
        if not self.star:
            return len(text) == len(head) and _old_at(head, self._rx[0], text, 0)
        end = len(text) - len(tail)
        if end < len(head):
            return False
        if not _old_at(head, self._rx[0], text, 0) or not _old_at(tail, self._rx[1], text, end):
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


def old_group_of(groups: list[tuple[str, OldGlob]]) -> Callable[[str], str | None]:
    def group_of(path: str) -> str | None:
        for name, glob in groups:
            if glob.matches(path):
                return name
        return None
    return group_of


def websites() -> dict[str, tuple[list[str], Callable[[int], str]]]:
    """name -> (patterns, path of index i)."""
    review = ["/*?" + "a" * (193 - len(str(i))) + str(i) + "b*" for i in range(100)]
    literal = ["/*" + "a" * (194 - len(str(i))) + str(i) + "b*" for i in range(100)]
    ok, bad = "ab" * 9 + "a", "ab" * 9 + "b"
    worst = ["/*" + "*".join([ok] * 4 + [bad]) + "*"] * 21
    typical = ["/blog/*", "/docs/*/api/*", "*/amp", "/shop/??/*", "/news/20??/*",
               "/help/*", "/account/*", "/*/pricing", "/careers/*", "/"]
    return {
        "review": (review, lambda i: "/" + "a" * 1590 + f"{i:09d}"),
        "review-literal": (literal, lambda i: "/" + "a" * 1590 + f"{i:09d}"),
        "review-x10": (review[:10], lambda i: "/" + "a" * 1590 + f"{i:09d}"),
        "budget-worst": (worst, lambda i: "/" + "ab" * 795 + f"{i:09d}x"),
        "typical": (typical, lambda i: f"/shop/de/product-{i}/reviews"),
    }


def per_event(fn: Callable[[str], object], rounds: list[list[str]]) -> float:
    """Median over the rounds of the seconds per path of one round."""
    times = []
    for paths in rounds:
        started = time.perf_counter()
        for path in paths:
            fn(path)
        times.append((time.perf_counter() - started) / len(paths))
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--paths", type=int, default=30, help="distinct paths per round")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    print(f"{'website':<15} {'groups':>6} {'cost':>6} {'before ms/ev':>13} "
          f"{'after ms/ev':>12} {'ratio':>6} {'5,000 batch before':>19} {'after':>7}")
    for name, (patterns, make_path) in websites().items():
        rows = [{"name": f"g{i}", "pattern": p} for i, p in enumerate(patterns)]
        old = old_group_of([(r["name"], OldGlob.compile(r["pattern"])) for r in rows])
        cost = sum(glob_search_cost(p) for p in patterns)
        old_paths = [make_path(i) for i in range(args.paths)]
        before = per_event(old, [old_paths] * args.rounds)  # no cache: the same paths
        # The current matcher caches answers per path: each round gets paths never seen.
        site = WebsiteInfo.from_row("s", "e.example", rows)
        after = per_event(site.group_of, [
            [make_path(args.paths * (r + 1) + i) for i in range(args.paths)]
            for r in range(args.rounds)])
        for path in old_paths[:5]:  # the same answers
            assert old(path) == WebsiteInfo.from_row("s", "e.example", rows).group_of(path)
        print(f"{name:<15} {len(patterns):>6} {cost:>6} {before * 1e3:>13.3f} "
              f"{after * 1e3:>12.3f} {before / after:>6.1f} {before * 5000:>17.1f} s "
              f"{after * 5000:>5.1f} s")


if __name__ == "__main__":
    main()
