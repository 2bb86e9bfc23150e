"""Images and supply chain: digest pinning, the registry allow-list and signatures.

The rules look at every image a change deploys: each container (init containers included) of
every workload in the change set, and each image artifact of a change (Format.IMAGE, data
`{"ref": ..., "digest": ...}`).

Image references are read with Docker's grammar (`[host[:port]/]path[:tag][@digest]`), so the
helpers here are shared with the Dockerfile pack: `parse_reference` splits a reference and
normalises Docker Hub short names the way Docker resolves them (`odoo:17` is
`docker.io/library/odoo:17`, `bitnami/redis` is `docker.io/bitnami/redis`,
`index.docker.io/...` is `docker.io/...`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from changegate.domain.policy.changeset import ChangeSet, CheckContext
from changegate.domain.policy.config import DigestRequirement
from changegate.domain.policy.model import Document, Format, Hit, Path, Severity, rule

DOCKER_HUB = "docker.io"
_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
# An OCI digest as registries and Kubernetes accept it: lowercase hex of the right length.
DIGEST = re.compile(r"^(?:sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})$")
# Longest message text taken from an outside tool's output.
_MAX_TOOL_TEXT = 600


@dataclass(frozen=True, slots=True)
class Reference:
    """An image reference split into its parts, with Docker Hub names spelled out."""

    text: str  # as written
    domain: str  # registry host[:port]; "docker.io" for Docker Hub
    path: str  # repository path inside the registry (`library/odoo` for `odoo`)
    tag: str  # "" when none is written
    digest: str  # "sha256:..." as written after "@", "" when none

    @property
    def repository(self) -> str:
        """`registry.example.com/odoo`, `docker.io/library/odoo`: no tag, no digest."""
        return f"{self.domain}/{self.path}" if self.path else self.domain

    @property
    def normalised(self) -> str:
        """The full reference as Docker resolves it (`docker.io/library/odoo:17`)."""
        text = self.repository
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text

    @property
    def pinned(self) -> bool:
        """Whether the reference names a valid content digest."""
        return bool(DIGEST.match(self.digest))

    def match_forms(self) -> tuple[str, ...]:
        """The spellings an allow-list entry is compared with.

        The normalised reference and repository, and for Docker Hub official images also the
        `docker.io/odoo` spelling, which Docker accepts for `docker.io/library/odoo`.
        """
        forms = [self.normalised, self.repository]
        if self.domain == DOCKER_HUB and self.path.startswith("library/"):
            short = f"{DOCKER_HUB}/{self.path.removeprefix('library/')}"
            forms.append(short)
            if self.tag:
                forms.append(f"{short}:{self.tag}")
        return tuple(forms)


def parse_reference(text: str) -> Reference:
    """Split an image reference; never raises (odd text yields odd but harmless parts)."""
    name, _, digest = text.strip().partition("@")
    tag = ""
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        name, tag = name[:colon], name[colon + 1 :]
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        domain, path = first.lower(), rest
    else:
        domain, path = DOCKER_HUB, name
    if domain in _HUB_ALIASES:
        domain = DOCKER_HUB
    if domain == DOCKER_HUB and path and "/" not in path:
        path = f"library/{path}"
    return Reference(text, domain, path, tag, digest)


@dataclass(frozen=True, slots=True)
class DeployedImage:
    """One image the change deploys: a container's image or an image artifact."""

    document: Document
    path: Path  # where the reference is written
    reference: Reference
    digest: str  # the digest that counts ("" when none): the reference's or the artifact's
    digest_path: Path
    container: str = ""
    what: str = ""  # "container odoo image" or "image artifact": what a message names

    @property
    def pinned(self) -> bool:
        return bool(DIGEST.match(self.digest))

    @property
    def pinned_ref(self) -> str:
        """`repository@digest`: what a signature is verified against."""
        return f"{self.reference.repository}@{self.digest}"


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def deployed_images(changeset: ChangeSet) -> Iterator[DeployedImage]:
    """Every image of the change: workload containers, then image artifacts."""
    for workload in changeset.workloads:
        for container in workload.containers:
            image = container.image.strip()
            if not image:
                continue
            reference = parse_reference(image)
            path = (*container.path, "image")
            kind = "init container" if container.init else "container"
            yield DeployedImage(
                workload.document,
                path,
                reference,
                reference.digest,
                path,
                container.name,
                f"{kind} {container.name or '(unnamed)'} image",
            )
    for document in changeset.of_format(Format.IMAGE):
        ref = _text(document.get("ref"))
        if not ref:
            continue
        reference = parse_reference(ref)
        digest = _text(document.get("digest"))
        if digest:
            yield DeployedImage(
                document, ("ref",), reference, digest, ("digest",), what="image artifact"
            )
        else:
            yield DeployedImage(
                document, ("ref",), reference, reference.digest, ("ref",), what="image artifact"
            )


def _digest_required(context: CheckContext) -> bool:
    requirement = context.config.digest_required
    if requirement is DigestRequirement.ALWAYS:
        return True
    if requirement is DigestRequirement.NEVER:
        return False
    return context.production


