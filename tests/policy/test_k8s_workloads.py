"""The Kubernetes workload security rules (k8s_workloads): messages, lines, shapes, odd input."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest
import yaml

from changegate.domain.policy.config import PolicyConfigSpec, WaiverSpec
from changegate.domain.policy.engine import Report, RuleSet, Waiver
from changegate.domain.policy.model import Document, Finding, Severity
from changegate.domain.policy.rules import k8s_network
from changegate.domain.policy.rules.k8s_workloads import RULES
from tests.policy.helpers import check, k8s, rule_ids

NS = "tenant-acme"
DIGEST = "sha256:" + "c" * 64
IMAGE = f"registry.example.com/odoo:17.0@{DIGEST}"
BY_ID = {each.info.id: each for each in RULES}
LABELS = {"app.kubernetes.io/name": "odoo", "app.kubernetes.io/instance": "acme"}

# --- builders --------------------------------------------------------------------------------


def container(name: str = "odoo", **overrides: Any) -> dict[str, Any]:
    """A container that passes every rule of the pack."""
    data: dict[str, Any] = {
        "name": name,
        "image": IMAGE,
        "ports": [{"name": "http", "containerPort": 8069}],
        "readinessProbe": {"httpGet": {"path": "/web/health", "port": "http"}},
        "livenessProbe": {"tcpSocket": {"port": "http"}},
        "resources": {
            "requests": {"cpu": "250m", "memory": "768Mi"},
            "limits": {"cpu": "2", "memory": "1536Mi"},
        },
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    data.update(overrides)
    return data


def pod_spec(*containers: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    """A pod spec that passes every rule of the pack."""
    spec: dict[str, Any] = {
        "serviceAccountName": "odoo",
        "automountServiceAccountToken": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 101,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": list(containers) or [container()],
    }
    spec.update(overrides)
    return spec


def workload(
    spec: dict[str, Any] | None = None,
    *,
    kind: str = "Deployment",
    name: str = "odoo",
    namespace: str | None = NS,
    api_version: str | None = None,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A workload of any kind around a pod spec, in the shape Kubernetes expects."""
    spec = spec if spec is not None else pod_spec()
    metadata: dict[str, Any] = {"name": name}
    if namespace is not None:
        metadata["namespace"] = namespace
    template_metadata: dict[str, Any] = {"labels": dict(LABELS)}
    if annotations:
        template_metadata["annotations"] = annotations
    template = {"metadata": template_metadata, "spec": spec}
    versions = {
        "Pod": "v1",
        "ReplicationController": "v1",
        "Job": "batch/v1",
        "CronJob": "batch/v1",
    }
    body: dict[str, Any]
    if kind == "Pod":
        metadata.update(template_metadata)
        body = {"metadata": metadata, "spec": spec}
    elif kind == "Job":
        body = {"metadata": metadata, "spec": {"template": template}}
    elif kind == "CronJob":
        body = {
            "metadata": metadata,
            "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": template}}},
        }
    elif kind == "ReplicationController":
        body = {"metadata": metadata, "spec": {"selector": dict(LABELS), "template": template}}
    else:
        body = {
            "metadata": metadata,
            "spec": {"selector": {"matchLabels": dict(LABELS)}, "template": template},
        }
    return {"apiVersion": api_version or versions.get(kind, "apps/v1"), "kind": kind, **body}


def docs(*objects: dict[str, Any]) -> list[Document]:
    return k8s("---\n".join(yaml.safe_dump(each, sort_keys=False) for each in objects))


def run(*objects: dict[str, Any], rules: Any = RULES, **context: Any) -> Report:
    return check(rules, docs(*objects), **context)


def found(report: Report, rule_id: str) -> list[Finding]:
    return [f for f in report.findings if f.rule == rule_id and f.status.value == "failed"]


def only(rule_id: str, *objects: dict[str, Any]) -> list[Finding]:
    """The findings of one rule, run alone."""
    return found(run(*objects, rules=BY_ID[rule_id]), rule_id)


# --- the pack as a whole -------------------------------------------------------------------

ALIAS = re.compile(
    r"^(CKV_K8S_\d+|KSV\d{3}|kube-score:[a-z-]+|kube-linter:[a-z0-9-]+|polaris:[A-Za-z]+)$"
)


def test_rules_are_documented_and_ids_are_unique() -> None:
    ids = [each.info.id for each in RULES]
    assert len(ids) == len(set(ids)) == 30
    network = {each.info.id for each in k8s_network.RULES}
    assert not set(ids) & network
    for each in RULES:
        info = each.info
        assert info.id.startswith("k8s.") and info.pack == "k8s"
        assert info.title and info.title[0].isupper()
        assert len(info.rationale) > 80, info.id
        assert len(info.remediation) > 30, info.id
        assert all(ALIAS.match(alias) for alias in info.aliases), info.aliases
        assert len(set(info.aliases)) == len(info.aliases)


def test_aliases_resolve_to_the_rules() -> None:
    ruleset = RuleSet(RULES, PolicyConfigSpec())
    assert ruleset.resolve("KSV017") == ["k8s.privileged"]
    assert ruleset.resolve("ckv_k8s_27") == ["k8s.runtime-socket"]
    assert ruleset.resolve("kube-linter:latest-tag") == ["k8s.image-tag"]
    assert sorted(ruleset.resolve("kube-score:container-resources")) == [
        "k8s.cpu-limit",
        "k8s.cpu-request",
        "k8s.memory-limit",
        "k8s.memory-request",
    ]


def test_severities() -> None:
    severity = {each.info.id: each.info.severity for each in RULES}
    assert severity["k8s.cpu-limit"] is Severity.INFO
    assert severity["k8s.env-secret-ref"] is Severity.INFO
    assert severity["k8s.memory-limit"] is Severity.WARNING
    assert severity["k8s.privileged"] is Severity.ERROR
    assert severity["k8s.plain-secret"] is Severity.ERROR


