"""Offline checks of everything that deploys TinyTrail: the Helm chart, k8s/,
the Dockerfile and docker-compose.yml.

No cluster and no Docker engine are needed. `infra/deploy-tools.sh` installs
helm, helm-unittest and kubernetes-validate when they are missing (the first
run builds helm from source, a few minutes; later runs find them cached).

Schema validation: core Kubernetes kinds are validated strictly (unknown fields
are errors) against the JSON schemas that kubernetes-validate bundles, for the
oldest supported (1.30) and the newest bundled version. Custom resources
(Strimzi, CloudNativePG, Prometheus Operator) have no bundled schema: for those
only the envelope (apiVersion, kind, metadata, spec) and the fields TinyTrail
depends on are checked.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from collections import Counter
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

# The first run may compile helm and helm-unittest (minutes); pyproject's 300 s
# default would cut that off.
pytestmark = pytest.mark.timeout(1800)

CRD_GROUPS = {"kafka.strimzi.io", "postgresql.cnpg.io", "monitoring.coreos.com"}
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


# --- tools ----------------------------------------------------------------------

def _install_tools(offline: bool = False) -> tuple[dict[str, str], str]:
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


@pytest.fixture(scope="module")
def tool_env() -> dict[str, str]:
    env, _ = _install_tools()
    return env


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


# --- validation helpers ----------------------------------------------------------

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


# --- tools install ---------------------------------------------------------------

def test_deploy_tools_are_cached_and_idempotent(tool_env: dict[str, str]) -> None:
    # The fixture already installed them. A second run must find everything in place:
    # nothing rebuilt (same files, no build or install logged) and nothing fetched (it
    # runs without Go and with every package index off, so a fetch would fail it).
    bin_dir = Path(tool_env["HELM_PLUGINS"]).parent / "bin"
    before = {p.name: p.stat().st_mtime_ns for p in bin_dir.iterdir()}
    env, stderr = _install_tools(offline=True)
    assert env["HELM_PLUGINS"] == tool_env["HELM_PLUGINS"]
    assert "building" not in stderr and "installing" not in stderr, stderr
    assert {p.name: p.stat().st_mtime_ns for p in bin_dir.iterdir()} == before
    assert "v3.22.0" in run(env, "helm", "version", "--short").stdout
    # helm-unittest answers as a helm plugin, wired without a download.
    assert "unittest" in run(env, "helm", "plugin", "list").stdout


# --- chart -----------------------------------------------------------------------

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


# --- k8s/ ------------------------------------------------------------------------

@pytest.mark.parametrize("kube", KUBE_VERSIONS)
def test_k8s_manifests_are_valid(kube: str) -> None:
    docs = load_k8s()
    kinds = Counter(d["kind"] for _, d in docs)
    assert kinds == Counter({"Namespace": 1, "Kafka": 1, "KafkaNodePool": 1, "KafkaTopic": 2,
                             "Cluster": 1, "StatefulSet": 1, "Service": 1, "NetworkPolicy": 1})
    for _, d in docs:
        validate_object(d, kube)


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files
    assert kustomization["namespace"] == "tinytrail"


def test_strimzi_resources_are_kraft_and_wired_to_the_cluster() -> None:
    objs = {(d["kind"], d["metadata"]["name"]): d for _, d in load_k8s()}
    kafka = objs[("Kafka", "tinytrail")]
    pool = objs[("KafkaNodePool", "dual-role")]
    assert "zookeeper" not in kafka["spec"]
    assert kafka["metadata"]["annotations"]["strimzi.io/kraft"] == "enabled"
    assert kafka["metadata"]["annotations"]["strimzi.io/node-pools"] == "enabled"
    assert "topicOperator" in kafka["spec"]["entityOperator"]
    assert set(pool["spec"]["roles"]) == {"controller", "broker"}
    assert pool["metadata"]["labels"]["strimzi.io/cluster"] == "tinytrail"
    replicas = pool["spec"]["replicas"]
    assert kafka["spec"]["kafka"]["config"]["min.insync.replicas"] < replicas
    for (kind, _), d in objs.items():
        if kind == "KafkaTopic":
            assert d["metadata"]["labels"]["strimzi.io/cluster"] == "tinytrail"
            assert d["spec"]["replicas"] <= replicas


def test_k8s_topics_match_what_the_code_declares() -> None:
    from tinytrail.settings import CoreSettings
    from tinytrail.topics import declared_topics

    config = chart_defaults()["config"]
    settings = CoreSettings(topic_prefix=config["topicPrefix"],
                            events_partitions=config["eventsPartitions"])
    want = {t.name: (t.partitions, t.retention_ms, t.cleanup_policy)
            for t in declared_topics(settings)}
    have = {d["spec"]["topicName"]: (d["spec"]["partitions"],
                                     d["spec"]["config"]["retention.ms"],
                                     d["spec"]["config"]["cleanup.policy"])
            for _, d in load_k8s() if d["kind"] == "KafkaTopic"}
    assert have == want
    assert have[f"{config['topicPrefix']}.events.raw"][1] == 7 * 24 * 3600 * 1000
    topic_replicas = {d["spec"]["replicas"] for _, d in load_k8s() if d["kind"] == "KafkaTopic"}
    assert topic_replicas == {config["topicReplication"]}


def test_chart_defaults_point_at_the_k8s_services() -> None:
    objs = {(d["kind"], d["metadata"]["name"]): d for _, d in load_k8s()}
    values = chart_defaults()
    kafka_name = next(name for kind, name in objs if kind == "Kafka")
    plain = next(listener for listener in objs[("Kafka", kafka_name)]["spec"]["kafka"]["listeners"]
                 if not listener["tls"])
    # Strimzi names the bootstrap Service <cluster>-kafka-bootstrap.
    assert values["config"]["kafkaBootstrap"] == f"{kafka_name}-kafka-bootstrap:{plain['port']}"
    # CloudNativePG writes the app user's credentials to <cluster>-app, key "uri".
    cluster = next(name for kind, name in objs if kind == "Cluster")
    assert values["secrets"]["databaseUrlFromSecret"] == {"name": f"{cluster}-app", "key": "uri"}
    redis_service = objs[("Service", "tinytrail-redis")]
    assert values["secrets"]["redisUrl"].startswith(
        f"redis://{redis_service['metadata']['name']}:{redis_service['spec']['ports'][0]['port']}/")
    # Only the chart's pods may reach Redis.
    policy = objs[("NetworkPolicy", "tinytrail-redis")]
    peer = policy["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"]
    assert peer == {"app.kubernetes.io/name": "tinytrail"}


def test_redis_statefulset_is_restricted() -> None:
    objs = {(d["kind"], d["metadata"]["name"]): d for _, d in load_k8s()}
    spec = objs[("StatefulSet", "tinytrail-redis")]["spec"]["template"]["spec"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    container = spec["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert "/data" in {m["mountPath"] for m in container["volumeMounts"]}


# --- image and compose -----------------------------------------------------------

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
