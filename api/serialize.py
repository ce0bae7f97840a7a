"""Database rows -> the contract's JSON objects (camelCase, ISO-8601 `...000Z` times)."""

from __future__ import annotations

import datetime as dt
from typing import Any


def iso_ms(value: dt.datetime) -> str:
    """2026-01-15 10:30:00.123456+00 -> '2026-01-15T10:30:00.123Z' (milliseconds, UTC)."""
    utc = value.astimezone(dt.UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def account_json(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": str(row["id"]), "name": row["name"], "createdAt": iso_ms(row["created_at"])}


def user_json(row: dict[str, Any], api_key: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": str(row["id"]),
        "accountId": str(row["account_id"]),
        "email": row["email"],
        "role": row["role"],
    }
    if api_key is not None:
        out["apiKey"] = api_key
    out["createdAt"] = iso_ms(row["created_at"])
    return out


def website_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "accountId": str(row["account_id"]),
        "domain": row["domain"],
        "contentGroups": row["content_groups"],
        "excludedIps": row["excluded_ips"],
        "createdAt": iso_ms(row["created_at"]),
    }