KINDS = [
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "ReplicationController",
    "Pod",
    "Job",
    "CronJob",
]


@pytest.mark.parametrize("kind", KINDS)
def test_a_hardened_workload_passes_every_rule(kind: str) -> None:
    report = run(workload(kind=kind))
    assert rule_ids(report) == []


@pytest.mark.parametrize("kind", KINDS)
def test_every_shape_is_checked(kind: str) -> None:
    spec = pod_spec(container(securityContext={"privileged": True}))
    findings = only("k8s.privileged", workload(spec, kind=kind))
    assert [f.resource.kind for f in findings] == [kind]
    assert findings[0].resource.container == "odoo"


ODD_CONTAINERS: list[Any] = [
    "x",
    None,
    42,
    [],
    ["odoo"],
    [None, 3, "x"],
    [{"name": 3, "image": ["a"], "securityContext": [], "resources": "lots"}],
    [
        {
            "name": "odoo",
            "image": 42,
            "imagePullPolicy": 3,
            "securityContext": {
                "capabilities": {"add": "SYS_ADMIN", "drop": "ALL"},
                "runAsUser": "0",
                "seccompProfile": "RuntimeDefault",
                "privileged": "true",
            },
            "resources": {"requests": [], "limits": {"memory": None, "cpu": True}},
            "env": {"DB_PASSWORD": "x"},
            "envFrom": "secret",
            "ports": "8069",
            "readinessProbe": "GET /",
            "livenessProbe": {"httpGet": "/web/health"},
            "volumeMounts": {"name": "x"},
        }
    ],
    [
        {
            "name": "odoo",
            "image": "",
            "securityContext": {"capabilities": {"add": [None, 7, ["x"]], "drop": [None]}},
            "env": [None, 3, {"name": None, "value": 5}, {"name": "TOKEN", "value": None}],
            "envFrom": [None, {"secretRef": "odoo"}],
            "ports": [None, {"hostPort": "x"}, {"hostPort": None}],
            "readinessProbe": {"exec": {"command": "true"}},
            "livenessProbe": {"exec": {"command": "true"}},
        }
    ],
]


@pytest.mark.parametrize("containers", ODD_CONTAINERS)
@pytest.mark.parametrize("kind", ["Deployment", "Pod", "CronJob"])
def test_odd_containers_never_raise(containers: Any, kind: str) -> None:
    spec = pod_spec()
    spec["containers"] = containers
    spec["initContainers"] = containers
    run(workload(spec, kind=kind))


ODD_SPECS: list[dict[str, Any]] = [
    {"securityContext": []},
    {"securityContext": "restricted"},
    {"securityContext": {"seccompProfile": [], "runAsUser": True, "runAsNonRoot": "yes"}},
    {"volumes": "x"},
    {"volumes": [None, 3, {"name": 3, "hostPath": "x"}, {"hostPath": {"path": 5}}]},
    {"volumes": [{"name": "a", "hostPath": None}, {"name": "b", "hostPath": {}}]},
    {"serviceAccountName": ["x"], "automountServiceAccountToken": "false"},
    {"hostNetwork": "true", "hostPID": 1, "hostIPC": None},
    {"os": "windows"},
]


@pytest.mark.parametrize("overrides", ODD_SPECS)
def test_odd_pod_specs_never_raise(overrides: dict[str, Any]) -> None:
    run(workload(pod_spec(**overrides)))


@pytest.mark.parametrize(
    "text",
    [
        "apiVersion: apps/v1\nkind: Deployment\nspec: []\n",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: x\nspec: {template: 3, selector: x}\n",
        "apiVersion: apps/v1\nkind: Deployment\nspec: {template: {metadata: [], spec: {}}}\n",
        "apiVersion: v1\nkind: Secret\ndata: [a, b]\nstringData: x\n",
        "apiVersion: v1\nkind: Secret\nmetadata: {name: 3, namespace: 4}\ndata: {a: 1}\n",
        "apiVersion: 3\nkind: [Deployment]\nmetadata: {namespace: default}\n",
        "apiVersion: batch/v1beta1\nkind: CronJob\nmetadata: []\n",
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: odoo}\n"
        "automountServiceAccountToken: [false]\n",
        "apiVersion: apps/v1\nkind: StatefulSet\nspec:\n  selector: {matchExpressions: x}\n"
        "  template: {metadata: {labels: {app: 3}}, spec: {containers: []}}\n",
        "apiVersion: apps/v1\nkind: DaemonSet\nspec:\n  selector:\n"
        "    matchExpressions: [3, {key: app, operator: Weird}]\n"
        "  template: {metadata: {labels: {app: x}}, spec: {containers: []}}\n",
    ],
)
def test_odd_documents_never_raise(text: str) -> None:
    check(RULES, k8s(text))


# --- resources -----------------------------------------------------------------------------

DEPLOYMENT_TEXT = f"""\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: odoo
  namespace: tenant-acme
spec:
  selector:
    matchLabels: {{app: odoo}}
  template:
    metadata:
      labels: {{app: odoo}}
    spec:
      initContainers:
        - name: migrate
          image: {IMAGE}
          resources:
            requests:
              memory: 1Gi
      containers:
        - name: odoo
          image: {IMAGE}
          resources:
            requests:
              cpu: 250m
              memory: ""
            limits:
              memory: 1Gi
"""


