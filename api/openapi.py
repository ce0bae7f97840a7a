"""The OpenAPI 3.1 document of the whole TinyTrail HTTP contract.

Served at `GET /api/v1/openapi.json`. It covers the API process's routes and the
collector's (`/api/v1/collect`, `/js/tracker.js`, marked `x-tinytrail-process:
collector`). `tests/api/test_api_openapi.py` compares its paths and methods with the
routes `make_app` mounts, so that document and code cannot drift.

Over 400 lines on purpose: it is data (one schema per route and report), kept in one
module so the whole contract reads top to bottom; splitting it would scatter the
contract without simplifying any logic.
"""

from __future__ import annotations

from typing import Any

from tinytrail import __version__

J = dict[str, Any]
ERROR_STATUSES = {
    400: ("INVALID_PAYLOAD", "Malformed JSON or missing/invalid fields"),
    401: ("UNAUTHORIZED", "Missing or invalid X-API-KEY header"),
    403: ("FORBIDDEN", "Valid API key but insufficient permissions"),
    404: ("NOT_FOUND", "Resource does not exist (or belongs to another account)"),
    405: ("METHOD_NOT_ALLOWED", "Method not supported on this path"),
    429: ("RATE_LIMITED", "Rate limit exceeded; see Retry-After"),
    500: ("INTERNAL_ERROR", "Unexpected server error"),
    503: ("SERVICE_UNAVAILABLE", "Postgres cannot be reached right now (restarting, down, "
          "connection lost, pool exhausted) or a query ran past the API's statement_timeout "
          "and was cancelled; nothing is wrong with the request: retry after Retry-After"),
}
ISO_MS = {"type": "string", "format": "date-time", "examples": ["2026-01-15T10:30:00.000Z"]}
UUID = {"type": "string", "format": "uuid"}
DATE = {"type": "string", "format": "date", "examples": ["2026-03-18"]}


def ref(name: str) -> J:
    return {"$ref": f"#/components/schemas/{name}"}


def obj(props: J, required: list[str] | None = None, **extra: Any) -> J:
    out: J = {"type": "object", "properties": props, **extra}
    if required:
        out["required"] = required
    return out


def arr(items: J) -> J:
    return {"type": "array", "items": items}


def success(data: J, description: str = "OK") -> J:
    schema = obj({"status": {"const": "success"}, "data": data}, ["status", "data"])
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def errors(*statuses: int) -> J:
    out: J = {}
    for s in statuses:
        code, text = ERROR_STATUSES[s]
        resp: J = {"description": f"{code}: {text}",
                   "content": {"application/json": {"schema": ref("Error")}}}
        if s == 429:
            resp["headers"] = {"Retry-After": {"schema": {"type": "integer"},
                                               "description": "seconds until the next window"}}
        elif s == 503:
            resp["headers"] = {"Retry-After": {"schema": {"type": "integer"},
                                               "description": "seconds to wait before retrying"}}
        out[str(s)] = resp
    return out


def body(schema: J, required: bool = True) -> J:
    return {"required": required, "content": {"application/json": {"schema": schema}}}


def path_id(description: str) -> J:
    return {"name": "id", "in": "path", "required": True, "schema": UUID,
            "description": description}


def query(name: str, schema: J, description: str, required: bool = False) -> J:
    return {"name": name, "in": "query", "required": required, "schema": schema,
            "description": description}


def op(summary: str, tag: str, responses: J, *, auth: str | None = None, **extra: Any) -> J:
    out: J = {"summary": summary, "tags": [tag], "responses": responses, **extra}
    if auth:
        out["security"] = [{"ApiKey": []}]
        out["x-tinytrail-role"] = auth
    else:
        out["security"] = []
    return out


PROTECTED = (401, 429, 500, 503)
ADMIN = (401, 403, 429, 500, 503)

