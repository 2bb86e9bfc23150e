"""Drift: the desired objects (the GitOps repository's manifests) against the live ones.

Objects are keyed by (apiVersion, kind, namespace, name); a desired object without a
namespace is in `default_namespace` unless its kind is cluster-scoped. The comparison is
"desired is a subset of live": only the fields the desired manifest sets are compared, so
whatever the API server defaults or fills in (uid, resourceVersion, generation,
creationTimestamp, managedFields, status, `imagePullPolicy`, `terminationMessagePath`...)
never counts as drift. These are ignored even when a manifest sets them: metadata.uid,
resourceVersion, generation, creationTimestamp, managedFields, selfLink, the annotations
`kubectl.kubernetes.io/last-applied-configuration` and `deployment.kubernetes.io/revision`,
and the whole `status`.

Lists whose desired items all carry a `name` (containers, env, ports, volumes) are matched by
name; other lists by position, and must have the same length. Scalars equal as Kubernetes
quantities are equal (`1000m` and `1`, `1Gi` and `1073741824`). A Secret's `stringData` is
compared as the base64 `data` the server stores, and a Secret's values never appear in a
report.

Pure: the service reads the manifests and the snapshot and hands the parsed objects in.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from changegate.domain import canonical
from changegate.domain.changes import Category
from changegate.domain.gitops import POSTGRESQL_CLUSTER_KINDS

CLUSTER_SCOPED_KINDS: frozenset[str] = frozenset(
    {
        "Namespace",
        "Node",
        "PersistentVolume",
        "StorageClass",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "PriorityClass",
        "IngressClass",
        "RuntimeClass",
        "APIService",
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
        "CSIDriver",
        "ClusterIssuer",
    }
)
IGNORED_METADATA = frozenset(
    {"uid", "resourceVersion", "generation", "creationTimestamp", "managedFields", "selfLink"}
)
IGNORED_ANNOTATIONS = frozenset(
    {"kubectl.kubernetes.io/last-applied-configuration", "deployment.kubernetes.io/revision"}
)
# Live objects never reported as unmanaged: the cluster creates them by itself.
AUTOMATIC_KINDS = frozenset({"Event", "Endpoints", "EndpointSlice", "Lease", "ControllerRevision"})
AUTOMATIC_OBJECTS = frozenset({("ConfigMap", "kube-root-ca.crt"), ("ServiceAccount", "default")})
# Manifests in the repository that are not cluster objects.
NOT_OBJECTS_GROUPS = frozenset({"kustomize.config.k8s.io", "config.kubernetes.io"})
MAX_DIFFERENCES = 50
_VALUE_LIMIT = 120
_QUANTITY = re.compile(
    r"^([+-]?(?:\d+\.?\d*|\.\d+))(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]))?$"
)
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": Decimal(10**3),
    "M": Decimal(10**6),
    "G": Decimal(10**9),
    "T": Decimal(10**12),
    "P": Decimal(10**15),
    "E": Decimal(10**18),
}

Key = tuple[str, str, str, str]


def describe(key: Key) -> str:
    api_version, kind, namespace, name = key
    where = f"{namespace}/" if namespace else ""
    return f"{kind} {where}{name} ({api_version})"


def key_of(obj: Mapping[str, Any], default_namespace: str | None) -> Key | None:
    """(apiVersion, kind, namespace, name), or None when the object has no name."""
    meta = obj.get("metadata")
    if not isinstance(meta, Mapping):
        return None
    name = meta.get("name")
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if not isinstance(name, str) or not name:
        return None
    if not isinstance(api_version, str) or not isinstance(kind, str):
        return None
    namespace = meta.get("namespace")
    if kind in CLUSTER_SCOPED_KINDS:
        namespace = ""
    elif not isinstance(namespace, str) or not namespace:
        namespace = default_namespace or ""
    return (api_version, kind, namespace, name)


def is_cluster_object(obj: Mapping[str, Any]) -> bool:
    """A manifest that describes a cluster object (a kustomization is not one)."""
    api_version = obj.get("apiVersion")
    if not isinstance(api_version, str) or not isinstance(obj.get("kind"), str):
        return False
    return api_version.split("/", 1)[0] not in NOT_OBJECTS_GROUPS


def quantity(value: Any) -> Decimal | None:
    """A Kubernetes quantity's value (`500m`, `2Gi`, `1e3`, 3), or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        try:
            return Decimal(str(value))
        except InvalidOperation:
            return None
    if not isinstance(value, str):
        return None
    found = _QUANTITY.match(value.strip())
    if found is None:
        return None
    number, exponent, suffix = found.groups()
    try:
        amount = Decimal(number + (exponent or ""))
    except InvalidOperation:
        return None
    if suffix in _BINARY:
        return amount * _BINARY[suffix]
    if suffix:
        return amount * _DECIMAL[suffix]
    return amount


