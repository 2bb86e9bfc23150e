"""The shapes every rule and report shares: documents, resources, hits, findings, rules.

A *document* is one parsed input (one YAML document, one Terraform plan, one Dockerfile, one
configuration file) with its format, its data and a way to find the line of a path inside it.
A rule yields *hits* (a document, a path, a message); the engine turns them into *findings*
with the rule's id, severity, remediation and aliases, the resource and the line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from changegate.domain.policy.changeset import ChangeSet, CheckContext

Path = tuple[str | int, ...]


class Severity(StrEnum):
    """How bad a finding is; errors fail a check and block authorization unless waived."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        """0 for errors, then warnings, then info: the order reports sort by."""
        return _RANKS[self]


_RANKS = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}


class Format(StrEnum):
    """What a document is, as the input adapter recognised it."""

    KUBERNETES = "kubernetes"  # any object with apiVersion and kind (CRDs included)
    TERRAFORM_PLAN = "terraform-plan"  # `terraform show -json` of a plan
    DOCKERFILE = "dockerfile"  # data: {"instructions": [{"instruction", "value", "line"}]}
    TRIVY = "trivy"  # `trivy image --format json`
    GRYPE = "grype"  # `grype -o json`
    TRAEFIK = "traefik"  # file-provider dynamic configuration (http/tcp/udp/tls)
    PROMETHEUS_RULES = "prometheus-rules"  # a rule file: {"groups": [...]}
    POSTGRESQL_CONF = "postgresql-conf"  # data: {parameter: value as written}
    REDIS_CONF = "redis-conf"  # data: {directive: value as written}
    ODOO_CONF = "odoo-conf"  # data: {option: value} of the [options] section
    IMAGE = "image"  # an image artifact of a change: {"ref": ..., "digest": ...}


Locator = Callable[[Path], "int | None"]


@dataclass(frozen=True, slots=True)
class Document:
    """One parsed input. `locate(path)` gives the 1-based line of a path inside it."""

    file: str
    index: int
    line: int
    format: Format
    data: Any
    locator: Locator | None = field(default=None, repr=False, compare=False)
    # The file on disk, for rules that hand it to an outside tool (promtool).
    path: str | None = field(default=None, compare=False)
    # The Git commit the file was read at (a change's GitOps range), or None: read from disk.
    commit: str | None = None

    def locate(self, path: Path) -> int | None:
        """The line of the value at path, or of the document when it cannot be told."""
        if self.locator is not None and path:
            found = self.locator(path)
            if found is not None:
                return found
        return self.line

    def get(self, *path: str | int) -> Any:
        """The value at path, or None when any step is missing or of the wrong type."""
        return dig(self.data, path)

    @property
    def api_version(self) -> str:
        return _text(self.data.get("apiVersion")) if isinstance(self.data, dict) else ""

    @property
    def kind(self) -> str:
        return _text(self.data.get("kind")) if isinstance(self.data, dict) else ""

    @property
    def metadata(self) -> dict[str, Any]:
        meta = self.data.get("metadata") if isinstance(self.data, dict) else None
        return meta if isinstance(meta, dict) else {}

    @property
    def name(self) -> str:
        return _text(self.metadata.get("name"))

    @property
    def namespace(self) -> str:
        """The namespace as written; "" when the manifest leaves it to the apply."""
        return _text(self.metadata.get("namespace"))

    def resource(self, container: str = "") -> Resource:
        """The resource a finding on this document names."""
        if self.format in (Format.KUBERNETES, Format.IMAGE):
            kind = self.kind or ("Image" if self.format is Format.IMAGE else "")
            name = self.name or (_text(self.data.get("ref")) if self.format is Format.IMAGE else "")
            return Resource(self.api_version, kind, self.namespace, name, container)
        return Resource("", self.format.value, "", self.file, container)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def dig(data: Any, path: Iterable[str | int]) -> Any:
    """The value at path inside nested dicts and lists, or None."""
    for step in path:
        if isinstance(step, str):
            if not isinstance(data, dict):
                return None
            data = data.get(step)
        else:
            if not isinstance(data, list) or not -len(data) <= step < len(data):
                return None
            data = data[step]
    return data


@dataclass(frozen=True, slots=True)
class Resource:
    """What a finding is about: a Kubernetes object (and container), a plan resource, a file."""

    api_version: str = ""
    kind: str = ""
    namespace: str = ""
    name: str = ""
    container: str = ""

    def label(self) -> str:
        """`Deployment shop/odoo` and `[container odoo]` where it applies."""
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        text = f"{self.kind} {where}".strip()
        return f"{text} [container {self.container}]" if self.container else text

    def as_dict(self) -> dict[str, str]:
        return {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "namespace": self.namespace,
            "name": self.name,
            "container": self.container,
        }


@dataclass(frozen=True, slots=True)
class Hit:
    """What a rule found: where (document and path inside it) and what."""

    document: Document
    path: Path
    message: str
    container: str = ""
    # Overrides the rule's severity for this hit (a vulnerability gate grading by CVE level).
    severity: Severity | None = None
    # Overrides the resource derived from the document (a Terraform resource address).
    resource: Resource | None = None
    # What inside the resource the finding is about, for waivers: a CVE id.
    subject: str = ""


@dataclass(frozen=True, slots=True)
class RuleInfo:
    """A rule's identity and documentation; every built-in rule has all of it."""

    id: str  # `<pack>.<name>`, e.g. `k8s.privileged`
    title: str
    severity: Severity
    rationale: str
    remediation: str
    pack: str
    aliases: tuple[str, ...] = ()  # Checkov CKV_K8S_*, kube-score, kube-linter, Polaris, KSV-*
    waivable: bool = True
    # Its errors do not block authorization: they raise the change's risk class to at least
    # high, so the high-risk approval rules decide (a Terraform plan deleting a database).
    escalates: bool = False


