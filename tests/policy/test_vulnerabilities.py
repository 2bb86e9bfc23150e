"""The vulnerability gate over Trivy and Grype JSON, and the digest match with deployments."""

from __future__ import annotations

import json
from typing import Any

import pytest

from changegate.adapters import policy_inputs
from changegate.domain.policy.config import PolicyConfigSpec
from changegate.domain.policy.model import Document, Format, Severity
from changegate.domain.policy.rules import vulnerabilities
from tests.policy.helpers import check, k8s, rule_ids

DIGEST = "sha256:" + "a" * 64
OTHER = "sha256:" + "b" * 64
IMAGE = "registry.example.com/odoo"


def vuln(
    cve: str, package: str, installed: str, fixed: str, severity: str, **extra: Any
) -> dict[str, Any]:
    return {
        "VulnerabilityID": cve,
        "PkgID": f"{package}@{installed}",
        "PkgName": package,
        "InstalledVersion": installed,
        "FixedVersion": fixed,
        "Status": "fixed" if fixed else "affected",
        "Severity": severity,
        "Title": f"{package}: a problem",
        **extra,
    }


TRIVY_VULNS = [
    vuln("CVE-2024-2511", "libssl3", "3.0.11-1~deb12u2", "3.0.13-1~deb12u1", "CRITICAL"),
    vuln("CVE-2023-50495", "libtinfo6", "6.4-4", "", "HIGH"),
    vuln("CVE-2024-28182", "libnghttp2-14", "1.52.0-1", "1.52.0-1+deb12u1", "MEDIUM"),
    vuln("CVE-2024-0553", "libgnutls30", "3.7.9-2", "3.7.9-2+deb12u2", "HIGH"),
    vuln("CVE-2011-3374", "apt", "2.6.1", "", "LOW"),
]


def trivy(
    digests: list[str] | None = None,
    name: str = f"{IMAGE}:17.0",
    vulns: list[dict[str, Any]] | None = None,
    python_vulns: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "SchemaVersion": 2,
        "CreatedAt": "2026-11-20T09:12:44.512Z",
        "ArtifactName": name,
        "ArtifactType": "container_image",
        "Metadata": {
            "OS": {"Family": "debian", "Name": "12.7"},
            "ImageID": "sha256:" + "9" * 64,
            "RepoTags": [f"{IMAGE}:17.0"],
            "RepoDigests": [f"{IMAGE}@{d}" for d in (digests if digests is not None else [DIGEST])],
        },
        "Results": [
            {
                "Target": f"{name} (debian 12.7)",
                "Class": "os-pkgs",
                "Type": "debian",
                "Vulnerabilities": TRIVY_VULNS if vulns is None else vulns,
            },
            {
                "Target": "Python",
                "Class": "lang-pkgs",
                "Type": "python-pkg",
                "Vulnerabilities": python_vulns or [],
            },
        ],
    }


def grype_match(
    cve: str, severity: str, name: str, version: str, fix: list[str], state: str
) -> dict[str, Any]:
    return {
        "vulnerability": {
            "id": cve,
            "dataSource": f"https://security-tracker.debian.org/tracker/{cve}",
            "namespace": "debian:distro:debian:12",
            "severity": severity,
            "fix": {"versions": fix, "state": state},
        },
        "relatedVulnerabilities": [],
        "matchDetails": [],
        "artifact": {"name": name, "version": version, "type": "deb"},
    }


