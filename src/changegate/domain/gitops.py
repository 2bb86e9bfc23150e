"""The GitOps repository: how its paths map to catalog entities, and what a changed file says.

A `GitOpsRepository` catalog document names the repository (URL, branch) and lists path
patterns in the spirit of CODEOWNERS:

- patterns are anchored at the repository's root (a leading `/` is allowed and means the same);
- `*` matches within one path segment (`*.yaml`, or a whole segment), never across `/`;
- `**` as a whole segment matches any number of segments (zero included in the middle or at
  the start; at least one at the end, so `platform/**` matches every file under `platform/`);
- `{tenant}`, `{service}`, `{cluster}` and `{environment}` match one segment (or part of one:
  `values-{tenant}.yaml`) and capture it as that entity's id;
- a trailing `/` means everything below: `docs/` is `docs/**`;
- every other character is literal (`?`, `[` and `\\` included).

As in CODEOWNERS the **last** matching pattern wins: list the general patterns first and the
specific ones after. A file is decided by that one pattern; an id it captures that the catalog
does not know makes the file unmatched, with the reason (the service checks the catalog).

Everything here is pure: the service reads Git and YAML and hands the parsed data in.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)
from pydantic_core import PydanticCustomError

from changegate.domain import godurations
from changegate.domain.changes import Category
from changegate.domain.policy.changeset import ChangeSet
from changegate.domain.policy.model import Document

KIND = "GitOpsRepository"
# What a pattern may capture, most specific first: a file's target is the first of these the
# pattern captures among tenant, service and cluster.
PLACEHOLDERS: tuple[str, ...] = ("tenant", "service", "cluster", "environment")
TARGET_PLACEHOLDERS: tuple[str, ...] = ("tenant", "service", "cluster")
ID_PATTERN = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
MAX_PATTERNS = 1000
_PLACEHOLDER = re.compile(r"\{([^{}/]*)\}")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")

# Kinds of the PostgreSQL operators' cluster objects: CloudNativePG, Zalando, Crunchy, StackGres.
POSTGRESQL_CLUSTER_KINDS: frozenset[tuple[str, str]] = frozenset(
    {
        ("postgresql.cnpg.io", "Cluster"),
        ("acid.zalan.do", "postgresql"),
        ("postgres-operator.crunchydata.com", "PostgresCluster"),
        ("stackgres.io", "SGCluster"),
    }
)
KUSTOMIZATION_NAMES = frozenset({"kustomization.yaml", "kustomization.yml", "kustomization"})


def _invalid(message: str) -> PydanticCustomError:
    return PydanticCustomError("gitops", message)


# --------------------------------------------------------------------------- patterns


@dataclass(frozen=True, slots=True)
class CompiledPattern:
    """A pattern as a regular expression, and the placeholders it captures."""

    text: str
    regex: re.Pattern[str]
    names: tuple[str, ...]


def _segment(segment: str) -> tuple[str, list[str]]:
    """The regex of one segment that is not `**`, and the names it captures."""
    if "**" in segment:
        raise ValueError(f"`**` must be a whole path segment (got {segment!r})")
    if segment == "*":
        return "[^/]+", []
    names: list[str] = []
    parts: list[str] = []
    position = 0
    for match in _PLACEHOLDER.finditer(segment):
        parts.append(_literal(segment[position : match.start()]))
        name = match.group(1)
        if name not in PLACEHOLDERS:
            known = ", ".join("{" + p + "}" for p in PLACEHOLDERS)
            raise ValueError(f"unknown placeholder {{{name}}}; use {known}")
        names.append(name)
        parts.append(f"(?P<{name}>[^/]+)")
        position = match.end()
    parts.append(_literal(segment[position:]))
    return "".join(parts), names


def _literal(text: str) -> str:
    if "{" in text or "}" in text:
        raise ValueError(f"unbalanced braces in {text!r}: a placeholder is {{name}}")
    return "[^/]*".join(re.escape(piece) for piece in text.split("*"))


def compile_pattern(text: str) -> CompiledPattern:
    """Compile a pattern; ValueError says what is wrong with it."""
    body = text.removeprefix("/")
    if not body:
        raise ValueError("a pattern cannot be empty")
    if any(ch in body for ch in "\x00\n\r"):
        raise ValueError("a pattern cannot hold NUL or line breaks")
    if body.endswith("/"):
        body += "**"
    segments = body.split("/")
    regex: list[str] = []
    names: list[str] = []
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment in ("", ".", ".."):
            raise ValueError(f"empty, `.` or `..` segment in {text!r}")
        if segment == "**":
            if index > 0 and segments[index - 1] == "**":
                raise ValueError("`**/**` is just `**`")
            # At the end: one or more segments; elsewhere: zero or more segments and a `/`.
            regex.append(".+" if last else "(?:[^/]+/)*")
            continue
        piece, captured = _segment(segment)
        names += captured
        regex.append(piece if last else piece + "/")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"{{{repeated[0]}}} is captured more than once")
    return CompiledPattern(text, re.compile("".join(regex), re.DOTALL), tuple(names))


def _pattern(text: str) -> str:
    try:
        compile_pattern(text)
    except ValueError as exc:
        raise _invalid(str(exc)) from None
    return text


Pattern = Annotated[str, StringConstraints(min_length=1, max_length=1024), AfterValidator(_pattern)]
RepoUrl = Annotated[
    str,
    StringConstraints(
        pattern=r"^((https?|ssh|git|file)://[^\s]+|[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^\s]+)$",
        max_length=2048,
    ),
]


def _branch(name: str) -> str:
    if name.startswith(("-", "/")) or name.endswith(("/", ".lock")) or ".." in name or "//" in name:
        raise _invalid(f"not a branch name: {name!r}")
    return name


Branch = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9._/-]{1,255}$"), AfterValidator(_branch)
]


class PathRule(BaseModel):
    """One pattern: what its files target, and optionally the category and environment."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    pattern: Pattern
    category: Category | None = None
    ignore: bool = False

    @model_validator(mode="after")
    def _targets_something(self) -> PathRule:
        names = compile_pattern(self.pattern).names
        if self.ignore:
            if names or self.category is not None:
                raise _invalid("an ignore rule captures nothing and names no category")
        elif not set(names) & set(TARGET_PLACEHOLDERS):
            raise _invalid(
                "the pattern names no target: capture {tenant}, {service} or {cluster}, "
                "or mark it ignore: true"
            )
        return self

    def compiled(self) -> CompiledPattern:
        return _compiled(self.pattern)


