"""The contract's JSON envelope and error codes, shared by the collector and the API.

    {"status": "success", "data": ...}
    {"status": "error", "error": {"code": "...", "message": "..."}}
"""

from __future__ import annotations

from typing import Any

# HTTP status -> the contract's error code.
ERROR_CODES: dict[int, str] = {
    400: "INVALID_PAYLOAD",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "PAYLOAD_TOO_LARGE",
    429: "RATE_LIMITED",
    500: "INTERNAL_ERROR",
    503: "SERVICE_UNAVAILABLE",
}


def success(data: Any) -> dict[str, Any]:
    return {"status": "success", "data": data}


def error(code: str, message: str) -> dict[str, Any]:
    return {"status": "error", "error": {"code": code, "message": message}}


class ApiError(Exception):
    """Raised by handlers; `BaseHandler.write_error` turns it into the envelope."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code or ERROR_CODES.get(status, "INTERNAL_ERROR")
        self.message = message
        self.headers = headers or {}


def invalid(message: str) -> ApiError:
    return ApiError(400, message)
