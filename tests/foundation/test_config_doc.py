"""docs/CONFIG.md names every setting of every process and every renamed variable still
read (`RENAMED_ENV`), and nothing else."""

from __future__ import annotations

import os
import re

from api.settings import ApiSettings
from collector.settings import CollectorSettings
from streams.settings import WorkerSettings
from tinytrail.settings import RENAMED_ENV

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_config_doc_matches_the_settings_classes() -> None:
    with open(os.path.join(ROOT, "docs", "CONFIG.md")) as f:
        documented = set(re.findall(r"`TINYTRAIL_([A-Z0-9_]+)`", f.read()))
    fields = {
        name.upper()
        for cls in (CollectorSettings, WorkerSettings, ApiSettings)
        for name in cls.model_fields
    }
    # Old names still read for one release are documented as such, and only they.
    renamed = {old.removeprefix("TINYTRAIL_") for old in RENAMED_ENV}
    assert fields - documented == set(), "settings missing from docs/CONFIG.md"
    assert renamed - documented == set(), "renamed variables missing from docs/CONFIG.md"
    assert documented - fields - renamed == set(), \
        "docs/CONFIG.md names settings that do not exist"


def _cells(row: str) -> list[str]:
    """The cells of one Markdown table row (`| a | b |` -> ["a", "b"]); `\\|` is not a border."""
    return [c.strip() for c in re.split(r"(?<!\\)\|", row.strip())[1:-1]]


def test_every_config_table_row_has_as_many_cells_as_its_header() -> None:
    """A row with an extra `||` renders its notes as a fourth, headerless cell that most
    renderers drop, so the notes vanish: every row must match its table's header."""
    with open(os.path.join(ROOT, "docs", "CONFIG.md")) as f:
        lines = f.read().splitlines()
    bad: list[str] = []
    width = 0
    for prev, line in zip(["", *lines], lines, strict=False):
        if not line.startswith("|"):
            width = 0
            continue
        if not prev.startswith("|"):
            width = len(_cells(line))
            continue
        if len(_cells(line)) != width:
            bad.append(line)
    assert bad == [], f"rows whose cell count differs from their header: {bad}"
