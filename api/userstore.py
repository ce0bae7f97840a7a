"""Creating a user with a fresh API key; shared by `POST /api/v1/users` and `create-admin`."""

from __future__ import annotations

import uuid
from typing import Any

from psycopg import AsyncConnection

from api import keys

USER_COLUMNS = "id, account_id, email, role, created_at"


async def insert_user(
    conn: AsyncConnection[Any], secret: str, account_id: str, role: str, email: str | None
) -> tuple[dict[str, Any], str]:
    """Insert a user; returns (row, plaintext key). The key exists only in this return value."""
    user_id = str(uuid.uuid4())  # chosen here: it is the key's associated data
    key = keys.generate_key()
    cur = await conn.execute(
        "INSERT INTO users (id, account_id, email, role, api_key_hash, api_key_enc) "
        f"VALUES (%s, %s, %s, %s, %s, %s) RETURNING {USER_COLUMNS}",
        (
            user_id,
            account_id,
            email,
            role,
            keys.key_hash(secret, key),
            keys.encrypt_key(secret, key, user_id),
        ),
    )
    row = await cur.fetchone()
    assert row is not None
    return row, key