def grype(digests: list[str] | None = None, user_input: str = f"{IMAGE}:17.0") -> dict[str, Any]:
    return {
        "matches": [
            grype_match(
                "CVE-2024-2511",
                "Critical",
                "libssl3",
                "3.0.11-1~deb12u2",
                ["3.0.13-1~deb12u1"],
                "fixed",
            ),
            grype_match("CVE-2023-50495", "High", "libtinfo6", "6.4-4", [], "not-fixed"),
            grype_match(
                "CVE-2024-28182",
                "Medium",
                "libnghttp2-14",
                "1.52.0-1",
                ["1.52.0-1+deb12u1"],
                "fixed",
            ),
            grype_match("CVE-2005-2541", "Negligible", "tar", "1.34+dfsg-1.2", [], "wont-fix"),
            grype_match("CVE-2024-0001", "High", "perl-base", "5.36.0-7", ["5.36.0-8"], "wont-fix"),
        ],
        "source": {
            "type": "image",
            "target": {
                "userInput": user_input,
                "imageID": "sha256:" + "9" * 64,
                "manifestDigest": "sha256:" + "8" * 64,
                "tags": [f"{IMAGE}:17.0"],
                "repoDigests": [
                    f"{IMAGE}@{d}" for d in (digests if digests is not None else [DIGEST])
                ],
            },
        },
        "distro": {"name": "debian", "version": "12"},
        "descriptor": {"name": "grype", "version": "0.79.0"},
    }


def gate(**fields: Any) -> PolicyConfigSpec:
    """A config with these vulnerability gate fields, as a catalog file would give them."""
    return PolicyConfigSpec.model_validate({"vulnerabilities": fields}, strict=False)


def report(data: Any, name: str = "trivy.json") -> list[Document]:
    documents = policy_inputs.parse(json.dumps(data, indent=2).encode(), name)
    return [d for d in documents if d is not None]


def deployment(image: str) -> list[Document]:
    return k8s(
        f"""apiVersion: apps/v1
kind: Deployment
metadata: {{name: odoo, namespace: tenant-acme}}
spec:
  template:
    spec:
      containers:
        - name: odoo
          image: {image}
"""
    )


# --------------------------------------------------------------------------- the gate


def test_trivy_default_gate() -> None:
    documents = report(trivy())
    assert documents[0].format is Format.TRIVY
    result = check(vulnerabilities.vulnerability, documents)
    found = {(f.message, f.severity) for f in result.findings}
    assert found == {
        ("CVE-2024-2511 (CRITICAL) in libssl3 3.0.11-1~deb12u2 → 3.0.13-1~deb12u1", Severity.ERROR),
        ("CVE-2024-0553 (HIGH) in libgnutls30 3.7.9-2 → 3.7.9-2+deb12u2", Severity.ERROR),
        ("CVE-2024-28182 (MEDIUM) in libnghttp2-14 1.52.0-1 → 1.52.0-1+deb12u1", Severity.WARNING),
    }
    finding = next(f for f in result.findings if "CVE-2024-2511" in f.message)
    assert finding.resource.kind == "Image"
    assert finding.resource.name == f"{IMAGE}:17.0"
    assert finding.file == "trivy.json"
    assert finding.line is not None and finding.line > 1
    assert not result.passed


def test_grype_default_gate() -> None:
    documents = report(grype(), "grype.json")
    assert documents[0].format is Format.GRYPE
    result = check(vulnerabilities.vulnerability, documents)
    found = {(f.message, f.severity) for f in result.findings}
    # Not fixed, won't fix and negligible produce nothing by default.
    assert found == {
        ("CVE-2024-2511 (CRITICAL) in libssl3 3.0.11-1~deb12u2 → 3.0.13-1~deb12u1", Severity.ERROR),
        ("CVE-2024-28182 (MEDIUM) in libnghttp2-14 1.52.0-1 → 1.52.0-1+deb12u1", Severity.WARNING),
    }


def test_unfixable_vulnerabilities_when_fixable_only_is_off() -> None:
    config = gate(fixable_only=False, warn=["MEDIUM", "LOW"])
    result = check(vulnerabilities.vulnerability, report(grype(), "grype.json"), config=config)
    messages = {f.message: f.severity for f in result.findings}
    assert (
        messages["CVE-2023-50495 (HIGH) in libtinfo6 6.4-4, no fixed version yet"] is Severity.ERROR
    )
    assert (
        messages["CVE-2005-2541 (LOW) in tar 1.34+dfsg-1.2, no fixed version yet"]
        is Severity.WARNING
    )
    assert (
        messages["CVE-2024-0001 (HIGH) in perl-base 5.36.0-7, no fixed version yet"]
        is Severity.ERROR
    )