def test_resources_name_the_container_and_the_line() -> None:
    report = check(RULES, k8s(DEPLOYMENT_TEXT))
    cpu = found(report, "k8s.cpu-request")
    assert [(f.resource.container, f.line) for f in cpu] == [("migrate", 17)]
    assert cpu[0].message == "init container migrate sets no CPU request (resources.requests.cpu)"
    memory = found(report, "k8s.memory-request")
    assert [(f.resource.container, f.line) for f in memory] == [("odoo", 25)]
    limit = found(report, "k8s.memory-limit")
    assert [(f.resource.container, f.line) for f in limit] == [("migrate", 16)]
    cpu_limit = found(report, "k8s.cpu-limit")
    assert {f.resource.container for f in cpu_limit} == {"migrate", "odoo"}
    assert {f.severity for f in cpu_limit} == {Severity.INFO}


def test_numeric_quantities_count() -> None:
    spec = pod_spec(
        container(resources={"requests": {"cpu": 1, "memory": 2.5}, "limits": {"memory": 3}})
    )
    report = run(workload(spec))
    assert "k8s.cpu-request" not in rule_ids(report)
    assert "k8s.memory-request" not in rule_ids(report)
    assert "k8s.memory-limit" not in rule_ids(report)


def test_cpu_limit_can_be_graded_up() -> None:
    spec = pod_spec(container(resources={"requests": {"cpu": 1, "memory": 1}, "limits": {}}))
    config = PolicyConfigSpec.model_validate_json(
        json.dumps({"rules": {"k8s.cpu-limit": {"severity": "error"}}})
    )
    report = check(BY_ID["k8s.cpu-limit"], docs(workload(spec)), config=config)
    assert [f.severity for f in report.findings] == [Severity.ERROR]


# --- probes --------------------------------------------------------------------------------


def test_probes_only_on_serving_workloads_and_not_on_init_containers() -> None:
    bare = container(readinessProbe=None, livenessProbe=None)
    init = container("migrate", readinessProbe=None, livenessProbe=None)
    for kind, expected in [
        ("Deployment", ["odoo"]),
        ("StatefulSet", ["odoo"]),
        ("DaemonSet", ["odoo"]),
        ("Job", []),
        ("CronJob", []),
        ("Pod", []),
    ]:
        spec = pod_spec(bare, initContainers=[init])
        for rule_id in ("k8s.readiness-probe", "k8s.liveness-probe"):
            names = [f.resource.container for f in only(rule_id, workload(spec, kind=kind))]
            assert names == expected, (kind, rule_id)


def test_probe_without_handler() -> None:
    spec = pod_spec(container(livenessProbe={"periodSeconds": 10}, readinessProbe={}))
    report = run(workload(spec))
    assert [f.message for f in found(report, "k8s.liveness-probe")] == [
        "container odoo has a livenessProbe without a handler (httpGet, tcpSocket, exec or grpc)"
    ]
    assert [f.message for f in found(report, "k8s.readiness-probe")] == [
        "container odoo has no readinessProbe"
    ]


@pytest.mark.parametrize(
    ("liveness", "readiness", "identical"),
    [
        # Named port resolved against the container's ports; timing is not compared.
        (
            {"httpGet": {"path": "/web/health", "port": "http"}, "failureThreshold": 10},
            {"httpGet": {"path": "/web/health", "port": 8069}, "periodSeconds": 5},
            True,
        ),
        ({"httpGet": {"port": 8069}}, {"httpGet": {"path": "/", "port": "8069"}}, True),
        (
            {"httpGet": {"path": "/web/health", "port": 8069}},
            {"httpGet": {"path": "/web/login", "port": 8069}},
            False,
        ),
        ({"tcpSocket": {"port": "http"}}, {"httpGet": {"path": "/", "port": 8069}}, False),
        ({"tcpSocket": {"port": "http"}}, {"tcpSocket": {"port": 8069}}, True),
        ({"exec": {"command": ["pg_isready"]}}, {"exec": {"command": ["pg_isready"]}}, True),
        ({"exec": {"command": ["true"]}}, {"exec": {"command": ["pg_isready"]}}, False),
        ({"grpc": {"port": 9090}}, {"grpc": {"port": 9090, "service": "ready"}}, False),
        ({"grpc": {"port": 9090}}, {"grpc": {"port": 9090}}, True),
        (
            {"httpGet": {"path": "/", "port": 8069, "scheme": "https"}},
            {"httpGet": {"path": "/", "port": 8069}},
            False,
        ),
    ],
)
def test_identical_probes(liveness: Any, readiness: Any, identical: bool) -> None:
    spec = pod_spec(container(livenessProbe=liveness, readinessProbe=readiness))
    findings = only("k8s.probes-identical", workload(spec))
    assert bool(findings) is identical
    if findings:
        assert findings[0].resource.container == "odoo"


def test_identical_probe_message() -> None:
    probe = {"httpGet": {"path": "/web/health", "port": "http"}}
    spec = pod_spec(container(livenessProbe=probe, readinessProbe=probe))
    (finding,) = only("k8s.probes-identical", workload(spec))
    assert finding.message == (
        "container odoo uses the same check for liveness and readiness "
        "(GET /web/health on port 8069)"
    )


# --- images --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("image", "message"),
    [
        ("registry.example.com/odoo:latest", "with the latest tag"),
        ("registry.example.com/odoo", "without a tag (:latest)"),
        ("registry.example.com:5000/odoo", "without a tag (:latest)"),
        ("odoo", "without a tag (:latest)"),
        ("registry.example.com/odoo:17.0", None),
        (f"registry.example.com/odoo@{DIGEST}", None),
        (f"registry.example.com/odoo:latest@{DIGEST}", None),
        ("", None),
    ],
)
def test_image_tag(image: str, message: str | None) -> None:
    spec = pod_spec(container(image=image, imagePullPolicy="Always"))
    findings = only("k8s.image-tag", workload(spec))
    if message is None:
        assert findings == []
    else:
        assert [f.message for f in findings] == [f"container odoo uses the image {image} {message}"]


