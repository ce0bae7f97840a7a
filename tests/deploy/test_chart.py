"""Offline checks of the Helm chart (helm/tinytrail): lint, renders valid for the oldest
supported (1.30) and the newest bundled Kubernetes, restricted pods, every setting
reaching the processes, configuration checksums, the values schema refusing bad values,
and the helm-unittest suites. No cluster is needed; the tools come from the session's
`tool_env` (tests/deploy/conftest.py)."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from tests.deploy.deploylib import (
    CHART,
    CI_VALUES,
    KUBE_VERSIONS,
    SECRET_KEY_SET,
    TOOLS_TIMEOUT,
    VALUES_CASES,
    VALUES_IDS,
    by_kind,
    chart_defaults,
    helm_template,
    pod_specs,
    run,
    validate_object,
    values_args,
)

pytestmark = TOOLS_TIMEOUT


@pytest.mark.parametrize("values_file", VALUES_CASES, ids=VALUES_IDS)
def test_helm_lint_strict(tool_env: dict[str, str], values_file: Path | None) -> None:
    proc = run(tool_env, "helm", "lint", "--strict", str(CHART), *values_args(values_file))
    assert "1 chart(s) linted, 0 chart(s) failed" in proc.stdout
    assert "[WARNING]" not in proc.stdout


def test_ci_values_cover_the_optional_parts() -> None:
    names = {p.name for p in CI_VALUES}
    assert {"default-values.yaml", "existing-secret-values.yaml", "production-values.yaml"} <= names


@pytest.mark.parametrize("kube", KUBE_VERSIONS)
@pytest.mark.parametrize("values_file", VALUES_CASES, ids=VALUES_IDS)
def test_rendered_chart_is_valid_kubernetes(tool_env: dict[str, str], values_file: Path | None,
                                            kube: str) -> None:
    docs = helm_template(tool_env, *values_args(values_file), kube=kube)
    kinds = Counter(d["kind"] for d in docs)
    assert kinds["Deployment"] == 3 and kinds["Job"] == 1 and kinds["ConfigMap"] == 1, kinds
    for d in docs:
        validate_object(d, kube)
    names = [(d["kind"], d["metadata"]["name"]) for d in docs]
    assert len(names) == len(set(names)), f"duplicate objects: {names}"


@pytest.mark.parametrize("values_file", VALUES_CASES, ids=VALUES_IDS)
def test_every_pod_is_restricted(tool_env: dict[str, str], values_file: Path | None) -> None:
    docs = helm_template(tool_env, *values_args(values_file))
    specs = pod_specs(docs)
    assert len(specs) == 5  # collector, api, worker, migrate Job, helm test Pod
    for where, spec in specs:
        assert spec["securityContext"]["runAsNonRoot"] is True, where
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, where
        assert spec["automountServiceAccountToken"] is False, where
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for c in spec["containers"]:
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False, where
            assert sc["readOnlyRootFilesystem"] is True, where
            assert sc["capabilities"] == {"drop": ["ALL"]}, where
            assert {"cpu", "memory"} <= set(c["resources"]["limits"]), where
            # A read-only root needs a writable /tmp.
            if where.startswith(("Deployment", "Job")):
                tmp = [m for m in c["volumeMounts"] if m["mountPath"] == "/tmp"]
                assert tmp and "emptyDir" in volumes[tmp[0]["name"]], where


def test_pods_get_every_setting(tool_env: dict[str, str]) -> None:
    docs = by_kind(helm_template(tool_env, *SECRET_KEY_SET))
    config = set(docs["ConfigMap"]["tt-tinytrail-config"]["data"])
    expected_config = {
        "TINYTRAIL_KAFKA_BOOTSTRAP", "TINYTRAIL_TOPIC_PREFIX", "TINYTRAIL_EVENTS_PARTITIONS",
        "TINYTRAIL_LOG_FORMAT", "TINYTRAIL_LOG_LEVEL", "TINYTRAIL_COLLECTOR_PORT",
        "TINYTRAIL_COLLECTOR_METRICS_PORT",
        "TINYTRAIL_API_PORT", "TINYTRAIL_API_METRICS_PORT", "TINYTRAIL_WORKER_METRICS_PORT",
        "TINYTRAIL_WORKER_HEARTBEAT_FILE",
        "TINYTRAIL_WORKER_DATA_DIR", "TINYTRAIL_TRUSTED_PROXIES", "TINYTRAIL_COLLECT_RATE_LIMIT",
        "TINYTRAIL_COLLECT_RATE_WINDOW", "TINYTRAIL_API_RATE_LIMIT", "TINYTRAIL_API_RATE_WINDOW",
        "TINYTRAIL_RETENTION_DAYS", "TINYTRAIL_WORKER_STATEMENT_TIMEOUT",
        "TINYTRAIL_API_STATEMENT_TIMEOUT", "TINYTRAIL_WORKER_BATCH_STUCK_SECONDS",
        "TINYTRAIL_WORKER_SHUTDOWN_TIMEOUT", "TINYTRAIL_WEBSITE_REFRESH_INTERVAL",
        "TINYTRAIL_WEBSITE_NEGATIVE_TTL",
    }
    assert expected_config <= config, expected_config - config
    for name, dep in docs["Deployment"].items():
        container = dep["spec"]["template"]["spec"]["containers"][0]
        assert container["envFrom"] == [{"configMapRef": {"name": "tt-tinytrail-config"}}], name
        secret_env = {e["name"] for e in container["env"]
                      if "secretKeyRef" in e.get("valueFrom", {})}
        # Only the API handles API keys, so only it holds the key that encrypts them.
        expected = {"TINYTRAIL_DATABASE_URL", "TINYTRAIL_REDIS_URL"}
        if name == "tt-tinytrail-api":
            expected.add("TINYTRAIL_SECRET_KEY")
        assert secret_env == expected, name


def test_the_website_cache_values_reach_both_cache_holders(tool_env: dict[str, str]) -> None:
    # One ConfigMap entry per setting, read under the same name by the collector and
    # the worker (tinytrail/settings.py WebsiteCacheSettings).
    from collector.settings import CollectorSettings
    from streams.settings import WorkerSettings

    docs = by_kind(helm_template(tool_env, *SECRET_KEY_SET, "--set",
                                 "config.websiteRefreshInterval=4",
                                 "--set", "config.websiteNegativeTtl=3"))
    data = docs["ConfigMap"]["tt-tinytrail-config"]["data"]
    for cls in (CollectorSettings, WorkerSettings):
        s = cls(**{f: data[f"TINYTRAIL_{f.upper()}"] for f in
                   ("website_refresh_interval", "website_negative_ttl")})
        assert (s.website_refresh_interval, s.website_negative_ttl) == (4.0, 3.0), cls


def test_the_worker_ends_before_its_pod_is_killed(tool_env: dict[str, str]) -> None:
    """Finding 7's bound with the defaults: after SIGTERM the worker ends within its
    `worker_shutdown_timeout` (20 s) plus the 5 s tests/faults/test_worker_shutdown.py
    allows (which runs it with the harness's shorter timeout), before Kubernetes kills
    it: the chart passes the same 20 s and gives the pod more grace than that (and
    more than Kubernetes' own default of 30 s, for a manifest that leaves it out)."""
    from streams.settings import WorkerSettings
    from tests.system_harness import WORKER_SHUTDOWN_MARGIN as MARGIN

    default = WorkerSettings.model_fields["worker_shutdown_timeout"].default
    assert default == 20.0
    docs = by_kind(helm_template(tool_env, *SECRET_KEY_SET))
    config = docs["ConfigMap"]["tt-tinytrail-config"]["data"]
    assert float(config["TINYTRAIL_WORKER_SHUTDOWN_TIMEOUT"]) == default
    grace = docs["Deployment"]["tt-tinytrail-worker"]["spec"]["template"]["spec"][
        "terminationGracePeriodSeconds"]
    assert default + MARGIN <= 30 <= grace, grace


def test_checksum_rolls_pods_only_when_configuration_changes(tool_env: dict[str, str]) -> None:
    def checksums(*extra: str) -> set[str]:
        docs = helm_template(tool_env, *SECRET_KEY_SET, *extra)
        return {d["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
                for d in docs if d["kind"] == "Deployment"}

    base = checksums()
    assert len(base) == 1  # every component sees the same configuration
    assert checksums() == base  # deterministic
    assert checksums("--set", "config.logLevel=DEBUG") != base  # ConfigMap change
    assert checksums("--set", "secrets.redisUrl=redis://other:6379/0") != base  # Secret change
    assert checksums("--set", "collector.resources.limits.cpu=2") == base  # not configuration


def test_existing_secret_renders_no_secret(tool_env: dict[str, str]) -> None:
    docs = helm_template(tool_env, "-f", str(CHART / "ci" / "existing-secret-values.yaml"))
    assert [d for d in docs if d["kind"] == "Secret"] == []
    for d in docs:
        if d["kind"] == "Deployment":
            refs = {e["valueFrom"]["secretKeyRef"]["name"]
                    for e in d["spec"]["template"]["spec"]["containers"][0]["env"]
                    if "valueFrom" in e}
            assert refs == {"tinytrail-prod"}, d["metadata"]["name"]


@pytest.mark.parametrize(
    ("setting", "complaint"),
    [
        ("collector.replicaCount=two", "/collector/replicaCount"),
        ("image.pullPolicy=Sometimes", "/image/pullPolicy"),
        ("secrets.secretKey=too-short", "/secrets/secretKey"),
        ("config.logLevel=verbose", "/config/logLevel"),
        ("config.eventsPartitions=0", "/config/eventsPartitions"),
        ("config.trustedProxies={not-a-cidr}", "/config/trustedProxies/0"),
        ("ingress.host=Not_A_Host", "/ingress/host"),
        ("worker.heartbeatFile=relative/path", "/worker/heartbeatFile"),
        ("worker.statementTimeoutSeconds=-1", "/worker/statementTimeoutSeconds"),
        ("api.statementTimeoutSeconds=forever", "/api/statementTimeoutSeconds"),
        ("config.websiteRefreshInterval=6", "/config/websiteRefreshInterval"),
        ("config.websiteRefreshInterval=0", "/config/websiteRefreshInterval"),
        ("config.websiteRefreshInterval=0.5", "/config/websiteRefreshInterval"),
        ("config.websiteNegativeTtl=-1", "/config/websiteNegativeTtl"),
        ("collector.countryDb.mountPath=/tmp", "/collector/countryDb/mountPath"),
        ("collector.countryDb.mountPath=/", "/collector/countryDb/mountPath"),
        ("collector.countryDb.mountPath=/tmp/geo", "/collector/countryDb/mountPath"),
        ("colector.replicaCount=2", "colector"),  # a typo'd key is not silently ignored
    ],
)
def test_bad_values_fail_at_template_time(tool_env: dict[str, str], setting: str,
                                          complaint: str) -> None:
    proc = run(tool_env, "helm", "template", "tt", str(CHART), "--set", setting, check=False)
    assert proc.returncode != 0, f"--set {setting} rendered"
    assert "values don't meet the specifications of the schema" in proc.stderr, proc.stderr
    assert complaint in proc.stderr, proc.stderr


def test_good_values_of_the_same_shape_render(tool_env: dict[str, str]) -> None:
    # The control for the test above: the same keys with sound values pass.
    for setting in ("collector.replicaCount=3", "image.pullPolicy=Always",
                    "config.logLevel=DEBUG", "config.trustedProxies={10.0.0.0/8}",
                    "worker.heartbeatFile=/tmp/hb", "worker.statementTimeoutSeconds=5",
                    "api.statementTimeoutSeconds=0", "config.websiteRefreshInterval=5",
                    "config.websiteNegativeTtl=0",
                    "collector.countryDb.mountPath=/srv/geo"):
        assert helm_template(tool_env, "--set", setting), setting


def test_helm_unittest_suites_pass(tool_env: dict[str, str]) -> None:
    suites = sorted((CHART / "tests").glob("*_test.yaml"))
    assert len(suites) >= 6
    proc = run(tool_env, "helm", "unittest", str(CHART), check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    m = re.search(r"Test Suites:\s+(\d+) passed, (\d+) total", proc.stdout)
    assert m and m.group(1) == m.group(2) == str(len(suites)), proc.stdout
    m = re.search(r"Tests:\s+(\d+) passed, (\d+) total", proc.stdout)
    assert m and m.group(1) == m.group(2) and int(m.group(1)) >= 40, proc.stdout


def test_schema_is_valid_json_and_closed() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert schema["additionalProperties"] is False
    # Every top-level default has a schema entry (a new value without one would
    # be refused by the closed schema the moment someone sets it).
    assert set(chart_defaults()) <= set(schema["properties"])
