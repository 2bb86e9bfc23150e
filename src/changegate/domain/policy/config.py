"""The catalog kinds of policy gates: PolicyConfig, Waiver and PolicyRule (custom CEL rules).

The catalog registers these as kinds (domain/catalog.py subclasses them with its `Spec` base),
so this module imports nothing of the catalog. docs/policy.md documents every field.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from changegate.domain.policy.model import Format, Severity

RULE_ID_PATTERN = r"^[a-z0-9][a-z0-9-]*(\.[a-z0-9][a-z0-9-]*)+$"
RuleId = Annotated[str, StringConstraints(pattern=RULE_ID_PATTERN, max_length=100)]
# A waiver may name a rule by its id or by an alias (CKV_K8S_16, KSV017, privileged-container).
RuleRef = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:/-]*$", max_length=100)
]
Text = Annotated[str, StringConstraints(max_length=10_000)]
Line = Annotated[str, StringConstraints(min_length=1, max_length=1000)]
Pattern = Annotated[str, StringConstraints(min_length=1, max_length=253)]


def _invalid(message: str) -> PydanticCustomError:
    return PydanticCustomError("invalid", message)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class DigestRequirement(StrEnum):
    """Where images must be pinned by digest."""

    PRODUCTION = "production"
    ALWAYS = "always"
    NEVER = "never"


class VulnerabilityLevel(StrEnum):
    """Vulnerability severities as Trivy and Grype write them (upper case)."""

    CRITICAL = "CRITICAL"
    HIGH = "HIGH"
    MEDIUM = "MEDIUM"
    LOW = "LOW"
    UNKNOWN = "UNKNOWN"


class VulnerabilityGate(_Strict):
    """Which vulnerabilities of a scan report block, and which only warn."""

    block: list[VulnerabilityLevel] = Field(
        default_factory=lambda: [VulnerabilityLevel.CRITICAL, VulnerabilityLevel.HIGH]
    )
    warn: list[VulnerabilityLevel] = Field(default_factory=lambda: [VulnerabilityLevel.MEDIUM])
    fixable_only: bool = True  # only vulnerabilities with a fixed version block
    # The report must name the digest deployed; a report of another build proves nothing.
    require_digest_match: bool = True


class SignaturePolicy(_Strict):
    """Image signatures: required or not, and how cosign verifies them."""

    required: bool = False
    # Arguments given to `cosign verify` before the image: --key, --certificate-identity...
    cosign_arguments: list[Annotated[str, StringConstraints(max_length=1000)]] = Field(
        default_factory=list, max_length=20
    )


class RuleSetting(_Strict):
    """A built-in or custom rule turned off or graded differently."""

    enabled: bool = True
    severity: Severity | None = None


class PolicyConfigSpec(_Strict):
    """How strict the gates are; a catalog holds at most one, every field defaults."""

    description: Text = ""
    allowed_registries: list[Pattern] = Field(default_factory=list, max_length=200)
    digest_required: DigestRequirement = DigestRequirement.PRODUCTION
    min_replicas_production: int = Field(default=2, ge=1, le=1000)
    vulnerabilities: VulnerabilityGate = Field(default_factory=VulnerabilityGate)
    signatures: SignaturePolicy = Field(default_factory=SignaturePolicy)
    # Tiers whose tenants count as critical (synchronous_commit off is an error there).
    critical_tiers: list[Pattern] = Field(default_factory=list, max_length=100)
    rules: dict[RuleRef, RuleSetting] = Field(default_factory=dict, max_length=1000)
    non_waivable: list[RuleRef] = Field(default_factory=list, max_length=1000)
    # Where a change's artifact paths (manifests, plans, reports) are resolved: relative to
    # the catalog folder; `..` is the repository that holds the catalog in `platform/`.
    artifacts_root: Annotated[str, StringConstraints(min_length=1, max_length=1024)] = ".."

    def registry_allowed(self, image: str) -> bool:
        """Whether an image's reference starts with an allowed registry (any when none set)."""
        if not self.allowed_registries:
            return True
        return any(_under(image, prefix) for prefix in self.allowed_registries)