def test_image_tag_checks_init_containers() -> None:
    spec = pod_spec(initContainers=[container("wait", image="busybox")])
    assert [f.message for f in only("k8s.image-tag", workload(spec, kind="Job"))] == [
        "init container wait uses the image busybox without a tag (:latest)"
    ]


@pytest.mark.parametrize(
    ("image", "policy", "expected"),
    [
        ("registry.example.com/odoo:17.0", None, "pulls the mutable tag"),
        ("registry.example.com/odoo:17.0", "IfNotPresent", "has imagePullPolicy IfNotPresent"),
        ("registry.example.com/odoo:17.0", "Always", None),
        ("registry.example.com/odoo:17.0", "Never", "has imagePullPolicy Never"),
        (f"registry.example.com/odoo:17.0@{DIGEST}", None, None),
        (f"registry.example.com/odoo:17.0@{DIGEST}", "IfNotPresent", None),
        (f"registry.example.com/odoo:17.0@{DIGEST}", "Never", "has imagePullPolicy Never"),
        ("registry.example.com/odoo:latest", None, None),  # defaults to Always
        ("registry.example.com/odoo", None, None),  # defaults to Always
        ("registry.example.com/odoo:latest", "IfNotPresent", "has imagePullPolicy IfNotPresent"),
        ("registry.example.com/odoo:17.0", "always", "not one of Always, IfNotPresent, Never"),
    ],
)
def test_image_pull_policy(image: str, policy: str | None, expected: str | None) -> None:
    overrides: dict[str, Any] = {"image": image}
    if policy is not None:
        overrides["imagePullPolicy"] = policy
    findings = only("k8s.image-pull-policy", workload(pod_spec(container(**overrides))))
    if expected is None:
        assert findings == []
    else:
        (finding,) = findings
        assert expected in finding.message
        assert finding.resource.container == "odoo"


# --- security context ----------------------------------------------------------------------

POD_TEXT = f"""\
apiVersion: v1
kind: Pod
metadata:
  name: odoo-shell
  namespace: tenant-acme
spec:
  securityContext:
    runAsNonRoot: true
    runAsUser: 101
  containers:
    - name: odoo
      image: {IMAGE}
    - name: root-sidecar
      image: {IMAGE}
      securityContext:
        runAsUser: 0
    - name: opted-out
      image: {IMAGE}
      securityContext:
        runAsNonRoot: false
"""


def test_run_as_non_root_container_overrides_pod() -> None:
    report = check(BY_ID["k8s.run-as-non-root"], k8s(POD_TEXT))
    assert [(f.resource.container, f.line, f.message) for f in report.findings] == [
        ("root-sidecar", 16, "container root-sidecar runs as UID 0 (root)"),
    ]


@pytest.mark.parametrize(
    ("pod", "own", "message"),
    [
        ({}, {}, "may run as root: neither it nor the pod sets"),
        ({"runAsUser": 0, "runAsNonRoot": True}, {}, "runs as UID 0 (root)"),
        ({"runAsNonRoot": True}, {"runAsUser": 0}, "runs as UID 0 (root)"),
        ({}, {"runAsNonRoot": False}, "sets runAsNonRoot: false and no non-zero runAsUser"),
        ({"runAsNonRoot": False}, {"runAsUser": 1000}, None),
        ({}, {"runAsUser": 1000}, None),
        ({"runAsNonRoot": True}, {}, None),
        ({"runAsUser": True}, {}, "may run as root"),  # a bool is not a UID
        ({"runAsUser": 0}, {"runAsUser": 1000}, None),
    ],
)
def test_run_as_non_root(pod: dict[str, Any], own: dict[str, Any], message: str | None) -> None:
    security = {"allowPrivilegeEscalation": False, **own}
    spec = pod_spec(container(securityContext=security), securityContext=pod)
    findings = only("k8s.run-as-non-root", workload(spec))
    if message is None:
        assert findings == []
    else:
        (finding,) = findings
        assert message in finding.message


def test_pod_level_root_points_at_the_pod_security_context() -> None:
    text = """\
apiVersion: v1
kind: Pod
metadata: {name: p, namespace: tenant-acme}
spec:
  securityContext:
    runAsUser: 0
  containers:
    - name: c
      image: x
"""
    (finding,) = found(check(BY_ID["k8s.run-as-non-root"], k8s(text)), "k8s.run-as-non-root")
    assert finding.line == 6


def test_windows_pods_skip_linux_settings() -> None:
    spec = pod_spec(container(securityContext={}), securityContext={}, os={"name": "windows"})
    report = run(workload(spec))
    for rule_id in (
        "k8s.run-as-non-root",
        "k8s.seccomp",
        "k8s.capabilities-drop-all",
        "k8s.privilege-escalation",
        "k8s.read-only-root-fs",
    ):
        assert rule_id not in rule_ids(report)


def test_privileged_names_the_container_and_line() -> None:
    text = f"""\
apiVersion: apps/v1
kind: DaemonSet
metadata: {{name: agent, namespace: platform}}
spec:
  template:
    spec:
      containers:
        - name: agent
          image: {IMAGE}
          securityContext:
            privileged: true
        - name: sidecar
          image: {IMAGE}
          securityContext:
            privileged: false
"""
    (finding,) = found(check(BY_ID["k8s.privileged"], k8s(text)), "k8s.privileged")
    assert (finding.resource.container, finding.line) == ("agent", 11)
    assert finding.message == "container agent runs privileged"
    assert finding.resource.label() == "DaemonSet platform/agent [container agent]"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, "does not set allowPrivilegeEscalation: false (it defaults to true)"),
        (True, "sets allowPrivilegeEscalation: true"),
        ("false", "does not set allowPrivilegeEscalation: false (it defaults to true)"),
        (False, None),
    ],
)
def test_privilege_escalation(value: Any, message: str | None) -> None:
    security: dict[str, Any] = {"capabilities": {"drop": ["ALL"]}}
    if value is not None:
        security["allowPrivilegeEscalation"] = value
    findings = only(
        "k8s.privilege-escalation", workload(pod_spec(container(securityContext=security)))
    )
    assert [f.message for f in findings] == ([f"container odoo {message}"] if message else [])