def test_one_finding_per_vulnerability_and_package() -> None:
    twice = vuln("CVE-2024-2511", "libssl3", "3.0.11-1~deb12u2", "3.0.13-1~deb12u1", "CRITICAL")
    python = [
        vuln("CVE-2024-1135", "gunicorn", "21.2.0", "22.0.0", "HIGH"),
        vuln("CVE-2024-1135", "gunicorn", "21.2.0", "22.0.0", "HIGH"),
    ]
    data = trivy(vulns=[twice, dict(twice)], python_vulns=python)
    result = check(vulnerabilities.vulnerability, report(data))
    assert sorted(f.message for f in result.findings) == [
        "CVE-2024-1135 (HIGH) in gunicorn 21.2.0 → 22.0.0",
        "CVE-2024-2511 (CRITICAL) in libssl3 3.0.11-1~deb12u2 → 3.0.13-1~deb12u1",
    ]


def test_gate_levels_come_from_the_config() -> None:
    config = gate(block=["CRITICAL"], warn=[])
    result = check(vulnerabilities.vulnerability, report(trivy()), config=config)
    assert [f.message.split()[0] for f in result.findings] == ["CVE-2024-2511"]
    nothing = gate(block=[], warn=[])
    assert rule_ids(check(vulnerabilities.vulnerability, report(trivy()), config=nothing)) == []


def test_a_level_in_both_lists_blocks() -> None:
    config = gate(block=["MEDIUM"], warn=["MEDIUM"])
    result = check(vulnerabilities.vulnerability, report(trivy()), config=config)
    assert {f.severity for f in result.findings} == {Severity.ERROR}


def test_a_waiver_selects_the_scanned_image() -> None:
    from changegate.domain.policy.config import WaiverSpec
    from changegate.domain.policy.engine import Waiver

    spec = WaiverSpec.model_validate(
        {
            "rule": "vuln.vulnerability",
            "selector": {"kind": "Image", "name": "registry.example.com/odoo*"},
            "reason": "not reachable: TLS terminates at Traefik",
            "owner": "alice",
            "approved_by": "bob",
            "expires": "2026-12-31",
        },
        strict=False,
    )
    result = check(vulnerabilities.vulnerability, report(trivy()), waivers=[Waiver("w1", spec)])
    assert rule_ids(result) == []
    assert result.summary.waived == 3


@pytest.mark.parametrize(
    "data",
    [
        {"SchemaVersion": 2, "Results": None},
        {"SchemaVersion": 2, "Results": "x", "Metadata": []},
        {
            "SchemaVersion": 2,
            "Results": [None, {"Vulnerabilities": {"a": 1}}, {"Vulnerabilities": [None, 1, {}]}],
        },
        {
            "SchemaVersion": 2,
            "ArtifactName": ["x"],
            "Metadata": {"RepoDigests": [1, None, "x@sha256:short"]},
            "Results": [
                {
                    "Vulnerabilities": [
                        {
                            "VulnerabilityID": 5,
                            "PkgName": None,
                            "Severity": ["HIGH"],
                            "FixedVersion": 1,
                        }
                    ]
                }
            ],
        },
    ],
)
def test_malformed_trivy_reports_never_raise(data: Any) -> None:
    document = Document("trivy.json", 0, 1, Format.TRIVY, data)
    check(vulnerabilities.RULES, [document, *deployment(f"{IMAGE}@{DIGEST}")])


@pytest.mark.parametrize(
    "data",
    [
        {"matches": None, "source": None},
        {"matches": [None, 1, {"vulnerability": "x"}], "source": {"target": 7}},
        {
            "matches": [
                {
                    "vulnerability": {
                        "id": "CVE-1",
                        "severity": 3,
                        "fix": {"versions": "1.0", "state": 2},
                    }
                }
            ],
            "source": {"target": {"repoDigests": "x", "manifestDigest": 4, "userInput": None}},
        },
    ],
)
def test_malformed_grype_reports_never_raise(data: Any) -> None:
    document = Document("grype.json", 0, 1, Format.GRYPE, data)
    check(vulnerabilities.RULES, [document, *deployment(f"{IMAGE}@{DIGEST}")])


