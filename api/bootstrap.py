"""`tinytrail create-admin`: the first account and admin of a fresh install.

There are no default keys: this command is the only way in. It prints the new
admin's API key once (it can later be read back with `GET /api/v1/users/:id/api-key`).
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from api.settings import ApiSettings
from api.userstore import insert_user
from tinytrail.db import make_pool, open_pool
from tinytrail.settings import load_settings


async def create_admin(
    settings: ApiSettings, account_name: str, email: str | None
) -> dict[str, Any]:
    """Create the account and its admin in one transaction; returns ids and the key."""
    pool = make_pool(settings, name="create-admin", max_size=1)
    await open_pool(pool, timeout=settings.db_connect_timeout)
    try:
        async with pool.connection() as conn, conn.transaction():
            cur = await conn.execute(
                "INSERT INTO accounts (name) VALUES (%s) RETURNING id", (account_name,)
            )
            account = await cur.fetchone()
            assert account is not None
            user, key = await insert_user(
                conn, settings.secret_key, str(account["id"]), "admin", email
            )
    finally:
        await pool.close()
    return {"account_id": str(account["id"]), "user_id": str(user["id"]), "api_key": key}


def create_admin_command(account_name: str, email: str | None) -> int:
    name = account_name.strip()
    if not 1 <= len(name) <= 200:
        print("tinytrail create-admin: --account-name must be 1-200 characters", file=sys.stderr)
        return 2
    if email is not None and not 1 <= len(email) <= 254:
        print("tinytrail create-admin: --email must be 1-254 characters", file=sys.stderr)
        return 2
    settings = load_settings(ApiSettings)
    try:
        made = asyncio.run(create_admin(settings, name, email))
    except Exception as exc:  # a clear line for operators, not a traceback
        print(f"tinytrail create-admin: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(f"account id: {made['account_id']}")
    print(f"admin user id: {made['user_id']}")
    print(f"API key (shown only now; keep it secret): {made['api_key']}")
    return 0
