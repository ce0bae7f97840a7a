"""What every API handler receives through `initialize(deps=...)`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

import redis.asyncio as aioredis

from api.settings import ApiSettings
from tinytrail.db import Pool


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class ApiDeps:
    """The process's settings, Postgres pool, Redis client and clock (UTC-aware `now`).

    Tests inject `clock` to drive rate-limit windows and default dates without sleeping.
    """

    settings: ApiSettings
    pool: Pool
    redis: aioredis.Redis
    clock: Callable[[], dt.datetime] = field(default=utc_now)
