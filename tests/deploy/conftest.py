"""The deployment tools, installed (or found cached) once per session."""

from __future__ import annotations

import pytest

from tests.deploy.deploylib import install_tools


@pytest.fixture(scope="session")
def tool_env() -> dict[str, str]:
    env, _ = install_tools()
    return env
