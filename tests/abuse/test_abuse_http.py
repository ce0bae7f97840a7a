"""Hostile input on every route of the running system: 4xx in the envelope, never a 500.

Routes come from the served OpenAPI document (`/api/v1/openapi.json`), so a new route
is abused without anyone remembering to add it here. Collection routes go to the
collector, the rest to the API; every request carries the admin key (the strongest
principal reaches the most code). After the barrage, nothing that should not exist
does: no new accounts, users or websites, and the tables are all still there.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.system_harness import System, client_ip
from tests.system_traffic import topic_end_offsets, wait_quiet

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis, pytest.mark.kafka]

HOSTILE = [
    pytest.param("' OR '1'='1", id="sqli-or"),
    pytest.param("1'; DROP TABLE events; --", id="sqli-drop"),
    pytest.param("\" UNION SELECT api_key_hash FROM users --", id="sqli-union"),
    pytest.param("a\x00b", id="nul"),
    pytest.param("\x00", id="nul-only"),
    pytest.param("x\r\nSet-Cookie: pwned=1", id="crlf"),
    pytest.param("\x1b[31mred\x07\x08", id="control"),
    pytest.param("\u202etxt.exe", id="bidi"),
    pytest.param("%00%27%22", id="url-encoded"),
    pytest.param("../../../../etc/passwd", id="traversal"),
    pytest.param("{{7*7}}${7*7}", id="template"),
    pytest.param("=cmd|' /C calc'!A0", id="formula"),
    pytest.param("9" * 400, id="huge-number"),
    pytest.param("é" * 2000, id="long-unicode"),  # 12 KB URL-encoded
]
HOSTILE_VALUES = [p.values[0] for p in HOSTILE]


def operations(system: System) -> list[dict[str, Any]]:
    doc = requests.get(f"{system.api_url}/api/v1/openapi.json", timeout=10).json()
    ops = []
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method not in {"get", "post", "patch", "delete", "put"}:
                continue
            params = [*item.get("parameters", []), *op.get("parameters", [])]
            schema = (op.get("requestBody", {}).get("content", {})
                      .get("application/json", {}).get("schema", {}))
            ops.append({
                "method": method.upper(), "path": path,
                "collector": op.get("x-tinytrail-process") == "collector"
                or path.startswith(("/api/v1/collect", "/js/")),
                "path_params": [p["name"] for p in params if p["in"] == "path"],
                "query": [p["name"] for p in params if p["in"] == "query"],
                "body": list(schema.get("properties", {})) if schema else [],
            })
    assert len(ops) >= 25, "the OpenAPI document lists fewer routes than the contract"
    return ops


@pytest.fixture(scope="module")
def ops(system: System) -> list[dict[str, Any]]:
    return operations(system)


def valid_body(system: System, op: dict[str, Any]) -> dict[str, Any]:
    """A body that passes validation, so that one hostile field is what gets tested."""
    if op["path"] == "/api/v1/collect":
        return {"website_id": system.website_id, "event_type": "custom",
                "url": "https://reliability.example/a", "path": "/abuse",
                "properties": {"name": "abuse"}}
    return {"/api/v1/accounts": {"name": "abuse"},
            "/api/v1/users": {"account_id": system.account_id, "role": "user"},
            "/api/v1/websites": {"domain": "abuse.example"},
            "/api/v1/admin/aggregate": {"date": "2020-01-01"}}.get(op["path"], {})


def call(system: System, op: dict[str, Any], *, path_values: dict[str, str] | None = None,
         query: dict[str, Any] | None = None, body: Any = None,
         raw: bytes | None = None) -> requests.Response:
    path = op["path"]
    for name in op["path_params"]:
        value = (path_values or {}).get(name, system.website_id)
        path = path.replace("{" + name + "}", requests.utils.quote(value, safe=""))
    base = system.collector_url if op["collector"] else system.api_url
    data = raw if raw is not None else (None if body is None else json.dumps(body))
    headers = {"X-API-KEY": system.admin_key, "Content-Type": "application/json",
               "X-Forwarded-For": client_ip(7), "User-Agent": "Mozilla/5.0 (X11) Firefox/125.0"}
    return requests.request(op["method"], base + path, params=query, data=data,
                            headers=headers, timeout=30)


def assert_no_500(resp: requests.Response, what: str) -> None:
    assert resp.status_code < 500, f"{what}: {resp.status_code} {resp.text[:300]}"
    if resp.status_code >= 400:
        body = resp.json()
        assert body["status"] == "error", what
        assert set(body["error"]) == {"code", "message"}, what
        assert re.fullmatch(r"[A-Z_]+", body["error"]["code"]), what
        assert "Traceback" not in resp.text and "psycopg" not in resp.text, what


def counts(system: System) -> tuple[int, ...]:
    [row] = system.sql("SELECT (SELECT count(*) FROM accounts), (SELECT count(*) FROM users),"
                       " (SELECT count(*) FROM websites)")
    return tuple(int(x) for x in row)


@pytest.fixture(scope="module")
def counts_before(system: System) -> tuple[int, ...]:
    return counts(system)


def _is_create(op: dict[str, Any]) -> bool:
    return op["method"] == "POST" and op["path"] in {
        "/api/v1/accounts", "/api/v1/users", "/api/v1/websites"}


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_string_in_every_parameter_and_field(system: System, ops: list[dict[str, Any]],
                                                     counts_before: tuple[int, ...],
                                                     value: str) -> None:
    tried = 0
    for op in ops:
        if op["method"] == "DELETE" or op["path"] == "/api/v1/users/{id}/api-key":
            targets = [("path", n) for n in op["path_params"]]
        else:
            targets = [("path", n) for n in op["path_params"]]
        targets += [("query", n) for n in op["query"]]
        targets += [("body", n) for n in op["body"]]
        for where, name in targets:
            if _is_create(op) and where == "body":
                continue  # covered below: a create with a hostile field must not create
            body = valid_body(system, op) if op["body"] else None
            if where == "body":
                body = {**(body or {}), name: value}
            query = {"website_id": system.website_id} if "website_id" in op["query"] else {}
            if where == "query":
                query[name] = value
            resp = call(system, op, path_values={name: value} if where == "path" else None,
                        query=query, body=body)
            assert_no_500(resp, f"{op['method']} {op['path']} {where} {name}={value[:40]!r}")
            tried += 1
    assert tried > 60


@pytest.mark.parametrize("field", ["name", "account_id", "role", "email", "domain",
                                   "content_groups", "excluded_ips"])
@pytest.mark.parametrize("value", ["a\x00b", "1'; DROP TABLE users; --", "x\r\ny", "\x1b[2J"])
def test_hostile_create_fields_never_500(system: System, ops: list[dict[str, Any]],
                                         field: str, value: str) -> None:
    for op in ops:
        if not _is_create(op) or field not in op["body"]:
            continue
        resp = call(system, op, body={**valid_body(system, op), field: value})
        assert_no_500(resp, f"POST {op['path']} {field}={value!r}")
        if resp.status_code == 201:  # accepted as data (e.g. a name with quotes): clean up
            created = resp.json()["data"]["id"]
            assert "\x00" not in json.dumps(resp.json())
            gone = system.api("DELETE", f"{op['path']}/{created}")
            assert gone.status_code == 200


def test_nothing_created_by_the_barrage(system: System, counts_before: tuple[int, ...]) -> None:
    assert counts(system) == counts_before
    tables = {r[0] for r in system.sql(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert {"events", "users", "accounts", "websites", "agg_site_daily"} <= tables
    # Postgres text cannot hold NUL: had the collector let one through, the worker would
    # have dead-lettered (or choked on) the event. It is alive and its DLQ is empty.
    assert system.procs["worker"].alive, "the worker died on hostile input"
    # ... and it has applied every message the barrage produced (an agent that crashed
    # on an unstorable event leaves the process alive but the stream stalled).
    asyncio.run(wait_quiet(system, timeout=60))
    assert asyncio.run(topic_end_offsets(system, "events.deadletter", 3)) == 0


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(max_size=30),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=10), kids,
                                                               max_size=4),
    max_leaves=12,
)


@settings(max_examples=250, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_hypothesis_on_every_route(system: System, ops: list[dict[str, Any]],
                                   data: st.DataObject) -> None:
    op = data.draw(st.sampled_from(ops), label="op")
    if op["method"] == "DELETE" or _is_create(op):
        return  # deletes and creates are covered by the tables above (they change state)
    text = st.text(max_size=40) | st.sampled_from(HOSTILE_VALUES)
    path_values = {n: data.draw(text | st.uuids().map(str), label=n) for n in op["path_params"]}
    query = data.draw(st.dictionaries(st.sampled_from(op["query"] or ["q"]), text, max_size=4),
                      label="query")
    if data.draw(st.booleans(), label="real site") and "website_id" in op["query"]:
        query["website_id"] = system.website_id
    body = None
    if op["method"] in {"POST", "PATCH"}:
        keys = st.sampled_from(op["body"]) if op["body"] else st.text(max_size=8)
        base = valid_body(system, op)
        body = data.draw(st.one_of(_json, st.dictionaries(keys, _json, max_size=4).map(
            lambda d: {**base, **d})), label="body")
    resp = call(system, op, path_values=path_values, query=query, body=body)
    assert_no_500(resp, f"{op['method']} {op['path']} {path_values} {query} {body!r:.200}")


@pytest.mark.parametrize("server", ["collector", "api"])
def test_oversized_request_line_is_refused(system: System, server: str) -> None:
    """A 100 KB URL is past Tornado's 64 KiB header limit: refused, and the server lives."""
    base = system.collector_url if server == "collector" else system.api_url
    try:
        resp = requests.get(f"{base}/api/v1/reports/pages?x={'a' * 100_000}", timeout=10)
        assert 400 <= resp.status_code < 500
    except requests.ConnectionError:
        pass  # Tornado hangs up on headers past max_header_size
    assert requests.get(f"{base}/health", timeout=5).status_code == 200


