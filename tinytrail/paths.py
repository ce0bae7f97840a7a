"""The canonical path (docs/RULES.md, "The canonical path"): one page, one string.

`canonical_path(raw)` turns what a tracker sent as `path` into what is stored,
aggregated, matched against content groups and funnel steps:

1. The query string and an in-page fragment are cut off:
   `/a?ref=x` -> `/a`, `/a#faq` -> `/a`.
2. A hash route is kept, because hash-mode routers put the page there: a fragment
   that starts with `#/` or `#!/` becomes `#/…` (`/#!/about` -> `/#/about`), cut at
   its own `?` or `#` (`/#/search?q=x` -> `/#/search`). The route `#/` alone is the
   router's home, the same page as the path without it (`/#/` -> `/`).
3. Percent-escapes are decoded to Unicode and the result is NFC:
   `/caf%C3%A9`, `/cafe%CC%81` and `/café` are all `/café`.
   Kept encoded (upper-case hex), so that decoding never changes where the path
   splits and decoding twice changes nothing: `%2F` (/), `%3F` (?), `%23` (#),
   `%25` (%), and control characters (`%0A` stays `%0A`).
   Escapes that are not UTF-8 (`/caf%E9`, Latin-1) are kept as sent (upper-case hex);
   the decodable ones around them are still decoded. A `%` not followed by two hex
   digits is written `%25` (`/100%` -> `/100%25`), so that it cannot join the text
   after it into an escape the next time.

`canonical_pattern(raw)` does the same to a content-group pattern (a glob on the
canonical path, `*` any run, `?` one character), so that a pattern names a page the way
the stored path names it: `/caf%C3%A9/*` and `/cafe\u0301/*` -> `/café/*`, `/100%/*` ->
`/100%25/*`, `/#!/app/*` -> `/#/app/*`. The differences, because `*` and `?` are
wildcards there:
  * no query is cut (`?` is a wildcard, never the query separator);
  * the escapes are decoded in the literal runs between wildcards, each run on its own;
    an escape that would decode to `*` (`%2A`) is refused (ValueError): the glob has no
    way to say "a literal star";
  * a fragment is a route when it starts with `/` or a wildcard (`/app#*` stays), after
    a `!` is dropped (`#!/x` -> `#/x`, `#!*` -> `#*`); the route is cut at its own `#`
    only; the route `#/` alone is dropped; any other fragment (`/a#faq`) is cut, as the
    tracker's path is.
A pattern without wildcards canonicalises exactly as a path does (a Hypothesis test
checks it), and `canonical_pattern` is idempotent too.

The function is idempotent (`canonical_path(canonical_path(p)) == canonical_path(p)`,
a Hypothesis test checks it), so an already canonical path from a report query can
go through it again. It never raises; size caps are checked by the caller on the
result (tinytrail/limits.py).
"""

from __future__ import annotations

import re
import unicodedata

from tinytrail.boundedcache import short_key_cache

# One or more consecutive %XX escapes, decoded together (a UTF-8 character spans several),
# or a lone `%` that starts no escape.
_ESCAPES = re.compile(r"(?:%[0-9A-Fa-f]{2})+|%")
# Bytes that stay escaped after decoding (see the module docstring).
_KEEP = frozenset(b"/?#%") | frozenset(range(0x20)) | {0x7F}


def _decode_run(match: re.Match[str]) -> str:
    """Decode one run of escapes: UTF-8 where it decodes, `%XX` (upper case) where not."""
    if match.group(0) == "%":
        return "%25"
    data = bytes.fromhex(match.group(0).replace("%", ""))
    out: list[str] = []
    # surrogateescape maps every byte that is not part of valid UTF-8 to U+DC80..U+DCFF.
    for ch in data.decode("utf-8", errors="surrogateescape"):
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:
            out.append(f"%{code - 0xDC00:02X}")
        elif code < 0x80 and code in _KEEP:
            out.append(f"%{code:02X}")
        elif 0x80 <= code <= 0x9F:  # C1 controls: kept encoded as their UTF-8 bytes
            out.append("".join(f"%{b:02X}" for b in ch.encode()))
        else:
            out.append(ch)
    return "".join(out)


# An escape kept after decoding (every `%` left is one: `_decode_run` writes no other).
_KEPT = re.compile(r"(%[0-9A-F]{2})")


def _decode(part: str) -> str:
    if "%" in part:
        part = _ESCAPES.sub(_decode_run, part)
    if not part.isascii() and not unicodedata.is_normalized("NFC", part):
        if "%" in part:
            # NFC between the kept escapes only: it would join an escape's last hex digit
            # with a combining mark after it (`%AE` + U+0301 -> `%AÉ`, which the next pass
            # reads as `%25AÉ`: not idempotent).
            pieces = _KEPT.split(part)
            part = "".join(p if i % 2 else unicodedata.normalize("NFC", p)
                           for i, p in enumerate(pieces))
        else:
            part = unicodedata.normalize("NFC", part)
    return part


# 8,192 paths of at most 256 characters: <= ~20 MB at worst (docs/STREAMS.md).
@short_key_cache(maxsize=8192, max_chars=256)
def canonical_path(raw: str) -> str:
    """The canonical form of a `path` that starts with `/` (see the module docstring).

    `raw`: the path as sent, e.g. `/caf%C3%A9?x=1#/about`. Returns a string that
    starts with `/` when `raw` does. Pure and cached (paths repeat a lot).
    """
    pathname, hashmark, fragment = raw.partition("#")
    pathname = pathname.partition("?")[0]
    route = ""
    if hashmark and (fragment.startswith("/") or fragment.startswith("!/")):
        route = fragment.removeprefix("!")
        route = route.partition("#")[0].partition("?")[0]
        if route == "/":
            route = ""
    out = _decode(pathname)
    if route:
        out += "#" + _decode(route)
    return out


_WILDCARD = re.compile(r"([*?])")


def _decode_glob(part: str) -> str:
    """`_decode` on each literal run between the wildcards of `part`; wildcards kept."""
    pieces = _WILDCARD.split(part)  # literal, wildcard, literal, wildcard, ..., literal
    for i in range(0, len(pieces), 2):
        literal = _decode(pieces[i])
        if "*" in literal:
            raise ValueError("%2A decodes to '*', which a pattern reads as a wildcard")
        pieces[i] = literal
    return "".join(pieces)


def canonical_pattern(raw: str) -> str:
    """The canonical form of a content-group pattern (see the module docstring): the
    rules of `canonical_path` with `*` and `?` kept as wildcards.

    `raw`: the pattern as saved, e.g. `/#!/caf%C3%A9/*`; returns `/#/café/*`.
    Raises ValueError (with the reason) for a pattern that cannot be written in
    canonical form: one holding `%2A`."""
    pathname, hashmark, fragment = raw.partition("#")
    route = ""
    if hashmark:
        if fragment[:1] == "!" and fragment[1:2] in ("/", "*", "?"):
            fragment = fragment[1:]
        if fragment[:1] in ("/", "*", "?"):
            route = fragment.partition("#")[0]
            if route == "/":
                route = ""
    out = _decode_glob(pathname)
    if route:
        out += "#" + _decode_glob(route)
    return out
