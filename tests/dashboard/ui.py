"""What the tests read off the page and how they format the API's numbers to compare.

`read(b, panel)` scrolls a panel into view, waits until it has loaded
(`data-state=ready`) and returns its tables (cells by the API field name they show),
metric cards, funnel bars and realtime figure. `num`, `pct` and `duration` format a
number exactly as the dashboard does, so a table cell can be compared with the
API's value.
"""

from __future__ import annotations

import math
from typing import Any

from tests.dashboard.browser import Chromium

READ = """(pid) => {
  const p = document.querySelector(`[data-panel="${pid}"]`);
  const rows = (root) => [...root.querySelectorAll('tbody tr')].map((tr) => Object.fromEntries(
    [...tr.querySelectorAll('td')].map((td) => [td.dataset.col, td.textContent])));
  const out = { rows: rows(p), lists: {}, metrics: {}, funnel: [], text: p.textContent,
    state: p.dataset.state, status: p.querySelector('.panel-status').textContent };
  p.querySelectorAll('[data-list]').forEach((l) => { out.lists[l.dataset.list] = rows(l); });
  p.querySelectorAll('[data-metric]').forEach((m) => {
    const v = m.querySelector('.value');
    const c = m.querySelector('.change');
    out.metrics[m.dataset.metric] = { value: v.dataset.value, text: v.textContent,
      change: c ? c.dataset.change : null };
  });
  p.querySelectorAll('[data-step]').forEach((s) => out.funnel.push(Object.fromEntries(
    [...s.querySelectorAll('[data-col]')].map((c) => [c.dataset.col, c.textContent]))));
  const big = p.querySelector('.big');
  out.big = big ? big.dataset.value : null;
  out.period = p.querySelector('.note.period')?.textContent ?? null;
  out.comparison = p.querySelector('.note.comparison')?.textContent ?? null;
  out.pressed = [...p.querySelectorAll('[aria-pressed=true]')].map((x) => x.dataset.tab);
  out.page = p.querySelector('.page-no')?.textContent ?? null;
  return out;
}"""


async def read(b: Chromium, panel: str) -> dict[str, Any]:
    await settle(b, panel)
    return await b("eval", expr=f"({READ})({panel!r})")  # type: ignore[no-any-return]


async def settle(b: Chromium, panel: str) -> None:
    """Scroll `panel` into view (panels load lazily) and wait until it has loaded."""
    sel = f'[data-panel="{panel}"]'
    await b("wait", sel=sel, state="attached")
    await b("eval", expr=f"document.querySelector('{sel}').scrollIntoView()")
    try:
        await b("wait", sel=f"{sel}[data-state=ready]")
    except AssertionError as exc:
        state = await b("eval", expr=f"[document.querySelector('{sel}').dataset.state, "
                                     f"document.querySelector('{sel} .panel-status').textContent]")
        raise AssertionError(f"panel {panel} not ready: {state}") from exc


def num(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, float) and not v.is_integer():
        return f"{v:,.2f}".rstrip("0").rstrip(".")
    return f"{int(v):,}"


def pct(v: Any) -> str:
    return "—" if v is None else f"{num(v)}%"


def duration(v: Any) -> str:
    if v is None:
        return "—"
    s = math.floor(v + 0.5)
    m = s // 60
    return f"{m}m {s % 60:02d}s" if m else f"{s}s"


def cells(rows: list[dict[str, Any]], columns: dict[str, Any]) -> list[dict[str, str]]:
    """API rows as the table shows them: `columns` maps field -> formatter (None = text)."""
    return [{k: (f(r[k]) if f else ("—" if r[k] is None else str(r[k])))
             for k, f in columns.items()} for r in rows]


async def open_dashboard(b: Chromium, base: str, key: str, *, width: int = 1440,
                         height: int = 900, query: str = "") -> None:
    """A fresh browser context, the dashboard at `query`, signed in with `key`."""
    await b("open", width=width, height=height)
    await b("goto", url=f"{base}/dashboard/{query}")
    await b("fill", sel="#key", value=key)
    await b("click", sel="form.signin button[type=submit]")
    await b("wait", sel="header.top")


async def clean(b: Chromium, expected: tuple[int, ...] = ()) -> None:
    """No console error, no CSP violation, no alert/confirm/prompt call. Chromium logs
    every non-2xx answer as a console error; `expected` names the statuses the test
    provoked on purpose (a user key's 403 on the admin probe, the API's 400s)."""
    log = await b("log")
    allowed = tuple(f"the server responded with a status of {s} " for s in expected)
    errors = [e for e in log["errors"] if not (allowed and any(a in e for a in allowed))]
    assert errors == [], errors
    assert await b("eval", expr="window.__ttCsp") == []
    assert await b("eval", expr="window.__ttAlerts") == []