def test_read_only_root_fs_messages() -> None:
    spec = pod_spec(
        container("a", securityContext={"readOnlyRootFilesystem": False}),
        container("b", securityContext={}),
        container("c", securityContext={"readOnlyRootFilesystem": True}),
    )
    assert [f.message for f in only("k8s.read-only-root-fs", workload(spec))] == [
        "container a sets readOnlyRootFilesystem: false",
        "container b does not set readOnlyRootFilesystem: true (its root filesystem is writable)",
    ]


@pytest.mark.parametrize(
    ("drop", "message"),
    [
        (["ALL"], None),
        (["all"], None),
        (["CAP_ALL"], None),
        (["NET_RAW", "CHOWN"], "drops only NET_RAW, CHOWN"),
        ([], "drops no capabilities"),
        (None, "drops no capabilities"),
    ],
)
def test_capabilities_drop_all(drop: Any, message: str | None) -> None:
    security: dict[str, Any] = {"allowPrivilegeEscalation": False}
    if drop is not None:
        security["capabilities"] = {"drop": drop}
    findings = only(
        "k8s.capabilities-drop-all", workload(pod_spec(container(securityContext=security)))
    )
    if message is None:
        assert findings == []
    else:
        assert [f.message for f in findings] == [
            f"container odoo {message}: it keeps the runtime's default capabilities"
        ]


def test_dangerous_capabilities_one_finding_each_with_line() -> None:
    text = f"""\
apiVersion: apps/v1
kind: Deployment
metadata: {{name: vpn, namespace: tenant-acme}}
spec:
  template:
    spec:
      initContainers:
        - name: setup
          image: {IMAGE}
          securityContext:
            capabilities:
              add:
                - NET_BIND_SERVICE
                - cap_net_admin
                - CHOWN
                - ALL
      containers:
        - name: vpn
          image: {IMAGE}
          securityContext:
            capabilities:
              add: [SYS_MODULE]
"""
    findings = found(
        check(BY_ID["k8s.dangerous-capabilities"], k8s(text)), "k8s.dangerous-capabilities"
    )
    assert [(f.resource.container, f.line, f.message) for f in findings] == [
        ("setup", 14, "init container setup adds the capability NET_ADMIN"),
        ("setup", 16, "init container setup adds the capability ALL"),
        ("vpn", 22, "container vpn adds the capability SYS_MODULE"),
    ]


@pytest.mark.parametrize(
    ("pod", "own", "message"),
    [
        ({"type": "RuntimeDefault"}, None, None),
        (
            {"type": "RuntimeDefault"},
            {"type": "Unconfined"},
            "runs with the seccomp profile Unconfined",
        ),
        ({"type": "Unconfined"}, {"type": "RuntimeDefault"}, None),
        (None, {"type": "Localhost", "localhostProfile": "odoo.json"}, None),
        (None, None, "has no seccomp profile: it runs Unconfined"),
        ({"type": "Unconfined"}, None, "runs with the seccomp profile Unconfined"),
        ({}, None, "has no seccomp profile: it runs Unconfined"),
        ({"type": "runtime/default"}, None, "runs with the seccomp profile runtime/default"),
    ],
)
def test_seccomp(pod: Any, own: Any, message: str | None) -> None:
    security: dict[str, Any] = {"allowPrivilegeEscalation": False}
    if own is not None:
        security["seccompProfile"] = own
    pod_security: dict[str, Any] = {"runAsNonRoot": True}
    if pod is not None:
        pod_security["seccompProfile"] = pod
    spec = pod_spec(container(securityContext=security), securityContext=pod_security)
    findings = only("k8s.seccomp", workload(spec))
    if message is None:
        assert findings == []
    else:
        assert [f.message for f in findings] == [f"container odoo {message}"]


@pytest.mark.parametrize(
    "annotation",
    [
        "seccomp.security.alpha.kubernetes.io/pod",
        "container.seccomp.security.alpha.kubernetes.io/odoo",
    ],
)
def test_seccomp_legacy_annotation_is_not_enough(annotation: str) -> None:
    spec = pod_spec(securityContext={"runAsNonRoot": True})
    for kind in ("Deployment", "Pod", "CronJob"):
        obj = workload(spec, kind=kind, annotations={annotation: "runtime/default"})
        (finding,) = only("k8s.seccomp", obj)
        assert "legacy alpha annotation" in finding.message


# --- host access ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "rule_id", "what"),
    [
        ("hostNetwork", "k8s.host-network", "network namespace"),
        ("hostPID", "k8s.host-pid", "process namespace"),
        ("hostIPC", "k8s.host-ipc", "IPC namespace"),
    ],
)
def test_host_namespaces(key: str, rule_id: str, what: str) -> None:
    (finding,) = only(rule_id, workload(pod_spec(**{key: True}), kind="StatefulSet"))
    assert finding.message == (
        f"StatefulSet tenant-acme/odoo sets {key}: true: its pods share the node's {what}"
    )
    assert finding.resource.container == ""
    assert only(rule_id, workload(pod_spec(**{key: False}))) == []


def volumes_workload(*paths: Any, mount: str = "odoo") -> dict[str, Any]:
    volumes = [{"name": f"v{i}", "hostPath": {"path": p}} for i, p in enumerate(paths)]
    mounts = [{"name": f"v{i}", "mountPath": f"/host/{i}"} for i in range(len(paths))]
    return workload(pod_spec(container(mount, volumeMounts=mounts), volumes=volumes))


