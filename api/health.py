"""`GET /health` (no envelope, no auth) and `GET /api/v1/openapi.json`."""

from __future__ import annotations

import orjson

from api.deps import ApiDeps
from tinytrail.db import db_alive
from tinytrail.web import BaseHandler, health_answer


class HealthHandler(BaseHandler):
    def initialize(self, deps: ApiDeps) -> None:
        self.deps = deps

    async def get(self) -> None:
        status, body = health_answer(await db_alive(self.deps.pool))
        self.write_json(body, status)


class OpenApiHandler(BaseHandler):
    """Serves the document built once by `api.openapi.build_document`."""

    def initialize(self, document: bytes) -> None:
        self.document = document

    def get(self) -> None:
        self.set_header("Cache-Control", "public, max-age=300")
        self.finish(self.document)


def encode_document(doc: dict[str, object]) -> bytes:
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2)