_COMPILED: dict[str, CompiledPattern] = {}


def _compiled(text: str) -> CompiledPattern:
    found = _COMPILED.get(text)
    if found is None:
        if len(_COMPILED) > 10_000:
            _COMPILED.clear()
        found = _COMPILED[text] = compile_pattern(text)
    return found


def _go_duration(text: str) -> str:
    nanos = godurations.nanoseconds(text)
    if nanos is None or nanos < 0:
        raise _invalid(f"not a duration: {text!r} (Go syntax: 90s, 10m, 1h30m)")
    return text


GoDuration = Annotated[
    str, StringConstraints(min_length=1, max_length=64), AfterValidator(_go_duration)
]


def _catalog_path(text: str) -> str:
    if text.startswith("/") or ".." in text.split("/"):
        raise _invalid(f"{text!r} must be a path inside the catalog folder")
    return text


CatalogPath = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9._/-]{1,512}$"),
    AfterValidator(_catalog_path),
]
_APP_PLACEHOLDERS = frozenset({"tenant", "cluster", "namespace", "environment"})


def _application(text: str) -> str:
    unknown = sorted(set(_PLACEHOLDER.findall(text)) - _APP_PLACEHOLDERS)
    if unknown:
        raise _invalid(
            f"unknown placeholder {{{unknown[0]}}}: use {{tenant}}, {{cluster}}, "
            "{namespace} or {environment}"
        )
    return text


class AnalysisRef(BaseModel):
    """An Argo Rollouts AnalysisTemplate file in the catalog folder, and its arguments."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    template: CatalogPath
    args: dict[Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,63}$")], str] = Field(
        default_factory=dict, max_length=50
    )


class Probes(BaseModel):
    """HTTP checks of each tenant of a wave (its catalog `url`), besides the analysis."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    web_health: bool = True  # /web/health (Odoo 15+), ?db_server_status=1 where supported
    login_within_ms: int | None = Field(default=None, ge=1, le=600_000)
    timeout_seconds: float = Field(default=10.0, gt=0, le=300)


