"""The Kubernetes availability, networking and cross-document rules (k8s_network)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from changegate.adapters import policy_inputs
from changegate.domain.policy.config import PolicyConfigSpec
from changegate.domain.policy.engine import Report
from changegate.domain.policy.model import Document, Format, Severity
from changegate.domain.policy.rules import k8s_network
from changegate.domain.policy.rules.k8s_network import RULES
from tests.policy.helpers import check, k8s, rule_ids

NS = "tenant-acme"
IMAGE = "registry.example.com/odoo:17.0@sha256:" + "a" * 64
BY_ID = {each.info.id: each for each in RULES}


# --- builders ------------------------------------------------------------------------------


def workload(
    name: str = "odoo",
    *,
    kind: str = "Deployment",
    namespace: str | None = NS,
    replicas: Any = 3,
    labels: dict[str, str] | None = None,
    spread: bool = True,
    ports: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    labels = labels if labels is not None else {"app": name}
    pod: dict[str, Any] = {
        "containers": [
            {
                "name": "odoo",
                "image": IMAGE,
                "ports": ports if ports is not None else [{"name": "http", "containerPort": 8069}],
            }
        ]
    }
    if spread:
        pod["topologySpreadConstraints"] = [
            {
                "maxSkew": 1,
                "topologyKey": "kubernetes.io/hostname",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": dict(labels)},
            }
        ]
    spec: dict[str, Any] = {
        "selector": {"matchLabels": dict(labels)},
        "template": {"metadata": {"labels": dict(labels)}, "spec": pod},
    }
    if replicas is not None:
        spec["replicas"] = replicas
    metadata: dict[str, Any] = {"name": name}
    if namespace is not None:
        metadata["namespace"] = namespace
    if kind == "CronJob":
        spec = {
            "schedule": "0 * * * *",
            "jobTemplate": {"spec": {"template": spec["template"]}},
        }
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": metadata, "spec": spec}


def pdb(
    name: str = "odoo",
    *,
    namespace: str = NS,
    selector: Any = None,
    api_version: str = "policy/v1",
    **policy: Any,
) -> dict[str, Any]:
    spec: dict[str, Any] = dict(policy) or {"maxUnavailable": 1}
    spec["selector"] = {"matchLabels": {"app": name}} if selector is None else selector
    return {
        "apiVersion": api_version,
        "kind": "PodDisruptionBudget",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def hpa(
    target: str = "odoo", *, kind: str = "Deployment", namespace: str = NS, **spec: Any
) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": target, "namespace": namespace},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": kind, "name": target},
            **spec,
        },
    }


def service(
    name: str = "odoo",
    *,
    namespace: str = NS,
    selector: Any = None,
    ports: list[Any] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "selector": {"app": name} if selector is None else selector,
        "ports": ports
        if ports is not None
        else [{"name": "http", "port": 80, "targetPort": "http"}],
        **spec,
    }
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": body,
    }


def netpol(name: str = "default-deny", *, namespace: str = NS, selector: Any = None) -> dict:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"podSelector": {} if selector is None else selector, "policyTypes": ["Ingress"]},
    }


def ingress(
    name: str = "odoo",
    *,
    namespace: str = NS,
    backend: str = "odoo",
    port: Any = None,
    hosts: list[str] | None = None,
    tls: Any = "same",
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    hosts = hosts if hosts is not None else ["acme.example.com"]
    port = port if port is not None else {"name": "http"}
    spec: dict[str, Any] = {
        "ingressClassName": "traefik",
        "rules": [
            {
                "host": host,
                "http": {
                    "paths": [
                        {
                            "path": "/",
                            "pathType": "Prefix",
                            "backend": {"service": {"name": backend, "port": port}},
                        }
                    ]
                },
            }
            for host in hosts
        ],
    }
    if tls == "same":
        spec["tls"] = [{"hosts": list(hosts), "secretName": f"{name}-tls"}]
    elif tls is not None:
        spec["tls"] = tls
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if annotations:
        metadata["annotations"] = annotations
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": metadata,
        "spec": spec,
    }


def namespace(name: str = NS, labels: dict[str, str] | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if labels is not None:
        metadata["labels"] = labels
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": metadata}


def simple(kind: str, name: str = "default", *, namespace: str = NS) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": kind, "metadata": {"name": name, "namespace": namespace}}


def docs(*objects: dict[str, Any]) -> list[Document]:
    return k8s(yaml.safe_dump_all(objects, sort_keys=False))


def run(rule_id: str, *objects: dict[str, Any], **context: Any) -> Report:
    return check(BY_ID[rule_id], docs(*objects), **context)


def messages(report: Report) -> list[str]:
    return [f.message for f in report.findings]


# --- the pack ------------------------------------------------------------------------------


def test_every_rule_is_documented_and_unique() -> None:
    ids = [each.info.id for each in RULES]
    assert len(ids) == len(set(ids)) == 16
    for each in RULES:
        info = each.info
        assert info.pack == "k8s"
        assert info.id.startswith("k8s.")
        assert len(info.rationale) > 80, info.id
        assert len(info.remediation) > 40, info.id
        for alias in info.aliases:
            assert alias.startswith(("kube-score:", "kube-linter:", "polaris:", "AVD-KSV-"))


# --- min replicas ---------------------------------------------------------------------------


def test_min_replicas_flags_one_replica_in_production_only() -> None:
    one = workload(replicas=1)
    report = run("k8s.min-replicas", one, production=True)
    assert messages(report) == [
        "Deployment tenant-acme/odoo runs 1 replica(s); production needs at least 2"
    ]
    assert report.findings[0].severity is Severity.ERROR
    assert rule_ids(run("k8s.min-replicas", one, production=False)) == []


def test_min_replicas_missing_means_one_and_uses_the_configured_minimum() -> None:
    text = """\
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: redis
  namespace: tenant-acme
