"""Tornado plumbing shared by the collector and the API.

`BaseHandler` parses JSON bodies in `prepare()`, writes every error (raised
`ApiError`, Tornado's own `HTTPError`, or an unexpected exception) in the
contract's envelope in `write_error()`, and never leaks a stack trace or SQL.
A process maps other exceptions to an `ApiError` by overriding `api_error_of`
(the API: a query cancelled by `statement_timeout`, or Postgres unreachable -> 503
with Retry-After, api/handlers.py).
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
import tornado.web

from tinytrail.envelope import ERROR_CODES, ApiError, error, success

log = logging.getLogger("tinytrail.web")

_DEFAULT_MESSAGES = {
    400: "bad request",
    404: "resource not found",
    405: "method not allowed",
    413: "request body too large",
    500: "internal server error",
}


class BaseHandler(tornado.web.RequestHandler):
    """Envelope-speaking handler. Subclasses receive dependencies via `initialize`."""

    json_body: Any = None

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.set_header("X-Content-Type-Options", "nosniff")

    def parse_json_body(self, *, max_depth: int = 32) -> Any:
        """Decode the body as JSON; raise 400 INVALID_PAYLOAD on anything else."""
        body = self.request.body
        if not body:
            raise ApiError(400, "request body must be JSON")
        try:
            value = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise ApiError(400, "request body is not valid JSON") from None
        if _depth(value, max_depth) > max_depth:
            raise ApiError(400, f"JSON nested deeper than {max_depth} levels")
        return value

    def write_json(self, payload: Any, status: int = 200) -> None:
        self.set_status(status)
        self.finish(orjson.dumps(payload, option=orjson.OPT_NON_STR_KEYS))

    def send_success(self, data: Any, status: int = 200) -> None:
        self.write_json(success(data), status)

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, ApiError):
            return  # expected; the envelope says it all
        if isinstance(value, tornado.web.HTTPError) and value.status_code < 500:
            return
        super().log_exception(typ, value, tb)

    def api_error_of(self, exc: BaseException | None) -> ApiError | None:
        """The `ApiError` to answer for `exc`, or None (then 500 or Tornado's status)."""
        return exc if isinstance(exc, ApiError) else None

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        answer = self.api_error_of(exc)
        if answer is not None:
            self.set_status(answer.status)
            for name, value in answer.headers.items():
                self.set_header(name, value)
            body = error(answer.code, answer.message)
        else:
            if isinstance(exc, tornado.web.HTTPError) and exc.log_message and status_code < 500:
                message = exc.log_message % exc.args if exc.args else exc.log_message
            else:
                message = _DEFAULT_MESSAGES.get(status_code, "request failed")
            if status_code >= 500:
                status_code = 500
                self.set_status(500)
                message = "internal server error"
            body = error(ERROR_CODES.get(status_code, "INTERNAL_ERROR"), message)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.clear_header("Content-Disposition")
        self.finish(orjson.dumps(body))


def health_answer(db: bool, **extra: str) -> tuple[int, dict[str, Any]]:
    """The /health contract of every process: (200, {"status": "ok", "db": "connected",
    "version": ...}) when Postgres answers, else (503, {"status": "degraded", "db":
    "disconnected"}); `extra` fields (e.g. kafka="connected") never change the status."""
    from tinytrail import __version__

    body: dict[str, Any]
    if db:
        body = {"status": "ok", "db": "connected", "version": __version__}
    else:
        body = {"status": "degraded", "db": "disconnected"}
    body.update(extra)
    return (200 if db else 503), body


class NotFoundHandler(BaseHandler):
    """Default handler for unknown routes: 404 in the envelope for every method."""

    def prepare(self) -> None:
        raise ApiError(404, f"no route for {self.request.path}")


def _depth(value: Any, limit: int) -> int:
    """Nesting depth of a decoded JSON value, stopping early past `limit`."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    deepest = 0
    while stack:
        item, d = stack.pop()
        deepest = max(deepest, d)
        if deepest > limit:
            return deepest
        if isinstance(item, dict):
            stack.extend((v, d + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, d + 1) for v in item)
    return deepest
