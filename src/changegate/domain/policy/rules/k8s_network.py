"""Kubernetes availability, networking and cross-document rules (pack `k8s`).

Most of these rules relate objects to each other: a PodDisruptionBudget to the workloads it
selects, a NetworkPolicy or a Service to pods, an Ingress to Services, a HorizontalPodAutoscaler
to the Deployment it scales, a tenant namespace to its ResourceQuota and LimitRange. They look
only at the change set: an object that exists in the cluster but not in the change set is
invisible to them. How each rule copes with that is part of its documentation:

- Rules that say "X is missing" for a namespace (a Service selecting no pods, an Ingress naming
  no Service, a PDB selecting nothing) only speak about a namespace the change set shows: one
  with workloads (or Services, for Ingresses) in it. A change shipping only a Service for pods
  deployed by another folder, chart or operator is then not flagged.
- Coverage rules (NetworkPolicy, PodDisruptionBudget, tenant ResourceQuota and LimitRange)
  treat the change set as the repository's view of the namespace. Run `changegate check` on the
  whole tenant or application folder, not on a diff: a diff that touches a Deployment but not
  its NetworkPolicy would be reported as uncovered.

Selectors follow Kubernetes semantics (`selector_matches`), always within one namespace: pods
of the same labels in another namespace never count. Lookups are built once per change set
(`_index`), so every rule is a pass over the objects it checks plus dictionary lookups.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from weakref import WeakKeyDictionary

from changegate.domain.policy.changeset import (
    ChangeSet,
    CheckContext,
    Workload,
    selector_matches,
)
from changegate.domain.policy.model import Document, Hit, Path, Resource, Severity, rule

# Workloads whose size is `spec.replicas` (default 1) or an autoscaler's range.
_REPLICATED = frozenset({"Deployment", "StatefulSet", "ReplicaSet"})
# Workloads the production replica minimum applies to.
_MIN_REPLICA_KINDS = frozenset({"Deployment", "StatefulSet"})
TENANT_LABEL = "changegate.io/tenant"
_TRAEFIK_TLS = "traefik.ingress.kubernetes.io/router.tls"
_MAX_LISTED = 5


# --- small, type-safe helpers -------------------------------------------------------------


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _label(document: Document) -> str:
    """`Deployment tenant-acme/odoo`, as findings name objects in their messages."""
    name = document.name or "(unnamed)"
    where = f"{document.namespace}/{name}" if document.namespace else name
    return f"{document.kind or 'object'} {where}"


def _listed(items: Sequence[str]) -> str:
    shown = ", ".join(items[:_MAX_LISTED])
    return f"{shown}, ..." if len(items) > _MAX_LISTED else shown


def _int_or_percent(value: Any) -> tuple[int, bool] | None:
    """An IntOrString as (number, is_percent); None when it is neither (a template, junk)."""
    if _is_int(value):
        return int(value), False
    if isinstance(value, str):
        text = value.strip()
        if text.endswith("%"):
            try:
                return int(text[:-1]), True
            except ValueError:
                return None
    return None


def _replicas(document: Document) -> int | None:
    """`spec.replicas`: 1 when absent or null (the API default), None when not an integer."""
    value = document.get("spec", "replicas")
    if value is None:
        return 1
    return int(value) if _is_int(value) else None


def _matches(selector: Any, labels: Mapping[str, str]) -> bool:
    # selector_matches trusts the shape of matchExpressions; junk there selects nothing.
    try:
        return selector_matches(selector, labels)
    except (TypeError, AttributeError):
        return False


def _required_pairs(selector: dict[str, Any]) -> list[tuple[Any, str]]:
    """The label pairs every matching pod must carry, to narrow candidates by index."""
    if "matchLabels" in selector or "matchExpressions" in selector:
        labels = selector.get("matchLabels")
        if not isinstance(labels, dict):
            return []
        return [(key, str(value)) for key, value in labels.items()]
    return [(key, str(value)) for key, value in selector.items()]


def _describe(selector: Any) -> str:
    """A selector as `app=odoo, tier In (web)` for messages."""
    if not isinstance(selector, dict):
        return repr(selector)
    if "matchLabels" not in selector and "matchExpressions" not in selector:
        parts = [f"{key}={value}" for key, value in selector.items()]
    else:
        labels = selector.get("matchLabels")
        parts = [f"{k}={v}" for k, v in labels.items()] if isinstance(labels, dict) else []
        expressions = selector.get("matchExpressions")
        for expression in expressions if isinstance(expressions, list) else []:
            if isinstance(expression, dict):
                values = expression.get("values")
                shown = ",".join(map(str, values)) if isinstance(values, list) else ""
                operator = expression.get("operator")
                key = expression.get("key")
                parts.append(f"{key} {operator} ({shown})" if shown else f"{key} {operator}")
    return ", ".join(parts) if parts else "{} (every pod)"


def _pod_labels(workload: Workload) -> str:
    labels = [f"{k}={v}" for k, v in workload.pod_labels.items()]
    return _listed(labels) if labels else "no labels"


# --- the change set's lookups, built once ---------------------------------------------------


@dataclass(slots=True)
class _Index:
    """Lookups over one change set that several rules share."""

    workloads: tuple[Workload, ...]
    by_namespace: dict[str, list[int]] = field(default_factory=dict)
    by_label: dict[tuple[str, Any, str], list[int]] = field(default_factory=dict)
    # (namespace, target kind, target name) -> HorizontalPodAutoscalers scaling it.
    autoscalers: dict[tuple[str, str, str], list[Document]] = field(default_factory=dict)
    # namespace -> Service name -> the first Service of that name.
    services: dict[str, dict[str, Document]] = field(default_factory=dict)

    def select(self, namespace: str, selector: Any) -> list[int]:
        """Positions (in `workloads`) of the workloads in namespace whose pods selector matches."""
        if not isinstance(selector, dict):
            return []
        pairs = _required_pairs(selector)
        if pairs:
            candidates = min(
                (self.by_label.get((namespace, key, value), []) for key, value in pairs), key=len
            )
        else:
            candidates = self.by_namespace.get(namespace, [])
        return [i for i in candidates if _matches(selector, self.workloads[i].pod_labels)]

    def autoscalers_of(self, workload: Workload) -> list[Document]:
        document = workload.document
        return self.autoscalers.get((document.namespace, document.kind, document.name), [])

    def scale(self, workload: Workload) -> tuple[int | None, int | None]:
        """(fewest, most) replicas the workload runs: its autoscaler's range, else replicas.

        None where it cannot be told (a templated value, an autoscaler without bounds).
        """
        if workload.kind not in _REPLICATED:
            return None, None
        autoscalers = self.autoscalers_of(workload)
        if not autoscalers:
            replicas = _replicas(workload.document)
            return replicas, replicas
        lows = [low for low in map(_autoscaler_min, autoscalers) if low is not None]
        highs = [int(h) for h in (a.get("spec", "maxReplicas") for a in autoscalers) if _is_int(h)]
        return (min(lows) if lows else None), (max(highs) if highs else None)


def _autoscaler_min(autoscaler: Document) -> int | None:
    value = autoscaler.get("spec", "minReplicas")
    if value is None:
        return 1  # the API default
    return int(value) if _is_int(value) else None


_INDEXES: WeakKeyDictionary[ChangeSet, _Index] = WeakKeyDictionary()


def _index(changeset: ChangeSet) -> _Index:
    """The lookups of a change set, built on first use and shared by every rule of the check."""
    found = _INDEXES.get(changeset)
    if found is not None:
        return found
    index = _Index(changeset.workloads)
    for position, workload in enumerate(changeset.workloads):
        namespace = workload.document.namespace
        index.by_namespace.setdefault(namespace, []).append(position)
        for key, value in workload.pod_labels.items():
            index.by_label.setdefault((namespace, key, value), []).append(position)
    for autoscaler in changeset.of_kind("HorizontalPodAutoscaler"):
        target = autoscaler.get("spec", "scaleTargetRef")
        if isinstance(target, dict):
            kind, name = target.get("kind"), target.get("name")
            if isinstance(kind, str) and isinstance(name, str):
                scaled = (autoscaler.namespace, kind, name)
                index.autoscalers.setdefault(scaled, []).append(autoscaler)
    for service in changeset.of_kind("Service"):
        if service.name:
            index.services.setdefault(service.namespace, {}).setdefault(service.name, service)
    _INDEXES[changeset] = index
    return index


def _pdb_selector(budget: Document) -> Any:
    """What a PodDisruptionBudget selects with: `{}` is every pod in policy/v1, none before."""
    selector = budget.get("spec", "selector")
    if (
        budget.api_version == "policy/v1beta1"
        and isinstance(selector, dict)
        and not selector.get("matchLabels")
        and not selector.get("matchExpressions")
    ):
        return None
    return selector


def _service_selector(service: Document) -> dict[str, Any] | None:
    """A Service's selector as a label selector; None when it has none (manual endpoints)."""
    spec = service.get("spec")
    if not isinstance(spec, dict) or spec.get("type") == "ExternalName":
        return None
    selector = spec.get("selector")
    if not isinstance(selector, dict) or not selector:
        return None
    # A Service selector is a plain label map: `matchLabels` there is a label name (and an
    # invalid Service), never a LabelSelector.
    return {"matchLabels": selector}