spec:
  serviceName: redis
  template:
    metadata:
      labels: {app: redis}
    spec:
      containers:
        - name: redis
          image: redis:7
"""
    report = check(BY_ID["k8s.min-replicas"], k8s(text), production=True)
    [finding] = report.findings
    assert finding.message == (
        "StatefulSet tenant-acme/redis does not set replicas, so it runs 1; production needs "
        "at least 2"
    )
    assert finding.line == 6  # spec: the nearest existing parent of spec.replicas
    three = PolicyConfigSpec(min_replicas_production=3)
    two = workload(replicas=2)
    assert rule_ids(run("k8s.min-replicas", two, production=True)) == []
    report = check(BY_ID["k8s.min-replicas"], docs(two), config=three, production=True)
    assert "needs at least 3" in report.findings[0].message


@pytest.mark.parametrize("replicas", [0, "{{ .Values.replicas }}", True, [2]])
def test_min_replicas_skips_stopped_and_unknown(replicas: Any) -> None:
    assert rule_ids(run("k8s.min-replicas", workload(replicas=replicas), production=True)) == []


def test_min_replicas_ignores_daemonsets_and_jobs() -> None:
    objects = [workload(kind="DaemonSet", replicas=None), workload(kind="CronJob", replicas=None)]
    assert rule_ids(run("k8s.min-replicas", *objects, production=True)) == []


def test_hpa_satisfies_or_is_blamed_for_replicas() -> None:
    deployment = workload(replicas=None)
    ok = run("k8s.min-replicas", deployment, hpa(minReplicas=2, maxReplicas=6), production=True)
    assert rule_ids(ok) == []
    low = run("k8s.min-replicas", deployment, hpa(maxReplicas=6), production=True)
    [finding] = low.findings
    assert finding.resource.kind == "HorizontalPodAutoscaler"
    assert finding.message == (
        "HorizontalPodAutoscaler tenant-acme/odoo scales Deployment tenant-acme/odoo down to 1 "
        "replica(s); production needs at least 2"
    )


def test_hpa_in_another_namespace_or_for_another_kind_does_not_count() -> None:
    deployment = workload(replicas=1)
    elsewhere = hpa(namespace="tenant-other", minReplicas=3)
    wrong_kind = hpa(kind="StatefulSet", minReplicas=3)
    report = run("k8s.min-replicas", deployment, elsewhere, wrong_kind, production=True)
    assert [f.resource.kind for f in report.findings] == ["Deployment"]


# --- PodDisruptionBudgets -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ({"maxUnavailable": 0}, "sets maxUnavailable 0"),
        ({"maxUnavailable": "0%"}, "sets maxUnavailable '0%'"),
        ({"minAvailable": "100%"}, "sets minAvailable '100%'"),
        ({"minAvailable": 3}, "keeps 3 pod(s) available but Deployment tenant-acme/odoo runs 3"),
        ({"minAvailable": "90%"}, "keeps 3 pod(s) available"),  # ceil(2.7) = 3
    ],
)
def test_pdb_that_blocks_every_eviction(policy: dict[str, Any], expected: str) -> None:
    report = run("k8s.pdb-allows-disruption", workload(replicas=3), pdb(**policy))
    [finding] = report.findings
    assert expected in finding.message
    assert finding.resource.kind == "PodDisruptionBudget"


@pytest.mark.parametrize(
    "policy",
    [
        {"maxUnavailable": 1},
        {"maxUnavailable": "10%"},
        {"minAvailable": 2},
        {"minAvailable": "50%"},
    ],
)
def test_pdb_that_allows_a_disruption(policy: dict[str, Any]) -> None:
    assert rule_ids(run("k8s.pdb-allows-disruption", workload(replicas=3), pdb(**policy))) == []


def test_pdb_min_available_judged_only_against_the_workloads_it_selects() -> None:
    small = workload("small", replicas=1)
    big = workload("odoo", replicas=4)
    # minAvailable 1 selects only the 4-replica Deployment: fine, although `small` has 1.
    assert rule_ids(run("k8s.pdb-allows-disruption", small, big, pdb(minAvailable=1))) == []
    report = run("k8s.pdb-allows-disruption", small, big, pdb("small", minAvailable=1))
    assert "Deployment tenant-acme/small runs 1 (replicas)" in report.findings[0].message


def test_pdb_min_available_against_the_hpa_minimum() -> None:
    objects = [workload(replicas=None), hpa(minReplicas=2, maxReplicas=5), pdb(minAvailable=2)]
    [finding] = run("k8s.pdb-allows-disruption", *objects).findings
    assert "runs 2 (its HorizontalPodAutoscaler's minReplicas)" in finding.message


def test_pdb_required_in_production_for_multi_replica_workloads() -> None:
    deployment = workload(replicas=3)
    report = run("k8s.pdb-required", deployment, production=True)
    [finding] = report.findings
    assert finding.severity is Severity.WARNING
    assert finding.message == (
        "Deployment tenant-acme/odoo runs up to 3 replicas but no PodDisruptionBudget in "
        "namespace tenant-acme selects its pods (app=odoo)"
    )
    assert rule_ids(run("k8s.pdb-required", deployment, production=False)) == []
    assert rule_ids(run("k8s.pdb-required", deployment, pdb(), production=True)) == []
    single = workload(replicas=1)
    assert rule_ids(run("k8s.pdb-required", single, production=True)) == []
    assert rule_ids(run("k8s.pdb-required", workload(kind="DaemonSet"), production=True)) == []


def test_pdb_selecting_another_deployment_does_not_count() -> None:
    odoo = workload("odoo", replicas=3)
    worker = workload("worker", replicas=3)
    report = run("k8s.pdb-required", odoo, worker, pdb("worker"), production=True)
    assert [f.resource.name for f in report.findings] == ["odoo"]


def test_pdb_in_another_namespace_does_not_count() -> None:
    report = run(
        "k8s.pdb-required", workload(replicas=2), pdb(namespace="tenant-other"), production=True
    )
    assert rule_ids(report) == ["k8s.pdb-required"]


def test_pdb_match_expressions() -> None:
    labels = {"app": "odoo", "tier": "web"}
    deployment = workload(replicas=3, labels=labels)
    matching = pdb(
        selector={
            "matchLabels": {"app": "odoo"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["web", "cron"]}],
        }
    )
    excluding = pdb(
        selector={"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["web"]}]}
    )
    assert rule_ids(run("k8s.pdb-required", deployment, matching, production=True)) == []
    assert rule_ids(run("k8s.pdb-required", deployment, excluding, production=True)) == [
        "k8s.pdb-required"
    ]


def test_pdb_empty_selector_selects_all_in_v1_but_none_in_v1beta1() -> None:
    deployment = workload(replicas=3)
    v1 = pdb(selector={})
    v1beta1 = pdb(selector={}, api_version="policy/v1beta1")
    assert rule_ids(run("k8s.pdb-required", deployment, v1, production=True)) == []
    assert rule_ids(run("k8s.pdb-required", deployment, v1beta1, production=True)) == [
        "k8s.pdb-required"
    ]


def test_pdb_targets_workload() -> None:
    deployment = workload()
    typo = pdb(selector={"matchLabels": {"app": "odo"}})
    [finding] = run("k8s.pdb-targets-workload", deployment, typo).findings
    assert finding.message == (
        "PodDisruptionBudget tenant-acme/odoo selector app=odo matches none of the 1 "
        "workload(s) in namespace tenant-acme"
    )
    assert rule_ids(run("k8s.pdb-targets-workload", deployment, pdb())) == []
    no_selector = pdb()
    del no_selector["spec"]["selector"]
    [finding] = run("k8s.pdb-targets-workload", deployment, no_selector).findings
    assert "has no selector" in finding.message
    # No workload of that namespace in the change set: not judged.
    assert rule_ids(run("k8s.pdb-targets-workload", typo)) == []


# --- anti-affinity --------------------------------------------------------------------------


def test_anti_affinity_needed_for_several_replicas() -> None:
    bare = workload(replicas=3, spread=False)
    [finding] = run("k8s.anti-affinity", bare).findings
    assert finding.message == (
        "Deployment tenant-acme/odoo runs up to 3 replicas with no podAntiAffinity or "
        "topologySpreadConstraints: they may all land on one node"
    )
    assert rule_ids(run("k8s.anti-affinity", workload(replicas=3))) == []
    assert rule_ids(run("k8s.anti-affinity", workload(replicas=1, spread=False))) == []
    # An autoscaler that may scale out counts as several replicas.
    scaled = [workload(replicas=None, spread=False), hpa(minReplicas=1, maxReplicas=4)]
    assert "runs up to 4 replicas" in run("k8s.anti-affinity", *scaled).findings[0].message


@pytest.mark.parametrize("mode", ["required", "preferred"])
def test_pod_anti_affinity_selecting_own_pods(mode: str) -> None:
    term = {
        "topologyKey": "kubernetes.io/hostname",
        "labelSelector": {
            "matchExpressions": [{"key": "app", "operator": "In", "values": ["odoo"]}]
        },
    }
    entry: Any = term if mode == "required" else {"weight": 100, "podAffinityTerm": term}
    deployment = workload(replicas=2, spread=False)
    pod = deployment["spec"]["template"]["spec"]
    pod["affinity"] = {
        "podAntiAffinity": {f"{mode}DuringSchedulingIgnoredDuringExecution": [entry]}
    }
    assert rule_ids(run("k8s.anti-affinity", deployment)) == []
    other = copy.deepcopy(deployment)
    other_term = term if mode == "required" else entry["podAffinityTerm"]
    other_term["labelSelector"] = {"matchLabels": {"app": "redis"}}
    target = other["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    target[f"{mode}DuringSchedulingIgnoredDuringExecution"] = [
        other_term if mode == "required" else {"weight": 100, "podAffinityTerm": other_term}
    ]
    [finding] = run("k8s.anti-affinity", other).findings
    assert "no podAntiAffinity term or topology spread constraint selects its own pods" in (
        finding.message
    )


# --- NetworkPolicy --------------------------------------------------------------------------


def test_network_policy_empty_selector_covers_every_pod() -> None:
    objects = [workload("odoo"), workload("worker", kind="CronJob"), netpol()]
    assert rule_ids(run("k8s.network-policy-coverage", *objects)) == []


def test_network_policy_coverage_by_labels_and_namespace() -> None:
    odoo, worker = workload("odoo"), workload("worker")
    only_odoo = netpol("odoo", selector={"matchLabels": {"app": "odoo"}})
    report = run("k8s.network-policy-coverage", odoo, worker, only_odoo)
    [finding] = report.findings
    assert finding.resource.name == "worker"
    assert finding.severity is Severity.WARNING
    assert "none of the 1 NetworkPolicy(ies) in namespace tenant-acme selects its pods" in (
        finding.message
    )
    elsewhere = run("k8s.network-policy-coverage", odoo, netpol(namespace="tenant-other"))
    assert "no NetworkPolicy in namespace tenant-acme selects its pods" in (
        elsewhere.findings[0].message
    )


# --- Services -------------------------------------------------------------------------------


def test_service_external_ips_is_an_error() -> None:
    svc = service(externalIPs=["203.0.113.10"])
    [finding] = run("k8s.service-external-ips", svc).findings
    assert finding.severity is Severity.ERROR
    assert finding.message == "Service tenant-acme/odoo sets externalIPs 203.0.113.10"
    assert rule_ids(run("k8s.service-external-ips", service(externalIPs=[]))) == []


@pytest.mark.parametrize("kind", ["NodePort", "LoadBalancer"])
def test_service_exposed(kind: str) -> None:
    [finding] = run("k8s.service-exposed", service(type=kind)).findings
    assert f"is of type {kind}" in finding.message
    assert "Traefik" in finding.message
    assert rule_ids(run("k8s.service-exposed", service(type="ClusterIP"))) == []


def test_service_targets_pods_only_in_its_namespace() -> None:
    svc = service()
    mine = workload()
    theirs = workload(namespace="tenant-other")
    assert rule_ids(run("k8s.service-targets-pods", svc, mine)) == []
    # Pods of the same labels in another namespace do not count; the namespace has a workload.
    other = workload("redis")
    report = run("k8s.service-targets-pods", svc, theirs, other)
    [finding] = report.findings
    assert finding.message == (
        "Service tenant-acme/odoo: selector app=odoo matches none of the 1 workload(s) in "
        "namespace tenant-acme, so it has no endpoints"
    )


def test_service_without_workloads_in_its_namespace_is_not_judged() -> None:
    assert rule_ids(run("k8s.service-targets-pods", service(), workload(namespace="x"))) == []


def test_service_without_selector_or_external_name_is_skipped() -> None:
    manual = service(selector={})
    external = service(selector={"app": "nothing"}, type="ExternalName")
    assert rule_ids(run("k8s.service-targets-pods", manual, external, workload("x"))) == []


def test_service_selector_written_as_match_labels_selects_nothing() -> None:
    wrong = service(selector={"matchLabels": {"app": "odoo"}})
    assert rule_ids(run("k8s.service-targets-pods", wrong, workload())) == [
        "k8s.service-targets-pods"
    ]


def test_service_target_port_names_a_container_port() -> None:
    ports = [
        {"name": "http", "port": 80, "targetPort": "http"},
        {"name": "longpolling", "port": 8072, "targetPort": "longpolling"},
        {"name": "metrics", "port": 9100, "targetPort": 9100},
    ]
    report = run("k8s.service-target-port", service(ports=ports), workload())
    [finding] = report.findings
    assert finding.severity is Severity.ERROR
    assert finding.message == (
        "Service tenant-acme/odoo targets port 'longpolling' (TCP), which the pods of "
        "Deployment tenant-acme/odoo do not declare (it has http)"
    )
    both = [{"name": "http", "containerPort": 8069}, {"name": "longpolling", "containerPort": 8072}]
    assert (
        rule_ids(run("k8s.service-target-port", service(ports=ports), workload(ports=both))) == []
    )


def test_service_target_port_checks_the_protocol_and_sidecars() -> None:
    udp = [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": "dns"}]
    tcp_only = workload(ports=[{"name": "dns", "containerPort": 53}])
    assert (
        "'dns' (UDP)"
        in run("k8s.service-target-port", service(ports=udp), tcp_only).findings[0].message
    )
    sidecar = workload(ports=[])
    sidecar["spec"]["template"]["spec"]["initContainers"] = [
        {
            "name": "proxy",
            "image": "envoy",
            "restartPolicy": "Always",
            "ports": [{"name": "http", "containerPort": 8080}],
        }
    ]
    assert rule_ids(run("k8s.service-target-port", service(), sidecar)) == []


# --- rollouts -------------------------------------------------------------------------------


def test_recreate_strategy() -> None:
    deployment = workload()
    deployment["spec"]["strategy"] = {"type": "Recreate"}
    [finding] = run("k8s.rolling-update", deployment).findings
    assert "uses the Recreate strategy" in finding.message
    assert rule_ids(run("k8s.rolling-update", workload())) == []


@pytest.mark.parametrize(
    ("value", "flagged"), [(3, True), (5, True), ("100%", True), (1, False), ("50%", False)]
)
def test_rolling_update_max_unavailable(value: Any, flagged: bool) -> None:
    deployment = workload(replicas=3)
    deployment["spec"]["strategy"] = {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": value},
    }
    assert bool(rule_ids(run("k8s.rolling-update", deployment))) is flagged


def test_on_delete_update_is_info() -> None:
    statefulset = workload(kind="StatefulSet")
    statefulset["spec"]["updateStrategy"] = {"type": "OnDelete"}
    [finding] = run("k8s.on-delete-update", statefulset).findings
    assert finding.severity is Severity.INFO
    assert rule_ids(run("k8s.on-delete-update", workload(kind="StatefulSet"))) == []


# --- Ingresses ------------------------------------------------------------------------------


def test_ingress_backend_to_missing_service() -> None:
    objects = [workload(), service(), ingress(backend="odoo-web")]
    [finding] = run("k8s.ingress-targets-service", *objects).findings
    assert finding.message == (
        "Ingress tenant-acme/odoo routes to Service 'odoo-web', which is not in namespace "
        "tenant-acme in this change"
    )
    assert rule_ids(run("k8s.ingress-targets-service", workload(), service(), ingress())) == []


def test_ingress_backend_to_service_of_another_namespace_or_wrong_port() -> None:
    elsewhere = [workload(), service(namespace="tenant-other"), ingress()]
    assert rule_ids(run("k8s.ingress-targets-service", *elsewhere)) == [
        "k8s.ingress-targets-service"
    ]
    wrong_port = [service(), ingress(port={"number": 8069})]
    [finding] = run("k8s.ingress-targets-service", *wrong_port).findings
    assert "routes to port 8069 of Service tenant-acme/odoo, which has 80, http" in (
        finding.message
    )
    assert (
        rule_ids(run("k8s.ingress-targets-service", service(), ingress(port={"number": 80}))) == []
    )


def test_ingress_default_backend_and_unknown_namespace() -> None:
    only = ingress()
    only["spec"]["defaultBackend"] = {"service": {"name": "fallback", "port": {"number": 80}}}
    report = run("k8s.ingress-targets-service", only, service())
    assert [f.message.split("'")[1] for f in report.findings] == ["fallback"]
    # Nothing of the namespace in the change set: the Service may be deployed elsewhere.
    assert rule_ids(run("k8s.ingress-targets-service", ingress(backend="x"))) == []


def test_ingress_tls_error_in_production_warning_elsewhere() -> None:
    plain = ingress(tls=None)
    [finding] = run("k8s.ingress-tls", plain, production=True).findings
    assert finding.severity is Severity.ERROR
    assert finding.message == (
        "Ingress tenant-acme/odoo has no spec.tls: acme.example.com served over plain HTTP"
    )
    [finding] = run("k8s.ingress-tls", plain, production=False).findings
    assert finding.severity is Severity.WARNING


def test_ingress_tls_host_coverage() -> None:
    hosts = ["acme.example.com", "www.acme.example.com", "shop.example.org"]
    tls = [{"hosts": ["acme.example.com", "*.acme.example.com"], "secretName": "acme"}]
    report = run("k8s.ingress-tls", ingress(hosts=hosts, tls=tls), production=True)
    [finding] = report.findings
    assert "serves host shop.example.org without TLS" in finding.message
    no_hosts = [{"secretName": "default"}]
    assert rule_ids(run("k8s.ingress-tls", ingress(hosts=hosts, tls=no_hosts))) == []


def test_ingress_tls_through_traefik_annotation() -> None:
    annotated = ingress(tls=None, annotations={"traefik.ingress.kubernetes.io/router.tls": "true"})
    assert rule_ids(run("k8s.ingress-tls", annotated, production=True)) == []


# --- tenant guardrails ----------------------------------------------------------------------

TENANTS = {"tenant_namespaces": {NS: "acme"}}


def test_tenant_namespace_needs_quota_and_limit_range() -> None:
    objects = [workload(), simple("ResourceQuota")]
    quota = run("k8s.tenant-resource-quota", *objects, **TENANTS)
    assert rule_ids(quota) == []
    [finding] = run("k8s.tenant-limit-range", *objects, **TENANTS).findings
    assert finding.message == "tenant namespace tenant-acme has no LimitRange in this change set"
    assert finding.resource.kind == "Namespace"
    assert finding.resource.namespace == NS
    assert finding.tenant == "acme"


def test_tenant_namespace_from_label_and_reported_on_the_namespace() -> None:
    text = """\
