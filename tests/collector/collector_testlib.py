"""Shared helpers for the collector's service tests (not a test module)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import orjson
import psycopg
from aiokafka import AIOKafkaConsumer, TopicPartition
from tornado.httpclient import AsyncHTTPClient, HTTPRequest, HTTPResponse

CHROME = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/120.0.0.0 Safari/537.36")


def create_website(pg_dsn: str, domain: str, excluded: list[str] | None = None) -> str:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        acc = conn.execute("INSERT INTO accounts (name) VALUES ('collector tests') RETURNING id")
        account_id = acc.fetchone()[0]  # type: ignore[index]
        row = conn.execute(
            "INSERT INTO websites (account_id, domain, excluded_ips) VALUES (%s, %s, %s) "
            "RETURNING id::text",
            (account_id, f"{domain}-{uuid.uuid4().hex[:6]}", orjson.dumps(excluded or []).decode()),
        ).fetchone()
    return str(row[0])  # type: ignore[index]


def event_body(website_id: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"website_id": website_id, "event_type": "page_view",
                            "url": "https://example.com/p?utm_source=news", "path": "/p",
                            "referrer": "https://t.co/x", "screen_width": 1280,
                            "screen_height": 800}
    body.update(extra)
    return body


async def post(client: AsyncHTTPClient, base: str, body: Any, *, ip: str | None = None,
               ua: str = CHROME, headers: dict[str, str] | None = None) -> HTTPResponse:
    hdrs = {"User-Agent": ua, "Content-Type": "text/plain"}
    if ip:
        hdrs["X-Forwarded-For"] = ip
    hdrs.update(headers or {})
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return await client.fetch(HTTPRequest(f"{base}/api/v1/collect", method="POST", body=raw,
                                          headers=hdrs), raise_error=False)


async def read_topic(bootstrap: str, topic: str, predicate: Any, want: int,
                     timeout: float = 20.0) -> list[tuple[bytes, bytes]]:
    """(key, value) of messages matching `predicate(value_dict)`, until `want` or timeout."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    found: list[tuple[bytes, bytes]] = []
    try:
        parts = consumer.partitions_for_topic(topic)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not parts and loop.time() < deadline:
            await consumer._client.force_metadata_update()
            parts = consumer.partitions_for_topic(topic)
        consumer.assign([TopicPartition(topic, p) for p in parts or ()])
        await consumer.seek_to_beginning()
        while len(found) < want and loop.time() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for rec in records:
                    if predicate(orjson.loads(rec.value)):
                        found.append((rec.key, rec.value))
    finally:
        await consumer.stop()
    return found
