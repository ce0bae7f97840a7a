"""docs/CONFIG.md names every setting of every process, and nothing that is not one."""

from __future__ import annotations

import os
import re

from api.settings import ApiSettings
from collector.settings import CollectorSettings
from streams.settings import WorkerSettings

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_config_doc_matches_the_settings_classes() -> None:
    with open(os.path.join(ROOT, "docs", "CONFIG.md")) as f:
        documented = set(re.findall(r"`TINYTRAIL_([A-Z0-9_]+)`", f.read()))
    fields = {
        name.upper()
        for cls in (CollectorSettings, WorkerSettings, ApiSettings)
        for name in cls.model_fields
    }
    assert fields - documented == set(), "settings missing from docs/CONFIG.md"
    assert documented - fields == set(), "docs/CONFIG.md names settings that do not exist"
