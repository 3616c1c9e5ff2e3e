"""Kustomize overlays render, validate, are locked down, and grant Kafka exactly what code uses."""

from __future__ import annotations

import copy
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes_validate import utils as kv

from bekal.devtools import apache_kafka
from bekal.devtools.generated import all_consumers
from bekal.shared.cli import DEFAULT_PORTS, SERVICES
from bekal.shared.events.topics import (
    REGISTRY_PERSON_KEYS,
    TOPICS,
    dead_letter_topic,
    topic_config,
)

ROOT = Path(__file__).resolve().parents[2]
KUBECTL = Path(sys.executable).parent / "kubectl"
KUBERNETES_VERSION = "1.37.0"
OVERLAYS = {
    "corrections": ("bekal-corrections", {"registry"}),
    "industry": ("bekal-industry", {"training", "certification", "reporting"}),
    "local": ("bekal", set(SERVICES)),
}
STRIMZI_KINDS = {"KafkaTopic", "KafkaUser", "Kafka", "KafkaNodePool"}
PER_SERVICE_KINDS = {
    "Deployment",
    "Service",
    "ConfigMap",
    "ServiceAccount",
    "HorizontalPodAutoscaler",
    "PodDisruptionBudget",
    "NetworkPolicy",
    "Job",
}