@pytest.mark.parametrize(
    ("path", "socket"),
    [
        ("/var/run/docker.sock", "/var/run/docker.sock"),
        ("/run/containerd/containerd.sock", "/run/containerd/containerd.sock"),
        ("/var/run/crio/crio.sock", "/var/run/crio/crio.sock"),
        ("/var/run/", "/var/run/docker.sock"),
        ("/run", "/run/docker.sock"),
        ("/", "/var/run/docker.sock"),
        ("/run/../var/run/containerd", "/var/run/containerd/containerd.sock"),
        ("/opt/k3s/agent/containerd.sock", "/opt/k3s/agent/containerd.sock"),
        ("/var/log", None),
        ("/var/lib/docker", None),
        ("relative/docker.sock", None),
        ("", None),
    ],
)
def test_runtime_socket(path: str, socket: str | None) -> None:
    findings = only("k8s.runtime-socket", volumes_workload(path))
    if socket is None:
        assert findings == []
        return
    (finding,) = findings
    assert f"mounts the container runtime socket path {path}" in finding.message
    assert "mounted by container odoo at /host/0" in finding.message
    if socket != path.rstrip("/"):
        assert f"which exposes {socket}" in finding.message


def test_host_path_flags_every_host_volume() -> None:
    findings = only("k8s.host-path", volumes_workload("/var/log", "/var/run/docker.sock"))
    assert [f.message for f in findings] == [
        "volume v0 mounts the host path /var/log, mounted by container odoo at /host/0",
        "volume v1 mounts the host path /var/run/docker.sock, mounted by container odoo at /host/1",
    ]
    spec = pod_spec(volumes=[{"name": "data", "hostPath": {}}])
    assert [f.message for f in only("k8s.host-path", workload(spec))] == [
        "volume data mounts the host path (none given)"
    ]


def test_host_port() -> None:
    spec = pod_spec(
        container(ports=[{"containerPort": 8069, "hostPort": 0}, {"containerPort": 8072}]),
        initContainers=[container("probe", ports=[{"containerPort": 80, "hostPort": 80}])],
    )
    findings = only("k8s.host-port", workload(spec))
    assert [(f.resource.container, f.message) for f in findings] == [
        ("probe", "init container probe binds the host port 80")
    ]


# --- service accounts ----------------------------------------------------------------------


def service_account(name: str, automount: Any, namespace: str = NS) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": name, "namespace": namespace},
        "automountServiceAccountToken": automount,
    }


def test_automount_token_decided_by_pod_then_service_account() -> None:
    inherits = pod_spec(automountServiceAccountToken=None)
    del inherits["automountServiceAccountToken"]
    assert only("k8s.automount-token", workload(inherits), service_account("odoo", False)) == []
    # The ServiceAccount of another namespace is not the pod's.
    (finding,) = only(
        "k8s.automount-token", workload(inherits), service_account("odoo", False, "tenant-x")
    )
    assert finding.message == (
        "Deployment tenant-acme/odoo does not set automountServiceAccountToken: false: "
        "its pods get an API token of the service account odoo"
    )
    # The pod's own setting wins over its ServiceAccount's.
    explicit = pod_spec(automountServiceAccountToken=True)
    (finding,) = only("k8s.automount-token", workload(explicit), service_account("odoo", False))
    assert "sets automountServiceAccountToken: true" in finding.message


def test_default_service_account() -> None:
    def spec(**overrides: Any) -> dict[str, Any]:
        data = pod_spec(**overrides)
        for key in ("serviceAccountName", "automountServiceAccountToken"):
            if key not in overrides:
                del data[key]
        return data

    message = "Deployment tenant-acme/odoo runs as the namespace's default service account"
    for case in (spec(), spec(serviceAccountName="default"), spec(serviceAccountName="")):
        (finding,) = only("k8s.default-service-account", workload(case))
        assert finding.message.startswith(message)
    # Not the default account, or no token: no API identity shared.
    assert only("k8s.default-service-account", workload(spec(serviceAccountName="odoo"))) == []
    assert only("k8s.default-service-account", workload(spec(serviceAccount="odoo"))) == []
    no_token = spec(automountServiceAccountToken=False)
    assert only("k8s.default-service-account", workload(no_token)) == []
    hardened_default = service_account("default", False)
    assert only("k8s.default-service-account", workload(spec()), hardened_default) == []


# --- secrets -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "why"),
    [
        ("DB_PASSWORD", "hunter2", "a literal value"),
        ("PGPASSWORD", "hunter2", "a literal value"),
        ("ODOO_ADMIN_PASSWD", "S3cret!", "a literal value"),
        ("SMTP_PASS", "mail-pass", "a literal value"),
        ("DB_PWD", "pw", "a literal value"),
        ("JWT_SECRET", "abc", "a literal value"),
        ("GITHUB_TOKEN", "ghp_xxx", "a literal value"),
        ("STRIPE_API_KEY", "sk_live_x", "a literal value"),
        ("STRIPE_KEY", "sk_live_x", "a literal value"),
        ("AWS_SECRET_ACCESS_KEY", "wJalrXUtn", "a literal value"),
        ("encryption.key", "k", "a literal value"),
        ("DATABASE_URL", "postgres://odoo:hunter2@db/acme", "a URL with an inline password"),
        ("REDIS_URL", "redis://:s3cret@redis:6379/0", "a URL with an inline password"),
        ("DB_PASSWORD", "$(PG_PASSWORD)", None),
        ("DATABASE_URL", "postgres://odoo:$(DB_PASSWORD)@db/acme", None),
        ("DATABASE_URL", "postgres://odoo@db:5432/acme", None),
        ("DB_PASSWORD_FILE", "/run/secrets/db", None),
        ("SESSION_TOKEN_TTL", "3600", None),
        ("TOKEN_LIFETIME", "3600", None),
        ("PASSWORD_MIN_LENGTH", "12", None),
        ("SECRET_NAME", "odoo-db", None),
        ("AWS_ACCESS_KEY_ID", "AKIA123", None),
        ("CACHE_KEY", "odoo", None),
        ("PUBLIC_KEY", "ssh-ed25519 AAAA", None),
        ("PWD", "/opt/odoo", None),
        ("PGPASSFILE", "/etc/odoo/pgpass", None),
        ("USE_TOKEN", "true", None),
        ("DB_PASSWORD", "", None),
        ("ODOO_WORKERS", "4", None),
    ],
)
def test_env_secret_literal(name: str, value: str, why: str | None) -> None:
    env = [{"name": name, "value": value}]
    findings = only("k8s.env-secret-literal", workload(pod_spec(container(env=env))))
    if why is None:
        assert findings == []
        return
    (finding,) = findings
    assert finding.message == f"container odoo writes {name} as {why} in the manifest"
    if len(value) > 2:
        assert value not in finding.message  # the secret itself is never repeated


