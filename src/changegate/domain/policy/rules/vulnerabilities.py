"""The vulnerability gate: Trivy and Grype image scan reports, graded by the policy config.

Reports are read field by field and every field is optional: a malformed entry is skipped,
never an exception. What is read:

- Trivy (`trivy image -f json`, SchemaVersion 2): `ArtifactName`, `Metadata.RepoDigests`,
  `Results[].Vulnerabilities[]` with `VulnerabilityID`, `PkgName`, `InstalledVersion`,
  `FixedVersion` (empty when no fix exists) and `Severity` (CRITICAL...UNKNOWN).
- Grype (`grype -o json`): `source.target.userInput`, `.repoDigests`, `.manifestDigest`, and
  `matches[]` with `vulnerability.id`, `.severity` (Critical...Negligible, Unknown; Negligible
  counts as LOW), `.fix.versions`, `.fix.state` ("fixed" when a fix exists) and
  `artifact.name`, `.version`.

A finding's resource is the scanned image (kind `Image`, name as the report spells it), so a
waiver selects an image with `kind: Image` and `name: registry.example.com/odoo*`.

Digests: a report names the image it scanned by its repository digests (Trivy's
`Metadata.RepoDigests`, Grype's `repoDigests` and `manifestDigest`, or a digest in the name it
was given). With `require_digest_match`, when the change deploys images, a report must name a
digest one of them is deployed by; otherwise it proves nothing about what is deployed. A change
that deploys no image at all (a report checked on its own in an image build pipeline) has
nothing to match and is only graded. Deployed images without any report are not this pack's
concern: whether a report must exist for every image is the pipeline's decision.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from changegate.domain.policy.changeset import ChangeSet, CheckContext
from changegate.domain.policy.model import (
    Document,
    Format,
    Hit,
    Path,
    Resource,
    Severity,
    dig,
    rule,
)
from changegate.domain.policy.rules.images import DIGEST, deployed_images, parse_reference

_LEVELS = {"CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN"}


@dataclass(frozen=True, slots=True)
class Vulnerability:
    """One vulnerability of one package, as a scanner reported it."""

    id: str
    package: str
    installed: str
    fixed: str  # "" when no fixed version exists
    level: str  # CRITICAL, HIGH, MEDIUM, LOW or UNKNOWN
    path: Path


@dataclass(slots=True)
class ScanReport:
    """A scan report: which image it scanned, by which digests, and what it found."""

    document: Document
    scanner: str
    image: str
    digests: dict[str, Path] = field(default_factory=dict)  # digest -> where it is written
    name_path: Path = ()
    vulnerabilities: list[Vulnerability] = field(default_factory=list)

    @property
    def resource(self) -> Resource:
        return Resource(kind="Image", name=self.image or self.document.file)

    def add_digest(self, value: Any, path: Path) -> None:
        """Record `sha256:...` or `repo@sha256:...` when it is a valid digest."""
        if not isinstance(value, str):
            return
        digest = value.rpartition("@")[2].strip().lower()
        if DIGEST.match(digest):
            self.digests.setdefault(digest, path)


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return ""


def _level(value: Any) -> str:
    level = _text(value).upper()
    if level == "NEGLIGIBLE":
        return "LOW"
    return level if level in _LEVELS else "UNKNOWN"


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _trivy(document: Document) -> ScanReport:
    data = document.data
    report = ScanReport(document, "Trivy", _text(dig(data, ("ArtifactName",))))
    report.name_path = ("ArtifactName",)
    for index, item in enumerate(_list(dig(data, ("Metadata", "RepoDigests")))):
        report.add_digest(item, ("Metadata", "RepoDigests", index))
    if "@" in report.image:
        report.add_digest(report.image, ("ArtifactName",))
    for r, result in enumerate(_list(dig(data, ("Results",)))):
        for v, item in enumerate(_list(dig(result, ("Vulnerabilities",)))):
            if not isinstance(item, dict):
                continue
            vulnerability_id = _text(item.get("VulnerabilityID"))
            if not vulnerability_id:
                continue
            report.vulnerabilities.append(
                Vulnerability(
                    vulnerability_id,
                    _text(item.get("PkgName")) or "(unknown package)",
                    _text(item.get("InstalledVersion")),
                    _text(item.get("FixedVersion")),
                    _level(item.get("Severity")),
                    ("Results", r, "Vulnerabilities", v),
                )
            )
    return report


def _grype_fix(vulnerability: Any) -> str:
    fix = dig(vulnerability, ("fix",))
    versions = [v for v in (_text(x) for x in _list(dig(fix, ("versions",)))) if v]
    state = _text(dig(fix, ("state",))).lower()
    if not versions or state not in ("", "fixed"):
        return ""
    return ", ".join(versions)


def _grype(document: Document) -> ScanReport:
    data = document.data
    target = dig(data, ("source", "target"))
    if isinstance(target, dict):
        image = _text(target.get("userInput"))
        name_path: Path = ("source", "target", "userInput")
    else:
        image = _text(target)
        name_path = ("source", "target")
    report = ScanReport(document, "Grype", image, name_path=name_path)
    for index, item in enumerate(_list(dig(target, ("repoDigests",)))):
        report.add_digest(item, ("source", "target", "repoDigests", index))
    report.add_digest(dig(target, ("manifestDigest",)), ("source", "target", "manifestDigest"))
    if "@" in image:
        report.add_digest(image, name_path)
    for m, match in enumerate(_list(dig(data, ("matches",)))):
        vulnerability = dig(match, ("vulnerability",))
        vulnerability_id = _text(dig(vulnerability, ("id",)))
        if not vulnerability_id:
            continue
        report.vulnerabilities.append(
            Vulnerability(
                vulnerability_id,
                _text(dig(match, ("artifact", "name"))) or "(unknown package)",
                _text(dig(match, ("artifact", "version"))),
                _grype_fix(vulnerability),
                _level(dig(vulnerability, ("severity",))),
                ("matches", m),
            )
        )
    return report


def scan_reports(changeset: ChangeSet) -> Iterator[ScanReport]:
    """Every Trivy and Grype report of the change set, in input order of each scanner."""
    for document in changeset.of_format(Format.TRIVY):
        yield _trivy(document)
    for document in changeset.of_format(Format.GRYPE):
        yield _grype(document)


def _short(digest: str) -> str:
    algorithm, _, hexdigits = digest.partition(":")
    return f"{algorithm}:{hexdigits[:12]}"


@rule(
    "vuln.vulnerability",
    "Images carry no fixable vulnerability at a blocking severity",
    Severity.ERROR,
    rationale=(
        "A known vulnerability with a fixed version available is the cheapest attack on a "
        "platform: exploits are public and the fix is a rebuild away. The policy config's "
        "`vulnerabilities` grades scan reports: by default fixable CRITICAL and HIGH "
        "vulnerabilities are errors and fixable MEDIUM ones warnings. With `fixable_only` "
        "(the default) a vulnerability without a fixed version produces no finding, in either "
        "list, since no rebuild can remove it yet. One finding per vulnerability and package."
    ),
    remediation=(
        "Rebuild the image on an updated base image or upgrade the package to the fixed "
        "version named in the finding, scan again and deploy the new digest. If the "
        "vulnerable code cannot be reached, waive it for that image with a reason and an "
        "expiry."
    ),
)
def vulnerability(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    gate = context.config.vulnerabilities
    block = {level.value for level in gate.block}
    warn = {level.value for level in gate.warn} - block
    if not block and not warn:
        return
    for report in scan_reports(changeset):
        resource = report.resource
        seen: set[tuple[str, str, str]] = set()
        for found in report.vulnerabilities:
            key = (found.id, found.package, found.installed)
            if key in seen:
                continue
            seen.add(key)
            if gate.fixable_only and not found.fixed:
                continue
            if found.level in block:
                severity = None  # the rule's own (ERROR, or as the config grades it)
            elif found.level in warn:
                severity = Severity.WARNING
            else:
                continue
            installed = found.installed or "(unknown version)"
            if found.fixed:
                change = f"{installed} → {found.fixed}"
            else:
                change = f"{installed}, no fixed version yet"
            yield Hit(
                report.document,
                found.path,
                f"{found.id} ({found.level}) in {found.package} {change}",
                severity=severity,
                resource=resource,
                subject=found.id,
            )


@rule(
    "vuln.report-digest",
    "Scan reports are for the digest deployed",
    Severity.ERROR,
    rationale=(
        "A scan proves something only about the bytes it scanned: a report of yesterday's "
        "build, of another tag or of a local build that was never pushed says nothing about "
        "the image being deployed. With the policy config's `require_digest_match` (the "
        "default), a report checked together with images must name a digest one of them is "
        "deployed by. Reports checked without any deployed image are not matched."
    ),
    remediation=(
        "Scan the exact image being deployed, by digest (`trivy image -f json "
        "registry.example.com/odoo@sha256:<digest>` or `grype -o json ...@sha256:<digest>`), "
        "and deploy that digest; replace reports of older builds."
    ),
)
def report_digest(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    if not context.config.vulnerabilities.require_digest_match:
        return
    images = list(deployed_images(changeset))
    if not images:
        return
    deployed: dict[str, list[str]] = {}
    by_repository: dict[str, list[str]] = {}
    for image in images:
        if image.pinned:
            deployed.setdefault(image.digest.lower(), []).append(image.pinned_ref)
            by_repository.setdefault(image.reference.repository, []).append(image.digest)
    for report in scan_reports(changeset):
        name = report.image or report.document.file
        if not report.digests:
            yield Hit(
                report.document,
                report.name_path,
                f"{report.scanner} report for {name} names no image digest, so it cannot be "
                "tied to the images this change deploys",
                resource=report.resource,
            )
            continue
        if any(digest in deployed for digest in report.digests):
            continue
        path = next(iter(report.digests.values()))
        scanned = ", ".join(_short(d) for d in report.digests)
        if not deployed:
            where = "this change deploys no image by digest"
        else:
            same = by_repository.get(parse_reference(name).repository, [])
            if same:
                where = "the change deploys " + ", ".join(sorted({_short(d) for d in same}))
            else:
                where = "no image of this change is deployed by that digest"
        yield Hit(
            report.document,
            path,
            f"report is for another build: {report.scanner} scanned {name} ({scanned}); {where}",
            resource=report.resource,
        )


RULES = (vulnerability, report_digest)
