"""The ten report endpoints (one module each; `handlers.HANDLERS` lists them) and their
shared parameter parsing.

`report_routes(deps)` returns the Tornado routes that `api.app.make_app` mounts.
The query logic lives in one module per report (`summary.py`, `pages.py`, …) and
is independent of Tornado; `handlers.py` is the thin HTTP layer.
"""

from __future__ import annotations

from typing import Any


def report_routes(deps: Any) -> list[tuple[str, type, dict[str, Any]]]:
    """Routes for /api/v1/reports/*."""
    from api.reports.handlers import HANDLERS  # Tornado layer imported only when mounted

    return [(f"/api/v1/reports/{name}", handler, {"deps": deps})
            for name, handler in HANDLERS.items()]
