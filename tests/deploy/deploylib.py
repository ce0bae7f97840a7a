"""Shared by the deployment tests (tests/deploy/): where the chart and k8s/ are, the tool
installer (`infra/deploy-tools.sh`), helm runs, and the checks of rendered objects
(strict Kubernetes schema validation for core kinds, the envelope only for custom
resources: Strimzi, CloudNativePG and Prometheus Operator have no bundled schema).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "tinytrail"
K8S = ROOT / "k8s"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
VALUES_CASES = [None, *CI_VALUES]  # None: the chart's defaults alone
VALUES_IDS = [p.name if p else "defaults" for p in VALUES_CASES]
KUBE_VERSIONS = ["1.30.0", kubernetes_validate.latest_version()]
# Fixed key: renders are deterministic (otherwise the chart generates one).
SECRET_KEY_SET = ["--set", "secrets.secretKey=pytest-secret-key-0123456789abcdefghij"]
# The first run may compile helm and helm-unittest (minutes); pyproject's 300 s default
# would cut that off: the modules that use `tool_env` set this as their timeout.
TOOLS_TIMEOUT = pytest.mark.timeout(1800)

CRD_GROUPS = {"kafka.strimzi.io", "postgresql.cnpg.io", "monitoring.coreos.com"}
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def install_tools(offline: bool = False) -> tuple[dict[str, str], str]:
    """Run `infra/deploy-tools.sh env`; returns (the environment it exports, its stderr).

    `offline=True` runs it with no Go on PATH, Go's proxy off and pip's index off, so
    any attempt to build or download fails the run instead of quietly succeeding.
    """
    run_env = dict(os.environ)
    if offline:
        run_env["PATH"] = os.pathsep.join(
            d for d in run_env.get("PATH", "").split(os.pathsep)
            if d and shutil.which("go", path=d) is None
        )
        run_env.update(GOPROXY="off", GOFLAGS="-mod=mod", PIP_NO_INDEX="1")
    out = subprocess.run(
        [str(ROOT / "infra" / "deploy-tools.sh"), "env"],
        check=True, capture_output=True, text=True, timeout=1800, env=run_env,
    )
    env = dict(os.environ)
    for line in out.stdout.splitlines():
        # export NAME=value  (value shell-quoted, "$PATH" kept literally)
        name, _, value = line.removeprefix("export ").partition("=")
        value = " ".join(shlex.split(value))
        env[name] = value.replace("$PATH", os.environ.get("PATH", ""))
    return env, out.stderr


def run(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(args), env=env, capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        pytest.fail(f"{' '.join(args)} exited {proc.returncode}:\n{proc.stderr}\n{proc.stdout}")
    return proc


def helm_template(env: dict[str, str], *extra: str, kube: str = "1.30.0") -> list[dict[str, Any]]:
    out = run(env, "helm", "template", "tt", str(CHART), "--namespace", "analytics",
              "--kube-version", kube, *extra).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def values_args(values_file: Path | None) -> list[str]:
    return ["-f", str(values_file)] if values_file else []


def chart_defaults() -> dict[str, Any]:
    return yaml.safe_load((CHART / "values.yaml").read_text())


def _group(api_version: str) -> str:
    return api_version.split("/")[0] if "/" in api_version else ""


def validate_object(obj: dict[str, Any], kube: str) -> None:
    """Strict schema validation for core kinds, envelope checks for custom resources."""
    assert isinstance(obj.get("apiVersion"), str) and obj["apiVersion"], obj
    assert isinstance(obj.get("kind"), str) and obj["kind"], obj
    meta = obj.get("metadata")
    assert isinstance(meta, dict), f"{obj['kind']}: metadata must be a mapping"
    name = meta.get("name")
    assert isinstance(name, str) and len(name) <= 253 and DNS_SUBDOMAIN.match(name), (
        f"{obj['kind']}: bad metadata.name {name!r}")
    for field in ("labels", "annotations"):
        assert all(isinstance(v, str) for v in (meta.get(field) or {}).values()), (
            f"{obj['kind']}/{name}: {field} values must be strings")
    if _group(obj["apiVersion"]) in CRD_GROUPS:
        assert re.fullmatch(r"[a-z0-9.-]+/v[0-9]+((alpha|beta)[0-9]+)?", obj["apiVersion"])
        assert isinstance(obj.get("spec"), dict) and obj["spec"], f"{obj['kind']}/{name}: no spec"
        return
    try:
        kubernetes_validate.validate(obj, kube, strict=True)
    except kubernetes_validate.ValidationError as exc:
        path = "/".join(str(p) for p in exc.path)
        pytest.fail(f"{obj['kind']}/{name} invalid for Kubernetes {kube} at {path}: {exc.message}")
    except kubernetes_validate.SchemaNotFoundError as exc:
        pytest.fail(exc.message)


def pod_specs(docs: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    specs = []
    for d in docs:
        if d["kind"] in ("Deployment", "StatefulSet", "Job"):
            specs.append((f"{d['kind']}/{d['metadata']['name']}", d["spec"]["template"]["spec"]))
        elif d["kind"] == "Pod":
            specs.append((f"Pod/{d['metadata']['name']}", d["spec"]))
    return specs


def by_kind(docs: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for d in docs:
        out.setdefault(d["kind"], {})[d["metadata"]["name"]] = d
    return out


def load_k8s() -> list[tuple[Path, dict[str, Any]]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        docs += [(path, d) for d in yaml.safe_load_all(path.read_text()) if d]
    return docs
