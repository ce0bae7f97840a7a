"""`infra/deploy-tools.sh`: helm, helm-unittest and kubernetes-validate are installed when
missing (the first run builds helm from source, a few minutes) and found cached after."""

from __future__ import annotations

from pathlib import Path

from tests.deploy.deploylib import TOOLS_TIMEOUT, install_tools, run

pytestmark = TOOLS_TIMEOUT


def test_deploy_tools_are_cached_and_idempotent(tool_env: dict[str, str]) -> None:
    # The fixture already installed them. A second run must find everything in place:
    # nothing rebuilt (same files, no build or install logged) and nothing fetched (it
    # runs without Go and with every package index off, so a fetch would fail it).
    bin_dir = Path(tool_env["HELM_PLUGINS"]).parent / "bin"
    before = {p.name: p.stat().st_mtime_ns for p in bin_dir.iterdir()}
    env, stderr = install_tools(offline=True)
    assert env["HELM_PLUGINS"] == tool_env["HELM_PLUGINS"]
    assert "building" not in stderr and "installing" not in stderr, stderr
    assert {p.name: p.stat().st_mtime_ns for p in bin_dir.iterdir()} == before
    assert "v3.22.0" in run(env, "helm", "version", "--short").stdout
    # helm-unittest answers as a helm plugin, wired without a download.
    assert "unittest" in run(env, "helm", "plugin", "list").stdout
