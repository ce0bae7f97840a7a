"""The canonical path (issue 13 item 10, docs/RULES.md "The canonical path"): table-driven
rules, and Hypothesis for idempotence. Pure units."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.validate import validate
from tinytrail.paths import canonical_path

WID = "550e8400-e29b-41d4-a716-446655440000"


@pytest.mark.parametrize(
    "raw,canonical",
    [
        pytest.param("/", "/", id="root"),
        pytest.param("/pricing", "/pricing", id="plain"),
        pytest.param("/caf%C3%A9", "/café", id="percent-utf8"),
        pytest.param("/caf%c3%a9", "/café", id="percent-lower-hex"),
        pytest.param("/café", "/café", id="already-unicode"),
        pytest.param("/cafe\u0301", "/café", id="nfd-to-nfc"),
        pytest.param("/cafe%CC%81", "/café", id="encoded-nfd-to-nfc"),
        pytest.param("/%E4%B8%AD%E6%96%87", "/中文", id="cjk"),
        pytest.param("/%F0%9F%98%80", "/😀", id="astral"),
        pytest.param("/a%20b", "/a b", id="space"),
        pytest.param("/a?ref=abc", "/a", id="query-cut"),
        pytest.param("/a?", "/a", id="empty-query"),
        pytest.param("/a#faq", "/a", id="anchor-cut"),
        pytest.param("/a?x=1#faq", "/a", id="query-and-anchor"),
        pytest.param("/#/about", "/#/about", id="hash-route"),
        pytest.param("/#!/about", "/#/about", id="hashbang-route"),
        pytest.param("/app/#/users/7", "/app/#/users/7", id="hash-route-under-path"),
        pytest.param("/?utm_source=x#/pricing", "/#/pricing", id="query-before-route"),
        pytest.param("/#/search?q=shoes", "/#/search", id="route-query-cut"),
        pytest.param("/#/about#team", "/#/about", id="route-anchor-cut"),
        pytest.param("/#/caf%C3%A9", "/#/café", id="route-decoded"),
        pytest.param("/#/", "/", id="router-home-is-root"),
        pytest.param("/#!/", "/", id="hashbang-home-is-root"),
        pytest.param("/#", "/", id="empty-fragment"),
        pytest.param("/#about/x", "/", id="anchor-with-slash-later"),
        pytest.param("/#!about", "/", id="hashbang-without-slash"),
        # Kept encoded: decoding them would move where the path splits.
        pytest.param("/a%2Fb", "/a%2Fb", id="encoded-slash-kept"),
        pytest.param("/a%2fb", "/a%2Fb", id="encoded-slash-upper-cased"),
        pytest.param("/a%3Fb", "/a%3Fb", id="encoded-question-kept"),
        pytest.param("/a%23b", "/a%23b", id="encoded-hash-kept"),
        pytest.param("/100%25", "/100%25", id="encoded-percent-kept"),
        pytest.param("/a%0Ab", "/a%0Ab", id="encoded-control-kept"),
        pytest.param("/a%7F", "/a%7F", id="encoded-del-kept"),
        pytest.param("/a%C2%85", "/a%C2%85", id="encoded-c1-kept"),
        # Undecodable sequences: kept as sent (upper-case hex), the rest decoded.
        pytest.param("/caf%E9", "/caf%E9", id="latin1-kept"),
        pytest.param("/caf%e9", "/caf%E9", id="latin1-upper-cased"),
        pytest.param("/%E9%C3%A9", "/%E9é", id="bad-then-good"),
        pytest.param("/%C3", "/%C3", id="truncated-utf8"),
        pytest.param("/%ED%A0%80", "/%ED%A0%80", id="encoded-surrogate"),
        pytest.param("/%FF%FE", "/%FF%FE", id="never-utf8"),
        pytest.param("/100%", "/100%25", id="lone-percent"),
        pytest.param("/%zz", "/%25zz", id="percent-not-hex"),
        pytest.param("/%%32%30", "/%2520", id="percent-cannot-join-an-escape"),
    ],
)
def test_canonical_path(raw: str, canonical: str) -> None:
    assert canonical_path(raw) == canonical


def test_one_page_whatever_the_spelling() -> None:
    """Issue 13 item 10: these were separate rows; now the collector stores one value."""
    spellings = ["/caf%C3%A9", "/café", "/cafe\u0301", "/caf%C3%A9?ref=abc", "/café#top",
                 "/caf%c3%a9?utm_source=x#section"]
    body = {"website_id": WID, "event_type": "page_view", "url": "https://e.com/"}
    assert {validate({**body, "path": p}).path for p in spellings} == {"/café"}


paths = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40).map(lambda s: "/" + s)
escaped = st.lists(
    st.sampled_from(["%", "%2F", "%2f", "%25", "%C3", "%A9", "%E9", "%3F", "%23", "#", "?",
                     "#/", "#!/", "/", "a", "é", "e\u0301", "%0A", "%41", "%F0%9F%98%80"]),
    max_size=12,
).map(lambda parts: "/" + "".join(parts))


@given(paths | escaped)
def test_canonical_path_is_idempotent(raw: str) -> None:
    once = canonical_path(raw)
    assert canonical_path(once) == once
    assert once.startswith("/")
    assert unicodedata.is_normalized("NFC", once)


@given(paths | escaped)
def test_canonical_path_has_no_query_or_anchor(raw: str) -> None:
    once = canonical_path(raw)
    assert "?" not in once
    head, _, route = once.partition("#")
    assert "#" not in route
    assert not route or (route.startswith("/") and route != "/")