@cache
def render(path: str) -> tuple[dict[str, Any], ...]:
    done = subprocess.run(
        [str(KUBECTL), "kustomize", str(ROOT / path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"kubectl kustomize {path} failed:\n{done.stderr}"
    return tuple(d for d in yaml.safe_load_all(done.stdout) if d)


def of_kind(docs: tuple[dict[str, Any], ...], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def named(docs: tuple[dict[str, Any], ...], kind: str, name: str) -> dict[str, Any]:
    found = [d for d in of_kind(docs, kind) if d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def pod_specs(docs: tuple[dict[str, Any], ...]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{d['kind']}/{d['metadata']['name']}", d["spec"]["template"]["spec"])
        for d in docs
        if d["kind"] in ("Deployment", "Job")
    ]


# --- rendering and schema validation -----------------------------------------------------------


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_overlay_renders_each_service_it_owns_in_its_namespace(overlay: str) -> None:
    namespace, services = OVERLAYS[overlay]
    docs = render(f"deploy/overlays/{overlay}")
    assert named(docs, "Namespace", namespace)
    deployed = {d["metadata"]["name"] for d in of_kind(docs, "Deployment")}
    assert deployed == services
    for doc in docs:
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == namespace, doc["metadata"]
    for service in services:
        kinds = {d["kind"] for d in docs if d["metadata"]["name"].startswith(service)}
        assert PER_SERVICE_KINDS <= kinds, f"{overlay}/{service} lacks {PER_SERVICE_KINDS - kinds}"
    assert not of_kind(docs, "Secret"), "overlays reference secrets, they never carry values"
    deny = named(docs, "NetworkPolicy", "default-deny")
    # The local overlay shares its namespace with Strimzi's pods, which bring their own policies.
    expected = {"matchLabels": {"app.kubernetes.io/part-of": "bekal"}} if overlay == "local" else {}
    assert deny["spec"]["podSelector"] == expected
    for service in services:
        labels = named(docs, "Deployment", service)["spec"]["template"]["metadata"]["labels"]
        assert labels.items() >= expected.get("matchLabels", {}).items()
    assert set(deny["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny["spec"] and "egress" not in deny["spec"]


@pytest.mark.parametrize("path", [f"deploy/overlays/{o}" for o in sorted(OVERLAYS)])
def test_every_core_object_validates_against_the_kubernetes_schemas(path: str) -> None:
    for doc in render(path):
        if doc["kind"] in STRIMZI_KINDS:
            continue
        kv.validate(doc, KUBERNETES_VERSION, strict=True)


def test_the_validator_rejects_a_broken_deployment() -> None:
    deployment = copy.deepcopy(of_kind(render("deploy/overlays/local"), "Deployment")[0])
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["pth"] = "/"
    with pytest.raises(kv.ValidationError):
        kv.validate(deployment, KUBERNETES_VERSION, strict=True)


# --- what every workload must have ---------------------------------------------------------------


@pytest.mark.parametrize("service", SERVICES)
def test_deployment_has_probes_limits_and_a_locked_down_security_context(service: str) -> None:
    docs = render("deploy/overlays/local")
    deployment = named(docs, "Deployment", service)
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    port = DEFAULT_PORTS[service]
    assert container["ports"] == [{"name": "http", "containerPort": port, "protocol": "TCP"}]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    limits = container["resources"]["limits"]
    assert {"cpu", "memory"} <= set(limits) and {"cpu", "memory"} <= set(
        container["resources"]["requests"]
    )
    assert pod["automountServiceAccountToken"] is False
    assert pod["serviceAccountName"] == service
    assert named(docs, "ServiceAccount", service)["automountServiceAccountToken"] is False
    config = named(docs, "ConfigMap", f"{service}-config")["data"]
    assert config["HTTP_PORT"] == str(port) and config["SERVICE_NAME"] == service
    hpa = named(docs, "HorizontalPodAutoscaler", service)
    assert hpa["spec"]["scaleTargetRef"]["name"] == service
    pdb = named(docs, "PodDisruptionBudget", service)
    assert pdb["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    job = named(docs, "Job", f"{service}-migrate")
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["bekal", "migrate", service]


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_every_pod_runs_non_root_read_only_without_capabilities(overlay: str) -> None:
    for where, pod in pod_specs(render(f"deploy/overlays/{overlay}")):
        assert pod["securityContext"]["runAsNonRoot"] is True, where
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", where
        for container in pod["containers"]:
            sc = container["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True, where
            assert sc["allowPrivilegeEscalation"] is False, where
            assert sc["capabilities"]["drop"] == ["ALL"], where
            assert sc["runAsUser"] != 0, where
            assert "add" not in sc["capabilities"], where
            refs = [e for e in container.get("env", []) if "value" in e]
            assert not refs, f"{where}: literal env values belong in the ConfigMap: {refs}"
            secrets = [s["secretRef"]["name"] for s in container["envFrom"] if "secretRef" in s]
            assert secrets, f"{where} takes no Secret reference (DATABASE_URL comes from one)"


@pytest.mark.parametrize("service", SERVICES)
def test_network_policy_allows_only_the_ingress_dns_database_kafka_and_sso(service: str) -> None:
    policy = named(render("deploy/overlays/local"), "NetworkPolicy", service)["spec"]
    assert policy["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": service}}
    assert set(policy["policyTypes"]) == {"Ingress", "Egress"}
    # The ingress controller, and Prometheus in the monitoring namespace (/metrics, with a token).
    sources = [rule["from"] for rule in policy["ingress"]]
    assert sources == [
        [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": name}}}]
        for name in ("ingress-nginx", "monitoring")
    ]
    for rule in policy["ingress"]:
        assert rule["ports"] == [{"protocol": "TCP", "port": DEFAULT_PORTS[service]}]
    egress_ports = sorted(p["port"] for rule in policy["egress"] for p in rule["ports"])
    assert egress_ports == [53, 53, 443, 5432, 9093]
    kafka_rule = next(r for r in policy["egress"] if r["ports"][0]["port"] == 9093)
    assert kafka_rule["to"][0]["podSelector"] == {"matchLabels": {"strimzi.io/cluster": "bekal"}}


# --- Kafka: topics and ACLs are what the catalogue and the subscriptions imply -------------------


def expected_acls() -> dict[str, set[tuple[str, str, str]]]:
    """(resource type, name, operation) per service, worked out here from the code."""
    wanted: dict[str, set[tuple[str, str, str]]] = {s: set() for s in SERVICES}
    for topic in TOPICS:
        wanted[topic.owner] |= {("topic", topic.name, "Write"), ("topic", topic.name, "Describe")}
    for group in all_consumers():
        dlq = dead_letter_topic(group.group)
        wanted[group.service] |= {("topic", dlq, "Write"), ("topic", dlq, "Describe")}
        wanted[group.service].add(("group", group.group, "Read"))
        for topic_name in group.topics:
            wanted[group.service] |= {
                ("topic", topic_name, "Read"),
                ("topic", topic_name, "Describe"),
            }
    # The person keys open names: only the services that print or show names read them.
    for service in ("training", "certification"):
        wanted[service] |= {
            ("topic", REGISTRY_PERSON_KEYS, "Read"),
            ("topic", REGISTRY_PERSON_KEYS, "Describe"),
        }
    for rules in wanted.values():
        if any(op == "Write" for _, _, op in rules):
            rules.add(("cluster", "", "IdempotentWrite"))
    return wanted


def test_reporting_cannot_read_the_person_keys() -> None:
    users = {u["metadata"]["name"]: u for u in of_kind(render("deploy/kafka"), "KafkaUser")}
    names = {
        acl["resource"].get("name")
        for acl in users["bekal-reporting"]["spec"]["authorization"]["acls"]
    }
    assert REGISTRY_PERSON_KEYS not in names


def test_kafka_topics_are_the_catalogue_and_every_dead_letter_topic() -> None:
    docs = render("deploy/kafka")
    topics = of_kind(docs, "KafkaTopic")
    names = [t["spec"]["topicName"] for t in topics]
    expected = {t.name for t in TOPICS} | {dead_letter_topic(g.group) for g in all_consumers()}
    assert sorted(names) == sorted(expected)
    for topic in topics:
        assert topic["apiVersion"] == "kafka.strimzi.io/v1beta2"
        assert topic["metadata"]["namespace"] == "kafka"
        assert topic["metadata"]["labels"]["strimzi.io/cluster"] == "bekal"
        assert topic["spec"]["partitions"] == 3
        assert topic["spec"]["replicas"] == 3


def test_kafka_topics_have_the_catalogue_settings_for_three_replicas() -> None:
    topics = {
        t["spec"]["topicName"]: t["spec"] for t in of_kind(render("deploy/kafka"), "KafkaTopic")
    }
    durable = {
        "min.insync.replicas": "2",
        "unclean.leader.election.enable": "false",
        "cleanup.policy": "delete",
    }
    for topic in TOPICS:
        config = topics[topic.name]["config"]
        assert config == topic_config(topic.name), topic.name
        if topic.name == REGISTRY_PERSON_KEYS:
            continue
        assert config == {**durable, "retention.ms": "-1"}, topic.name  # the whole history
    # The keys: compacted, and a destroyed key leaves the brokers well inside UU PDP's 3 x 24
    # hours (the compaction lag bounds when the cleaner must take it; its tombstone follows).
    keys = topics[REGISTRY_PERSON_KEYS]["config"]
    assert keys["cleanup.policy"] == "compact"
    assert int(keys["max.compaction.lag.ms"]) <= 24 * 3600 * 1000
    assert int(keys["delete.retention.ms"]) <= 24 * 3600 * 1000
    assert int(keys["segment.ms"]) <= int(keys["max.compaction.lag.ms"])
    for group in all_consumers():
        name = dead_letter_topic(group.group)
        config = topics[name]["config"]
        assert config == topic_config(name), name
        assert config == {**durable, "retention.ms": str(30 * 24 * 3600 * 1000)}, name


def test_each_service_user_may_write_only_what_it_owns_and_read_only_what_it_consumes() -> None:
    users = {u["metadata"]["name"]: u for u in of_kind(render("deploy/kafka"), "KafkaUser")}
    assert set(users) == {f"bekal-{s}" for s in SERVICES}
    wanted = expected_acls()
    for service in SERVICES:
        spec = users[f"bekal-{service}"]["spec"]
        assert spec["authentication"] == {"type": "scram-sha-512"}
        assert spec["authorization"]["type"] == "simple"
        granted = set()
        for acl in spec["authorization"]["acls"]:
            resource = acl["resource"]
            assert resource.get("patternType", "literal") == "literal", "no prefix wildcards"
            for operation in acl["operations"]:
                granted.add((resource["type"], resource.get("name", ""), operation))
        extra, missing = granted - wanted[service], wanted[service] - granted
        assert not extra and not missing, f"bekal-{service}: extra {extra}, missing {missing}"


@pytest.mark.parametrize("ministry", ["corrections", "industry"])
def test_each_ministry_declares_only_its_own_topics_and_users(ministry: str) -> None:
    docs = render(f"deploy/kafka/{ministry}")
    owners = {t.name: t.ministry for t in TOPICS}
    owners |= {
        dead_letter_topic(g.group): ("corrections" if g.service == "registry" else "industry")
        for g in all_consumers()
    }
    for topic in of_kind(docs, "KafkaTopic"):
        assert owners[topic["spec"]["topicName"]] == ministry
    users = {u["metadata"]["name"] for u in of_kind(docs, "KafkaUser")}
    expected = (
        {"bekal-registry"}
        if ministry == "corrections"
        else {
            "bekal-training",
            "bekal-certification",
            "bekal-reporting",
        }
    )
    assert users == expected


def test_services_use_the_kafka_user_and_tls_settings_the_manifests_declare() -> None:
    docs = render("deploy/overlays/local")
    for service in SERVICES:
        config = named(docs, "ConfigMap", f"{service}-config")["data"]
        assert config["KAFKA_SASL_USERNAME"] == f"bekal-{service}"
        assert config["KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
        assert config["KAFKA_ENABLE_IDEMPOTENCE"] == "true"
        container = named(docs, "Deployment", service)["spec"]["template"]["spec"]["containers"][0]
        password = next(e for e in container["env"] if e["name"] == "KAFKA_SASL_PASSWORD")
        assert password["valueFrom"]["secretKeyRef"]["name"] == f"bekal-{service}"
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        assert str(Path(config["KAFKA_SSL_CAFILE"]).parent) in mounts


def test_local_overlay_runs_kafka_with_the_listener_and_users_the_services_expect() -> None:
    docs = render("deploy/overlays/local")
    kafka = named(docs, "Kafka", "bekal")["spec"]["kafka"]
    (listener,) = kafka["listeners"]
    assert (listener["port"], listener["tls"]) == (9093, True)
    assert listener["authentication"]["type"] == "scram-sha-512"
    assert kafka["authorization"]["type"] == "simple"
    assert kafka["config"]["auto.create.topics.enable"] is False
    pool = named(docs, "KafkaNodePool", "dual-role")
    assert pool["metadata"]["labels"]["strimzi.io/cluster"] == "bekal"
    assert "app.kubernetes.io/part-of" not in named(docs, "Kafka", "bekal")["metadata"]["labels"]
    topics = of_kind(docs, "KafkaTopic")
    assert len(topics) == len(of_kind(render("deploy/kafka"), "KafkaTopic"))
    assert all(t["spec"]["replicas"] <= pool["spec"]["replicas"] for t in topics)
    for topic in topics:  # one node: one replica, which acks=all then waits for alone
        name = topic["spec"]["topicName"]
        assert topic["spec"]["config"] == topic_config(name, pool["spec"]["replicas"]), name
        assert topic["spec"]["config"]["min.insync.replicas"] == "1"
    assert {u["metadata"]["name"] for u in of_kind(docs, "KafkaUser")} == {
        f"bekal-{s}" for s in SERVICES
    }
    for service in SERVICES:
        config = named(docs, "ConfigMap", f"{service}-config")["data"]
        assert config["KAFKA_BOOTSTRAP_SERVERS"] == "bekal-kafka-bootstrap:9093"
        policy = named(docs, "NetworkPolicy", service)["spec"]
        kafka_rule = next(r for r in policy["egress"] if r["ports"][0]["port"] == 9093)
        selector = kafka_rule["to"][0]["namespaceSelector"]["matchLabels"]
        assert selector == {"kubernetes.io/metadata.name": "bekal"}


def test_local_kafka_runs_the_version_the_tests_run() -> None:
    docs = render("deploy/overlays/local")
    kafka = named(docs, "Kafka", "bekal")["spec"]["kafka"]
    assert kafka["version"] == apache_kafka.VERSION == "4.4.0"
    if "metadataVersion" in kafka:
        assert str(kafka["metadataVersion"]).startswith("4.4")
    assert kafka["config"]["unclean.leader.election.enable"] is False
    replicas = named(docs, "KafkaNodePool", "dual-role")["spec"]["replicas"]
    assert kafka["config"]["min.insync.replicas"] <= replicas
    assert kafka["config"]["default.replication.factor"] == replicas