def test_env_secret_literal_line_and_init_container() -> None:
    text = f"""\
apiVersion: batch/v1
kind: Job
metadata: {{name: restore, namespace: tenant-acme}}
spec:
  template:
    spec:
      initContainers:
        - name: fetch
          image: {IMAGE}
          env:
            - name: S3_BUCKET
              value: backups
            - name: S3_SECRET_KEY
              value: wJalrXUtnFEMI
      containers:
        - name: restore
          image: {IMAGE}
"""
    report = check(BY_ID["k8s.env-secret-literal"], k8s(text))
    assert [(f.resource.container, f.line) for f in report.findings] == [("fetch", 14)]


def test_env_secret_ref() -> None:
    env = [
        {"name": "PGPASSWORD", "valueFrom": {"secretKeyRef": {"name": "odoo-db", "key": "pw"}}},
        {"name": "DB_HOST", "valueFrom": {"configMapKeyRef": {"name": "odoo", "key": "host"}}},
    ]
    env_from = [{"configMapRef": {"name": "odoo"}}, {"secretRef": {"name": "odoo-smtp"}}]
    findings = only("k8s.env-secret-ref", workload(pod_spec(container(env=env, envFrom=env_from))))
    assert [f.message for f in findings] == [
        "container odoo reads PGPASSWORD from the Secret odoo-db as an environment variable",
        "container odoo loads the whole Secret odoo-smtp into its environment",
    ]
    assert {f.severity for f in findings} == {Severity.INFO}


def secret(**fields: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "odoo-db", "namespace": NS},
        "type": "Opaque",
        **fields,
    }


def test_plain_secret() -> None:
    text = """\
apiVersion: v1
kind: Secret
metadata:
  name: odoo-db
  namespace: tenant-acme
data:
  password: aHVudGVyMg==
stringData:
  user: odoo
  empty: ""
"""
    report = check(BY_ID["k8s.plain-secret"], k8s(text))
    assert [(f.line, f.message) for f in report.findings] == [
        (6, "Secret tenant-acme/odoo-db commits 1 value(s) in data (password) unencrypted"),
        (8, "Secret tenant-acme/odoo-db commits 1 value(s) in stringData (user) unencrypted"),
    ]
    assert "aHVudGVyMg" not in report.findings[0].message


@pytest.mark.parametrize(
    "obj",
    [
        secret(),
        secret(data={}),
        secret(data={"password": ""}, stringData={"token": None}),
        secret(data={"password": "ENC[AES256_GCM,data:x]"}, sops={"version": "3.9.1"}),
        {**secret(data={"a": "b"}), "apiVersion": "example.com/v1"},
        {
            "apiVersion": "bitnami.com/v1alpha1",
            "kind": "SealedSecret",
            "metadata": {"name": "odoo-db"},
            "spec": {"encryptedData": {"password": "AgBy3i4OJSWK"}},
        },
    ],
)
def test_plain_secret_passes(obj: dict[str, Any]) -> None:
    assert only("k8s.plain-secret", obj) == []


def test_plain_secret_lists_at_most_ten_keys() -> None:
    data = {f"key{i:02}": "dmFsdWU=" for i in range(12)}
    (finding,) = only("k8s.plain-secret", secret(data=data))
    assert "commits 12 value(s) in data (key00, key01," in finding.message
    assert "key09, ...)" in finding.message


# --- manifests -----------------------------------------------------------------------------


def test_default_namespace() -> None:
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "odoo", "namespace": "default"},
        "spec": {"selector": {"app": "odoo"}, "ports": [{"port": 8069}]},
    }
    report = run(service, workload(namespace=None), rules=BY_ID["k8s.default-namespace"])
    assert [(f.line, f.message) for f in report.findings] == [
        (5, "Service odoo is written into the default namespace"),
    ]
    (finding,) = only("k8s.default-namespace", workload(namespace="default", kind="CronJob"))
    assert finding.resource.namespace == "default"


def test_default_namespace_allows_its_guardrails() -> None:
    guards = [
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "spec": {}},
        {"apiVersion": "v1", "kind": "ResourceQuota", "spec": {}},
        {"apiVersion": "v1", "kind": "LimitRange", "spec": {}},
        {"apiVersion": "v1", "kind": "ServiceAccount"},
    ]
    objects = [{**each, "metadata": {"name": "default", "namespace": "default"}} for each in guards]
    assert only("k8s.default-namespace", *objects) == []