class Rule(Protocol):
    """A compiled rule: its info and a check over the whole change set."""

    @property
    def info(self) -> RuleInfo: ...

    def check(self, changeset: ChangeSet, context: CheckContext) -> Iterable[Hit]: ...


CheckFunction = Callable[["ChangeSet", "CheckContext"], Iterable[Hit]]


@dataclass(frozen=True, slots=True)
class FunctionRule:
    """A rule written as a Python function over the change set."""

    info: RuleInfo
    function: CheckFunction = field(repr=False)

    def check(self, changeset: ChangeSet, context: CheckContext) -> Iterable[Hit]:
        return self.function(changeset, context)


def rule(
    id: str,
    title: str,
    severity: Severity,
    *,
    rationale: str,
    remediation: str,
    aliases: tuple[str, ...] = (),
    waivable: bool = True,
    escalates: bool = False,
) -> Callable[[CheckFunction], FunctionRule]:
    """Decorator turning `def check(changeset, context) -> Iterator[Hit]` into a rule."""
    pack = id.split(".", 1)[0]

    def wrap(function: CheckFunction) -> FunctionRule:
        info = RuleInfo(
            id, title, severity, rationale, remediation, pack, aliases, waivable, escalates
        )
        return FunctionRule(info, function)

    return wrap


class FindingStatus(StrEnum):
    """A finding after waivers: failing, or let through by a waiver."""

    FAILED = "failed"
    WAIVED = "waived"


@dataclass(frozen=True, slots=True)
class Finding:
    """One rule broken by one resource, with everything a reader needs to fix or waive it."""

    rule: str
    severity: Severity
    message: str
    resource: Resource
    file: str
    line: int | None
    remediation: str
    aliases: tuple[str, ...]
    tenant: str = ""
    subject: str = ""  # what inside the resource: a CVE id (waivers can select it)
    status: FindingStatus = FindingStatus.FAILED
    waiver: str = ""  # the waiver letting it through, or an expired one that matched
    waiver_expired: bool = False
    escalates: bool = False  # needs a high-risk approval rather than blocking
    commit: str | None = None  # the Git commit `file` was read at; None: from disk or stdin

    @property
    def where(self) -> str:
        """`file:line`, as `commit:file:line` when read from Git (`git show commit:file`)."""
        where = f"{self.commit[:12]}:{self.file}" if self.commit else self.file
        return f"{where}:{self.line}" if self.line else where

    @property
    def failing_error(self) -> bool:
        """An error nobody waived: it fails `check`."""
        return self.status is FindingStatus.FAILED and self.severity is Severity.ERROR

    @property
    def blocking(self) -> bool:
        """A failing error that blocks authorization (one that escalates asks for a
        high-risk approval instead)."""
        return self.failing_error and not self.escalates

    def as_dict(self) -> dict[str, Any]:
        """The stable JSON shape (CLI --json, API, stored reports)."""
        return {
            "rule": self.rule,
            "severity": self.severity.value,
            "message": self.message,
            "resource": self.resource.as_dict(),
            "file": self.file,
            "line": self.line,
            "remediation": self.remediation,
            "aliases": list(self.aliases),
            "tenant": self.tenant,
            "subject": self.subject,
            "status": self.status.value,
            "waiver": self.waiver,
            "waiver_expired": self.waiver_expired,
            "escalates": self.escalates,
            "commit": self.commit,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Finding:
        """A stored finding back."""
        resource = data["resource"]
        return cls(
            rule=data["rule"],
            severity=Severity(data["severity"]),
            message=data["message"],
            resource=Resource(
                resource["apiVersion"],
                resource["kind"],
                resource["namespace"],
                resource["name"],
                resource["container"],
            ),
            file=data["file"],
            line=data["line"],
            remediation=data["remediation"],
            aliases=tuple(data["aliases"]),
            tenant=data["tenant"],
            subject=data["subject"],
            status=FindingStatus(data["status"]),
            waiver=data["waiver"],
            waiver_expired=data["waiver_expired"],
            escalates=data["escalates"],
            commit=data.get("commit"),  # reports stored before Git ranges were read have none
        )


def iter_hits(
    rules: Iterable[Rule], changeset: ChangeSet, context: CheckContext
) -> Iterator[tuple[Rule, Hit]]:
    """Every (rule, hit) pair, rule by rule."""
    for each in rules:
        for hit in each.check(changeset, context):
            yield each, hit