COMMON_REPORT_PARAMS = [
    query("website_id", UUID, "Target website", required=True),
    query("period", {"enum": ["yesterday", "today", "7d", "30d", "90d", "12m", "ytd", "all"],
                     "default": "7d"}, "Predefined period (ends today UTC, except yesterday)"),
    query("start_date", DATE, "Custom start (YYYY-MM-DD); with end_date, overrides period"),
    query("end_date", DATE, "Custom end (YYYY-MM-DD), inclusive; at most 3 years after start"),
    query("include_bots", {"enum": ["true", "false"], "default": "false"},
          "\"true\" to include bot traffic"),
    query("content_group", {"type": "string"}, "Filter by content group name"),
    query("format", {"enum": ["json", "csv"], "default": "json"},
          "csv: text/csv attachment (RFC 4180, formula cells prefixed with ')"),
]
COUNTRY = query("country", {"type": "string", "pattern": "^[A-Z]{2}$", "examples": ["DE"]},
                "Only visitors from this country (ISO 3166-1 alpha-2, looked up by the "
                "collector from the client address; not with content_group on summary)")
LOCATIONS_DESCRIPTION = (
    "Visits by the country of each visit's first event. The collector looks the client "
    "address up in an offline IP-to-country database before hashing it; only the "
    "ISO 3166-1 alpha-2 code is kept, never the address. Visits without a country "
    "(private, reserved or unlisted addresses) form one row with null country and name. "
    "Country names: pycountry (ISO 3166-1). IP geolocation by DB-IP "
    "(https://db-ip.com), bundled data: DB-IP IP to Country Lite, June 2026, "
    "CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/). An operator who points "
    "TINYTRAIL_COUNTRY_DB at another database must give that database's attribution "
    "instead. content_group is not available for this report (400).")
COMPARE = query("compare", {"enum": ["previous_period", "yoy"]}, "Comparison period")
PAGING = [
    query("page", {"type": "integer", "minimum": 1, "default": 1}, "Page (min 1)"),
    query("per_page", {"type": "integer", "minimum": 1, "maximum": 500, "default": 50},
          "Rows per page (1-500)"),
]
PERIOD = obj({"start": DATE, "end": DATE}, ["start", "end"])


def paginated(row: J) -> J:
    return obj({"period": PERIOD, "page": {"type": "integer"}, "per_page": {"type": "integer"},
                "rows": arr(row)}, ["period", "page", "per_page", "rows"])


def report(summary: str, data: J, params: list[J], csv: str | None) -> J:
    responses: J = success(data)
    if csv:
        responses["content"]["text/csv"] = {"schema": {"type": "string"},
                                            "x-csv-columns": csv.split(", ")}
    return {"get": op(summary, "Reports", {"200": responses, **errors(400, *PROTECTED, 404)},
                      auth="user", parameters=[*COMMON_REPORT_PARAMS, *params])}


def _described(path: J, description: str) -> J:
    path["get"]["description"] = description
    return path


def _without(path: J, param: str) -> J:
    """The operation without the query parameter `param` (a common one it refuses)."""
    path["get"]["parameters"] = [p for p in path["get"]["parameters"] if p["name"] != param]
    return path


def _metric() -> J:
    return obj({"value": {"type": "number"}, "previous": {"type": "number"},
                "change_pct": {"type": ["number", "null"]}}, ["value"])


