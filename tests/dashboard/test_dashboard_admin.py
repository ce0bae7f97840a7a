"""The dashboard's administration and budget in headless Chromium against the real
stack: websites created, edited and deleted through the page; an admin's accounts,
users and a new key shown once; sign-in messages and backing off on 429; requests per
minute with the realtime panel on (on the page's clock)."""

from __future__ import annotations

import time
from collections import Counter

import pytest
import requests

from tests.dashboard.browser import Chromium
from tests.dashboard.stack import (
    TIGHT_LIMIT,
    TIGHT_WINDOW,
    Stack,
)
from tests.dashboard.ui import clean, open_dashboard, read, settle

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.kafka, pytest.mark.browser,
              pytest.mark.slow]


async def test_websites_create_edit_delete(stack: Stack, browser: Chromium) -> None:
    b = browser
    account = stack.call("POST", "/api/v1/accounts", {"name": "site owners"}).json()["data"]
    key = stack.new_key("user", account["id"])
    await open_dashboard(b, stack.api, key)
    # A fresh account has no website: the page goes to the websites view.
    await b("wait", sel="form.website-form")
    assert await b("eval", expr="!!document.querySelector('nav a[href=\"?view=admin\"]')") \
        is False  # users see no admin view

    async def submit(domain: str, groups: str = "", ips: str = "") -> None:
        await b("fill", sel="form.website-form input[name=domain]", value=domain)
        await b("fill", sel="form.website-form textarea[name=content_groups]", value=groups)
        await b("fill", sel="form.website-form textarea[name=excluded_ips]", value=ips)
        await b("click", sel="form.website-form button[type=submit]")

    async def field_error(field: str) -> str:
        sel = f'form.website-form [data-field="{field}"] .field-error'
        await b("waitFn", expr=f"document.querySelector('{sel}').textContent !== ''")
        return await b("eval", expr=f"document.querySelector('{sel}').textContent")  # type: ignore[no-any-return]

    # The API's 400 messages, at the field they are about.
    bad = [("https://x.example/", "", "", "domain", {"domain": "https://x.example/"}),
           ("ok.example", "Blog: blog/*", "", "groups",
            {"domain": "ok.example", "content_groups": [{"name": "Blog", "pattern": "blog/*"}]}),
           ("ok.example", "", "10.0.0.300", "ips",
            {"domain": "ok.example", "excluded_ips": ["10.0.0.300"]})]
    for domain, groups, ips, field, body in bad:
        await submit(domain, groups, ips)
        shown = await field_error(field)
        want = stack.call("POST", "/api/v1/websites", body, key=key, base=stack.ref)
        assert want.status_code == 400 and shown == want.json()["error"]["message"], shown
        assert await b("eval", expr=f"document.querySelector('form.website-form "
                                    f"[data-field=\"{field}\"] [aria-invalid=true]') !== null")
    await submit("shop.example", "Blog: /blog/*\nDocs: /docs/*", "203.0.113.9\n10.1.2.3/8")
    await b("wait", sel="[data-site]")
    listed = stack.get("/api/v1/websites", key=key)
    assert [w["domain"] for w in listed] == ["shop.example"]
    w = listed[0]
    assert w["contentGroups"] == [{"name": "Blog", "pattern": "/blog/*"},
                                  {"name": "Docs", "pattern": "/docs/*"}]
    assert w["excludedIps"] == ["203.0.113.9", "10.0.0.0/8"]
    snippet = await b("eval", expr=f"document.querySelector('[data-site=\"{w['id']}\"] "
                                   f".copy-text').textContent")
    assert snippet == (f'<script defer data-id="{w["id"]}" '
                       f'src="{stack.api}/js/tracker.js"></script>')

    # Edit: the domain and the groups.
    await b("click", sel=f'[data-site="{w["id"]}"] button.edit')
    await b("fill", sel=f'[data-site="{w["id"]}"] input[name=domain]', value="shop-2.example")
    await b("fill", sel=f'[data-site="{w["id"]}"] textarea[name=content_groups]',
            value="Blog: /blog/*")
    await b("click", sel=f'[data-site="{w["id"]}"] button[type=submit]')
    await b("waitFn", expr="document.body.textContent.includes('Saved shop-2.example')")
    w2 = stack.get("/api/v1/websites", key=key)[0]
    assert (w2["domain"], w2["contentGroups"]) == ("shop-2.example",
                                                   [{"name": "Blog", "pattern": "/blog/*"}])
    await b("wait", sel=f'[data-site="{w["id"]}"] button.delete')
    # Delete: cancel keeps it, confirm deletes it.
    await b("click", sel=f'[data-site="{w["id"]}"] button.delete')
    await b("click", sel=f'[data-site="{w["id"]}"] button.cancel')
    assert len(stack.get("/api/v1/websites", key=key)) == 1
    await b("click", sel=f'[data-site="{w["id"]}"] button.delete')
    await b("click", sel=f'[data-site="{w["id"]}"] button.confirm')
    await b("waitFn", expr="document.body.textContent.includes('Deleted shop-2.example')")
    assert stack.get("/api/v1/websites", key=key) == []
    assert await b("eval", expr="document.querySelectorAll('[data-site]').length") == 0
    await clean(b, expected=(400, 403))


