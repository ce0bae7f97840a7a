"""`/api/v1/websites`: users see and change their own account's websites, admins all.

Deleting a website cascades (foreign keys) to its events and daily aggregates.
"""

from __future__ import annotations

from typing import Any

import psycopg.errors
from psycopg.types.json import Jsonb

from api import validation
from api.handlers import ProtectedHandler, parse_uuid
from api.serialize import website_json
from tinytrail.envelope import ApiError

COLUMNS = "id, account_id, domain, content_groups, excluded_ips, created_at"
FIELDS = ("domain", "content_groups", "excluded_ips")


def _duplicate(domain: str) -> ApiError:
    return ApiError(400, f"domain: {domain} already exists in this account")


class WebsitesHandler(ProtectedHandler):
    async def get(self) -> None:
        async with self.deps.pool.connection() as conn:
            if self.principal.is_admin:
                cur = await conn.execute(
                    f"SELECT {COLUMNS} FROM websites ORDER BY created_at, id"
                )
            else:
                cur = await conn.execute(
                    f"SELECT {COLUMNS} FROM websites WHERE account_id = %s "
                    "ORDER BY created_at, id",
                    (self.principal.account_id,),
                )
            rows = await cur.fetchall()
        self.send_success([website_json(r) for r in rows])

    async def post(self) -> None:
        body = self.json_object()
        validation.reject_unknown(body, {*FIELDS, "account_id"})
        if "domain" not in body:
            raise ApiError(400, "domain is required")
        domain = validation.domain(body["domain"])
        groups = validation.content_groups(body.get("content_groups", []))
        ips = validation.excluded_ips(body.get("excluded_ips", []))
        account_id = self._target_account(body)
        async with self.deps.pool.connection() as conn, conn.transaction():
            cur = await conn.execute(
                "SELECT 1 FROM accounts WHERE id = %s FOR KEY SHARE", (account_id,)
            )
            if await cur.fetchone() is None:
                raise ApiError(400, "account_id: account not found")
            try:
                async with conn.transaction():
                    cur = await conn.execute(
                        "INSERT INTO websites (account_id, domain, content_groups, excluded_ips) "
                        f"VALUES (%s, %s, %s, %s) RETURNING {COLUMNS}",
                        (account_id, domain, Jsonb(groups), Jsonb(ips)),
                    )
            except psycopg.errors.UniqueViolation:
                raise _duplicate(domain) from None
            row = await cur.fetchone()
        assert row is not None  # INSERT ... RETURNING returns the row
        self.send_success(website_json(row), 201)

    def _target_account(self, body: dict[str, Any]) -> str:
        """Admins may place a website in any account; users only in their own.

        A user may repeat its own account id (harmless); any other value is 403.
        """
        if "account_id" not in body or body["account_id"] is None:
            return self.principal.account_id
        raw = body["account_id"]
        if not isinstance(raw, str):
            raise ApiError(400, "account_id must be a UUID")
        account_id = parse_uuid(raw, "account_id")
        if not self.principal.is_admin and account_id != self.principal.account_id:
            raise ApiError(403, "only admins may set account_id")
        return account_id


class WebsiteHandler(ProtectedHandler):
    async def patch(self, website_id: str) -> None:
        current = await self.load_website(website_id)
        body = self.json_object()
        validation.reject_unknown(body, set(FIELDS))
        if not any(f in body for f in FIELDS):
            raise ApiError(400, "provide at least one of domain, content_groups, excluded_ips")
        domain = validation.domain(body["domain"]) if "domain" in body else current["domain"]
        groups = (
            validation.content_groups(body["content_groups"])
            if "content_groups" in body
            else current["content_groups"]
        )
        ips = (
            validation.excluded_ips(body["excluded_ips"])
            if "excluded_ips" in body
            else current["excluded_ips"]
        )
        try:
            async with self.deps.pool.connection() as conn:
                cur = await conn.execute(
                    "UPDATE websites SET domain = %s, content_groups = %s, excluded_ips = %s, "
                    f"updated_at = now() WHERE id = %s RETURNING {COLUMNS}",
                    (domain, Jsonb(groups), Jsonb(ips), current["id"]),
                )
                row = await cur.fetchone()
        except psycopg.errors.UniqueViolation:
            raise _duplicate(domain) from None
        if row is None:  # deleted between the load and the update
            raise ApiError(404, "website not found")
        self.send_success(website_json(row))

    async def delete(self, website_id: str) -> None:
        current = await self.load_website(website_id)
        async with self.deps.pool.connection() as conn:
            cur = await conn.execute(
                f"DELETE FROM websites WHERE id = %s RETURNING {COLUMNS}", (current["id"],)
            )
            row = await cur.fetchone()
        if row is None:
            raise ApiError(404, "website not found")
        self.send_success(website_json(row))
