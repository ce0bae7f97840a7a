"""The nine report endpoints (one module each) and their shared parameter parsing.

`report_routes(deps)` returns the Tornado routes that `api.app.make_app` mounts.
"""

from __future__ import annotations

from typing import Any


def report_routes(deps: Any) -> list[tuple[str, type, dict[str, Any]]]:
    """Routes for /api/v1/reports/*; filled in by the reports modules."""
    return []
