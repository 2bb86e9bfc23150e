"""The image pack: digest pinning, registry allow-list, signatures (with fake cosign)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from changegate.domain.policy.config import DigestRequirement, PolicyConfigSpec
from changegate.domain.policy.model import Document, Format, Severity
from changegate.domain.policy.rules import images
from changegate.domain.policy.rules.images import parse_reference
from tests.policy.helpers import check, k8s, rule_ids

DIGEST = "sha256:" + "a" * 64
OTHER = "sha256:" + "b" * 64


def deployment(*images_: str, init: str | None = None) -> list[Document]:
    containers = "\n".join(
        f"        - name: c{index}\n          image: {image}" for index, image in enumerate(images_)
    )
    init_block = (
        f"      initContainers:\n        - name: migrate\n          image: {init}\n" if init else ""
    )
    return k8s(
        f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: odoo
  namespace: tenant-acme
spec:
  template:
    spec:
{init_block}      containers:
{containers}
"""
    )


def artifact(ref: object, digest: object = None, index: int = 0) -> Document:
    return Document("change artifacts", index, 1, Format.IMAGE, {"ref": ref, "digest": digest})


class FakeTools:
    """Records cosign calls; answers from a table (None: cosign not installed)."""

    def __init__(self, answers: dict[str, tuple[bool, str] | None] | None = None) -> None:
        self.answers = answers
        self.calls: list[tuple[str, tuple[str, ...]]] = []

    def promtool_check_rules(self, path: str) -> tuple[bool, str] | None:
        return None

    def cosign_verify(self, image: str, arguments: Sequence[str]) -> tuple[bool, str] | None:
        self.calls.append((image, tuple(arguments)))
        if self.answers is None:
            return None
        return self.answers.get(image, (False, "Error: no matching signatures"))


# --------------------------------------------------------------------------- references


@pytest.mark.parametrize(
    ("text", "repository", "tag", "digest"),
    [
        ("odoo:17", "docker.io/library/odoo", "17", ""),
        ("odoo", "docker.io/library/odoo", "", ""),
        ("bitnami/redis:7.2", "docker.io/bitnami/redis", "7.2", ""),
        ("docker.io/odoo:17", "docker.io/library/odoo", "17", ""),
        ("index.docker.io/library/odoo", "docker.io/library/odoo", "", ""),
        ("registry.example.com/odoo:17.0", "registry.example.com/odoo", "17.0", ""),
        ("localhost:5000/odoo", "localhost:5000/odoo", "", ""),
        ("localhost/odoo:1", "localhost/odoo", "1", ""),
        (
            "Registry.Example.com:443/team/odoo@" + DIGEST,
            "registry.example.com:443/team/odoo",
            "",
            DIGEST,
        ),
        ("ghcr.io/acme/odoo:17.0@" + DIGEST, "ghcr.io/acme/odoo", "17.0", DIGEST),
    ],
)
def test_references_are_normalised_as_docker_resolves_them(
    text: str, repository: str, tag: str, digest: str
) -> None:
    reference = parse_reference(text)
    assert (reference.repository, reference.tag, reference.digest) == (repository, tag, digest)


def test_a_digest_must_be_well_formed() -> None:
    assert parse_reference("odoo@" + DIGEST).pinned
    assert parse_reference("odoo@sha512:" + "c" * 128).pinned
    assert not parse_reference("odoo@sha256:abc").pinned
    assert not parse_reference("odoo@sha256:" + "A" * 64).pinned  # digests are lowercase hex


# --------------------------------------------------------------------------- image.digest


def test_digest_required_in_production_by_default() -> None:
    documents = deployment("registry.example.com/odoo:17.0")
    report = check(images.digest, documents, production=True)
    assert rule_ids(report) == ["image.digest"]
    finding = report.findings[0]
    assert finding.message == (
        "container c0 image registry.example.com/odoo:17.0 is not pinned by digest "
        "(required in production)"
    )
    assert finding.resource.container == "c0"
    assert finding.resource.kind == "Deployment"
    assert finding.line == 11  # the image line
    assert finding.aliases == ("CKV_K8S_43",)
    assert rule_ids(check(images.digest, documents, production=False)) == []