@pytest.mark.parametrize("target", ["collect", "accounts", "websites", "patch-website",
                                    "aggregate"])
@pytest.mark.parametrize("shape", ["5MiB", "deep-array", "deep-object"])
def test_oversized_and_deeply_nested_bodies(system: System, ops: list[dict[str, Any]],
                                            target: str, shape: str) -> None:
    path = {"collect": "/api/v1/collect", "accounts": "/api/v1/accounts",
            "websites": "/api/v1/websites", "patch-website": "/api/v1/websites/{id}",
            "aggregate": "/api/v1/admin/aggregate"}[target]
    op = next(o for o in ops if o["path"] == path and o["method"] in {"POST", "PATCH"})
    if shape == "5MiB":
        raw = json.dumps({**valid_body(system, op), "pad": "x" * (5 * 1024 * 1024)}).encode()
    elif shape == "deep-array":
        raw = b"[" * 100_000 + b"]" * 100_000
    else:
        raw = b'{"a":' * 50_000 + b"1" + b"}" * 50_000
    try:
        resp = call(system, op, raw=raw)
    except requests.ConnectionError:
        # Tornado may close the connection on a body past the server-wide cap instead of
        # answering; that is a refusal too, as long as the server is still there.
        assert requests.get(f"{system.api_url}/health", timeout=5).status_code == 200
        assert requests.get(f"{system.collector_url}/health", timeout=5).status_code == 200
        return
    assert_no_500(resp, f"{target} {shape}")
    assert 400 <= resp.status_code < 500, resp.status_code
