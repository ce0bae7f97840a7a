"""Reproductions from the issue-12 review (fresh eyes, branch r12), fixed on h12b (the
xfail marks removed): each failed on the code before the fix.

Pure units (no services): content-group patterns vs the canonical path, UTM values taken
from the URL vs their byte cap, the work of the worst website the API accepts (counted in
matcher steps against the documented budget, not timed: bench/content_groups.py prints
the times), and the local supervisor's grace period vs the worker's own shutdown
watchdog."""

from __future__ import annotations

import pytest

from api import validation
from streams.enrich import website as website_module
from streams.enrich.glob import char_masks
from streams.enrich.utm import from_url
from streams.enrich.website import WebsiteInfo
from streams.settings import WorkerSettings
from tinytrail import limits
from tinytrail.envelope import ApiError
from tinytrail.paths import canonical_path


@pytest.mark.parametrize("pattern, sent_path", [
    ("/caf%C3%A9/*", "/caf%C3%A9/menu"),   # the pattern as the browser shows the URL
    ("/cafe\u0301/*", "/caf%C3%A9/menu"),  # NFD spelling of the same page
    ("/100%/*", "/100%/x"),                 # a literal % (stored as %25)
    ("/#!/app/*", "/#!/app/home"),          # hash-bang route (stored as /#/app/...)
])
def test_an_accepted_pattern_matches_the_page_it_names(pattern: str, sent_path: str) -> None:
    """docs/RULES.md: "/caf%C3%A9 and /café are one page"; a pattern is "a glob on the path".
    The API accepted each pattern (200, api/validation.py glob_pattern) and stored it as
    sent; the worker matched it against the canonical path, so it never matched. Now the
    API stores it canonical, and the worker canonicalises what was stored before."""
    stored = validation.content_groups([{"name": "G", "pattern": pattern}])
    for groups in (stored, [{"name": "G", "pattern": pattern}]):  # saved now / before
        site = WebsiteInfo.from_row("s", "e.example", groups)
        assert site.group_of(canonical_path(sent_path)) == "G"


def test_utm_from_the_url_is_within_the_byte_cap() -> None:
    """The collector answered 202 for a url with utm_campaign = 250 CJK characters (its
    checks on URL UTMs are control characters only); the worker stored utm_campaign of
    200 characters = 600 bytes (> UTM 400 bytes). With 4-byte characters in all three, the
    agg_dim_daily `utm` key was 2,402 bytes (observed), near the 2,704 btree limit."""
    source, medium, campaign = from_url(
        "https://e.example/?utm_source=" + "\U0001F600" * 200
        + "&utm_medium=" + "\U0001F601" * 200 + "&utm_campaign=" + "\u4e00" * 250)
    for value in (source, medium, campaign):
        assert value is not None
        assert len(value.encode()) <= limits.UTM.bytes
    # Cut at a code-point boundary, as long as the caps allow (not shorter).
    assert (source, medium, campaign) == ("\U0001F600" * 100, "\U0001F601" * 100,
                                          "\u4e00" * 133)


class CountingMasks(dict[str, int]):
    """`char_masks` of a path that counts the matcher's steps (one `get` = one big-integer
    AND and shift on the path's bits, streams/enrich/glob.py)."""

    steps = 0

    def get(self, key: str, default: int = 0, /) -> int:  # type: ignore[override]
        CountingMasks.steps += 1
        return super().get(key, default)


def _counting(path: str) -> CountingMasks:
    return CountingMasks(char_masks(path))


def _worst_budget_website() -> list[dict[str, str]]:
    """Groups the API accepts whose matching is as costly as the budget allows, against
    `/` + `ab` repeated: in each pattern four middle segments (`ab` x 9 + `a`) match and
    the fifth (`ab` x 9 + `b`) agrees with the path at every literal but its last, so
    every step is taken (5 x 19 per group) and no group matches."""
    ok, bad = "ab" * 9 + "a", "ab" * 9 + "b"
    pattern = "/*" + "*".join([ok] * 4 + [bad]) + "*"  # 102 characters, 6 wildcards
    n = limits.MAX_GROUPS_SEARCH_COST // limits.glob_search_cost(pattern)  # 21 groups
    return [{"name": f"g{i}", "pattern": pattern} for i in range(n)]


def test_the_api_refuses_the_worst_website_it_used_to_accept() -> None:
    """The review's website: 100 groups of 200-character patterns with `?` segments
    (~50 ms of event-loop time per event with the old matcher). Its search cost,
    `limits.glob_search_cost` summed over the groups, is 19,400 > 2,000: refused (400)."""
    groups = [{"name": f"g{i}", "pattern": "/*?" + "a" * (193 - len(str(i))) + str(i) + "b*"}
              for i in range(100)]
    with pytest.raises(ApiError) as info:
        validation.content_groups(groups)
    assert info.value.status == 400
    assert "search cost is 19400, at most 2000" in info.value.message


def test_the_worst_website_the_api_accepts_stays_within_its_step_budget(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Deterministic replacement of the review's timing test: the work per event is counted
    in matcher steps. The costliest website the API accepts, on paths built to defeat it
    (1,600 characters, distinct: no cache hit), takes at most MAX_GROUPS_SEARCH_COST steps
    per event besides the path's masks (built once per path, not once per pattern)."""
    groups = _worst_budget_website()
    assert validation.content_groups(groups) == groups  # accepted: within the budget
    budget = sum(limits.glob_search_cost(g["pattern"]) for g in groups)
    assert limits.MAX_GROUPS_SEARCH_COST - 95 < budget <= limits.MAX_GROUPS_SEARCH_COST
    built: list[str] = []

    def masks(path: str) -> CountingMasks:
        built.append(path)
        return _counting(path)

    monkeypatch.setattr(website_module, "char_masks", masks)
    site = WebsiteInfo.from_row("s", "e.example", groups)
    paths = ["/" + "ab" * 797 + f"{i:05d}" for i in range(20)]
    for path in paths:
        assert len(path) == 1600
        CountingMasks.steps = 0
        assert site.group_of(path) is None
        # Every step the formula allows is taken (the test is not vacuous), none more.
        assert CountingMasks.steps == budget
    assert built == paths


def test_the_supervisor_waits_for_the_worker_watchdog() -> None:
    """Observed: `tinytrail run` SIGTERMed with Kafka and Postgres stopped printed
    "[run] worker-0 did not stop in 15s; killing" (total 16.9 s)."""
    from cli import supervisor

    default = WorkerSettings.model_fields["worker_shutdown_timeout"].default
    assert default < supervisor.GRACE_SECONDS