def _same_scalar(desired: Any, live: Any) -> bool:
    if desired == live and type(desired) is type(live):
        return True
    if isinstance(desired, bool) or isinstance(live, bool):
        return False
    if isinstance(desired, str) and isinstance(live, str):
        return _equal_quantities(desired, live)
    if isinstance(desired, int | float) and isinstance(live, int | float):
        return desired == live
    return _equal_quantities(desired, live)


def _equal_quantities(a: Any, b: Any) -> bool:
    qa, qb = quantity(a), quantity(b)
    return qa is not None and qb is not None and qa == qb


@dataclass(frozen=True, slots=True)
class Difference:
    """One path where live differs from desired: `spec.replicas`, `spec...containers[odoo]`."""

    path: str
    desired: Any
    live: Any
    missing: bool = False

    def as_dict(self, *, redact: bool = False) -> dict[str, Any]:
        if redact:
            return {"path": self.path, "missing": self.missing}
        return {
            "path": self.path,
            "desired": _short(self.desired),
            "live": None if self.missing else _short(self.live),
            "missing": self.missing,
        }


def _short(value: Any) -> Any:
    if isinstance(value, dict | list):
        text = repr(value)
        return text if len(text) <= _VALUE_LIMIT else text[: _VALUE_LIMIT - 1] + "…"
    if isinstance(value, str) and len(value) > _VALUE_LIMIT:
        return value[: _VALUE_LIMIT - 1] + "…"
    return value


def _join(path: str, part: str) -> str:
    return f"{path}.{part}" if path else part


def _subset(desired: Any, live: Any, path: str, out: list[Difference], depth: int = 0) -> None:
    if len(out) >= MAX_DIFFERENCES or depth > 100:
        return
    if isinstance(desired, Mapping):
        if not isinstance(live, Mapping):
            out.append(Difference(path, desired, live))
            return
        for name, value in desired.items():
            child = _join(path, str(name))
            if name not in live:
                if value is None or value in ({}, []):
                    continue  # an explicit empty value the server drops
                out.append(Difference(child, value, None, missing=True))
                continue
            _subset(value, live[name], child, out, depth + 1)
        return
    if isinstance(desired, list):
        if not isinstance(live, list):
            out.append(Difference(path, desired, live))
            return
        if desired and all(
            isinstance(i, Mapping) and isinstance(i.get("name"), str) for i in desired
        ):
            by_name = {i.get("name"): i for i in live if isinstance(i, Mapping)}
            for item in desired:
                child = f"{path}[{item['name']}]"
                if item["name"] not in by_name:
                    out.append(Difference(child, item, None, missing=True))
                    continue
                _subset(item, by_name[item["name"]], child, out, depth + 1)
            return
        if len(desired) != len(live):
            out.append(Difference(path, desired, live))
            return
        for index, (item, other) in enumerate(zip(desired, live, strict=True)):
            _subset(item, other, f"{path}[{index}]", out, depth + 1)
        return
    if desired is None:
        return  # `key: null` in a manifest sets nothing
    if not _same_scalar(desired, live):
        out.append(Difference(path, desired, live))


