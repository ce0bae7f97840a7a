"""The auth matrix for every protected route: no key, wrong key, a user on its own
account, a user on another account, a user on admin routes, and an admin.

The route table is checked against the routes `make_app` mounts, so a new
protected route without a row here fails `test_matrix_covers_every_protected_route`.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from apisupport import World, assert_envelope

from api.app import make_app
from api.handlers import ProtectedHandler

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

# A target is made fresh for each case (deletes must not interfere): it returns the
# path (and query) to call, given the world and the account the target lives in.
Target = Callable[[World, str], tuple[str, dict[str, Any] | None]]


@dataclass(frozen=True)
class Route:
    method: str
    template: str  # as in the OpenAPI document
    admin_only: bool
    target: Target | None = None  # routes about one account's resource
    body: Callable[[World], Any] | None = None
    ok: int = 200


def _account(w: World, account: str) -> tuple[str, None]:
    return f"/api/v1/accounts/{w.new_account()}", None


def _user(suffix: str) -> Target:
    def make(w: World, account: str) -> tuple[str, None]:
        return f"/api/v1/users/{w.new_user(account)['id']}{suffix}", None
    return make


def _website(w: World, account: str) -> tuple[str, None]:
    return f"/api/v1/websites/{w.new_site(account)['id']}", None


def _report(name: str, extra: dict[str, Any] | None = None) -> Route:
    def make(w: World, account: str) -> tuple[str, dict[str, Any]]:
        site = w.site_a if account == w.account_a else w.site_b
        return f"/api/v1/reports/{name}", {"website_id": site["id"], **(extra or {})}
    return Route("GET", f"/api/v1/reports/{name}", False, make)


def _yesterday() -> str:
    """A day whose event partition exists (the migration creates yesterday on): older days
    without one are refused (tests/api/test_api_ops.py)."""
    return (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)).isoformat()


ROUTES = [
    Route("GET", "/api/v1/accounts", True),
    Route("POST", "/api/v1/accounts", True, body=lambda w: {"name": "matrix"}, ok=201),
    Route("DELETE", "/api/v1/accounts/{id}", True, _account),
    Route("GET", "/api/v1/users", True),
    Route("POST", "/api/v1/users", True, ok=201,
          body=lambda w: {"account_id": w.account_a, "role": "user"}),
    Route("GET", "/api/v1/users/{id}/api-key", True, _user("/api-key")),
    Route("DELETE", "/api/v1/users/{id}", True, _user("")),
    Route("GET", "/api/v1/websites", False),
    Route("POST", "/api/v1/websites", False, ok=201,
          body=lambda w: {"domain": f"m{uuid.uuid4().hex[:10]}.example"}),
    Route("PATCH", "/api/v1/websites/{id}", False, _website,
          body=lambda w: {"excluded_ips": ["203.0.113.9"]}),
    Route("DELETE", "/api/v1/websites/{id}", False, _website),
    Route("POST", "/api/v1/admin/aggregate", True, body=lambda w: {"date": _yesterday()}),
    _report("summary"), _report("pages"), _report("sources"), _report("devices"),
    _report("flow"), _report("funnel", {"steps[]": ["/a", "/b"]}), _report("realtime"),
    _report("custom-events"), _report("timeseries"), _report("locations"),
]
IDS = [f"{r.method} {r.template}" for r in ROUTES]


def _call(w: World, route: Route, key: str | None, account: str) -> Any:
    path, query = route.template, None
    if route.target is not None:
        path, query = route.target(w, account)
    body = route.body(w) if route.body else None
    resp = w.api.request(route.method, path, body, key=key, query=query)
    assert_envelope(resp)
    return resp


def _mounted_protected(w: World) -> set[tuple[str, str]]:
    assert w.api.deps is not None
    app = make_app(w.api.deps)
    out = set()
    for rule in app.wildcard_router.rules:
        handler = rule.target
        if isinstance(handler, type) and issubclass(handler, ProtectedHandler):
            template = re.sub(r"\(\[\^/\]\+\)", "{id}", rule.matcher.regex.pattern.rstrip("$"))
            out |= {(m, template) for m in handler.implemented_methods()}
    return out


def test_matrix_covers_every_protected_route(world: World) -> None:
    assert {(r.method, r.template) for r in ROUTES} == _mounted_protected(world)


@pytest.mark.parametrize("route", ROUTES, ids=IDS)
def test_no_key_is_401(world: World, route: Route) -> None:
    resp = _call(world, route, None, world.account_a)
    assert resp.status == 401 and resp.json["error"]["code"] == "UNAUTHORIZED"


@pytest.mark.parametrize("route", ROUTES, ids=IDS)
@pytest.mark.parametrize("key", [
    pytest.param("tt_" + "A" * 32, id="unknown-key"),
    pytest.param("not-a-key", id="malformed-key"),
])
def test_wrong_key_is_401(world: World, route: Route, key: str) -> None:
    resp = _call(world, route, key, world.account_a)
    assert resp.status == 401 and resp.json["error"]["code"] == "UNAUTHORIZED"


@pytest.mark.parametrize("route", ROUTES, ids=IDS)
def test_admin_is_allowed_everywhere(world: World, route: Route) -> None:
    # The admin lives in account A; B's resources are reachable too.
    resp = _call(world, route, world.admin_key, world.account_b)
    assert resp.status == route.ok, resp.body


@pytest.mark.parametrize("route", [r for r in ROUTES if r.admin_only],
                         ids=[i for r, i in zip(ROUTES, IDS, strict=True) if r.admin_only])
def test_user_on_admin_routes_is_403(world: World, route: Route) -> None:
    resp = _call(world, route, world.user_a["apiKey"], world.account_a)
    assert resp.status == 403 and resp.json["error"]["code"] == "FORBIDDEN"


USER_ROUTES = [r for r in ROUTES if not r.admin_only]
USER_IDS = [i for r, i in zip(ROUTES, IDS, strict=True) if not r.admin_only]


@pytest.mark.parametrize("route", USER_ROUTES, ids=USER_IDS)
def test_user_on_own_account_is_allowed(world: World, route: Route) -> None:
    resp = _call(world, route, world.user_a["apiKey"], world.account_a)
    assert resp.status == route.ok, resp.body


@pytest.mark.parametrize("route", [r for r in USER_ROUTES if r.target],
                         ids=[i for r, i in zip(USER_ROUTES, USER_IDS, strict=True) if r.target])
def test_user_on_other_account_is_404(world: World, route: Route) -> None:
    resp = _call(world, route, world.user_a["apiKey"], world.account_b)
    assert resp.status == 404 and resp.json["error"]["code"] == "NOT_FOUND"


def test_website_list_is_scoped_to_the_users_account(world: World) -> None:
    mine = world.api.request("GET", "/api/v1/websites", key=world.user_a["apiKey"]).json["data"]
    assert {s["accountId"] for s in mine} == {world.account_a}
    assert world.site_a["id"] in {s["id"] for s in mine}
    every = world.api.request("GET", "/api/v1/websites", key=world.admin_key).json["data"]
    assert {world.site_a["id"], world.site_b["id"]} <= {s["id"] for s in every}


def test_user_cannot_create_a_website_in_another_account(world: World) -> None:
    body = {"domain": "intruder.example", "account_id": world.account_b}
    resp = world.api.request("POST", "/api/v1/websites", body, key=world.user_a["apiKey"])
    assert resp.status == 403 and resp.json["error"]["code"] == "FORBIDDEN"
    body["account_id"] = world.account_a  # repeating its own account is fine
    resp = world.api.request("POST", "/api/v1/websites", body, key=world.user_a["apiKey"])
    assert resp.status == 201 and resp.json["data"]["accountId"] == world.account_a


def test_api_routes_send_no_cors_headers(world: World) -> None:
    for method in ("GET", "OPTIONS"):
        resp = world.api.request(method, "/api/v1/websites", key=world.admin_key,
                                 headers={"Origin": "https://evil.example"})
        assert not [h for h in resp.headers if h.lower().startswith("access-control-")]