class RolloutSettings(BaseModel):
    """How changegate carries a change through this repository, wave by wave (docs/rollout.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    # The GitOps controller's application of a tenant: its sync and health are waited for.
    application: Annotated[
        str, StringConstraints(min_length=1, max_length=253), AfterValidator(_application)
    ] = "{tenant}"
    # Rewrite the change's images in each wave tenant's files (matched by `paths`).
    render: bool = True
    sync_timeout: GoDuration = "10m"
    sync_poll: GoDuration = "5s"
    bake: GoDuration = "0s"
    analysis: list[AnalysisRef] = Field(default_factory=list, max_length=20)
    probes: Probes = Field(default_factory=Probes)


class Signing(BaseModel):
    """Signed commits on governed paths: verified with `git verify-commit` against `keys`."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    required: bool = False
    # ASCII-armoured OpenPGP public keys, paths relative to the catalog folder.
    keys: list[CatalogPath] = Field(default_factory=list, max_length=100)

    @model_validator(mode="after")
    def _keys_when_required(self) -> Signing:
        if self.required and not self.keys:
            raise _invalid("signed commits are required: list the allowed public keys in keys")
        return self


class GitOpsRepositorySpec(BaseModel):
    """The GitOps repository Argo CD or Flux reconciles, and how its paths map to the catalog.

    At most one per catalog. `paths` are patterns, the last match wins (docs/gitops.md).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    description: Annotated[str, StringConstraints(max_length=10_000)] = ""
    url: RepoUrl
    branch: Branch = "main"
    paths: list[PathRule] = Field(min_length=1, max_length=MAX_PATTERNS)
    rollout: RolloutSettings = Field(default_factory=RolloutSettings)
    signing: Signing = Field(default_factory=Signing)

    @model_validator(mode="after")
    def _distinct(self) -> GitOpsRepositorySpec:
        seen: set[str] = set()
        for rule in self.paths:
            key = rule.pattern.removeprefix("/")
            if key in seen:
                raise _invalid(f"pattern {rule.pattern!r} is listed more than once")
            seen.add(key)
        return self

    def references(self) -> Iterator[Any]:
        """No ids to resolve: captured ids are checked against the catalog per diff."""
        return iter(())


@dataclass(frozen=True, slots=True)
class PathMatch:
    """The pattern that decided a path: its position (0-based), the rule and its captures."""

    index: int
    rule: PathRule
    captures: Mapping[str, str]

    def describe(self) -> str:
        return f"paths[{self.index}] {self.rule.pattern!r}"


def match_path(rules: Sequence[PathRule], path: str) -> PathMatch | None:
    """The last rule whose pattern matches path, or None."""
    for index in range(len(rules) - 1, -1, -1):
        rule = rules[index]
        found = rule.compiled().regex.fullmatch(path)
        if found is not None:
            return PathMatch(index, rule, dict(found.groupdict()))
    return None


def bad_capture(match: PathMatch) -> str | None:
    """Why a capture cannot be an id (`Acme Corp` is no tenant id), or None."""
    for name, value in match.captures.items():
        if not ID_PATTERN.match(value):
            return (
                f"{match.describe()} captured {name} {value!r}, which is not a valid id "
                "(lowercase letters, digits and -)"
            )
    return None


# --------------------------------------------------------------------------- images


@dataclass(frozen=True, slots=True, order=True)
class Image:
    """An image reference as written, split into the reference and its digest."""

    ref: str
    digest: str | None = None

    @property
    def text(self) -> str:
        return f"{self.ref}@{self.digest}" if self.digest else self.ref


def split_image(text: str) -> Image:
    """`registry/odoo:17.0@sha256:...` to (`registry/odoo:17.0`, `sha256:...`)."""
    ref, at, digest = text.strip().partition("@")
    if at and _DIGEST.match(digest):
        return Image(ref, digest)
    return Image(text.strip())


def workload_images(documents: Sequence[Document]) -> list[Image]:
    """The images of every container (init containers included) of the workloads."""
    found: list[Image] = []
    for workload in ChangeSet(documents).workloads:
        for container in workload.containers:
            if container.image:
                found.append(split_image(container.image))
    return found


def kustomize_images(data: Any) -> list[Image]:
    """The `images:` overrides of a kustomization: newName or name, newTag, digest."""
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        return []
    found: list[Image] = []
    for item in data["images"]:
        if not isinstance(item, dict):
            continue
        name = item.get("newName") or item.get("name")
        if not isinstance(name, str) or not name:
            continue
        tag, digest = item.get("newTag"), item.get("digest")
        ref = f"{name}:{tag}" if isinstance(tag, str | int | float) and str(tag) else name
        if isinstance(digest, str) and _DIGEST.match(digest):
            found.append(Image(ref, digest))
        else:
            found.append(Image(ref))
    return found


def is_kustomization(path: str) -> bool:
    return path.rsplit("/", 1)[-1].lower() in KUSTOMIZATION_NAMES


# --------------------------------------------------------------------------- categories

_IMAGE_MARK = "\x00image"


def _without_images(data: Any, kustomization: bool) -> Any:
    """The data with every container image (or kustomize image override) blanked."""
    if kustomization:
        if isinstance(data, dict) and isinstance(data.get("images"), list):
            return {**data, "images": _IMAGE_MARK}
        return data
    return _blank_containers(data, 0)


def _blank_containers(value: Any, depth: int) -> Any:
    if depth > 200:
        return value
    if isinstance(value, dict):
        copied: dict[Any, Any] = {}
        for key, item in value.items():
            if key in ("containers", "initContainers") and isinstance(item, list):
                copied[key] = [
                    {**c, "image": _IMAGE_MARK} if isinstance(c, dict) and "image" in c else c
                    for c in item
                ]
            else:
                copied[key] = _blank_containers(item, depth + 1)
        return copied
    if isinstance(value, list):
        return [_blank_containers(item, depth + 1) for item in value]
    return value


def _key(data: Any) -> tuple[str, str, str, str]:
    if not isinstance(data, dict):
        return ("", "", "", "")
    meta = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
    assert isinstance(meta, dict)
    return (
        str(data.get("apiVersion", "")),
        str(data.get("kind", "")),
        str(meta.get("namespace", "")),
        str(meta.get("name", "")),
    )


@dataclass(frozen=True, slots=True)
class ContentChange:
    """What changed inside one file: the category it clearly is, or None, and why."""

    category: Category | None
    reason: str


def classify_content(before: Sequence[Any], after: Sequence[Any], path: str) -> ContentChange:
    """Compare a file's documents at A and at B (parsed data, in order).

    Only container images (or a kustomization's `images:`) differ: application-release. Only
    PostgreSQL operator cluster objects differ: database-config. Otherwise nothing is clear.
    """
    kustomization = is_kustomization(path)
    if before == after:
        return ContentChange(None, "no content change")
    if [_without_images(d, kustomization) for d in before] == [
        _without_images(d, kustomization) for d in after
    ]:
        return ContentChange(Category.APPLICATION_RELEASE, "only image references changed")
    old = {_key(d): d for d in before}
    new = {_key(d): d for d in after}
    differing = [k for k in old.keys() | new.keys() if old.get(k) != new.get(k)]
    if differing and all(_postgresql_cluster(k) for k in differing):
        return ContentChange(Category.DATABASE_CONFIG, "only PostgreSQL cluster objects changed")
    return ContentChange(None, "changes beyond images and PostgreSQL cluster specs")


def _postgresql_cluster(key: tuple[str, str, str, str]) -> bool:
    group = key[0].split("/", 1)[0]
    return (group, key[1]) in POSTGRESQL_CLUSTER_KINDS


@dataclass(frozen=True, slots=True)
class CategoryVote:
    """A file's say in the change's category: its category (or None) and where it came from."""

    path: str
    category: Category | None
    reason: str


@dataclass(frozen=True, slots=True)
class Inferred:
    """A value changegate worked out (or could not), and the reason either way."""

    value: str | None
    reason: str
    sources: list[str] = field(default_factory=list)


def infer_category(votes: Sequence[CategoryVote]) -> Inferred:
    """One category when every file clearly says the same one; otherwise None and why."""
    if not votes:
        return Inferred(None, "no changed file to infer a category from")
    unclear = [v for v in votes if v.category is None]
    if unclear:
        first = unclear[0]
        more = f" (and {len(unclear) - 1} more files)" if len(unclear) > 1 else ""
        return Inferred(None, f"{first.path}: {first.reason}{more}; say --category")
    found = sorted({v.category.value for v in votes if v.category is not None})
    if len(found) > 1:
        return Inferred(None, f"the files say different categories ({', '.join(found)})")
    reasons = sorted({v.reason for v in votes})
    return Inferred(found[0], "; ".join(reasons), [v.path for v in votes])
