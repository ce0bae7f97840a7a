"""Offline checks of k8s/ (the Kafka, PostgreSQL and Redis the chart's defaults point at):
valid manifests, the kustomization, Strimzi in KRaft mode, topics as the code declares
them, and the chart's defaults wired to these services."""

from __future__ import annotations

from collections import Counter

import pytest
import yaml

from tests.deploy.deploylib import K8S, KUBE_VERSIONS, chart_defaults, load_k8s, validate_object


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
