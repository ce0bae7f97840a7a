"""CRUD round trips on the real Postgres, contract field names, validation messages,
and the cascades (account -> users, websites -> events, aggregates)."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Any

import psycopg
import pytest
from apisupport import World, assert_envelope

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

ISO_MS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def _ok(resp: Any, status: int = 200) -> Any:
    assert_envelope(resp)
    assert resp.status == status, resp.body
    return resp.json["data"]


def _bad(resp: Any, status: int = 400) -> str:
    assert_envelope(resp)
    assert resp.status == status, resp.body
    return str(resp.json["error"]["message"])


def test_account_round_trip(world: World) -> None:
    api, key = world.api, world.admin_key
    made = _ok(api.request("POST", "/api/v1/accounts", {"name": "  Acme Corp "}, key=key), 201)
    assert set(made) == {"id", "name", "createdAt"}
    assert made["name"] == "Acme Corp" and ISO_MS.match(made["createdAt"])
    listed = _ok(api.request("GET", "/api/v1/accounts", key=key))
    assert made in listed
    gone = _ok(api.request("DELETE", f"/api/v1/accounts/{made['id']}", key=key))
    assert gone == made
    assert made not in _ok(api.request("GET", "/api/v1/accounts", key=key))
    assert "not found" in _bad(api.request("DELETE", f"/api/v1/accounts/{made['id']}", key=key),
                               404)


def test_user_round_trip_and_key_retrieval(world: World) -> None:
    api, key = world.api, world.admin_key
    made = _ok(api.request("POST", "/api/v1/users", {"account_id": world.account_b,
                                                     "role": "user", "email": "u@b.example"},
                           key=key), 201)
    assert set(made) == {"id", "accountId", "email", "role", "apiKey", "createdAt"}
    assert re.match(r"^tt_[A-Za-z0-9_-]{32}$", made["apiKey"]) and ISO_MS.match(made["createdAt"])
    listed = _ok(api.request("GET", "/api/v1/users", key=key))
    mine = [u for u in listed if u["id"] == made["id"]]
    assert mine == [{k: v for k, v in made.items() if k != "apiKey"}]
    assert all("apiKey" not in u for u in listed)
    fetched = _ok(api.request("GET", f"/api/v1/users/{made['id']}/api-key", key=key))
    assert fetched == {"id": made["id"], "apiKey": made["apiKey"]}
    # The new key works, and sees only account B.
    sites = _ok(api.request("GET", "/api/v1/websites", key=made["apiKey"]))
    assert {s["accountId"] for s in sites} == {world.account_b}
    gone = _ok(api.request("DELETE", f"/api/v1/users/{made['id']}", key=key))
    assert gone["id"] == made["id"] and "apiKey" not in gone
    assert api.request("GET", "/api/v1/websites", key=made["apiKey"]).status == 401
    _bad(api.request("GET", f"/api/v1/users/{made['id']}/api-key", key=key), 404)


def test_no_plaintext_key_in_the_database(world: World, pg_dsn: str) -> None:
    made = world.new_user(world.account_a)
    with psycopg.connect(pg_dsn) as conn:
        row = conn.execute("SELECT * FROM users WHERE id = %s", (made["id"],)).fetchone()
    assert row is not None
    assert not any(made["apiKey"].encode() in (c if isinstance(c, bytes) else str(c).encode())
                   for c in row)


@pytest.mark.parametrize("body, needle", [
    pytest.param({"role": "user"}, "account_id is required", id="no-account"),
    pytest.param({"account_id": "A"}, "role is required", id="no-role"),
    pytest.param({"account_id": "A", "role": "owner"}, "role must be", id="bad-role"),
    pytest.param({"account_id": "nope", "role": "user"}, "account_id must be a UUID",
                 id="bad-uuid"),
    pytest.param({"account_id": str(uuid.UUID(int=1)), "role": "user"}, "account not found",
                 id="unknown-account"),
    pytest.param({"account_id": "A", "role": "user", "email": ""}, "email", id="empty-email"),
    pytest.param({"account_id": "A", "role": "user", "apiKey": "tt_x"}, "unknown field",
                 id="client-chosen-key"),
])
def test_user_create_refusals(world: World, body: dict[str, Any], needle: str) -> None:
    if body.get("account_id") == "A":
        body = {**body, "account_id": world.account_a}
    msg = _bad(world.api.request("POST", "/api/v1/users", body, key=world.admin_key))
    assert needle in msg


def test_website_round_trip(world: World) -> None:
    api, key = world.api, world.user_a["apiKey"]
    body = {"domain": "Round-Trip.example", "content_groups": [{"name": "Blog",
                                                                 "pattern": "/blog/*"}],
            "excluded_ips": ["203.0.113.7", "10.9.9.9/8"]}
    made = _ok(api.request("POST", "/api/v1/websites", body, key=key), 201)
    assert set(made) == {"id", "accountId", "domain", "contentGroups", "excludedIps",
                         "createdAt"}
    assert made["domain"] == "round-trip.example" and made["accountId"] == world.account_a
    assert made["contentGroups"] == body["content_groups"]
    assert made["excludedIps"] == ["203.0.113.7", "10.0.0.0/8"]
    assert made in _ok(api.request("GET", "/api/v1/websites", key=key))
    path = f"/api/v1/websites/{made['id']}"
    patched = _ok(api.request("PATCH", path, {"excluded_ips": []}, key=key))
    assert patched == {**made, "excludedIps": []}
    patched = _ok(api.request("PATCH", path, {"domain": "renamed.example",
                                              "content_groups": []}, key=key))
    assert patched == {**made, "excludedIps": [], "domain": "renamed.example",
                       "contentGroups": []}
    assert _ok(api.request("DELETE", path, key=key)) == patched
    _bad(api.request("DELETE", path, key=key), 404)
    _bad(api.request("PATCH", path, {"domain": "x.example"}, key=key), 404)


def test_content_group_patterns_are_stored_canonical(world: World) -> None:
    """Issue-12 review finding 2: the pattern is stored as the path it names is stored
    (`/caf%C3%A9` and `/café` are one page; `#!/` routes are `#/`), and so answered."""
    api, key = world.api, world.user_a["apiKey"]
    site = world.new_site(world.account_a)
    sent = [{"name": "Cafe", "pattern": "/caf%C3%A9/*"}, {"name": "App", "pattern": "/#!/app/*"},
            {"name": "Pct", "pattern": "/100%/*"}]
    want = [{"name": "Cafe", "pattern": "/caf\u00e9/*"}, {"name": "App", "pattern": "/#/app/*"},
            {"name": "Pct", "pattern": "/100%25/*"}]
    path = f"/api/v1/websites/{site['id']}"
    assert _ok(api.request("PATCH", path, {"content_groups": sent}, key=key))[
        "contentGroups"] == want
    listed = [w for w in _ok(api.request("GET", "/api/v1/websites", key=key))
              if w["id"] == site["id"]]
    assert listed[0]["contentGroups"] == want


def test_duplicate_domain_in_one_account_is_400_but_fine_across_accounts(world: World) -> None:
    api = world.api
    domain = f"dup{uuid.uuid4().hex[:8]}.example"
    _ok(api.request("POST", "/api/v1/websites", {"domain": domain}, key=world.user_a["apiKey"]),
        201)
    msg = _bad(api.request("POST", "/api/v1/websites", {"domain": domain.upper()},
                           key=world.user_a["apiKey"]))
    assert "domain" in msg and "already exists" in msg
    _ok(api.request("POST", "/api/v1/websites", {"domain": domain}, key=world.user_b["apiKey"]),
        201)
    other = world.new_site(world.account_a)
    msg = _bad(api.request("PATCH", f"/api/v1/websites/{other['id']}", {"domain": domain},
                           key=world.user_a["apiKey"]))
    assert "already exists" in msg


@pytest.mark.parametrize("body, needle", [
    pytest.param({}, "at least one", id="empty"),
    pytest.param({"name": "x"}, "unknown field", id="unknown-only"),
    pytest.param({"domain": "http://x.example"}, "domain", id="scheme"),
    pytest.param({"content_groups": [{"name": "B", "pattern": "blog"}]},
                 "content_groups[0].pattern", id="pattern"),
    pytest.param({"excluded_ips": ["300.1.1.1"]}, "excluded_ips[0]", id="ip"),
    pytest.param({"account_id": str(uuid.UUID(int=2))}, "unknown field", id="move-account"),
    # The issue-12 review's costliest website (~50 ms per event with the old matcher).
    pytest.param({"content_groups": [
        {"name": f"g{i}", "pattern": "/*?" + "a" * (193 - len(str(i))) + str(i) + "b*"}
        for i in range(100)]}, "search cost is 19400, at most 2000", id="search-cost"),
    pytest.param({"content_groups": [{"name": "S", "pattern": "/x%2a/*"}]},
                 "content_groups[0].pattern: %2A", id="escaped-star"),
])
def test_website_patch_refusals(world: World, body: dict[str, Any], needle: str) -> None:
    site = world.new_site(world.account_a)
    msg = _bad(world.api.request("PATCH", f"/api/v1/websites/{site['id']}", body,
                                 key=world.user_a["apiKey"]))
    assert needle in msg


@pytest.mark.parametrize("raw, needle", [
    pytest.param(b"{", "not valid JSON", id="broken-json"),
    pytest.param(b"[]", "JSON object", id="array"),
    pytest.param(b"", "must be JSON", id="empty"),
    pytest.param(b'{"domain": null}', "domain", id="null-domain"),
    pytest.param(b'{"content_groups": []}', "domain is required", id="no-domain"),
])
def test_website_create_refusals(world: World, raw: bytes, needle: str) -> None:
    msg = _bad(world.api.request("POST", "/api/v1/websites", raw=raw,
                                 key=world.user_a["apiKey"]))
    assert needle in msg


def test_admin_may_place_a_website_in_any_existing_account(world: World) -> None:
    made = _ok(world.api.request("POST", "/api/v1/websites",
                                 {"domain": "placed.example", "account_id": world.account_b},
                                 key=world.admin_key), 201)
    assert made["accountId"] == world.account_b
    msg = _bad(world.api.request("POST", "/api/v1/websites",
                                 {"domain": "placed.example",
                                  "account_id": str(uuid.UUID(int=3))}, key=world.admin_key))
    assert "account not found" in msg


@pytest.mark.parametrize("path", [
    pytest.param("/api/v1/accounts/123", id="account"),
    pytest.param("/api/v1/users/abc", id="user"),
    pytest.param("/api/v1/websites/xyz", id="website"),
])
def test_bad_ids_are_400(world: World, path: str) -> None:
    assert "UUID" in _bad(world.api.request("DELETE", path, key=world.admin_key))


# --- cascades ------------------------------------------------------------------


def _seed_traffic(pg_dsn: str, website_id: str) -> None:
    """One stored event, one session and one row in each aggregate table."""
    now = dt.datetime.now(dt.UTC)
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO events (event_id, received_at, website_id, visitor_id, session_id, "
            "event_type, url, path, referrer_channel, screen_bucket, browser_family, os_family, "
            "device_type, is_bot, is_excluded, kafka_partition, kafka_offset) VALUES "
            "(gen_random_uuid(), %s, %s, 'v', gen_random_uuid(), 'page_view', "
            "'https://x.example/', '/', 'Direct', 'unknown', 'Chrome', 'Linux', 'desktop', "
            "false, false, 0, 1)", (now, website_id))
        conn.execute("INSERT INTO agg_site_daily (website_id, day, is_bot, kpart, pageviews) "
                     "VALUES (%s, %s, false, 0, 1)", (website_id, now.date()))
        conn.execute("INSERT INTO agg_dim_daily (website_id, day, is_bot, dim, key, kpart, "
                     "pageviews) VALUES (%s, %s, false, 'page', '/', 0, 1)",
                     (website_id, now.date()))


def _rows_by_table(pg_dsn: str, website_id: str) -> dict[str, int]:
    """Rows about this website in every table that has a website_id column."""
    with psycopg.connect(pg_dsn) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT c.table_name FROM information_schema.columns c "
            "JOIN pg_class p ON p.relname = c.table_name "
            "WHERE c.column_name = 'website_id' AND c.table_schema = 'public' "
            "AND p.relkind IN ('r', 'p') AND NOT p.relispartition")]
        return {t: conn.execute(
            psycopg.sql.SQL("SELECT count(*) FROM {} WHERE website_id = %s").format(
                psycopg.sql.Identifier(t)), (website_id,)).fetchone()[0] for t in tables}


def test_website_delete_cascades_to_events_and_aggregates(world: World, pg_dsn: str) -> None:
    site = world.new_site(world.account_a)
    _seed_traffic(pg_dsn, site["id"])
    before = _rows_by_table(pg_dsn, site["id"])
    assert before["events"] == before["agg_site_daily"] == before["agg_dim_daily"] == 1
    _ok(world.api.request("DELETE", f"/api/v1/websites/{site['id']}", key=world.admin_key))
    assert set(_rows_by_table(pg_dsn, site["id"]).values()) == {0}


def test_account_delete_cascades_to_everything(world: World, pg_dsn: str) -> None:
    account = world.new_account()
    user = world.new_user(account)
    site = world.new_site(account)
    _seed_traffic(pg_dsn, site["id"])
    before = _rows_by_table(pg_dsn, site["id"])
    assert before["events"] == before["agg_site_daily"] == before["agg_dim_daily"] == 1
    _ok(world.api.request("DELETE", f"/api/v1/accounts/{account}", key=world.admin_key))
    assert set(_rows_by_table(pg_dsn, site["id"]).values()) == {0}
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM users WHERE account_id = %s",
                            (account,)).fetchone()[0] == 0
    assert world.api.request("GET", "/api/v1/websites", key=user["apiKey"]).status == 401


def test_unknown_route_and_wrong_method(world: World) -> None:
    resp = world.api.request("GET", "/api/v1/nothing-here")
    assert resp.status == 404 and resp.json["error"]["code"] == "NOT_FOUND"
    resp = world.api.request("PUT", "/api/v1/websites", {}, key=world.admin_key)
    assert resp.status == 405 and resp.json["error"]["code"] == "METHOD_NOT_ALLOWED"
    assert resp.headers["Allow"] == "GET, POST"
    # A wrong method answers 405 even without a key.
    resp = world.api.request("POST", "/api/v1/users/x/api-key", {})
    assert resp.status == 405 and resp.json["error"]["code"] == "METHOD_NOT_ALLOWED"
