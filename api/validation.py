"""Request-body validation for accounts, users and websites.

Every check raises `ApiError(400, ...)` with a message naming the field, so a
client can tell which part of its body is wrong.
"""

from __future__ import annotations

import re
from typing import Any

from tinytrail.envelope import ApiError
from tinytrail.limits import (
    CONTENT_GROUP_NAME,
    MAX_GLOB_CHARS,
    MAX_GLOB_WILDCARDS,
    MAX_GROUPS_SEARCH_COST,
    PATH,
    glob_search_cost,
    text_problem,
)
from tinytrail.netaddr import canonical_text, parse_entry
from tinytrail.paths import canonical_pattern

MAX_CONTENT_GROUPS = 100
MAX_EXCLUDED_IPS = 1000
MAX_PATTERN = MAX_GLOB_CHARS  # characters
MAX_GROUP_NAME = CONTENT_GROUP_NAME.chars  # characters (and CONTENT_GROUP_NAME.bytes bytes)

# One DNS label: letters, digits, hyphens; 1-63 chars; no hyphen at either end.
_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_CONTROL_OR_SPACE = re.compile(r"[\s\x00-\x1f\x7f]")


def reject_unknown(body: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise ApiError(400, f"unknown field(s): {', '.join(unknown)}")


def text(value: Any, field: str, *, max_len: int, min_len: int = 1) -> str:
    if not isinstance(value, str):
        raise ApiError(400, f"{field} must be a string")
    stripped: str = value.strip()
    if not min_len <= len(stripped) <= max_len:
        raise ApiError(400, f"{field} must be {min_len}-{max_len} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in stripped):
        raise ApiError(400, f"{field} must not contain control characters")
    return stripped


def domain(value: Any) -> str:
    """A bare host name: 'Example.COM' -> 'example.com'; no scheme, port, path or IDN."""
    if not isinstance(value, str):
        raise ApiError(400, "domain must be a string")
    host = value.strip().lower()
    if not host:
        raise ApiError(400, "domain is required")
    if len(host) > 255:
        raise ApiError(400, "domain must be at most 255 characters")
    if "://" in host or "/" in host or ":" in host:
        raise ApiError(400, "domain must be a bare host name like example.com (no scheme, "
                       "port or path)")
    if not host.isascii():
        raise ApiError(400, "domain must be ASCII; write internationalised names in "
                       "punycode (xn--...)")
    labels = host.split(".")
    if not all(_LABEL.match(label) for label in labels):
        raise ApiError(400, "domain may contain only letters, digits, hyphens and dots, "
                       "with labels of 1-63 characters that do not start or end with a hyphen")
    return host


def content_groups(value: Any) -> list[dict[str, str]]:
    """[{name, pattern}] where pattern is a path glob (`*` any run, `?` one character)."""
    if not isinstance(value, list):
        raise ApiError(400, "content_groups must be an array of {name, pattern} objects")
    if len(value) > MAX_CONTENT_GROUPS:
        raise ApiError(400, f"content_groups may hold at most {MAX_CONTENT_GROUPS} groups")
    out = []
    for i, group in enumerate(value):
        where = f"content_groups[{i}]"
        if not isinstance(group, dict):
            raise ApiError(400, f"{where} must be an object with name and pattern")
        unknown = sorted(set(group) - {"name", "pattern"})
        if unknown:
            raise ApiError(400, f"{where} has unknown field(s): {', '.join(unknown)}")
        if "name" not in group or "pattern" not in group:
            raise ApiError(400, f"{where} needs both name and pattern")
        name = text(group["name"], f"{where}.name", max_len=MAX_GROUP_NAME)
        # The name becomes an aggregate key (tinytrail/limits.py): capped in bytes too.
        why = text_problem(f"{where}.name", name, CONTENT_GROUP_NAME)
        if why is not None:
            raise ApiError(400, why)
        out.append({"name": name, "pattern": glob_pattern(group["pattern"], f"{where}.pattern")})
    cost = sum(glob_search_cost(g["pattern"]) for g in out)
    if cost > MAX_GROUPS_SEARCH_COST:
        raise ApiError(400, f"content_groups: the patterns' search cost is {cost}, at most "
                       f"{MAX_GROUPS_SEARCH_COST}: a pattern costs its characters other than "
                       "wildcards between its first and its last '*' ('/docs/*/api/v?/*' "
                       "costs 7, '/blog/*' costs 0), summed over the groups")
    return out


def glob_pattern(value: Any, field: str) -> str:
    """A glob that can match a URL path: starts with `/`, `*` or `?`; no whitespace or
    control characters (write a space as `%20`); in canonical form
    (`tinytrail.paths.canonical_pattern`: `/caf%C3%A9/*` -> `/café/*`, `/#!/app/*` ->
    `/#/app/*`, the stored path's spelling) 1-200 characters with at most 8 wildcards
    (`*` and `?` together; docs/RULES.md). Returns the canonical pattern (what is stored);
    raises ApiError(400) naming `field`."""
    if not isinstance(value, str):
        raise ApiError(400, f"{field} must be a string")
    # The raw text may be longer than its canonical form (%-escapes): bounded by the
    # path's own cap before any work is done on it.
    if not 1 <= len(value) <= PATH.chars:
        raise ApiError(400, f"{field} must be 1-{MAX_PATTERN} characters")
    if value[0] not in "/*?":
        raise ApiError(400, f"{field} must start with '/' (or a wildcard): it is matched "
                       "against the URL path")
    if _CONTROL_OR_SPACE.search(value):
        raise ApiError(400, f"{field} must not contain spaces, other whitespace or control "
                       "characters (write a space as %20)")
    try:
        canonical = canonical_pattern(value)
    except ValueError as exc:
        raise ApiError(400, f"{field}: {exc}") from None
    if len(canonical) > MAX_PATTERN:  # never empty: its first character is kept
        raise ApiError(400, f"{field} must be 1-{MAX_PATTERN} characters in canonical form "
                       f"(%-escapes decoded); it has {len(canonical)}")
    wildcards = canonical.count("*") + canonical.count("?")
    if wildcards > MAX_GLOB_WILDCARDS:
        raise ApiError(400, f"{field} may hold at most {MAX_GLOB_WILDCARDS} wildcards"
                       f" (* and ?); it has {wildcards}")
    return canonical


def excluded_ips(value: Any) -> list[str]:
    """IPv4/IPv6 addresses and CIDR ranges, normalised ('10.1.2.3/8' -> '10.0.0.0/8';
    IPv4-mapped IPv6 as IPv4: '::ffff:10.0.0.1' -> '10.0.0.1', see tinytrail/netaddr.py).
    A range that would exclude every address (a /0, also once unmapped:
    '::ffff:1.2.3.4/96' is 0.0.0.0/0) is refused; entries that name the same range once
    normalised ('10.0.0.1', '::ffff:10.0.0.1', '10.0.0.1/32') are kept once, first
    spelling first."""
    if not isinstance(value, list):
        raise ApiError(400, "excluded_ips must be an array of IP addresses or CIDR ranges")
    if len(value) > MAX_EXCLUDED_IPS:
        raise ApiError(400, f"excluded_ips may hold at most {MAX_EXCLUDED_IPS} entries")
    out = []
    seen = set()
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise ApiError(400, f"excluded_ips[{i}] must be a string")
        try:
            text = canonical_text(item)
            net = parse_entry(text)
        except ValueError:
            raise ApiError(
                400, f"excluded_ips[{i}] is not an IPv4/IPv6 address or CIDR range"
            ) from None
        if net.prefixlen == 0:
            raise ApiError(400, f"excluded_ips[{i}] ({text}) would exclude every "
                           f"{'IPv4' if net.version == 4 else 'IPv6'} address: a /0 range "
                           "is refused")
        if net not in seen:
            seen.add(net)
            out.append(text)
    return out