async def test_admin_sees_accounts_and_users_and_a_new_key_once(stack: Stack, browser: Chromium
                                                                ) -> None:
    b = browser
    await open_dashboard(b, stack.api, stack.new_key())
    await b("click", sel='nav a[href="?view=admin"]')
    await b("wait", sel="[data-list=accounts] table")
    name = "Acme dashboard test"
    await b("fill", sel="input[name=name]", value=name)
    await b("click", sel="form.inline-form:has(input[name=name]) button[type=submit]")
    await b("waitFn", expr=f"document.querySelector('[data-list=accounts]').textContent"
                           f".includes({name!r})")
    account = next(a for a in stack.get("/api/v1/accounts") if a["name"] == name)
    await b("select", sel="select[name=account_id]", value=account["id"])
    await b("fill", sel="input[name=email]", value="new@acme.example")
    await b("click", sel="form.inline-form:has(select[name=role]) button[type=submit]")
    await b("wait", sel=".notice .copy-text")
    key = await b("eval", expr="document.querySelector('.notice .copy-text').textContent")
    assert key.startswith("tt_")
    r = requests.get(stack.ref + "/api/v1/websites", headers={"X-API-KEY": key}, timeout=10)
    assert r.status_code == 200 and r.json()["data"] == []
    users = [u for u in stack.get("/api/v1/users") if u["accountId"] == account["id"]]
    assert [u["email"] for u in users] == ["new@acme.example"]
    assert key not in await b("eval", expr="document.querySelector('[data-list=users]')"
                                           ".textContent")
    await clean(b)


def spend(stack: Stack, key: str) -> None:
    """Use up `key`'s budget on the tight API (5 per 8 s, fixed windows) with more than
    3 s of the window left (Retry-After 4 or more), so that the next requests surely
    get 429."""
    while True:
        r = requests.get(stack.tight + "/api/v1/websites", headers={"X-API-KEY": key},
                         timeout=10)
        if r.status_code == 429:
            if int(r.headers["Retry-After"]) >= 4:
                return
            time.sleep(int(r.headers["Retry-After"]) + 0.2)  # too close to the next window
        else:
            assert r.status_code == 200, r.text


