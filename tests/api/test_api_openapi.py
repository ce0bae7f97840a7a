"""The OpenAPI document and the mounted routes cannot drift: same paths, same methods,
same path parameters; the document is valid OpenAPI 3.1 and is what the server serves."""

from __future__ import annotations

import re
from typing import Any

import pytest
import tornado.web
from openapi_spec_validator import validate

from api.app import all_routes
from api.deps import ApiDeps
from api.handlers import ProtectedHandler
from api.openapi import build_document
from api.settings import ApiSettings

HTTP_METHODS = {"get", "post", "put", "patch", "delete", "head", "options"}
NOT_PARAMS = r"\(\[\^/\]\+\)"


def _deps() -> ApiDeps:
    # Routes are built without touching any service: pool and redis are never used here.
    return ApiDeps(settings=ApiSettings(secret_key="k" * 32), pool=None, redis=None)  # type: ignore[arg-type]


def _mounted() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for pattern, handler, _ in all_routes(_deps()):
        template = re.sub(NOT_PARAMS, "{id}", pattern)
        assert "(" not in template, f"route {pattern} has an unnamed pattern the test can't map"
        out[template] = {m for m in HTTP_METHODS
                         if getattr(handler, m) is not getattr(tornado.web.RequestHandler, m)}
    return out


def _documented(process: str = "api") -> dict[str, set[str]]:
    doc = build_document()
    return {path: {m for m in item if m in HTTP_METHODS}
            for path, item in doc["paths"].items()
            if item.get("x-tinytrail-process", "api") == process}


def test_document_is_valid_openapi_3_1() -> None:
    doc = build_document()
    assert doc["openapi"] == "3.1.0"
    validate(doc)


def test_every_mounted_route_is_documented_and_vice_versa() -> None:
    assert _mounted() == _documented()


def test_collector_paths_are_documented() -> None:
    assert _documented("collector") == {"/api/v1/collect": {"post", "options"},
                                        "/js/tracker.js": {"get"}}


def test_path_parameters_are_declared() -> None:
    for path, item in build_document()["paths"].items():
        for method, operation in item.items():
            if method not in HTTP_METHODS:
                continue
            declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert declared == set(re.findall(r"{(\w+)}", path)), (method, path)


def test_protected_operations_declare_the_key_and_its_errors() -> None:
    mounted = {re.sub(NOT_PARAMS, "{id}", p): h for p, h, _ in all_routes(_deps())}
    for path, handler in mounted.items():
        item = build_document()["paths"][path]
        for method in _mounted()[path]:
            op: dict[str, Any] = item[method]
            if issubclass(handler, ProtectedHandler):
                assert op["security"] == [{"ApiKey": []}], (method, path)
                assert {"401", "429", "503"} <= set(op["responses"]), (method, path)
                # Postgres unreachable (or a cancelled query): 503 with Retry-After.
                assert "Retry-After" in op["responses"]["503"]["headers"], (method, path)
            else:
                assert op["security"] == [], (method, path)


@pytest.mark.postgres
@pytest.mark.redis
def test_server_serves_the_document(world: Any) -> None:
    resp = world.api.request("GET", "/api/v1/openapi.json")
    assert resp.status == 200 and resp.json == build_document()