def _reports() -> J:
    counts = {"type": "integer"}
    return {
        "/api/v1/reports/summary": report(
            "Summary metrics with optional comparison",
            obj({"period": PERIOD, "comparison": {"type": "string"},
                 "metrics": obj({k: _metric() for k in (
                     "visits", "unique_visitors", "pageviews", "bounce_rate",
                     "avg_session_duration_sec")})}, ["period", "metrics"]),
            [COMPARE, COUNTRY], "metric, value, previous, change_pct"),
        "/api/v1/reports/pages": report(
            "Pages by pageviews",
            paginated(obj({"path": {"type": "string"},
                           "contentGroup": {"type": ["string", "null"]},
                           "pageviews": counts, "uniquePageviews": counts})),
            [*PAGING, COUNTRY], "path, contentGroup, pageviews, uniquePageviews"),
        "/api/v1/reports/locations": _without(_described(report(
            "Visits by country",
            paginated(obj({"country": {"type": ["string", "null"], "pattern": "^[A-Z]{2}$"},
                           "countryName": {"type": ["string", "null"]}, "visits": counts},
                          ["country", "countryName", "visits"])),
            PAGING, "country, countryName, visits"), LOCATIONS_DESCRIPTION), "content_group"),
        "/api/v1/reports/sources": report(
            "Traffic sources grouped by channel, referrer domain or UTM",
            paginated({"oneOf": [
                obj({"channel": {"type": "string"}, "visits": counts}),
                obj({"referrer": {"type": "string"}, "visits": counts}),
                obj({"utmSource": {"type": ["string", "null"]},
                     "utmMedium": {"type": ["string", "null"]},
                     "utmCampaign": {"type": ["string", "null"]}, "visits": counts}),
            ]}),
            [*PAGING, query("group_by", {"enum": ["channel", "domain", "utm"],
                                         "default": "channel"}, "Grouping")],
            "channel|referrer|utmSource, utmMedium, utmCampaign, visits"),
        "/api/v1/reports/devices": report(
            "Device, browser, OS and screen breakdown",
            obj({"period": PERIOD,
                 "device_types": arr(obj({"deviceType": {"type": "string"}, "visits": counts})),
                 "browsers": arr(obj({"browserFamily": {"type": "string"}, "visits": counts})),
                 "os_families": arr(obj({"osFamily": {"type": "string"}, "visits": counts})),
                 "screen_resolutions": arr(obj({"bucket": {"enum": [
                     "320-375", "376-768", "769-1024", "1025-1440", "1441+", "unknown"]},
                     "visits": counts}))}),
            [], "deviceType, visits"),
        "/api/v1/reports/flow": report(
            "Landing and exit pages",
            obj({"period": PERIOD,
                 "landing_pages": arr(obj({"path": {"type": "string"}, "entries": counts})),
                 "exit_pages": arr(obj({"path": {"type": "string"}, "exits": counts}))}),
            PAGING, "path, entries"),
        "/api/v1/reports/funnel": report(
            "Ordered multi-step funnel (a step starting with / is a page path, otherwise an "
            "event type or custom event name)",
            obj({"period": PERIOD, "funnel": arr(obj({
                "step": {"type": "string"}, "sessions": counts,
                "conversion_rate": {"type": "number"}}))}),
            [{"name": "steps[]", "in": "query", "required": True, "style": "form",
              "explode": True, "schema": {"type": "array", "items": {"type": "string"},
                                          "minItems": 2},
              "description": "Ordered funnel steps (at least 2)"}], None),
        "/api/v1/reports/realtime": {"get": op(
            "Last 30 minutes of traffic", "Reports",
            {"200": success(obj({
                "active_visitors": counts,
                "top_pages": arr(obj({"path": {"type": "string"}, "visitors": counts})),
                "events_by_type": arr(obj({"eventType": {"type": "string"}, "count": counts})),
            })), **errors(400, *PROTECTED, 404)},
            auth="user", parameters=[query("website_id", UUID, "Target website", True)])},
        "/api/v1/reports/custom-events": report(
            "Custom events by name",
            paginated(obj({"name": {"type": "string"}, "count": counts})),
            [*PAGING, query("event_name", {"type": "string"}, "Filter by custom event name")],
            "name, count"),
        "/api/v1/reports/timeseries": report(
            "Daily series of one metric",
            obj({"period": PERIOD, "metric": {"type": "string"}, "path": {"type": "string"},
                 "series": arr(obj({"date": DATE, "value": {"type": "number"}}))}),
            [query("metric", {"enum": [
                "visits", "pageviews", "unique_pageviews", "bounce_rate",
                "avg_session_duration", "landing_page_entries", "exit_page_exits"],
                "default": "pageviews"}, "Metric to plot"),
             query("path", {"type": "string"}, "Only this page path; omit for the whole site")],
            "date, value"),
    }