def test_digest_required_always_and_never() -> None:
    documents = deployment("registry.example.com/odoo:17.0")
    always = PolicyConfigSpec(digest_required=DigestRequirement.ALWAYS)
    never = PolicyConfigSpec(digest_required=DigestRequirement.NEVER)
    assert rule_ids(check(images.digest, documents, config=always, production=False)) == [
        "image.digest"
    ]
    assert rule_ids(check(images.digest, documents, config=never, production=True)) == []


def test_digest_pinned_images_and_init_containers() -> None:
    documents = deployment(
        f"registry.example.com/odoo:17.0@{DIGEST}", init="registry.example.com/tools:1"
    )
    report = check(images.digest, documents, production=True)
    assert [f.message for f in report.findings] == [
        "init container migrate image registry.example.com/tools:1 is not pinned by digest "
        "(required in production)"
    ]
    assert report.findings[0].resource.container == "migrate"


def test_a_malformed_digest_is_named() -> None:
    report = check(images.digest, deployment("odoo@sha256:1234"), production=True)
    assert "invalid digest 'sha256:1234'" in report.findings[0].message


def test_image_artifacts_count_their_digest_field() -> None:
    documents = [
        artifact("registry.example.com/odoo:17.0", DIGEST, 0),
        artifact("registry.example.com/odoo:17.0", None, 1),
        artifact(f"registry.example.com/odoo@{DIGEST}", None, 2),
        artifact("registry.example.com/odoo:17.0", "sha256:short", 3),
    ]
    report = check(images.digest, documents, production=True)
    assert sorted(f.message for f in report.findings) == [
        "image artifact registry.example.com/odoo:17.0 has an invalid digest "
        "'sha256:short' (expected sha256: and 64 lowercase hex digits)",
        "image artifact registry.example.com/odoo:17.0 is not pinned by digest "
        "(required in production)",
    ]
    assert report.findings[0].resource.kind == "Image"
    assert report.findings[0].resource.name == "registry.example.com/odoo:17.0"


def test_odd_values_never_raise() -> None:
    odd = k8s(
        """apiVersion: apps/v1
kind: Deployment
metadata: {name: odd}
spec:
  template:
    spec:
      containers:
        - name: a
          image: 42
        - name: b
        - "not a container"
        - name: c
          image: ""
"""
    )
    documents = [*odd, artifact(42, 7), artifact(None), artifact("x", ["y"])]
    config = PolicyConfigSpec(
        allowed_registries=["registry.example.com"], signatures={"required": True}
    )
    report = check(images.RULES, documents, config=config, production=True, tools=FakeTools())
    # Only the artifact "x" is an image: not pinned, not allowed, not verifiable.
    assert sorted(rule_ids(report)) == ["image.digest", "image.registry", "image.signature"]


# --------------------------------------------------------------------------- image.registry


def test_registry_silent_without_an_allow_list() -> None:
    assert rule_ids(check(images.registry, deployment("evil.example.net/odoo:17"))) == []


def test_registry_allow_list() -> None:
    config = PolicyConfigSpec(allowed_registries=["registry.example.com"])
    documents = deployment(
        f"registry.example.com/odoo:17.0@{DIGEST}",
        "registry.example.com.evil.net/odoo:17.0",
        "odoo:17",
    )
    report = check(images.registry, documents, config=config)
    assert [f.message for f in report.findings] == [
        "container c1 image registry.example.com.evil.net/odoo:17.0 is not from an allowed "
        "registry (allowed: registry.example.com)",
        "container c2 image odoo:17 (docker.io/library/odoo) is not from an allowed registry "
        "(allowed: registry.example.com)",
    ]
    assert [f.resource.container for f in report.findings] == ["c1", "c2"]


@pytest.mark.parametrize(
    "allowed",
    ["docker.io/library", "docker.io/library/odoo", "docker.io/odoo", "docker.io"],
)
def test_docker_hub_short_names_match_their_spelled_out_forms(allowed: str) -> None:
    config = PolicyConfigSpec(allowed_registries=[allowed])
    assert rule_ids(check(images.registry, deployment("odoo:17"), config=config)) == []


def test_allow_list_entries_are_prefixes_not_globs() -> None:
    config = PolicyConfigSpec(allowed_registries=["registry.example.com*", "*.example.com"])
    documents = deployment(f"registry.example.com/odoo:17.0@{DIGEST}")
    assert rule_ids(check(images.registry, documents, config=config)) == ["image.registry"]