def comparable(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The object without the fields the server fills in, a Secret's stringData as data."""
    copied = {k: v for k, v in obj.items() if k != "status"}
    meta = copied.get("metadata")
    if isinstance(meta, Mapping):
        meta_copy = {k: v for k, v in meta.items() if k not in IGNORED_METADATA}
        annotations = meta_copy.get("annotations")
        if isinstance(annotations, Mapping):
            kept = {k: v for k, v in annotations.items() if k not in IGNORED_ANNOTATIONS}
            if kept:
                meta_copy["annotations"] = kept
            else:
                meta_copy.pop("annotations")
        copied["metadata"] = meta_copy
    if copied.get("kind") == "Secret" and isinstance(copied.get("stringData"), Mapping):
        data = dict(copied.get("data") or {})
        for name, value in copied.pop("stringData").items():
            text = value if isinstance(value, str) else str(value)
            data[name] = base64.b64encode(text.encode("utf-8")).decode("ascii")
        copied["data"] = data
    return copied


def differences(desired: Mapping[str, Any], live: Mapping[str, Any]) -> list[Difference]:
    """The paths where live does not hold what desired sets (desired ⊆ live)."""
    out: list[Difference] = []
    want, have = comparable(desired), comparable(live)
    # The namespace is part of the key, and is defaulted when the manifest omits it.
    meta = want.get("metadata")
    if isinstance(meta, dict):
        meta.pop("namespace", None)
    _subset(want, have, "", out)
    return out


@dataclass(frozen=True, slots=True)
class DesiredObject:
    """One desired object and the file it came from."""

    obj: Mapping[str, Any]
    source: str


@dataclass
class DriftedObject:
    key: Key
    source: str
    differences: list[Difference]

    def as_dict(self) -> dict[str, Any]:
        redact = self.key[1] == "Secret"
        return {
            **_key_dict(self.key),
            "source": self.source,
            "differences": [d.as_dict(redact=redact) for d in self.differences],
        }


@dataclass
class DriftReport:
    """What differs: drifted objects, desired ones missing live, live ones nobody declared."""

    drifted: list[DriftedObject] = field(default_factory=list)
    missing: list[tuple[Key, str]] = field(default_factory=list)
    unmanaged: list[Key] = field(default_factory=list)
    compared: int = 0
    duplicates: list[str] = field(default_factory=list)

    @property
    def found(self) -> bool:
        return bool(self.drifted or self.missing or self.unmanaged)

    def as_dict(self) -> dict[str, Any]:
        return {
            "compared": self.compared,
            "drifted": [d.as_dict() for d in self.drifted],
            "missing": [{**_key_dict(k), "source": s} for k, s in self.missing],
            "unmanaged": [_key_dict(k) for k in self.unmanaged],
            "duplicates": list(self.duplicates),
        }


def _key_dict(key: Key) -> dict[str, str]:
    return {"apiVersion": key[0], "kind": key[1], "namespace": key[2], "name": key[3]}


def _owned(obj: Mapping[str, Any]) -> bool:
    meta = obj.get("metadata")
    return isinstance(meta, Mapping) and bool(meta.get("ownerReferences"))


def compare(
    desired: Sequence[DesiredObject],
    live: Iterable[Mapping[str, Any]],
    *,
    default_namespace: str = "default",
    report_unmanaged: bool = True,
) -> DriftReport:
    """Compare the desired objects with the live ones.

    Unmanaged objects are live objects no manifest declares, without ownerReferences (a
    ReplicaSet or Pod belongs to its Deployment), not of a kind the cluster creates by itself,
    and in a namespace the desired objects use (or cluster-scoped of a kind they declare):
    a snapshot of the whole cluster does not report kube-system as unmanaged.
    """
    report = DriftReport()
    wanted: dict[Key, DesiredObject] = {}
    for item in desired:
        key = key_of(item.obj, default_namespace)
        if key is None:
            continue
        if key in wanted:
            report.duplicates.append(
                f"{describe(key)} is declared in {wanted[key].source} and {item.source}"
            )
            continue
        wanted[key] = item
    have: dict[Key, Mapping[str, Any]] = {}
    for obj in live:
        key = key_of(obj, None)
        if key is not None:
            have[key] = obj
    namespaces = {k[2] for k in wanted if k[2]}
    cluster_kinds = {k[1] for k in wanted if not k[2]}
    for key, item in sorted(wanted.items()):
        found = have.get(key)
        if found is None:
            report.missing.append((key, item.source))
            continue
        report.compared += 1
        diffs = differences(item.obj, found)
        if diffs:
            report.drifted.append(DriftedObject(key, item.source, diffs))
    if report_unmanaged:
        for key, obj in sorted(have.items()):
            if key in wanted or _owned(obj) or key[1] in AUTOMATIC_KINDS:
                continue
            if (key[1], key[3]) in AUTOMATIC_OBJECTS:
                continue
            in_scope = key[2] in namespaces if key[2] else key[1] in cluster_kinds
            if in_scope:
                report.unmanaged.append(key)
    return report


# --------------------------------------------------------------------------- commits

_TRAILER = re.compile(r"^Change-Id:\s*(\S+)\s*$", re.IGNORECASE | re.MULTILINE)


def change_ids(message: str) -> list[str]:
    """The `Change-Id:` trailers of a commit message (every one, in order)."""
    paragraphs = [p for p in re.split(r"\n\s*\n", message.strip()) if p.strip()]
    if len(paragraphs) < 2:
        return []
    return _TRAILER.findall(paragraphs[-1])


@dataclass(frozen=True, slots=True)
class UnauthorizedCommit:
    """A commit on governed paths that no authorized change (or no allowed key) covers.

    `reason` says every way it fails, `; `-joined; `signature` is the signature check's
    verdict when the repository requires signed commits (`unsigned`, `unknown key FPR`,
    `bad signature (...)`, `signed by FPR (file)`), else None.
    """

    sha: str
    subject: str
    paths: list[str]
    reason: str
    change_id: str | None = None
    signature: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "sha": self.sha,
            "subject": self.subject,
            "paths": list(self.paths),
            "change_id": self.change_id,
            "reason": self.reason,
            "signature": self.signature,
        }