def _schemas() -> J:
    content_group = obj({"name": {"type": "string", "minLength": 1, "maxLength": 100},
                         "pattern": {"type": "string", "minLength": 1, "maxLength": 2048,
                                     "description": (
                                         "Glob on the canonical path: * any run, ? one "
                                         "character. Stored in canonical form (%-escapes "
                                         "decoded, NFC, #!/ as #/), which must be 1-200 "
                                         "characters with at most 8 wildcards; a website's "
                                         "patterns may cost at most 2000 together (the "
                                         "characters other than wildcards between each "
                                         "pattern's first and last *)")}},
                        ["name", "pattern"], additionalProperties=False)
    return {
        "Error": obj({"status": {"const": "error"},
                      "error": obj({"code": {"enum": sorted(
                          {c for c, _ in ERROR_STATUSES.values()} | {"PAYLOAD_TOO_LARGE",
                                                                     "SERVICE_UNAVAILABLE"})},
                                    "message": {"type": "string"}}, ["code", "message"])},
                     ["status", "error"]),
        "Account": obj({"id": UUID, "name": {"type": "string"}, "createdAt": ISO_MS},
                       ["id", "name", "createdAt"]),
        "User": obj({"id": UUID, "accountId": UUID, "email": {"type": ["string", "null"]},
                     "role": {"enum": ["admin", "user"]}, "createdAt": ISO_MS},
                    ["id", "accountId", "email", "role", "createdAt"]),
        "UserWithKey": obj({"id": UUID, "accountId": UUID, "email": {"type": ["string", "null"]},
                            "role": {"enum": ["admin", "user"]},
                            "apiKey": {"type": "string", "pattern": "^tt_[A-Za-z0-9_-]{32}$"},
                            "createdAt": ISO_MS},
                           ["id", "accountId", "email", "role", "apiKey", "createdAt"]),
        "ContentGroup": content_group,
        "Website": obj({"id": UUID, "accountId": UUID, "domain": {"type": "string"},
                        "contentGroups": arr(ref("ContentGroup")),
                        "excludedIps": arr({"type": "string"}), "createdAt": ISO_MS},
                       ["id", "accountId", "domain", "contentGroups", "excludedIps",
                        "createdAt"]),
    }


def _website_fields() -> J:
    return {
        "domain": {"type": "string", "maxLength": 255,
                   "description": "Bare host name (letters, digits, hyphens, dots)"},
        "content_groups": arr(ref("ContentGroup")),
        "excluded_ips": arr({"type": "string",
                             "description": "IPv4/IPv6 address or CIDR range"}),
    }


def _admin_paths() -> J:
    return {
        "/api/v1/accounts": {
            "get": op("List accounts", "Accounts",
                      {"200": success(arr(ref("Account"))), **errors(*ADMIN)}, auth="admin"),
            "post": op("Create an account", "Accounts",
                       {"201": success(ref("Account"), "Created"), **errors(400, *ADMIN)},
                       auth="admin",
                       requestBody=body(obj({"name": {"type": "string", "minLength": 1,
                                                      "maxLength": 200}}, ["name"],
                                            additionalProperties=False))),
        },
        "/api/v1/accounts/{id}": {
            "delete": op("Delete an account with its users, websites, events and aggregates",
                         "Accounts", {"200": success(ref("Account"), "The deleted account"),
                                      **errors(400, *ADMIN, 404)},
                         auth="admin", parameters=[path_id("Account ID")]),
        },
        "/api/v1/users": {
            "get": op("List users (no keys)", "Users",
                      {"200": success(arr(ref("User"))), **errors(*ADMIN)}, auth="admin"),
            "post": op("Create a user; the response is the only one that shows its key",
                       "Users", {"201": success(ref("UserWithKey"), "Created"),
                                 **errors(400, *ADMIN)}, auth="admin",
                       requestBody=body(obj({"account_id": UUID,
                                             "role": {"enum": ["admin", "user"]},
                                             "email": {"type": ["string", "null"],
                                                       "maxLength": 254}},
                                            ["account_id", "role"],
                                            additionalProperties=False))),
        },
        "/api/v1/users/{id}/api-key": {
            "get": op("Read a user's API key", "Users",
                      {"200": success(obj({"id": UUID, "apiKey": {"type": "string"}},
                                          ["id", "apiKey"])), **errors(400, *ADMIN, 404)},
                      auth="admin", parameters=[path_id("User ID")]),
        },
        "/api/v1/users/{id}": {
            "delete": op("Delete a user", "Users",
                         {"200": success(ref("User"), "The deleted user"),
                          **errors(400, *ADMIN, 404)},
                         auth="admin", parameters=[path_id("User ID")]),
        },
        "/api/v1/websites": {
            "get": op("List websites (admins: all; users: their account's)", "Websites",
                      {"200": success(arr(ref("Website"))), **errors(*PROTECTED)}, auth="user"),
            "post": op("Create a website", "Websites",
                       {"201": success(ref("Website"), "Created"),
                        **errors(400, *PROTECTED, 403)}, auth="user",
                       requestBody=body(obj({**_website_fields(), "account_id": {
                           **UUID, "description": "Admin only (a user may repeat its own)"}},
                           ["domain"], additionalProperties=False))),
        },
        "/api/v1/websites/{id}": {
            "patch": op("Update a website (at least one field)", "Websites",
                        {"200": success(ref("Website")), **errors(400, *PROTECTED, 404)},
                        auth="user", parameters=[path_id("Website ID")],
                        requestBody=body(obj(_website_fields(), minProperties=1,
                                             additionalProperties=False))),
            "delete": op("Delete a website with its events and aggregates", "Websites",
                         {"200": success(ref("Website"), "The deleted website"),
                          **errors(400, *PROTECTED, 404)},
                         auth="user", parameters=[path_id("Website ID")]),
        },
        "/api/v1/admin/aggregate": {
            "post": op("Rebuild one UTC day's aggregates from stored events (idempotent)",
                       "Admin", {"200": success(obj({"message": {
                           "type": "string",
                           "examples": ["Aggregation completed for 2026-03-18"]}})),
                           **errors(400, *ADMIN)}, auth="admin",
                       requestBody=body(obj({"date": {**DATE, "description":
                                                      "Default: yesterday (UTC)"}},
                                            additionalProperties=False), required=False)),
        },
    }