def _under(image: str, prefix: str) -> bool:
    # A prefix ends at a path boundary: `registry.example.com` allows
    # `registry.example.com/odoo`, never `registry.example.com.evil.net/odoo`. No globs.
    prefix = prefix.rstrip("/")
    return image == prefix or image.startswith(prefix + "/")


def _expiry(value: Any) -> Any:
    # A date is the end of that day, UTC; an instant must say its offset.
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        return datetime.combine(value, time(), UTC) + timedelta(days=1)
    elif isinstance(value, str):
        text = value.strip()
        try:
            if len(text) == 10:
                return datetime.combine(date.fromisoformat(text), time(), UTC) + timedelta(days=1)
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise _invalid(
                f"not an ISO 8601 date or instant: {value!r} (e.g. 2026-12-31)"
            ) from None
    else:
        raise _invalid("must be a date (2026-12-31) or an instant with an offset")
    if moment.tzinfo is None:
        raise _invalid(f"{value!r} needs a timezone offset (or write a date: 2026-12-31)")
    return moment.astimezone(UTC)


# The first instant the waiver no longer applies.
Expiry = Annotated[datetime, BeforeValidator(_expiry)]


class WaiverSelector(_Strict):
    """What a waiver covers; every field given must match (globs: * ? [...])."""

    tenant: Pattern | None = None
    environment: Pattern | None = None
    namespace: Pattern | None = None
    kind: Pattern | None = None
    name: Pattern | None = None
    container: Pattern | None = None
    file: Pattern | None = None
    subject: Pattern | None = None  # a vulnerability id: CVE-2024-2511, GHSA-*


class WaiverSpec(_Strict):
    """An accepted exception to a rule: who owns it, who approved it, until when."""

    rule: RuleRef
    selector: WaiverSelector = Field(default_factory=WaiverSelector)
    reason: Line
    owner: Annotated[str, StringConstraints(min_length=1, max_length=63)]
    approved_by: Annotated[str, StringConstraints(min_length=1, max_length=63)]
    expires: Expiry

    @model_validator(mode="after")
    def _four_eyes(self) -> WaiverSpec:
        if self.owner == self.approved_by:
            raise _invalid("approved_by must be someone other than the owner")
        return self

    def active(self, now: datetime) -> bool:
        """Whether the waiver still applies at now (it stops at `expires`)."""
        return now < self.expires


class RuleMatch(_Strict):
    """Which documents a custom rule looks at; every field given must match."""

    formats: list[Format] = Field(default_factory=lambda: [Format.KUBERNETES], max_length=20)
    api_versions: list[Pattern] = Field(default_factory=list, max_length=50)
    kinds: list[Pattern] = Field(default_factory=list, max_length=100)
    namespaces: list[Pattern] = Field(default_factory=list, max_length=100)


CelText = Annotated[str, StringConstraints(min_length=1, max_length=10_000)]


class PolicyRuleSpec(_Strict):
    """A custom rule in CEL: `expression` must hold for every matched document.

    Like a ValidatingAdmissionPolicy validation: `object` is the document, the expression
    is true when it is valid; `message` (or `message_expression`) says what is wrong.
    """

    title: Line
    severity: Severity = Severity.ERROR
    match: RuleMatch = Field(default_factory=RuleMatch)
    expression: CelText
    message: Line
    message_expression: CelText | None = None
    rationale: Text = ""
    remediation: Text = ""
    aliases: list[RuleRef] = Field(default_factory=list, max_length=20)
    waivable: bool = True

    @field_validator("expression", "message_expression")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            from changegate.domain.policy import cel

            problem = cel.compile_problem(value)
            if problem is not None:
                raise _invalid(problem)
        return value