# --------------------------------------------------------------------------- findings

TITLE_LIMIT = 200
JUSTIFICATION_LIMIT = 100_000
_IMAGE_PATH = re.compile(r"(?:^|\.)(?:containers|initContainers)\[[^\]]+\]\.image$")
_KIND_HEADINGS = {
    "commit": "Unauthorized commits",
    "drifted": "Drifted objects (live differs from desired)",
    "missing": "Desired objects missing live",
    "unmanaged": "Live objects nobody declared",
}
_KIND_NOUNS = {
    "commit": ("unauthorized commit", "unauthorized commits"),
    "drifted": ("drifted object", "drifted objects"),
    "missing": ("missing object", "missing objects"),
    "unmanaged": ("unmanaged object", "unmanaged objects"),
}


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing drift found that no change authorized, as an emergency change records it.

    `id` is the same on every run that finds the same thing, so a finding recorded once is
    not recorded again: `commit:<sha>` for a commit; for a live object its kind and a
    SHA-256 over its key and what differs (paths, and live values except a Secret's).
    `paths` are the repository files it concerns (they map it to catalog targets);
    `namespace` is the live object's.
    """

    id: str
    kind: str
    text: str
    paths: tuple[str, ...] = ()
    namespace: str = ""
    category: Category | None = None
    category_reason: str = ""
    sha: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "text": self.text,
            "paths": list(self.paths),
            "category": self.category.value if self.category else None,
            "category_reason": self.category_reason,
        }


def _object_id(kind: str, key: Key, what: Any) -> str:
    return f"{kind}:" + canonical.sha256_hex({"key": list(key), "what": what})


def _listed(items: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def commit_finding(
    commit: UnauthorizedCommit, category: Category | None, category_reason: str
) -> Finding:
    """The finding of an unauthorized commit (its category worked out by the caller)."""
    return Finding(
        id=f"commit:{commit.sha}",
        kind="commit",
        text=f"{commit.sha[:12]} {commit.subject!r}: {commit.reason}; touches "
        f"{_listed(commit.paths)}",
        paths=tuple(commit.paths),
        category=category,
        category_reason=category_reason,
        sha=commit.sha,
    )


def content_category(item: DriftedObject) -> tuple[Category | None, str]:
    """The category a drifted object's differences clearly say, or None, and why."""
    group = item.key[0].split("/", 1)[0] if "/" in item.key[0] else ""
    if (group, item.key[1]) in POSTGRESQL_CLUSTER_KINDS:
        return Category.DATABASE_CONFIG, f"{describe(item.key)} is a PostgreSQL cluster object"
    if item.differences and all(_IMAGE_PATH.search(d.path) for d in item.differences):
        return Category.APPLICATION_RELEASE, f"only container images of {describe(item.key)} differ"
    return None, f"{describe(item.key)} differs beyond container images"


def drifted_finding(
    item: DriftedObject, rule_category: Category | None, rule_reason: str = ""
) -> Finding:
    """The finding of a drifted object: its category from what differs, else the rule's."""
    secret = item.key[1] == "Secret"
    what = [[d.path, d.missing, None if secret or d.missing else d.live] for d in item.differences]
    category, reason = content_category(item)
    if category is None and rule_category is not None:
        category, reason = rule_category, rule_reason
    paths = [d.path for d in item.differences]
    return Finding(
        id=_object_id("drifted", item.key, what),
        kind="drifted",
        text=f"{describe(item.key)}, declared in {item.source}: {_listed(paths)}",
        paths=(item.source,),
        namespace=item.key[2],
        category=category,
        category_reason=reason,
    )


def missing_finding(
    key: Key, source: str, rule_category: Category | None, rule_reason: str = ""
) -> Finding:
    """The finding of a desired object that is not live."""
    return Finding(
        id=_object_id("missing", key, source),
        kind="missing",
        text=f"{describe(key)}, declared in {source}, is not live",
        paths=(source,),
        namespace=key[2],
        category=rule_category,
        category_reason=rule_reason if rule_category else f"{describe(key)} is missing live",
    )


def unmanaged_finding(key: Key) -> Finding:
    """The finding of a live object no manifest declares."""
    return Finding(
        id=_object_id("unmanaged", key, None),
        kind="unmanaged",
        text=f"{describe(key)} is live and declared nowhere",
        namespace=key[2],
        category_reason=f"{describe(key)} is declared nowhere",
    )


def choose_category(findings: Sequence[Finding]) -> tuple[Category, str]:
    """The findings' one category when they all clearly say it; else kubernetes, and why."""
    said = sorted({f.category.value for f in findings if f.category is not None})
    unclear = [f for f in findings if f.category is None]
    if len(said) == 1 and not unclear:
        reasons = sorted({f.category_reason for f in findings if f.category_reason})
        return Category(said[0]), "; ".join(reasons[:3]) or "every finding says it"
    if len(said) > 1:
        return Category.KUBERNETES, f"the findings say different categories ({', '.join(said)})"
    first = unclear[0] if unclear else None
    why = first.category_reason if first is not None else "no finding"
    return Category.KUBERNETES, f"no category is clear ({why})"


def summary(findings: Sequence[Finding]) -> str:
    """`2 unauthorized commits, 1 drifted object`."""
    parts: list[str] = []
    for kind, (one, many) in _KIND_NOUNS.items():
        count = sum(1 for f in findings if f.kind == kind)
        if count:
            parts.append(f"{count} {one if count == 1 else many}")
    return ", ".join(parts) or "nothing"


def emergency_title(findings: Sequence[Finding], targets: Sequence[str]) -> str:
    """`Unauthorized change detected: 1 unauthorized commit, 1 drifted object on acme`."""
    title = f"Unauthorized change detected: {summary(findings)}"
    if targets:
        title += f" on {_listed(list(targets), 3)}"
    return title if len(title) <= TITLE_LIMIT else title[: TITLE_LIMIT - 1] + "…"


def emergency_justification(
    findings: Sequence[Finding], header: Sequence[str], footer: Sequence[str]
) -> str:
    """The findings grouped by kind, between a header and a footer, within the text limit."""
    lines = list(header)
    for kind, heading in _KIND_HEADINGS.items():
        items = [f for f in findings if f.kind == kind]
        if items:
            lines += ["", f"{heading}:"] + [f"- {f.text}" for f in items]
    tail = ["", *footer] if footer else []
    text = "\n".join(lines)
    budget = JUSTIFICATION_LIMIT - len("\n".join(tail)) - 80
    if len(text) > budget:
        cut = text[:budget].rsplit("\n", 1)[0]
        left = text[len(cut) :].count("\n- ")
        text = f"{cut}\n… and {left} more findings (see the audit trail: drift.finding-recorded)"
    return "\n".join([text, *tail])
