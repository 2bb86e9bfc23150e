"""The change set a check runs on, indexed once, and the context it runs in.

Rules see the whole change set, so cross-document checks (a PodDisruptionBudget selecting a
Deployment, a Service selecting pods, an IngressRoute targeting a Service) are lookups in the
indexes built here rather than scans of every document per rule.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from changegate.domain.policy.model import Document, Format, Path

if TYPE_CHECKING:
    from changegate.domain.catalog import Catalog
    from changegate.domain.policy.config import PolicyConfigSpec

# Kinds whose pods changegate can see, and where their pod template's spec is.
POD_SPEC_PATHS: dict[str, Path] = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "ReplicationController": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
# Long-running workloads: what replicas, PDBs, probes and rollouts are about.
SERVING_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"})


@dataclass(frozen=True, slots=True)
class Container:
    """One container of a pod template, and where it is written."""

    data: dict[str, Any]
    path: Path
    init: bool

    @property
    def name(self) -> str:
        name = self.data.get("name")
        return name if isinstance(name, str) else ""

    @property
    def image(self) -> str:
        image = self.data.get("image")
        return image if isinstance(image, str) else ""


@dataclass(frozen=True, slots=True)
class Workload:
    """A Kubernetes object that runs pods: its pod spec, containers and pod labels."""

    document: Document
    pod_spec: dict[str, Any]
    pod_path: Path
    containers: tuple[Container, ...]
    pod_labels: Mapping[str, str]

    @property
    def kind(self) -> str:
        return self.document.kind

    @property
    def serving(self) -> bool:
        """Deployments, StatefulSets, DaemonSets, ReplicaSets: pods that serve, not jobs."""
        return self.document.kind in SERVING_KINDS

    def pod_metadata_path(self) -> Path:
        """Where the pod template's metadata is (the object's own for a Pod)."""
        if self.document.kind == "Pod":
            return ("metadata",)
        return (*self.pod_path[:-1], "metadata")


def _labels(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {k: str(v) for k, v in value.items() if isinstance(k, str)}


def _workload(document: Document) -> Workload | None:
    path = POD_SPEC_PATHS.get(document.kind)
    if path is None:
        return None
    pod_spec = document.get(*path)
    if not isinstance(pod_spec, dict):
        return None
    containers: list[Container] = []
    for key, init in (("initContainers", True), ("containers", False)):
        items = pod_spec.get(key)
        if isinstance(items, list):
            for index, item in enumerate(items):
                if isinstance(item, dict):
                    containers.append(Container(item, (*path, key, index), init))
    if document.kind == "Pod":
        labels = _labels(document.metadata.get("labels"))
    else:
        labels = _labels(document.get(*path[:-1], "metadata", "labels"))
    return Workload(document, pod_spec, path, tuple(containers), labels)


def selector_matches(selector: Any, labels: Mapping[str, str]) -> bool:
    """Kubernetes label-selector semantics: matchLabels and matchExpressions, all of them.

    A plain mapping (a Service's selector) is matchLabels. An empty selector selects every
    pod, as it does for a NetworkPolicy or PodDisruptionBudget with `{}`.
    """
    if not isinstance(selector, dict):
        return False
    if "matchLabels" not in selector and "matchExpressions" not in selector:
        return all(labels.get(k) == str(v) for k, v in selector.items())
    match = selector.get("matchLabels") or {}
    if not isinstance(match, dict) or not all(labels.get(k) == str(v) for k, v in match.items()):
        return False
    expressions = selector.get("matchExpressions") or []
    if not isinstance(expressions, list):
        return False
    for expression in expressions:
        if not isinstance(expression, dict):
            return False
        key, operator = expression.get("key"), expression.get("operator")
        raw_values = expression.get("values") or []
        if not isinstance(raw_values, list):
            return False
        values = [str(v) for v in raw_values]
        if not isinstance(key, str):
            return False
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and key in labels and labels[key] in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
        if operator not in ("In", "NotIn", "Exists", "DoesNotExist"):
            return False
    return True


class ChangeSet:
    """All documents of a change, with the indexes rules share; built once per check."""

    def __init__(self, documents: Sequence[Document]) -> None:
        self.documents: tuple[Document, ...] = tuple(documents)
        by_format: dict[Format, list[Document]] = defaultdict(list)
        by_kind: dict[str, list[Document]] = defaultdict(list)
        workloads: list[Workload] = []
        for document in self.documents:
            by_format[document.format].append(document)
            if document.format is Format.KUBERNETES:
                by_kind[document.kind].append(document)
                found = _workload(document)
                if found is not None:
                    workloads.append(found)
        self._by_format = dict(by_format)
        self._by_kind = dict(by_kind)
        self.workloads: tuple[Workload, ...] = tuple(workloads)

    def of_format(self, format: Format) -> Sequence[Document]:
        """Documents of one format, in input order."""
        return self._by_format.get(format, ())

    def of_kind(self, *kinds: str) -> list[Document]:
        """Kubernetes objects of the given kinds, in input order of each kind."""
        found: list[Document] = []
        for kind in kinds:
            found.extend(self._by_kind.get(kind, ()))
        return found

    def kubernetes(self) -> Sequence[Document]:
        """Every Kubernetes object."""
        return self.of_format(Format.KUBERNETES)

    def workloads_in(self, namespace: str) -> list[Workload]:
        """Workloads written for one namespace ("" is the apply's default namespace)."""
        return [w for w in self.workloads if w.document.namespace == namespace]

    def selected(self, namespace: str, selector: Any) -> list[Workload]:
        """Workloads in namespace whose pod labels the selector matches."""
        return [w for w in self.workloads_in(namespace) if selector_matches(selector, w.pod_labels)]


class Tools(Protocol):
    """Outside programs a rule may use; `None` from a method means the tool is not installed."""

    def promtool_check_rules(self, path: str) -> tuple[bool, str] | None:
        """(passed, output) of `promtool check rules PATH`."""

    def cosign_verify(self, image: str, arguments: Sequence[str]) -> tuple[bool, str] | None:
        """(verified, output) of `cosign verify ... IMAGE`."""


class NoTools:
    """No outside tool is installed (tests, and the API when nothing is configured)."""

    def promtool_check_rules(self, path: str) -> tuple[bool, str] | None:
        return None

    def cosign_verify(self, image: str, arguments: Sequence[str]) -> tuple[bool, str] | None:
        return None


@dataclass(frozen=True, slots=True)
class CheckContext:
    """What the check knows beyond the documents: where they go and how strict to be."""

    config: PolicyConfigSpec
    environment: str | None = None
    # The change's category when a change is checked (`database-upgrade`...), else None.
    category: str | None = None
    # The platform as it is now: services' current PostgreSQL/Redis/Traefik settings.
    catalog: Catalog | None = None
    production: bool = False
    tenant: str | None = None
    # Tenant namespaces (the guardrails apply to them), from the catalog: namespace -> the
    # tenant it belongs to, or "" when several tenants share it (multi-tenant Odoo).
    tenant_namespaces: Mapping[str, str] = field(default_factory=dict)
    # tenant id -> tier id, for settings that depend on the tier (synchronous_commit).
    tenant_tiers: Mapping[str, str] = field(default_factory=dict)
    critical_tiers: frozenset[str] = frozenset()
    tools: Tools = field(default_factory=NoTools)
    # Set by rules that could not do all their work (a tool missing): shown on the report.
    notices: list[str] = field(default_factory=list)

    def notice(self, text: str) -> None:
        """Say something plainly on the report (once)."""
        if text not in self.notices:
            self.notices.append(text)

    def tenant_of(self, namespace: str) -> str:
        """The tenant a namespace belongs to, or the check's --tenant, or ""."""
        return self.tenant_namespaces.get(namespace) or self.tenant or ""
