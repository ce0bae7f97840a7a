"""`/api/v1/users` (admin only): list, create (returns the key once), read key, delete."""

from __future__ import annotations

import logging

from cryptography.exceptions import InvalidTag

from api import keys, validation
from api.handlers import ProtectedHandler, parse_uuid
from api.serialize import user_json
from api.userstore import USER_COLUMNS, insert_user
from tinytrail.envelope import ApiError

log = logging.getLogger("tinytrail.api.users")

ROLES = ("admin", "user")


class UsersHandler(ProtectedHandler):
    async def get(self) -> None:
        self.require_admin()
        async with self.deps.pool.connection() as conn:
            cur = await conn.execute(f"SELECT {USER_COLUMNS} FROM users ORDER BY created_at, id")
            rows = await cur.fetchall()
        self.send_success([user_json(r) for r in rows])

    async def post(self) -> None:
        self.require_admin()
        body = self.json_object()
        validation.reject_unknown(body, {"account_id", "role", "email"})
        if "account_id" not in body:
            raise ApiError(400, "account_id is required")
        if "role" not in body:
            raise ApiError(400, "role is required")
        if not isinstance(body["account_id"], str):
            raise ApiError(400, "account_id must be a UUID")
        account_id = parse_uuid(body["account_id"], "account_id")
        role = body["role"]
        if role not in ROLES:
            raise ApiError(400, "role must be 'admin' or 'user'")
        email = body.get("email")
        if email is not None:
            email = validation.text(email, "email", max_len=254)
        async with self.deps.pool.connection() as conn, conn.transaction():
            # FOR KEY SHARE: a concurrent account delete waits instead of failing our insert.
            cur = await conn.execute(
                "SELECT 1 FROM accounts WHERE id = %s FOR KEY SHARE", (account_id,)
            )
            if await cur.fetchone() is None:
                raise ApiError(400, "account_id: account not found")
            row, key = await insert_user(
                conn, self.deps.settings.secret_key, account_id, role, email
            )
        self.send_success(user_json(row, api_key=key), 201)


class UserApiKeyHandler(ProtectedHandler):
    async def get(self, user_id: str) -> None:
        self.require_admin()
        uid = parse_uuid(user_id, "user id")
        async with self.deps.pool.connection() as conn:
            cur = await conn.execute("SELECT id, api_key_enc FROM users WHERE id = %s", (uid,))
            row = await cur.fetchone()
        if row is None:
            raise ApiError(404, "user not found")
        try:
            key = keys.decrypt_key(self.deps.settings.secret_key, row["api_key_enc"], uid)
        except InvalidTag:
            # The secret changed since the key was made (or the row was tampered with).
            log.error("cannot decrypt the API key of user %s: wrong TINYTRAIL_SECRET_KEY?", uid)
            raise ApiError(500, "internal server error") from None
        self.send_success({"id": uid, "apiKey": key})


class UserHandler(ProtectedHandler):
    async def delete(self, user_id: str) -> None:
        self.require_admin()
        uid = parse_uuid(user_id, "user id")
        async with self.deps.pool.connection() as conn:
            cur = await conn.execute(
                f"DELETE FROM users WHERE id = %s RETURNING {USER_COLUMNS}", (uid,)
            )
            row = await cur.fetchone()
        if row is None:
            raise ApiError(404, "user not found")
        self.send_success(user_json(row))
