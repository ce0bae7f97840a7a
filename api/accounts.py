"""`/api/v1/accounts` (admin only): list, create, delete (cascades to everything)."""

from __future__ import annotations

from api import validation
from api.handlers import ProtectedHandler, parse_uuid
from api.serialize import account_json
from tinytrail.envelope import ApiError


class AccountsHandler(ProtectedHandler):
    async def get(self) -> None:
        self.require_admin()
        async with self.deps.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT id, name, created_at FROM accounts ORDER BY created_at, id"
            )
            rows = await cur.fetchall()
        self.send_success([account_json(r) for r in rows])

    async def post(self) -> None:
        self.require_admin()
        body = self.json_object()
        validation.reject_unknown(body, {"name"})
        if "name" not in body:
            raise ApiError(400, "name is required")
        name = validation.text(body["name"], "name", max_len=200)
        async with self.deps.pool.connection() as conn:
            cur = await conn.execute(
                "INSERT INTO accounts (name) VALUES (%s) RETURNING id, name, created_at", (name,)
            )
            row = await cur.fetchone()
        assert row is not None  # INSERT ... RETURNING returns the row
        self.send_success(account_json(row), 201)


class AccountHandler(ProtectedHandler):
    async def delete(self, account_id: str) -> None:
        """Deletes the account; Postgres cascades to its users, websites, events, aggregates."""
        self.require_admin()
        aid = parse_uuid(account_id, "account id")
        async with self.deps.pool.connection() as conn:
            cur = await conn.execute(
                "DELETE FROM accounts WHERE id = %s RETURNING id, name, created_at", (aid,)
            )
            row = await cur.fetchone()
        if row is None:
            raise ApiError(404, "account not found")
        self.send_success(account_json(row))
