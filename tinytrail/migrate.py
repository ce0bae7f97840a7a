"""Versioned SQL migrations (`tinytrail/migrations/NNNN_name.sql`), safe to run twice.

Each file runs once, in its own transaction, recorded in `schema_migrations`.
A Postgres advisory lock serialises concurrent runs (several pods starting).
"""

from __future__ import annotations

import logging
from importlib import resources

import psycopg

log = logging.getLogger("tinytrail.migrate")

_LOCK_ID = 0x7474_6D69  # "ttmi"
PARTITION_DAYS_AHEAD = 8


def migration_files() -> list[tuple[str, str]]:
    """(version, sql) pairs in order."""
    folder = resources.files("tinytrail") / "migrations"
    files = sorted((p for p in folder.iterdir() if p.name.endswith(".sql")),
                   key=lambda p: p.name)
    return [(p.name.removesuffix(".sql"), p.read_text()) for p in files]


def apply_migrations(dsn: str) -> list[str]:
    """Apply pending migrations; returns the versions applied by this call."""
    applied: list[str] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_ID,))
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
            for version, sql in migration_files():
                if version in done:
                    continue
                log.info("applying migration %s", version)
                with conn.transaction():
                    conn.execute(sql)  # trusted file in the package
                    conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (version,))
                applied.append(version)
            # Partitions for yesterday .. a week ahead, every run.
            conn.execute(
                "SELECT tinytrail_ensure_event_partitions("
                "(now() AT TIME ZONE 'UTC')::date - 1, %s)",
                (PARTITION_DAYS_AHEAD + 1,),
            )
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_ID,))
    return applied