def _public_paths() -> J:
    health_ok = obj({"status": {"const": "ok"}, "db": {"const": "connected"},
                     "version": {"type": "string"}}, ["status", "db", "version"])
    health_bad = obj({"status": {"const": "degraded"}, "db": {"const": "disconnected"}},
                     ["status", "db"])
    collect_body = obj({
        "website_id": UUID, "event_type": {"enum": [
            "page_view", "close_tab", "scroll_25", "scroll_50", "scroll_75", "outbound_link",
            "custom"]},
        "url": {"type": "string", "maxLength": 2048}, "path": {"type": "string"},
        "referrer": {"type": "string"}, "screen_width": {"type": "number"},
        "screen_height": {"type": "number"}, "properties": {"type": "object"},
        "utm_source": {"type": "string"}, "utm_medium": {"type": "string"},
        "utm_campaign": {"type": "string"}}, ["website_id", "event_type", "url", "path"])
    collector = {"x-tinytrail-process": "collector"}
    return {
        "/health": {"get": op(
            "Health check (no envelope)", "Health",
            {"200": {"description": "Database reachable",
                     "content": {"application/json": {"schema": health_ok}}},
             "503": {"description": "Database unreachable",
                     "content": {"application/json": {"schema": health_bad}}}})},
        "/api/v1/openapi.json": {"get": op("This document", "Health", {"200": {
            "description": "OpenAPI 3.1", "content": {"application/json": {
                "schema": {"type": "object"}}}}})},
        "/api/v1/collect": {
            **collector,
            "options": op("CORS preflight", "Collection", {"204": {"description": "No Content"}}),
            "post": op("Ingest one event (rate limit 10 / 10 s per client IP)", "Collection", {
                "202": {"description": "Accepted (durably in Kafka)", "content": {
                    "application/json": {"schema": obj({"status": {"const": "accepted"}})}}},
                "204": {"description": "Silently dropped (unknown website, bot, excluded IP)"},
                **errors(400), "413": {"description": "PAYLOAD_TOO_LARGE",
                                       "content": {"application/json": {"schema": ref("Error")}}},
                **errors(429),
                "503": {"description": "SERVICE_UNAVAILABLE: Kafka cannot take the event",
                        "content": {"application/json": {"schema": ref("Error")}}}},
                requestBody=body(collect_body)),
        },
        "/js/tracker.js": {
            **collector,
            "get": op("Tracker script", "Collection", {"200": {
                "description": "Cached 24 h",
                "content": {"application/javascript": {"schema": {"type": "string"}}}}}),
        },
    }


def build_document() -> J:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "TinyTrail API",
            "version": __version__,
            "description": "Privacy-first, cookie-less web analytics. Every response except "
            "/health uses the envelope {status, data} or {status, error: {code, message}}. "
            "Protected routes: X-API-KEY header, 60 requests per 60 s per key.",
        },
        "servers": [{"url": "http://localhost:8000"}],
        "components": {
            "securitySchemes": {"ApiKey": {"type": "apiKey", "in": "header",
                                           "name": "X-API-KEY"}},
            "schemas": _schemas(),
        },
        "paths": {**_public_paths(), **_admin_paths(), **_reports()},
    }