def test_docker_hub_entries_do_not_let_other_registries_in() -> None:
    config = PolicyConfigSpec(allowed_registries=["docker.io/library"])
    documents = deployment("bitnami/redis:7", "ghcr.io/library/odoo:17")
    assert len(check(images.registry, documents, config=config).findings) == 2


def test_registry_repository_entry_matches_tagged_and_pinned_references() -> None:
    config = PolicyConfigSpec(allowed_registries=["registry.example.com/odoo"])
    documents = deployment(
        "registry.example.com/odoo:17.0",
        f"registry.example.com/odoo@{DIGEST}",
        "registry.example.com/odoo-fork:17.0",
    )
    report = check(images.registry, documents, config=config)
    assert [f.resource.container for f in report.findings] == ["c2"]


def test_registry_long_allow_lists_are_shortened_in_messages() -> None:
    config = PolicyConfigSpec(allowed_registries=[f"r{n}.example.com" for n in range(8)])
    report = check(images.registry, deployment("odoo:17"), config=config)
    assert report.findings[0].message.endswith("r4.example.com and 3 more)")


# --------------------------------------------------------------------------- image.signature


def required(*arguments: str) -> PolicyConfigSpec:
    return PolicyConfigSpec(signatures={"required": True, "cosign_arguments": list(arguments)})


def test_signature_not_required_by_default() -> None:
    tools = FakeTools()
    assert rule_ids(check(images.signature, deployment("odoo:17"), tools=tools)) == []
    assert tools.calls == []


def test_signature_without_cosign_fails_plainly_and_says_so() -> None:
    documents = deployment(f"registry.example.com/odoo:17.0@{DIGEST}")
    report = check(images.signature, documents, config=required(), tools=FakeTools())
    assert rule_ids(report) == ["image.signature"]
    finding = report.findings[0]
    assert finding.severity is Severity.ERROR
    assert finding.message == (
        f"container c0 image registry.example.com/odoo@{DIGEST}: signature not verified "
        "because cosign is not installed"
    )
    assert "verified" not in finding.message.replace("not verified", "")
    assert images.COSIGN_MISSING in report.notices


def test_signature_with_the_default_tools_reports_cosign_missing() -> None:
    documents = deployment(f"registry.example.com/odoo:17.0@{DIGEST}")
    report = check(images.signature, documents, config=required())
    assert rule_ids(report) == ["image.signature"]
    assert "cosign is not installed" in report.findings[0].message


def test_signature_verified_by_cosign_passes() -> None:
    ref = f"registry.example.com/odoo@{DIGEST}"
    tools = FakeTools({ref: (True, "Verification for ... -- The cosign claims were validated")})
    arguments = ("--key", "cosign.pub")
    documents = deployment(
        f"registry.example.com/odoo:17.0@{DIGEST}", f"registry.example.com/odoo@{DIGEST}"
    )
    report = check(images.signature, documents, config=required(*arguments), tools=tools)
    assert rule_ids(report) == []
    assert report.notices == ()
    # One verification per distinct image, with the configured arguments.
    assert tools.calls == [(ref, arguments)]


def test_signature_failures_carry_cosign_output() -> None:
    tools = FakeTools({})
    documents = deployment(f"registry.example.com/odoo:17.0@{DIGEST}")
    report = check(images.signature, documents, config=required(), tools=tools)
    assert report.findings[0].message == (
        f"container c0 image registry.example.com/odoo@{DIGEST}: cosign verify failed: "
        "Error: no matching signatures"
    )


def test_signature_long_output_is_bounded() -> None:
    ref = f"registry.example.com/odoo@{DIGEST}"
    tools = FakeTools({ref: (False, "x" * 10_000)})
    report = check(images.signature, deployment(ref), config=required(), tools=tools)
    assert len(report.findings[0].message) < 800


def test_signature_needs_a_digest() -> None:
    tools = FakeTools({})
    report = check(
        images.signature,
        deployment("registry.example.com/odoo:17.0"),
        config=required(),
        tools=tools,
    )
    assert "not pinned by digest" in report.findings[0].message
    assert tools.calls == []


def test_signature_of_an_artifact_uses_its_digest_field() -> None:
    ref = f"registry.example.com/odoo@{OTHER}"
    tools = FakeTools({ref: (True, "")})
    documents = [artifact("registry.example.com/odoo:17.0", OTHER)]
    assert rule_ids(check(images.signature, documents, config=required(), tools=tools)) == []
    assert tools.calls == [(ref, ())]