# --- replicas -------------------------------------------------------------------------------


@rule(
    "k8s.min-replicas",
    "Production Deployments and StatefulSets run enough replicas",
    Severity.ERROR,
    rationale=(
        "A single replica is an outage on every node drain, eviction, crash and rollout that "
        "cannot surge. In production a Deployment or StatefulSet must run at least "
        "`min_replicas_production` replicas (PolicyConfig, default 2); `replicas` left out "
        "means 1. When a HorizontalPodAutoscaler in the change set scales the workload, its "
        "`minReplicas` (default 1) is what counts. A workload scaled to 0 is stopped on "
        "purpose and not flagged."
    ),
    remediation=(
        "Set `spec.replicas` to at least the production minimum, or set the "
        "HorizontalPodAutoscaler's `spec.minReplicas` to it. A workload that cannot run twice "
        "(a singleton scheduler) needs a waiver naming why."
    ),
    aliases=(
        "kube-score:deployment-replicas",
        "kube-linter:minimum-three-replicas",
        "polaris:deploymentMissingReplicas",
    ),
)
def min_replicas(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    if not context.production:
        return
    minimum = context.config.min_replicas_production
    index = _index(changeset)
    for workload in changeset.workloads:
        if workload.kind not in _MIN_REPLICA_KINDS:
            continue
        document = workload.document
        autoscalers = index.autoscalers_of(workload)
        if autoscalers:
            lows = [(a, _autoscaler_min(a)) for a in autoscalers]
            if any(low is not None and low >= minimum for _, low in lows):
                continue
            for autoscaler, low in lows:
                if low is not None:
                    yield Hit(
                        autoscaler,
                        ("spec", "minReplicas"),
                        f"{_label(autoscaler)} scales {_label(document)} down to {low} "
                        f"replica(s); production needs at least {minimum}",
                    )
            continue
        replicas = _replicas(document)
        if replicas is None or replicas == 0 or replicas >= minimum:
            continue
        if document.get("spec", "replicas") is None:
            yield Hit(
                document,
                ("spec", "replicas"),
                f"{_label(document)} does not set replicas, so it runs 1; production needs "
                f"at least {minimum}",
            )
        else:
            yield Hit(
                document,
                ("spec", "replicas"),
                f"{_label(document)} runs {replicas} replica(s); production needs at least "
                f"{minimum}",
            )


# --- PodDisruptionBudgets -------------------------------------------------------------------


@rule(
    "k8s.pdb-allows-disruption",
    "PodDisruptionBudgets allow at least one voluntary disruption",
    Severity.ERROR,
    rationale=(
        "A PodDisruptionBudget that allows no disruption (`maxUnavailable: 0` or `0%`, "
        "`minAvailable: 100%`, or a `minAvailable` at least the replicas of a workload it "
        "selects) makes every eviction fail: node drains hang, and with them cluster upgrades "
        "and node replacements for every tenant on the node. Replicas are taken from the "
        "workload in the change set, or from its HorizontalPodAutoscaler's `minReplicas`; "
        "percentages round up as the disruption controller rounds them."
    ),
    remediation=(
        "Prefer `maxUnavailable: 1`; or set `minAvailable` below the workload's replicas (and "
        "below its autoscaler's `minReplicas`), e.g. replicas 3 with `minAvailable: 2`. A "
        "single-replica workload cannot be protected by a PDB without blocking drains: run more "
        "replicas instead."
    ),
    aliases=(
        "kube-linter:pdb-max-unavailable",
        "kube-linter:pdb-min-available",
        "polaris:pdbDisruptionsIsZero",
    ),
)
def pdb_allows_disruption(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    index = _index(changeset)
    for budget in changeset.of_kind("PodDisruptionBudget"):
        spec = budget.get("spec")
        if not isinstance(spec, dict):
            continue
        max_unavailable = _int_or_percent(spec.get("maxUnavailable"))
        if max_unavailable is not None:
            if max_unavailable[0] <= 0:
                yield Hit(
                    budget,
                    ("spec", "maxUnavailable"),
                    f"{_label(budget)} sets maxUnavailable {spec.get('maxUnavailable')!r}: no "
                    "pod it selects may ever be evicted, so node drains hang",
                )
            continue
        min_available = _int_or_percent(spec.get("minAvailable"))
        if min_available is None:
            continue
        number, percent = min_available
        if percent and number >= 100:
            yield Hit(
                budget,
                ("spec", "minAvailable"),
                f"{_label(budget)} sets minAvailable {spec.get('minAvailable')!r}: no pod it "
                "selects may ever be evicted, so node drains hang",
            )
            continue
        for position in index.select(budget.namespace, _pdb_selector(budget)):
            workload = index.workloads[position]
            fewest, _ = index.scale(workload)
            if fewest is None or fewest <= 0:
                continue
            needed = math.ceil(number * fewest / 100) if percent else number
            if needed >= fewest:
                source = (
                    "its HorizontalPodAutoscaler's minReplicas"
                    if index.autoscalers_of(workload)
                    else "replicas"
                )
                yield Hit(
                    budget,
                    ("spec", "minAvailable"),
                    f"{_label(budget)} keeps {needed} pod(s) available but "
                    f"{_label(workload.document)} runs {fewest} ({source}): no pod may ever "
                    "be evicted, so node drains hang",
                )


@rule(
    "k8s.pdb-required",
    "Replicated production workloads have a PodDisruptionBudget",
    Severity.WARNING,
    rationale=(
        "Without a PodDisruptionBudget a node drain may evict every replica of a workload at "
        "once (they may share a node, or several nodes drain together during an upgrade), so "
        "running several replicas does not by itself keep the service up. Checked in "
        "production for Deployments, StatefulSets and ReplicaSets that may run more than one "
        "replica; the PDB must be in the change set, in the same namespace, and select the "
        "pod template's labels."
    ),
    remediation=(
        "Add a policy/v1 PodDisruptionBudget in the workload's namespace whose "
        "`spec.selector.matchLabels` match the pod template labels, with `maxUnavailable: 1`."
    ),
    aliases=(
        "kube-score:deployment-has-poddisruptionbudget",
        "kube-score:statefulset-has-poddisruptionbudget",
        "polaris:missingPodDisruptionBudget",
    ),
)
def pdb_required(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    if not context.production:
        return
    index = _index(changeset)
    covered: set[int] = set()
    for budget in changeset.of_kind("PodDisruptionBudget"):
        covered.update(index.select(budget.namespace, _pdb_selector(budget)))
    for position, workload in enumerate(index.workloads):
        if workload.kind not in _REPLICATED or position in covered:
            continue
        _, most = index.scale(workload)
        if most is None or most <= 1:
            continue
        document = workload.document
        yield Hit(
            document,
            (*workload.pod_metadata_path(), "labels"),
            f"{_label(document)} runs up to {most} replicas but no PodDisruptionBudget in "
            f"namespace {document.namespace or '(default)'} selects its pods "
            f"({_pod_labels(workload)})",
        )


@rule(
    "k8s.pdb-targets-workload",
    "PodDisruptionBudgets select a workload",
    Severity.WARNING,
    rationale=(
        "A PodDisruptionBudget whose selector matches no pods protects nothing: usually a label "
        "typo or a renamed app, and the workload it was meant for is unprotected. Only "
        "namespaces with workloads in the change set are judged, so a budget shipped for pods "
        "deployed elsewhere is not flagged. A budget without a selector (or with `{}` in "
        "policy/v1beta1) selects no pods."
    ),
    remediation=(
        "Make `spec.selector` match the pod template labels of the workload it protects (same "
        "namespace), or delete the budget."
    ),
)
def pdb_targets_workload(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    index = _index(changeset)
    for budget in changeset.of_kind("PodDisruptionBudget"):
        namespace = budget.namespace
        in_namespace = index.by_namespace.get(namespace)
        if not in_namespace:
            continue
        selector = _pdb_selector(budget)
        if index.select(namespace, selector):
            continue
        if selector is None:
            what = "has no selector, so it selects no pods"
        else:
            what = (
                f"selector {_describe(selector)} matches none of the {len(in_namespace)} "
                f"workload(s) in namespace {namespace or '(default)'}"
            )
        yield Hit(budget, ("spec", "selector"), f"{_label(budget)} {what}")


# --- spreading ------------------------------------------------------------------------------


def _spreads_itself(workload: Workload) -> tuple[bool, Path | None]:
    """Whether anti-affinity or a topology spread constraint spreads the workload's own pods.

    The second value is where such settings are written when none of them qualifies.
    """
    pod = workload.pod_spec
    labels = workload.pod_labels
    written: Path | None = None
    anti = pod.get("affinity")
    anti = anti.get("podAntiAffinity") if isinstance(anti, dict) else None
    if isinstance(anti, dict):
        written = (*workload.pod_path, "affinity", "podAntiAffinity")
        terms: list[Any] = []
        required = anti.get("requiredDuringSchedulingIgnoredDuringExecution")
        if isinstance(required, list):
            terms.extend(required)
        preferred = anti.get("preferredDuringSchedulingIgnoredDuringExecution")
        if isinstance(preferred, list):
            terms.extend(p.get("podAffinityTerm") for p in preferred if isinstance(p, dict))
        for term in terms:
            if _term_spreads(term, labels):
                return True, None
    constraints = pod.get("topologySpreadConstraints")
    if isinstance(constraints, list) and constraints:
        written = written or (*workload.pod_path, "topologySpreadConstraints")
        for constraint in constraints:
            if _term_spreads(constraint, labels):
                return True, None
    return False, written


def _term_spreads(term: Any, labels: Mapping[str, str]) -> bool:
    if not isinstance(term, dict):
        return False
    key = term.get("topologyKey")
    return isinstance(key, str) and bool(key) and _matches(term.get("labelSelector"), labels)


@rule(
    "k8s.anti-affinity",
    "Multi-replica workloads spread their pods across nodes",
    Severity.WARNING,
    rationale=(
        "Replicas scheduled on the same node fail together when that node fails or is "
        "drained, which defeats the point of running several. A Deployment, StatefulSet or "
        "ReplicaSet that may run more than one replica needs a podAntiAffinity term (required "
        "or preferred) or a topologySpreadConstraint whose labelSelector matches its own pod "
        "labels, with a topologyKey such as `kubernetes.io/hostname` or "
        "`topology.kubernetes.io/zone`."
    ),
    remediation=(
        "Add `topologySpreadConstraints` with `topologyKey: kubernetes.io/hostname`, "
        "`maxSkew: 1`, `whenUnsatisfiable: ScheduleAnyway` and a labelSelector matching the "
        "pod labels; or a preferred podAntiAffinity term on `kubernetes.io/hostname` selecting "
        "the pod's own labels."
    ),
    aliases=(
        "kube-score:deployment-has-host-podantiaffinity",
        "kube-score:statefulset-has-host-podantiaffinity",
        "kube-linter:no-anti-affinity",
        "polaris:topologySpreadConstraint",
    ),
)
def anti_affinity(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    index = _index(changeset)
    for workload in index.workloads:
        if workload.kind not in _REPLICATED:
            continue
        _, most = index.scale(workload)
        if most is None or most <= 1:
            continue
        spreads, written = _spreads_itself(workload)
        if spreads:
            continue
        document = workload.document
        if written is None:
            yield Hit(
                document,
                workload.pod_path,
                f"{_label(document)} runs up to {most} replicas with no podAntiAffinity or "
                "topologySpreadConstraints: they may all land on one node",
            )
        else:
            yield Hit(
                document,
                written,
                f"{_label(document)} runs up to {most} replicas but no podAntiAffinity term "
                "or topology spread constraint selects its own pods "
                f"({_pod_labels(workload)}) with a topologyKey",
            )


# --- NetworkPolicy --------------------------------------------------------------------------


@rule(
    "k8s.network-policy-coverage",
    "Every workload's pods are selected by a NetworkPolicy",
    Severity.WARNING,
    rationale=(
        "Pods no NetworkPolicy selects accept traffic from every pod of every tenant in the "
        "cluster and may reach anything: one compromised tenant can then reach another's Odoo, "
        "database or Redis. Each workload (Jobs and CronJobs included) must be selected by a "
        "NetworkPolicy of its namespace in the change set; `podSelector: {}` selects every pod, "
        "so one default-deny policy per namespace covers it. A warning, not an error: a "
        "platform may install namespace policies from another repository, which this check "
        "cannot see."
    ),
    remediation=(
        "Add a default-deny NetworkPolicy (`podSelector: {}`, policyTypes Ingress and Egress) "
        "to the namespace, then policies allowing what the pods need (from Traefik, to the "
        "database, to DNS); or make an existing policy's podSelector match the pod labels."
    ),
    aliases=(
        "kube-score:pod-networkpolicy",
        "kube-linter:non-isolated-pod",
        "polaris:missingNetworkPolicy",
    ),
)
def network_policy_coverage(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    index = _index(changeset)
    covered: set[int] = set()
    policies: dict[str, int] = {}
    for policy in changeset.of_kind("NetworkPolicy"):
        spec = policy.get("spec")
        if not isinstance(spec, dict):
            continue
        policies[policy.namespace] = policies.get(policy.namespace, 0) + 1
        selector = spec.get("podSelector")
        covered.update(index.select(policy.namespace, {} if selector is None else selector))
    for position, workload in enumerate(index.workloads):
        if position in covered:
            continue
        document = workload.document
        namespace = document.namespace or "(default)"
        count = policies.get(document.namespace, 0)
        if count:
            why = f"none of the {count} NetworkPolicy(ies) in namespace {namespace} selects"
        else:
            why = f"no NetworkPolicy in namespace {namespace} selects"
        yield Hit(
            document,
            (*workload.pod_metadata_path(), "labels"),
            f"{_label(document)}: {why} its pods ({_pod_labels(workload)}); they accept "
            "traffic from anywhere in the cluster",
        )


# --- Services -------------------------------------------------------------------------------


@rule(
    "k8s.service-external-ips",
    "Services do not set externalIPs",
    Severity.ERROR,
    rationale=(
        "Whoever can create a Service with `spec.externalIPs` can intercept cluster traffic to "
        "those addresses (CVE-2020-8554, unfixed by design): in a multi-tenant cluster one "
        "tenant's Service can capture another's or the platform's traffic."
    ),
    remediation=(
        "Remove `spec.externalIPs`; expose HTTP through Traefik (Ingress or IngressRoute). The "
        "cluster should also enable the DenyServiceExternalIPs admission plugin."
    ),
    aliases=("AVD-KSV-0108",),
)
def service_external_ips(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    for service in changeset.of_kind("Service"):
        addresses = service.get("spec", "externalIPs")
        if isinstance(addresses, list) and addresses:
            yield Hit(
                service,
                ("spec", "externalIPs"),
                f"{_label(service)} sets externalIPs {_listed([str(a) for a in addresses])}",
            )


@rule(
    "k8s.service-exposed",
    "Services are not NodePort or LoadBalancer",
    Severity.WARNING,
    rationale=(
        "A NodePort Service opens a port on every node and a LoadBalancer Service gets its own "
        "external address: both bypass Traefik, and with it TLS, security headers, rate "
        "limits and access logs; and traffic through a node port is often source-NATed to a "
        "node's address, so NetworkPolicy rules on the client cannot be relied on. Tenant "
        "traffic should enter through Traefik."
    ),
    remediation=(
        "Use `type: ClusterIP` and route to the Service through Traefik (an Ingress or "
        "IngressRoute). The ingress controller's own Service is the expected exception: waive "
        "it by namespace and name."
    ),
    aliases=("kube-score:service-type", "kube-linter:exposed-services"),
)
def service_exposed(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    for service in changeset.of_kind("Service"):
        kind = service.get("spec", "type")
        if kind in ("NodePort", "LoadBalancer"):
            yield Hit(
                service,
                ("spec", "type"),
                f"{_label(service)} is of type {kind}: it is reachable without going through "
                "Traefik",
            )


@rule(
    "k8s.service-targets-pods",
    "Services select pods",
    Severity.WARNING,
    rationale=(
        "A Service whose selector matches no pods has no endpoints: every request to it fails, "
        "usually after a label typo or a renamed app. Only pods of the Service's own namespace "
        "count. Namespaces without workloads in the change set are not judged (the pods may be "
        "deployed by another folder), and a warning rather than an error because pods created "
        "by operators (a PostgreSQL or Redis operator) are not in the change set either. "
        "Services without a selector (manual endpoints, ExternalName) are skipped."
    ),
    remediation=(
        "Make `spec.selector` equal to labels of the pod template of the workload it serves, "
        "in the same namespace (a Service selector is a plain label map, not matchLabels)."
    ),
    aliases=("kube-score:service-targets-pod", "kube-linter:dangling-service"),
)
def service_targets_pods(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    index = _index(changeset)
    for service in changeset.of_kind("Service"):
        selector = _service_selector(service)
        in_namespace = index.by_namespace.get(service.namespace)
        if selector is None or not in_namespace or index.select(service.namespace, selector):
            continue
        yield Hit(
            service,
            ("spec", "selector"),
            f"{_label(service)}: selector {_describe(selector['matchLabels'])} matches none of "
            f"the {len(in_namespace)} workload(s) in namespace "
            f"{service.namespace or '(default)'}, so it has no endpoints",
        )


def _named_ports(workload: Workload) -> dict[str, set[str]]:
    """Container port name -> protocols, for containers and sidecar init containers."""
    found: dict[str, set[str]] = {}
    for container in workload.containers:
        if container.init and container.data.get("restartPolicy") != "Always":
            continue
        ports = container.data.get("ports")
        for port in ports if isinstance(ports, list) else []:
            if isinstance(port, dict) and isinstance(port.get("name"), str):
                protocol = port.get("protocol")
                found.setdefault(port["name"], set()).add(
                    protocol if isinstance(protocol, str) else "TCP"
                )
    return found


@rule(
    "k8s.service-target-port",
    "Service targetPort names exist on the selected pods",
    Severity.ERROR,
    rationale=(
        "A Service port whose `targetPort` is a name resolves it on each selected pod; pods "
        "with no container port of that name and protocol get no endpoint for it, so traffic "
        "to that port fails although the pods are running. Checked for the workloads in the "
        "change set that the Service selects."
    ),
    remediation=(
        "Name the container port (`ports[].name`) as the Service's `targetPort` says, or point "
        "`targetPort` at an existing port name or number."
    ),
)
def service_target_port(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    index = _index(changeset)
    for service in changeset.of_kind("Service"):
        selector = _service_selector(service)
        ports = service.get("spec", "ports")
        if selector is None or not isinstance(ports, list):
            continue
        selected = index.select(service.namespace, selector)
        if not selected:
            continue
        for number, port in enumerate(ports):
            if not isinstance(port, dict):
                continue
            target = port.get("targetPort")
            if not isinstance(target, str) or not target or target.isdigit():
                continue
            protocol = port.get("protocol")
            protocol = protocol if isinstance(protocol, str) else "TCP"
            for position in selected:
                workload = index.workloads[position]
                names = _named_ports(workload)
                if protocol in names.get(target, ()):
                    continue
                known = sorted(names)
                have = f"it has {_listed(known)}" if known else "it names no ports"
                yield Hit(
                    service,
                    ("spec", "ports", number, "targetPort"),
                    f"{_label(service)} targets port {target!r} ({protocol}), which the pods "
                    f"of {_label(workload.document)} do not declare ({have})",
                )


@rule(
    "k8s.on-delete-update",
    "StatefulSets and DaemonSets roll out changes",
    Severity.INFO,
    rationale=(
        "With `updateStrategy.type: OnDelete` a changed pod template reaches running pods only "
        "when someone deletes them: the change is applied but nothing changes, until a later "
        "unrelated restart. Worth knowing when reviewing the change, not an error in itself."
    ),
    remediation=(
        "Use `updateStrategy.type: RollingUpdate`, or plan the manual pod deletion as part of "
        "the change."
    ),
)
def on_delete_update(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    for document in changeset.of_kind("StatefulSet", "DaemonSet"):
        if document.get("spec", "updateStrategy", "type") == "OnDelete":
            yield Hit(
                document,
                ("spec", "updateStrategy", "type"),
                f"{_label(document)} uses the OnDelete update strategy: the new pod template "
                "reaches running pods only when they are deleted",
            )


@rule(
    "k8s.rolling-update",
    "Rollouts keep pods serving",
    Severity.WARNING,
    rationale=(
        "`strategy.type: Recreate` stops every pod of a Deployment before starting the new "
        "ones: an outage on every rollout. A rolling update whose `maxUnavailable` is 100% or "
        "at least the replicas does the same. (Pods mounting a ReadWriteOnce volume may need "
        "Recreate; that is a design to fix or a waiver to write, not a default.)"
    ),
    remediation=(
        "Use `strategy.type: RollingUpdate` with `maxUnavailable: 0` and `maxSurge: 1` (or a "
        "`maxUnavailable` below the replicas); move shared files to ReadWriteMany or object "
        "storage if Recreate was chosen for a ReadWriteOnce volume."
    ),
    aliases=("kube-score:deployment-strategy", "kube-linter:no-rolling-update-strategy"),
)
def rolling_update(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    index = _index(changeset)
    for workload in index.workloads:
        document = workload.document
        if document.kind == "Deployment":
            if document.get("spec", "strategy", "type") == "Recreate":
                yield Hit(
                    document,
                    ("spec", "strategy", "type"),
                    f"{_label(document)} uses the Recreate strategy: every rollout stops all "
                    "pods before starting new ones",
                )
                continue
            path: Path = ("spec", "strategy", "rollingUpdate", "maxUnavailable")
        elif document.kind in ("StatefulSet", "DaemonSet"):
            path = ("spec", "updateStrategy", "rollingUpdate", "maxUnavailable")
        else:
            continue
        value = document.get(*path)
        parsed = _int_or_percent(value)
        if parsed is None:
            continue
        number, percent = parsed
        fewest, _ = index.scale(workload)
        if percent and number >= 100:
            everything = True
        else:
            everything = not percent and fewest is not None and 0 < fewest <= number
        if everything:
            yield Hit(
                document,
                path,
                f"{_label(document)} allows maxUnavailable {value!r} during a rollout: every "
                "pod may be down at once",
            )


# --- Ingresses ------------------------------------------------------------------------------


def _backends(ingress: Document) -> Iterator[tuple[Path, dict[str, Any]]]:
    """Every backend of an Ingress with its path: defaultBackend, then rules' paths."""
    spec = ingress.get("spec")
    if not isinstance(spec, dict):
        return
    for key in ("defaultBackend", "backend"):
        if isinstance(spec.get(key), dict):
            yield ("spec", key), spec[key]
    rules = spec.get("rules")
    for number, item in enumerate(rules if isinstance(rules, list) else []):
        http = item.get("http") if isinstance(item, dict) else None
        paths = http.get("paths") if isinstance(http, dict) else None
        if not isinstance(paths, list):
            continue
        for position, entry in enumerate(paths):
            if isinstance(entry, dict) and isinstance(entry.get("backend"), dict):
                yield (
                    ("spec", "rules", number, "http", "paths", position, "backend"),
                    entry["backend"],
                )


def _backend_target(backend: dict[str, Any], path: Path) -> tuple[Any, Any, Path, Path] | None:
    """(service name, port, name path, port path) of a Service backend; None otherwise."""
    service = backend.get("service")
    if isinstance(service, dict):  # networking.k8s.io/v1
        port = service.get("port")
        value = None
        if isinstance(port, dict):
            value = port.get("number") if port.get("number") is not None else port.get("name")
        return service.get("name"), value, (*path, "service", "name"), (*path, "service", "port")
    if "serviceName" in backend:  # extensions/v1beta1, networking.k8s.io/v1beta1
        return (
            backend.get("serviceName"),
            backend.get("servicePort"),
            (*path, "serviceName"),
            (*path, "servicePort"),
        )
    return None


def _service_ports(service: Document) -> tuple[set[int], set[str]]:
    numbers: set[int] = set()
    names: set[str] = set()
    ports = service.get("spec", "ports")
    for port in ports if isinstance(ports, list) else []:
        if isinstance(port, dict):
            if _is_int(port.get("port")):
                numbers.add(port["port"])
            if isinstance(port.get("name"), str):
                names.add(port["name"])
    return numbers, names


@rule(
    "k8s.ingress-targets-service",
    "Ingress backends name an existing Service and port",
    Severity.WARNING,
    rationale=(
        "An Ingress backend naming a Service that does not exist in the Ingress's namespace, or "
        "a port that Service does not have, answers 503 for its host and path. Judged only for "
        "namespaces the change set shows (with Services or workloads in them), so an Ingress "
        "shipped for a Service deployed elsewhere is not flagged; Traefik IngressRoutes are "
        "checked by the Traefik pack."
    ),
    remediation=(
        "Point `backend.service.name` (and `defaultBackend`) at a Service in the same namespace "
        "and `backend.service.port` at one of its port numbers or names, or add the Service."
    ),
    aliases=("kube-score:ingress-targets-service", "kube-linter:dangling-ingress"),
)
def ingress_targets_service(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    index = _index(changeset)
    for ingress in changeset.of_kind("Ingress"):
        namespace = ingress.namespace
        services = index.services.get(namespace, {})
        if not services and not index.by_namespace.get(namespace):
            continue
        for path, backend in _backends(ingress):
            target = _backend_target(backend, path)
            if target is None:
                continue
            name, port, name_path, port_path = target
            if not isinstance(name, str) or not name:
                continue
            service = services.get(name)
            if service is None:
                yield Hit(
                    ingress,
                    name_path,
                    f"{_label(ingress)} routes to Service {name!r}, which is not in namespace "
                    f"{namespace or '(default)'} in this change",
                )
                continue
            numbers, names = _service_ports(service)
            if (_is_int(port) and port not in numbers) or (
                isinstance(port, str) and port and port not in names
            ):
                known = [str(n) for n in sorted(numbers)] + sorted(names)
                yield Hit(
                    ingress,
                    port_path,
                    f"{_label(ingress)} routes to port {port!r} of {_label(service)}, which "
                    f"has {_listed(known) if known else 'no ports'}",
                )


def _host_covered(host: str, tls_hosts: set[str]) -> bool:
    host = host.lower()
    if host in tls_hosts:
        return True
    _, dot, parent = host.partition(".")
    return bool(dot) and f"*.{parent}" in tls_hosts


@rule(
    "k8s.ingress-tls",
    "Ingresses serve their hosts over TLS",
    Severity.ERROR,
    rationale=(
        "An Ingress without `spec.tls`, or with a rule host no `tls[].hosts` entry covers, "
        "serves that host over plain HTTP: Odoo session cookies and passwords cross the network "
        "in clear text. An error in production, a warning elsewhere. An Ingress for Traefik "
        'with the `traefik.ingress.kubernetes.io/router.tls: "true"` annotation gets TLS from '
        "Traefik and passes."
    ),
    remediation=(
        "Add `spec.tls` with every rule host in `hosts` (a `*.example.com` entry covers one "
        "label) and a `secretName`, or annotate the Ingress "
        '`traefik.ingress.kubernetes.io/router.tls: "true"` with a certificate resolver.'
    ),
    aliases=("polaris:tlsSettingsMissing",),
)
def ingress_tls(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    severity = None if context.production else Severity.WARNING
    for ingress in changeset.of_kind("Ingress"):
        spec = ingress.get("spec")
        if not isinstance(spec, dict):
            continue
        annotations = ingress.metadata.get("annotations")
        if isinstance(annotations, dict) and str(annotations.get(_TRAEFIK_TLS)).lower() == "true":
            continue
        tls = spec.get("tls")
        entries = [e for e in tls if isinstance(e, dict)] if isinstance(tls, list) else []
        rules = spec.get("rules")
        hosts = [
            (number, item["host"])
            for number, item in enumerate(rules if isinstance(rules, list) else [])
            if isinstance(item, dict) and isinstance(item.get("host"), str) and item["host"]
        ]
        if not entries:
            named = _listed([host for _, host in hosts]) if hosts else "every host"
            yield Hit(
                ingress,
                ("spec",),
                f"{_label(ingress)} has no spec.tls: {named} served over plain HTTP",
                severity=severity,
            )
            continue
        if any(not isinstance(e.get("hosts"), list) or not e["hosts"] for e in entries):
            continue  # a tls entry without hosts covers every host (the controller's default)
        tls_hosts = {h.lower() for e in entries for h in e["hosts"] if isinstance(h, str) and h}
        for number, host in hosts:
            if not _host_covered(host, tls_hosts):
                yield Hit(
                    ingress,
                    ("spec", "rules", number, "host"),
                    f"{_label(ingress)} serves host {host} without TLS: no spec.tls[].hosts "
                    "entry covers it",
                    severity=severity,
                )


# --- tenant namespace guardrails ------------------------------------------------------------


def _touched_tenant_namespaces(
    changeset: ChangeSet, context: CheckContext
) -> dict[str, tuple[Document, Path]]:
    """Tenant namespaces the change set touches -> (object to report on, path in it).

    A tenant namespace is one the catalog maps to a tenant, or a Namespace labelled
    `changegate.io/tenant`; it is touched by its Namespace object or any object in it.
    """
    tenants = {ns for ns in context.tenant_namespaces if isinstance(ns, str)}
    namespaces = changeset.of_kind("Namespace")
    for document in namespaces:
        labels = document.metadata.get("labels")
        if document.name and isinstance(labels, dict) and TENANT_LABEL in labels:
            tenants.add(document.name)
    touched: dict[str, tuple[Document, Path]] = {}
    if not tenants:
        return touched
    for document in namespaces:
        if document.name in tenants and document.name not in touched:
            touched[document.name] = (document, ("metadata", "name"))
    for document in changeset.kubernetes():
        namespace = document.namespace
        if namespace in tenants and namespace not in touched:
            touched[namespace] = (document, ("metadata", "namespace"))
    return touched


def _tenant_guardrail(changeset: ChangeSet, context: CheckContext, kind: str) -> Iterator[Hit]:
    touched = _touched_tenant_namespaces(changeset, context)
    if not touched:
        return
    present = {document.namespace for document in changeset.of_kind(kind)}
    for namespace, (document, path) in touched.items():
        if namespace in present:
            continue
        yield Hit(
            document,
            path,
            f"tenant namespace {namespace} has no {kind} in this change set",
            resource=Resource("v1", "Namespace", namespace, namespace),
        )


_TENANT_VIEW = (
    " The change set is taken as the repository's view of the namespace: check the whole "
    "tenant folder, not a diff, or a change touching only a Deployment is reported."
)


@rule(
    "k8s.tenant-resource-quota",
    "Tenant namespaces have a ResourceQuota",
    Severity.ERROR,
    rationale=(
        "Tenants share nodes: without a ResourceQuota one tenant's runaway workers, jobs or "
        "volume claims take capacity from every other tenant on the cluster. Every tenant "
        "namespace the change set touches (a namespace the catalog maps to a tenant, or a "
        "Namespace labelled `changegate.io/tenant`) must have a ResourceQuota in the change "
        "set." + _TENANT_VIEW
    ),
    remediation=(
        "Add a ResourceQuota to the tenant namespace with `hard` limits for `requests.cpu`, "
        "`requests.memory`, `limits.cpu`, `limits.memory`, `persistentvolumeclaims` and "
        "`requests.storage` sized from the tenant's tier."
    ),
)
def tenant_resource_quota(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    yield from _tenant_guardrail(changeset, context, "ResourceQuota")


@rule(
    "k8s.tenant-limit-range",
    "Tenant namespaces have a LimitRange",
    Severity.ERROR,
    rationale=(
        "A LimitRange gives containers that forget requests and limits sane defaults and caps "
        "the largest container a tenant can start; with a ResourceQuota on requests and limits "
        "it is also what lets such containers be admitted at all. Every tenant namespace the "
        "change set touches must have one in the change set." + _TENANT_VIEW
    ),
    remediation=(
        "Add a LimitRange to the tenant namespace with a `type: Container` entry setting "
        "`default`, `defaultRequest` and `max` for cpu and memory."
    ),
)
def tenant_limit_range(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    yield from _tenant_guardrail(changeset, context, "LimitRange")


RULES = (
    min_replicas,
    pdb_allows_disruption,
    pdb_required,
    pdb_targets_workload,
    anti_affinity,
    network_policy_coverage,
    service_external_ips,
    service_exposed,
    service_targets_pods,
    service_target_port,
    rolling_update,
    on_delete_update,
    ingress_targets_service,
    ingress_tls,
    tenant_resource_quota,
    tenant_limit_range,
)