@pytest.mark.parametrize(
    ("api_version", "kind", "expected"),
    [
        ("extensions/v1beta1", "Deployment", "no longer served since Kubernetes 1.16: use apps/v1"),
        ("extensions/v1beta1", "Ingress", "since Kubernetes 1.22: use networking.k8s.io/v1"),
        ("apps/v1beta2", "StatefulSet", "since Kubernetes 1.16: use apps/v1"),
        ("batch/v1beta1", "CronJob", "since Kubernetes 1.25: use batch/v1"),
        ("policy/v1beta1", "PodDisruptionBudget", "since Kubernetes 1.25: use policy/v1"),
        (
            "policy/v1beta1",
            "PodSecurityPolicy",
            "1.25: use Pod Security Admission namespace labels",
        ),
        ("autoscaling/v2beta1", "HorizontalPodAutoscaler", "1.25: use autoscaling/v2"),
        ("autoscaling/v2beta2", "HorizontalPodAutoscaler", "1.26: use autoscaling/v2"),
        ("rbac.authorization.k8s.io/v1beta1", "RoleBinding", "1.22"),
        ("storage.k8s.io/v1beta1", "CSIDriver", "1.22: use storage.k8s.io/v1"),
        ("storage.k8s.io/v1beta1", "CSIStorageCapacity", "1.27: use storage.k8s.io/v1"),
        ("apiextensions.k8s.io/v1beta1", "CustomResourceDefinition", "1.22"),
        ("flowcontrol.apiserver.k8s.io/v1beta3", "FlowSchema", "1.32"),
        ("extensions/v1beta1", "Scale", "no longer served for any kind since Kubernetes 1.22"),
        ("apps/v1", "Deployment", None),
        ("networking.k8s.io/v1", "Ingress", None),
        ("policy/v1", "PodDisruptionBudget", None),
        ("storage.k8s.io/v1beta1", "VolumeAttributesClass", None),
        ("admissionregistration.k8s.io/v1beta1", "ValidatingAdmissionPolicy", None),
        ("changegate.io/v1", "Tenant", None),
    ],
)
def test_deprecated_api(api_version: str, kind: str, expected: str | None) -> None:
    obj = {"apiVersion": api_version, "kind": kind, "metadata": {"name": "x", "namespace": NS}}
    findings = only("k8s.deprecated-api", obj)
    if expected is None:
        assert findings == []
        return
    (finding,) = findings
    assert finding.message.startswith(f"{kind} x uses {api_version}, ")
    assert expected in finding.message
    assert finding.line == 1


def test_selector_mismatch() -> None:
    text = """\
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: redis
  namespace: tenant-acme
spec:
  selector:
    matchLabels:
      app: redis
      tier: cache
  template:
    metadata:
      labels:
        app: redis
    spec:
      containers: []
"""
    (finding,) = found(check(BY_ID["k8s.selector-mismatch"], k8s(text)), "k8s.selector-mismatch")
    assert finding.line == 7
    assert finding.message == (
        "StatefulSet tenant-acme/redis selects app=redis, tier=cache "
        "but its pod template has the labels app=redis"
    )


@pytest.mark.parametrize(
    ("selector", "message"),
    [
        (None, "has no spec.selector"),
        ({"app.kubernetes.io/name": "odoo"}, "without matchLabels or matchExpressions"),
        ({}, "without matchLabels or matchExpressions"),
        ({"matchLabels": {}}, "without matchLabels or matchExpressions"),
        ("odoo", "without matchLabels or matchExpressions"),
        ({"matchLabels": LABELS}, None),
        ({"matchLabels": {"app.kubernetes.io/name": "odoo"}}, None),
        (
            {
                "matchExpressions": [
                    {"key": "app.kubernetes.io/name", "operator": "In", "values": ["odoo"]}
                ]
            },
            None,
        ),
        (
            {"matchExpressions": [{"key": "app.kubernetes.io/name", "operator": "DoesNotExist"}]},
            "(with matchExpressions)",
        ),
    ],
)
def test_selectors(selector: Any, message: str | None) -> None:
    for kind in ("Deployment", "DaemonSet", "ReplicaSet"):
        obj = workload(kind=kind)
        if selector is None:
            del obj["spec"]["selector"]
        else:
            obj["spec"]["selector"] = selector
        findings = only("k8s.selector-mismatch", obj)
        if message is None:
            assert findings == []
        else:
            (finding,) = findings
            assert message in finding.message


def test_selector_rule_ignores_jobs_and_pods() -> None:
    for kind in ("Job", "CronJob", "Pod", "ReplicationController"):
        obj = workload(kind=kind)
        obj["spec"].pop("selector", None)
        assert only("k8s.selector-mismatch", obj) == []


# --- waivers down to one container ---------------------------------------------------------


def waiver(rule: str, **selector: str) -> Waiver:
    data = {
        "rule": rule,
        "selector": selector,
        "reason": "the VPN sidecar needs NET_ADMIN until the CNI handles it",
        "owner": "alice",
        "approved_by": "bob",
        "expires": "2026-12-31",
    }
    return Waiver("w1", WaiverSpec.model_validate_json(json.dumps(data)), "waivers.yaml", 1)


def test_a_waiver_can_select_one_container() -> None:
    spec = pod_spec(
        container(securityContext={"privileged": True}),
        container("vpn", securityContext={"privileged": True}),
    )
    report = check(
        BY_ID["k8s.privileged"],
        docs(workload(spec)),
        waivers=[waiver("CKV_K8S_16", namespace="tenant-*", container="vpn")],
    )
    assert [(f.resource.container, f.status.value) for f in report.findings] == [
        ("odoo", "failed"),
        ("vpn", "waived"),
    ]


def test_rules_do_not_mutate_their_input() -> None:
    objects = [
        workload(pod_spec(container(env=[{"name": "DB_PASSWORD", "value": "x"}]))),
        secret(data={"a": "b"}),
        service_account("odoo", True),
    ]
    documents = docs(*objects)
    before = copy.deepcopy([d.data for d in documents])
    check(RULES, documents)
    assert [d.data for d in documents] == before
