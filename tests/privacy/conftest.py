"""The whole system on services of its own, shared with the other system suites."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.system_harness import System, release_system, shared_system


@pytest.fixture(scope="session")
def system() -> Iterator[System]:
    yield shared_system()
    release_system()