apiVersion: v1
kind: Namespace
metadata:
  name: tenant-beta
  labels:
    changegate.io/tenant: beta
"""
    report = check(BY_ID["k8s.tenant-resource-quota"], k8s(text))
    [finding] = report.findings
    assert finding.line == 4
    assert finding.resource.name == "tenant-beta"


def test_non_tenant_and_untouched_namespaces_are_not_judged() -> None:
    assert (
        rule_ids(run("k8s.tenant-resource-quota", workload(namespace="platform"), **TENANTS)) == []
    )
    # A tenant namespace the change set does not touch.
    assert rule_ids(run("k8s.tenant-limit-range", workload(namespace="other"), **TENANTS)) == []
    # A quota in another namespace does not count.
    objects = [workload(), simple("ResourceQuota", namespace="other")]
    assert rule_ids(run("k8s.tenant-resource-quota", *objects, **TENANTS)) == [
        "k8s.tenant-resource-quota"
    ]


# --- robustness -----------------------------------------------------------------------------

ODD_VALUES: list[Any] = [None, 0, 7, True, "x", "50%", [], [1, "a"], {}, {"a": [1]}, 1.5]


def _odd_documents() -> list[Document]:
    documents: list[Document] = []
    kinds = [
        "Deployment",
        "StatefulSet",
        "DaemonSet",
        "CronJob",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
        "NetworkPolicy",
        "Service",
        "Ingress",
        "Namespace",
        "ResourceQuota",
    ]
    for kind in kinds:
        for value in ODD_VALUES:
            for data in (
                {"apiVersion": "v1", "kind": kind, "metadata": value, "spec": value},
                {
                    "apiVersion": "v1",
                    "kind": kind,
                    "metadata": {"namespace": NS},
                    "spec": {
                        "replicas": value,
                        "selector": value,
                        "podSelector": value,
                        "scaleTargetRef": {"kind": "Deployment", "name": value},
                        "minReplicas": value,
                        "maxReplicas": value,
                        "maxUnavailable": value,
                        "minAvailable": value,
                        "ports": [value, {"targetPort": value, "port": value}],
                        "externalIPs": value,
                        "type": value,
                        "tls": [value, {"hosts": value}],
                        "rules": [
                            value,
                            {"host": value, "http": value},
                            {
                                "http": {
                                    "paths": [
                                        value,
                                        {"backend": value},
                                        {"backend": {"service": value}},
                                        {"backend": {"service": {"name": "x", "port": value}}},
                                    ]
                                }
                            },
                        ],
                        "defaultBackend": value,
                        "strategy": {"type": value, "rollingUpdate": value},
                        "updateStrategy": value,
                        "template": {
                            "metadata": {"labels": value},
                            "spec": {
                                "containers": [
                                    value,
                                    {"name": "c", "ports": value},
                                    {"ports": [value, {"name": value}]},
                                ],
                                "affinity": {"podAntiAffinity": value},
                                "topologySpreadConstraints": value,
                            },
                        },
                    },
                },
                {
                    "apiVersion": "v1",
                    "kind": kind,
                    "metadata": {"namespace": NS, "name": "n"},
                    "spec": {
                        "selector": {"matchLabels": value, "matchExpressions": value},
                        "podSelector": {
                            "matchExpressions": [
                                value,
                                {"key": "a", "operator": "In", "values": value},
                            ]
                        },
                        "template": {
                            "metadata": {"labels": {"app": "a"}},
                            "spec": {
                                "containers": [{"name": "c"}],
                                "affinity": {
                                    "podAntiAffinity": {
                                        "requiredDuringSchedulingIgnoredDuringExecution": value,
                                        "preferredDuringSchedulingIgnoredDuringExecution": [
                                            value,
                                            {"podAffinityTerm": value},
                                        ],
                                    }
                                },
                                "topologySpreadConstraints": [
                                    value,
                                    {"topologyKey": value, "labelSelector": value},
                                ],
                            },
                        },
                        "replicas": 3,
                    },
                },
            ):
                documents.append(Document("odd.yaml", len(documents), 1, Format.KUBERNETES, data))
    return documents


@pytest.mark.parametrize("production", [True, False])
def test_odd_types_never_raise(production: bool) -> None:
    documents = _odd_documents()
    check(list(RULES), documents, production=production, tenant_namespaces={NS: "acme"})


def test_index_is_shared_across_rules_of_one_change_set() -> None:
    from changegate.domain.policy.changeset import ChangeSet

    changeset = ChangeSet(docs(workload()))
    assert k8s_network._index(changeset) is k8s_network._index(changeset)
    assert k8s_network._index(ChangeSet(docs(workload()))) is not k8s_network._index(changeset)


# --- this pack's fixtures -------------------------------------------------------------------

FIXTURES = Path(__file__).parent / "fixtures"
FIXTURE_RULES = sorted(p.name for p in FIXTURES.glob("k8s.*") if p.name in BY_ID)


def _fixture_report(rule_id: str, outcome: str) -> Report:
    """This pack's rule over one fixture folder (tests/policy/test_fixtures.py runs them all)."""
    folder = FIXTURES / rule_id
    inputs = policy_inputs.load_paths([str(folder / outcome)], base=folder)
    assert not inputs.problems
    settings: dict[str, Any] = {}
    if (folder / "context.yaml").exists():
        settings = yaml.safe_load((folder / "context.yaml").read_text()) or {}
    config = PolicyConfigSpec.model_validate(settings.pop("config", {}))
    return check(BY_ID[rule_id], inputs.documents, config=config, **settings)


def test_every_rule_has_fixtures() -> None:
    assert sorted(BY_ID) == FIXTURE_RULES


@pytest.mark.parametrize("rule_id", FIXTURE_RULES)
def test_fixture_fails(rule_id: str) -> None:
    assert rule_id in rule_ids(_fixture_report(rule_id, "fail"))


@pytest.mark.parametrize("rule_id", FIXTURE_RULES)
def test_fixture_passes(rule_id: str) -> None:
    assert rule_ids(_fixture_report(rule_id, "pass")) == []