async def test_sign_in_messages_and_backing_off_on_429(stack: Stack, browser: Chromium) -> None:
    b = browser
    # 401: a wrong key.
    await b("open", width=1024, height=800)
    await b("goto", url=f"{stack.api}/")  # GET / redirects to the dashboard
    assert (await b("url")).endswith("/dashboard/")
    await b("fill", sel="#key", value="tt_" + "x" * 32)
    await b("click", sel="form.signin button[type=submit]")
    await b("waitFn", expr="document.querySelector('form.signin [role=alert]').textContent")
    msg = await b("eval", expr="document.querySelector('form.signin [role=alert]').textContent")
    assert "not accepted (401)" in msg
    assert await b("eval", expr="sessionStorage.length") == 0

    # 403: a user key that believes it is an admin (a stale role) asks for accounts.
    user = stack.new_key("user")
    await open_dashboard(b, stack.api, user)
    await b("eval", expr="sessionStorage.setItem('tinytrail.role', 'admin')")
    await b("goto", url=f"{stack.api}/dashboard/?view=admin")
    await b("wait", sel="main .view-error")
    assert "(403)" in await b("eval", expr="document.querySelector('main .view-error')"
                                           ".textContent")
    # Sign-out clears the key.
    await b("click", sel="button.signout")
    await b("wait", sel="form.signin")
    assert await b("eval", expr="sessionStorage.getItem('tinytrail.apiKey')") is None

    # 429 at sign-in (the tight API allows 5 requests per 8 s): spend the budget first.
    key = stack.new_key()
    spend(stack, key)
    await b("goto", url=f"{stack.tight}/dashboard/")
    await b("fill", sel="#key", value=key)
    await b("click", sel="form.signin button[type=submit]")
    await b("waitFn", expr="document.querySelector('form.signin [role=alert]').textContent")
    msg = await b("eval", expr="document.querySelector('form.signin [role=alert]').textContent")
    assert "Too many requests (429)" in msg and "Try again in" in msg, msg
    # The API's own words: which limit it was (here the key's, at 5 per 8 s).
    assert f"rate limit of {TIGHT_LIMIT} requests per {TIGHT_WINDOW} s exceeded" in msg, msg

    # 429 while loading panels: one pause for all of them, no request until Retry-After
    # has passed, then every panel loads.
    # (Signed in on the websites view, then the budget is spent, then Reports.)
    key = stack.new_key()
    await b("open", width=1440, height=2400)
    await b("goto", url=f"{stack.tight}/dashboard/?view=websites&site={stack.sites[0]['id']}")
    await b("fill", sel="#key", value=key)
    await b("click", sel="form.signin button[type=submit]")
    await b("wait", sel="[data-list=websites]")
    spend(stack, key)
    await b("clearLog")
    await b("click", sel='nav a[href="?view=reports"]')
    await b("wait", sel=".banner", timeout=20000)
    banner = await b("eval", expr="document.querySelector('.banner').textContent")
    assert "Rate limit reached" in banner, banner
    for panel in ("summary", "timeseries", "realtime", "pages"):
        await b("wait", sel=f'[data-panel="{panel}"][data-state=ready]', timeout=90000)
    log = await b("log")
    limited = [r for r in log["responses"] if r["status"] == 429]
    assert limited and all(r["retryAfter"] for r in limited)
    for r in limited:  # waiting, not hammering: no request until Retry-After has passed
        until = r["t"] + 1000 * int(r["retryAfter"])
        # Slack: requests the page sent together with the one that got 429 can reach the
        # driver's log a few ms after that answer (300 ms), and the page and the driver
        # see the same answer at slightly different times (500 ms before the end).
        early = [x for x in log["requests"] if r["t"] + 300 < x["t"] < until - 500]
        assert early == [], (r, early)
    # Nothing failed loudly: the 429 answers are the only console errors (Chromium logs
    # every non-2xx response), and each panel asked at most three times.
    assert all("429" in e for e in log["errors"]), log["errors"]
    summaries = [r for r in log["requests"] if "/reports/summary" in r["url"]]
    assert 1 <= len(summaries) <= 3
    await b("clearLog")


async def test_requests_per_minute_with_realtime_on(stack: Stack, browser: Chromium) -> None:
    """The page's first minute and its hidden 12 s pass on Playwright's fake clock (the
    dashboard's timers, Date and performance are the page's clock's); requests are real
    and counted by the time the page made them (its fetches, stamped in the page)."""
    b = browser
    site = stack.sites[0]["id"]
    await b("open", width=1440, height=900, clock=True)
    await b("goto", url=f"{stack.api}/dashboard/?site={site}&step=/&step=/pricing")
    await b("fill", sel="#key", value=stack.new_key())
    await b("clearLog")
    t0 = await b("eval", expr="Date.now()")  # the page's clock
    await b("click", sel="form.signin button[type=submit]")
    await settle(b, "summary")
    # A person scrolls through every panel during the first minute.
    for panel in ("timeseries", "realtime", "pages", "locations", "sources", "devices", "flow",
                  "events", "funnel"):
        await read(b, panel)
    await b("advance", until=t0 + 60_000, step=250, timeout=120_000)
    fetches = await b("eval", expr="window.__ttFetches")
    minute = [f for f in fetches if 0 <= f["t"] - t0 < 60_000]
    realtime = [f for f in minute if "/reports/realtime" in f["url"]]
    # The page's log holds every request the browser sent (none bypassed it).
    sent = Counter(r["url"] for r in (await b("log"))["requests"])
    assert sent <= Counter(f["url"] for f in fetches if f["t"] >= t0), (sent, fetches)
    print(f"requests in the first minute: {len(minute)} ({len(realtime)} realtime polls)")
    assert len(minute) < 30, [f["url"] for f in minute]
    assert 6 <= len(realtime) <= 7, realtime  # every 10 s while visible
    # A hidden tab polls nothing; visible again, it polls at once.
    await b("hidden", on=True)
    await b("clearLog")
    hidden_at = await b("eval", expr="Date.now()")
    await b("advance", ms=12_000, step=250, timeout=60_000)
    assert [r for r in (await b("log"))["requests"] if "/realtime" in r["url"]] == []
    assert [f for f in await b("eval", expr="window.__ttFetches")
            if f["t"] >= hidden_at and "/realtime" in f["url"]] == []
    await b("hidden", on=False)
    for _ in range(50):  # polled at once (not after the next 10 s tick)
        if [r for r in (await b("log"))["requests"] if "/realtime" in r["url"]]:
            break
        await b("sleep", ms=100)
    else:
        raise AssertionError("no realtime request after the tab became visible")
    await settle(b, "realtime")
    await clean(b)

