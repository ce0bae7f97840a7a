"""Shared helpers of the stream tests: websites, aggregate snapshots."""

from __future__ import annotations

from typing import Any

import psycopg

SITE_SQL = (
    "SELECT website_id::text, day, is_bot, kpart, visitors, visits, pageviews, bounces,"
    " duration_sec, events FROM agg_site_daily {where} ORDER BY 1, 2, 3, 4"
)
DIM_SQL = (
    "SELECT website_id::text, day, is_bot, dim, key, grp, kpart, visits, pageviews,"
    " unique_pageviews, entries, exits, bounces, duration_sec, events FROM agg_dim_daily {where}"
    " ORDER BY 1, 2, 3, 4, 5, 6, 7"
)


def make_sites(
    dsn: str, n: int, groups: list[dict[str, str]] | None = None
) -> list[tuple[str, str]]:
    """Create an account with `n` websites; returns [(website_id, domain)]."""
    import uuid

    import orjson

    out = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        acc = conn.execute("INSERT INTO accounts (name) VALUES ('s') RETURNING id").fetchone()
        assert acc is not None
        for i in range(n):
            domain = f"site{i}-{uuid.uuid4().hex[:6]}.example"
            row = conn.execute(
                "INSERT INTO websites (account_id, domain, content_groups) VALUES (%s, %s, %s)"
                " RETURNING id::text",
                (acc[0], domain, orjson.dumps(groups or [
                    {"name": "Blog", "pattern": "/blog/*"}, {"name": "Docs", "pattern": "/docs/*"}
                ]).decode()),
            ).fetchone()
            assert row is not None
            out.append((row[0], domain))
    return out


def snapshot(dsn: str, sites: list[str]) -> tuple[list[Any], list[Any]]:
    """All aggregate rows of these websites (zero rows dropped: a delta may leave zeros)."""
    where = "WHERE website_id::text = ANY(%s)"
    with psycopg.connect(dsn) as conn:
        site = [r for r in conn.execute(SITE_SQL.format(where=where), (sites,)) if any(r[4:])]
        dim = [r for r in conn.execute(DIM_SQL.format(where=where), (sites,)) if any(r[7:])]
    return site, dim