def test_unknown_severities_count_as_unknown() -> None:
    data = trivy(vulns=[vuln("CVE-1", "p", "1", "2", "SEVERE")])
    config = gate(block=["UNKNOWN"], warn=[])
    result = check(vulnerabilities.vulnerability, report(data), config=config)
    assert [f.message for f in result.findings] == ["CVE-1 (UNKNOWN) in p 1 → 2"]


# --------------------------------------------------------------------------- report digest


def test_report_matching_the_deployed_digest_passes() -> None:
    documents = [*deployment(f"{IMAGE}:17.0@{DIGEST}"), *report(trivy([DIGEST]))]
    assert rule_ids(check(vulnerabilities.report_digest, documents)) == []


def test_report_for_another_build_fails() -> None:
    documents = [*deployment(f"{IMAGE}:17.0@{DIGEST}"), *report(trivy([OTHER]))]
    result = check(vulnerabilities.report_digest, documents)
    assert rule_ids(result) == ["vuln.report-digest"]
    finding = result.findings[0]
    assert finding.message == (
        f"report is for another build: Trivy scanned {IMAGE}:17.0 (sha256:bbbbbbbbbbbb); the "
        "change deploys sha256:aaaaaaaaaaaa"
    )
    assert finding.resource.kind == "Image"
    assert finding.file == "trivy.json"


def test_grype_digest_matches_repo_or_manifest_digest() -> None:
    manifest = "sha256:" + "8" * 64
    by_repo = [*deployment(f"{IMAGE}@{DIGEST}"), *report(grype([DIGEST]), "grype.json")]
    by_manifest = [*deployment(f"{IMAGE}@{manifest}"), *report(grype([OTHER]), "grype.json")]
    assert rule_ids(check(vulnerabilities.report_digest, by_repo)) == []
    assert rule_ids(check(vulnerabilities.report_digest, by_manifest)) == []
    elsewhere = [*deployment(f"ghcr.io/acme/other@{OTHER}"), *report(grype([DIGEST]), "grype.json")]
    message = check(vulnerabilities.report_digest, elsewhere).findings[0].message
    assert message.startswith("report is for another build: Grype scanned")
    assert message.endswith("no image of this change is deployed by that digest")


def test_report_without_digest_cannot_be_tied() -> None:
    documents = [*deployment(f"{IMAGE}@{DIGEST}"), *report(trivy([]))]
    result = check(vulnerabilities.report_digest, documents)
    assert result.findings[0].message == (
        f"Trivy report for {IMAGE}:17.0 names no image digest, so it cannot be tied to the "
        "images this change deploys"
    )


def test_a_digest_in_the_scanned_name_counts() -> None:
    documents = [*deployment(f"{IMAGE}@{DIGEST}"), *report(trivy([], name=f"{IMAGE}@{DIGEST}"))]
    assert rule_ids(check(vulnerabilities.report_digest, documents)) == []


def test_deployment_by_tag_cannot_match_a_report() -> None:
    documents = [*deployment(f"{IMAGE}:17.0"), *report(trivy([DIGEST]))]
    message = check(vulnerabilities.report_digest, documents).findings[0].message
    assert message.endswith("this change deploys no image by digest")


def test_image_artifacts_are_deployed_images() -> None:
    artifact = Document(
        "change artifacts", 0, 1, Format.IMAGE, {"ref": f"{IMAGE}:17.0", "digest": DIGEST}
    )
    assert (
        rule_ids(check(vulnerabilities.report_digest, [artifact, *report(trivy([DIGEST]))])) == []
    )
    assert rule_ids(check(vulnerabilities.report_digest, [artifact, *report(trivy([OTHER]))])) == [
        "vuln.report-digest"
    ]


def test_a_report_checked_alone_is_only_graded() -> None:
    assert rule_ids(check(vulnerabilities.report_digest, report(trivy([OTHER])))) == []


def test_digest_match_can_be_turned_off() -> None:
    config = gate(require_digest_match=False)
    documents = [*deployment(f"{IMAGE}@{DIGEST}"), *report(trivy([OTHER]))]
    assert rule_ids(check(vulnerabilities.report_digest, documents, config=config)) == []
