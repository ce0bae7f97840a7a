"""The image (infra/Dockerfile, .dockerignore) and infra/docker-compose.yml, checked as
files: no Docker engine is needed."""

from __future__ import annotations

import re

import yaml

from tests.deploy.deploylib import ROOT


def test_dockerfile_builds_one_non_root_image_of_the_package() -> None:
    text = (ROOT / "infra" / "Dockerfile").read_text()
    stages = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\S+))?", text, re.M)
    assert len(stages) >= 2, "multi-stage build"
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim", text, re.M)
    assert re.search(r'^ENTRYPOINT \["tinytrail"\]$', text, re.M)
    user = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert user and user[-1].split(":")[0] not in ("0", "root")
    assert user[-1].split(":")[0].isdigit(), "numeric UID so runAsNonRoot can verify it"
    # Every package that pyproject ships is copied into the build stage.
    pyproject = (ROOT / "pyproject.toml").read_text()
    include = re.search(r"include\s*=\s*\[([^\]]*)\]", pyproject).group(1)
    packages = {p.strip(' "*') for p in include.split(",") if p.strip()}
    copied = set(re.findall(r"^COPY (\w+) \./\1$", text, re.M))
    assert packages and packages <= copied, packages - copied
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    assert ignore[[i for i, line in enumerate(ignore) if not line.startswith("#")][0]] == "**"
    assert {f"!{p}/" for p in packages} <= set(ignore)


def test_compose_runs_migrate_before_the_processes() -> None:
    compose = yaml.safe_load((ROOT / "infra" / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"kafka", "postgres", "redis", "migrate", "collector", "worker", "api"} == set(services)
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert "broker,controller" in services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"]
    assert services["migrate"]["command"] == ["migrate"]
    for name in ("collector", "worker", "api"):
        assert services[name]["command"] == [name]
        assert services[name]["depends_on"] == {
            "migrate": {"condition": "service_completed_successfully"}}
        env = services[name]["environment"]
        assert env["TINYTRAIL_KAFKA_BOOTSTRAP"] == "kafka:9092"
        assert env["TINYTRAIL_DATABASE_URL"].startswith("postgresql://")
        assert "@postgres:5432/" in env["TINYTRAIL_DATABASE_URL"]
    for dep in ("kafka", "postgres", "redis"):
        assert services["migrate"]["depends_on"][dep] == {"condition": "service_healthy"}