def _short(text: str, limit: int = _MAX_TOOL_TEXT) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@rule(
    "image.digest",
    "Images are pinned by digest",
    Severity.ERROR,
    rationale=(
        "A tag is a movable pointer: the image behind `odoo:17.0` can change between the "
        "review, the scan and the rollout, and differ between two nodes pulling it a minute "
        "apart. Only a digest (`@sha256:...`) names exactly the bytes that were scanned, "
        "signed and approved. Required where the policy config's `digest_required` says: in "
        "production by default, `always` or `never`."
    ),
    remediation=(
        "Deploy the image by digest, e.g. `registry.example.com/odoo:17.0@sha256:<digest>` "
        "(the tag may stay for readers; the digest decides). Take the digest from your build "
        "(`docker buildx build --metadata-file`, `crane digest IMAGE:TAG`) and let your "
        "GitOps tooling write it."
    ),
    aliases=("CKV_K8S_43",),
)
def digest(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    if not _digest_required(context):
        return
    where = "in production" if context.production else "by the policy config"
    for image in deployed_images(changeset):
        if image.pinned:
            continue
        if image.digest:
            message = (
                f"{image.what} {image.reference.text} has an invalid digest "
                f"{image.digest!r} (expected sha256: and 64 lowercase hex digits)"
            )
        else:
            message = (
                f"{image.what} {image.reference.text} is not pinned by digest (required {where})"
            )
        yield Hit(image.document, image.digest_path, message, container=image.container)


@rule(
    "image.registry",
    "Images come from an allowed registry",
    Severity.ERROR,
    rationale=(
        "Images from registries the platform does not control bypass its scanning, signing "
        "and retention, and can disappear or change under a tenant (Docker Hub rate limits, "
        "deleted tags, typo-squatted names). The allow-list is the policy config's "
        "`allowed_registries`; the rule is silent when the list is empty. Docker Hub short "
        "names are spelled out before matching, as Docker resolves them: `odoo:17` is "
        "`docker.io/library/odoo:17`, so allow `docker.io/library/odoo` (or `docker.io/odoo`) "
        "for it, never a bare `odoo`."
    ),
    remediation=(
        "Pull the image through an allowed registry (mirror or re-push it, e.g. "
        "`crane copy odoo:17.0 registry.example.com/mirror/odoo:17.0`) and reference that "
        "copy, or add the registry to `allowed_registries` in the PolicyConfig if the platform "
        "team accepts it."
    ),
)
def registry(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    config = context.config
    if not config.allowed_registries:
        return
    allowed = ", ".join(config.allowed_registries[:5])
    if len(config.allowed_registries) > 5:
        allowed += f" and {len(config.allowed_registries) - 5} more"
    verdicts: dict[str, bool] = {}
    for image in deployed_images(changeset):
        reference = image.reference
        verdict = verdicts.get(reference.text)
        if verdict is None:
            verdict = any(config.registry_allowed(form) for form in reference.match_forms())
            verdicts[reference.text] = verdict
        if verdict:
            continue
        spelled = f" ({reference.repository})" if reference.repository not in reference.text else ""
        yield Hit(
            image.document,
            image.path,
            f"{image.what} {reference.text}{spelled} is not from an allowed registry "
            f"(allowed: {allowed})",
            container=image.container,
        )


COSIGN_MISSING = (
    "cosign is not installed: image signatures could not be verified, and every image that "
    "requires a signature is reported as unverified"
)


@rule(
    "image.signature",
    "Image signatures are verified",
    Severity.ERROR,
    rationale=(
        "A signature ties an image digest to the pipeline that built it, so an image pushed "
        "by anyone else with registry access is refused. When the policy config's "
        "`signatures.required` is set, every deployed image is verified with `cosign verify` "
        "and the configured `cosign_arguments` (key or keyless identity). An image is never "
        "reported as verified unless cosign verified it: without cosign installed, or without "
        "a digest to verify, the image fails this rule."
    ),
    remediation=(
        "Sign images in the build pipeline (`cosign sign --key ... IMAGE@DIGEST` or keyless "
        "signing), deploy them by digest, and install cosign where `changegate check` runs. "
        "Check by hand with `cosign verify <cosign_arguments> IMAGE@DIGEST`."
    ),
)
def signature(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    policy = context.config.signatures
    if not policy.required:
        return
    arguments = tuple(policy.cosign_arguments)
    results: dict[str, tuple[bool, str] | None] = {}
    for image in deployed_images(changeset):
        if not image.pinned:
            yield Hit(
                image.document,
                image.digest_path,
                f"{image.what} {image.reference.text} cannot have its signature "
                "verified: it is not pinned by digest (a signature covers a digest, not a tag)",
                container=image.container,
            )
            continue
        target = image.pinned_ref
        if target not in results:
            results[target] = context.tools.cosign_verify(target, arguments)
        result = results[target]
        if result is None:
            context.notice(COSIGN_MISSING)
            yield Hit(
                image.document,
                image.digest_path,
                f"{image.what} {target}: signature not verified because cosign is not installed",
                container=image.container,
            )
            continue
        verified, output = result
        if not verified:
            detail = _short(output) or "no output"
            yield Hit(
                image.document,
                image.digest_path,
                f"{image.what} {target}: cosign verify failed: {detail}",
                container=image.container,
            )


RULES = (digest, registry, signature)
