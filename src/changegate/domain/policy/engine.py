"""Run rules over a change set, apply waivers, count: the policy gate's one entry point.

`evaluate` is pure: the change set, the compiled rules, the context, the waivers and the
instant in; a `Report` out. Rules run once each over the whole change set; a finding is
matched against the waivers naming its rule (by id or alias), so waivers cost nothing for the
rules nobody waived.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from fnmatch import fnmatchcase
from typing import Any

from changegate.domain.policy.changeset import ChangeSet, CheckContext
from changegate.domain.policy.config import PolicyConfigSpec, WaiverSpec
from changegate.domain.policy.model import (
    Finding,
    FindingStatus,
    Hit,
    Rule,
    RuleInfo,
    Severity,
)


@dataclass(frozen=True, slots=True)
class Waiver:
    """A waiver from the catalog: its id, its spec and where it is written."""

    id: str
    spec: WaiverSpec
    file: str = ""
    line: int = 0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Waiver:
        """A waiver back from `as_dict` (a stored report)."""
        fields = ("rule", "selector", "reason", "owner", "approved_by", "expires")
        spec = WaiverSpec.model_validate_json(json.dumps({key: data[key] for key in fields}))
        return cls(data["id"], spec, data["file"], data["line"])

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "rule": self.spec.rule,
            "selector": self.spec.selector.model_dump(exclude_none=True),
            "reason": self.spec.reason,
            "owner": self.spec.owner,
            "approved_by": self.spec.approved_by,
            "expires": self.spec.expires.isoformat(),
            "file": self.file,
            "line": self.line,
        }


_TRIVY_ID = re.compile(r"^(?:avd-)?ksv-?0*(\d+)$")


def alias_key(alias: str) -> str:
    """How an alias is looked up: any case; Trivy's KSV017, KSV-0017 and AVD-KSV-0017 alike."""
    lowered = alias.lower()
    trivy = _TRIVY_ID.match(lowered)
    return f"ksv{int(trivy.group(1))}" if trivy else lowered


class RuleSet:
    """Compiled rules with their ids and aliases resolved once, and the config applied."""

    def __init__(self, rules: Iterable[Rule], config: PolicyConfigSpec) -> None:
        every = list(rules)
        self.known: dict[str, Rule] = {}
        for each in every:
            if each.info.id in self.known:
                raise ValueError(f"two rules have the id {each.info.id!r}")
            self.known[each.info.id] = each
        # Alias (any case) -> rule ids, so waivers and settings written for Checkov or
        # kube-linter find their rule here.
        self.aliases: dict[str, list[str]] = defaultdict(list)
        for each in every:
            for alias in each.info.aliases:
                self.aliases[alias_key(alias)].append(each.info.id)
        self.config = config
        self.rules = [each for each in every if self._setting_enabled(each.info.id)]
        self.non_waivable = frozenset(
            rule_id for ref in config.non_waivable for rule_id in self.resolve(ref)
        )

    def resolve(self, ref: str) -> list[str]:
        """The rule ids a reference names: the id itself, or every rule with that alias."""
        if ref in self.known:
            return [ref]
        return list(self.aliases.get(alias_key(ref), ()))

    def _setting_enabled(self, rule_id: str) -> bool:
        for ref, setting in self.config.rules.items():
            if rule_id in self.resolve(ref) and not setting.enabled:
                return False
        return True

    def configured(self, info: RuleInfo) -> Severity | None:
        """The severity the config sets for the rule, if it sets one."""
        for ref, setting in self.config.rules.items():
            if setting.severity is not None and info.id in self.resolve(ref):
                return setting.severity
        return None

    def severity(self, info: RuleInfo) -> Severity:
        """The rule's severity, as the config grades it."""
        return self.configured(info) or info.severity

    def unknown_refs(self) -> list[str]:
        """Rule references in the config that name no rule (typos, removed rules)."""
        refs = [*self.config.rules, *self.config.non_waivable]
        return [ref for ref in refs if not self.resolve(ref)]


@dataclass(frozen=True, slots=True)
class Summary:
    """How the check went: rules that passed; findings failed, waived, failing on expiry."""

    documents: int
    rules_run: int
    passed: int  # rules that ran and found nothing
    failed: int  # findings not waived (any severity)
    waived: int
    expired: int  # failing findings whose only matching waivers have expired
    errors: int  # failing error-level findings: these fail the check
    warnings: int
    infos: int

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Summary:
        return cls(**{name: int(data[name]) for name in cls.__slots__})

    def as_dict(self) -> dict[str, int]:
        return {
            "documents": self.documents,
            "rules_run": self.rules_run,
            "passed": self.passed,
            "failed": self.failed,
            "waived": self.waived,
            "expired": self.expired,
            "errors": self.errors,
            "warnings": self.warnings,
            "infos": self.infos,
        }


@dataclass(frozen=True, slots=True)
class Report:
    """A whole check: findings in report order, counts, waivers and what could not be done."""

    findings: tuple[Finding, ...]
    summary: Summary
    rules: tuple[RuleInfo, ...]  # the rules that ran (SARIF lists them)
    environment: str | None = None
    tenant: str | None = None
    notices: tuple[str, ...] = ()
    expired_waivers: tuple[Waiver, ...] = ()
    orphan_waivers: tuple[Waiver, ...] = ()
    # Waivers that matched a finding of a non-waivable rule, and so did nothing.
    refused_waivers: tuple[Waiver, ...] = ()
    problems: tuple[dict[str, Any], ...] = field(default=())  # unreadable inputs

    @property
    def failing_errors(self) -> tuple[Finding, ...]:
        """Error-level findings nobody waived: they fail `changegate check`."""
        return tuple(f for f in self.findings if f.failing_error)

    @property
    def blocking(self) -> tuple[Finding, ...]:
        """The failing errors that block authorization (not those that escalate)."""
        return tuple(f for f in self.findings if f.blocking)

    @property
    def passed(self) -> bool:
        """No failing error and every input read."""
        return not self.failing_errors and not self.problems

    def as_dict(self) -> dict[str, Any]:
        """The stable JSON shape of `changegate check --format json` and of stored reports."""
        return {
            "passed": self.passed,
            "environment": self.environment,
            "tenant": self.tenant,
            "summary": self.summary.as_dict(),
            "findings": [f.as_dict() for f in self.findings],
            "notices": list(self.notices),
            "problems": list(self.problems),
            "waivers": {
                "expired": [w.as_dict() for w in self.expired_waivers],
                "orphans": [w.as_dict() for w in self.orphan_waivers],
                "refused": [w.as_dict() for w in self.refused_waivers],
            },
            "rules": [rule_dict(info) for info in self.rules],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Report:
        """A report back from `as_dict` (a stored report)."""
        waivers = data["waivers"]
        return cls(
            findings=tuple(Finding.from_dict(item) for item in data["findings"]),
            summary=Summary.from_dict(data["summary"]),
            rules=tuple(
                RuleInfo(
                    item["id"],
                    item["title"],
                    Severity(item["severity"]),
                    item["rationale"],
                    item["remediation"],
                    item["pack"],
                    tuple(item["aliases"]),
                    item["waivable"],
                    item["escalates"],
                )
                for item in data["rules"]
            ),
            environment=data["environment"],
            tenant=data["tenant"],
            notices=tuple(data["notices"]),
            expired_waivers=tuple(Waiver.from_dict(w) for w in waivers["expired"]),
            orphan_waivers=tuple(Waiver.from_dict(w) for w in waivers["orphans"]),
            refused_waivers=tuple(Waiver.from_dict(w) for w in waivers["refused"]),
            problems=tuple(data["problems"]),
        )


def rule_dict(info: RuleInfo) -> dict[str, Any]:
    """A rule's stable JSON shape (reports, `policy rules --json`)."""
    return {
        "id": info.id,
        "title": info.title,
        "severity": info.severity.value,
        "pack": info.pack,
        "rationale": info.rationale,
        "remediation": info.remediation,
        "aliases": list(info.aliases),
        "waivable": info.waivable,
        "escalates": info.escalates,
    }


def _glob(pattern: str | None, value: str) -> bool:
    return pattern is None or fnmatchcase(value, pattern)


def _selects(waiver: WaiverSpec, finding: Finding, environment: str | None) -> bool:
    selector = waiver.selector
    resource = finding.resource
    return (
        _glob(selector.tenant, finding.tenant)
        and _glob(selector.environment, environment or "")
        and _glob(selector.namespace, resource.namespace)
        and _glob(selector.kind, resource.kind)
        and _glob(selector.name, resource.name)
        and _glob(selector.container, resource.container)
        and _glob(selector.file, finding.file)
        and _glob(selector.subject, finding.subject)
    )


def _finding(rules: RuleSet, each: Rule, hit: Hit, context: CheckContext) -> Finding:
    info = each.info
    document = hit.document
    resource = hit.resource or document.resource(hit.container)
    return Finding(
        rule=info.id,
        # The config's grading wins; else the hit's own (a CVE's level), else the rule's.
        severity=rules.configured(info) or hit.severity or info.severity,
        message=hit.message,
        resource=resource,
        file=document.file,
        line=document.locate(hit.path),
        remediation=info.remediation,
        aliases=info.aliases,
        tenant=context.tenant_of(resource.namespace),
        subject=hit.subject,
        escalates=info.escalates,
        commit=document.commit,
    )


def _order(finding: Finding) -> tuple[Any, ...]:
    return (
        finding.file,
        finding.line or 0,
        finding.severity.rank,
        finding.rule,
        finding.resource.container,
        finding.message,
    )


def evaluate(
    changeset: ChangeSet,
    rules: RuleSet,
    context: CheckContext,
    waivers: Sequence[Waiver] = (),
    *,
    now: datetime,
    problems: Sequence[dict[str, Any]] = (),
) -> Report:
    """Run every enabled rule over the change set and apply the waivers at `now`."""
    by_rule: dict[str, list[Waiver]] = defaultdict(list)
    for waiver in waivers:
        for rule_id in rules.resolve(waiver.spec.rule):
            by_rule[rule_id].append(waiver)
    used: set[str] = set()
    refused: dict[str, Waiver] = {}
    findings: list[Finding] = []
    silent = 0
    for each in rules.rules:
        found = False
        candidates = by_rule.get(each.info.id, ())
        for hit in each.check(changeset, context):
            found = True
            finding = _finding(rules, each, hit, context)
            if candidates:
                finding = _waive(finding, candidates, rules, context, now, used, refused)
            findings.append(finding)
        if not found:
            silent += 1
    findings.sort(key=_order)
    failing = [f for f in findings if f.status is FindingStatus.FAILED]
    summary = Summary(
        documents=len(changeset.documents),
        rules_run=len(rules.rules),
        passed=silent,
        failed=len(failing),
        waived=len(findings) - len(failing),
        expired=sum(1 for f in failing if f.waiver_expired),
        errors=sum(1 for f in failing if f.severity is Severity.ERROR),
        warnings=sum(1 for f in failing if f.severity is Severity.WARNING),
        infos=sum(1 for f in failing if f.severity is Severity.INFO),
    )
    notices = list(context.notices)
    for ref in rules.unknown_refs():
        notices.append(f"the policy config names rule {ref!r}, which no rule has as id or alias")
    for waiver in waivers:
        if not rules.resolve(waiver.spec.rule):
            notices.append(
                f"waiver {waiver.id} names rule {waiver.spec.rule!r}, which no rule has as "
                "id or alias"
            )
    return Report(
        findings=tuple(findings),
        summary=summary,
        rules=tuple(replace(each.info, severity=rules.severity(each.info)) for each in rules.rules),
        environment=context.environment,
        tenant=context.tenant,
        notices=tuple(notices),
        expired_waivers=tuple(w for w in waivers if not w.spec.active(now)),
        orphan_waivers=tuple(
            w for w in waivers if w.spec.active(now) and w.id not in used and w.id not in refused
        ),
        refused_waivers=tuple(refused.values()),
        problems=tuple(problems),
    )


def _waive(
    finding: Finding,
    candidates: Sequence[Waiver],
    rules: RuleSet,
    context: CheckContext,
    now: datetime,
    used: set[str],
    refused: dict[str, Waiver],
) -> Finding:
    matching = [w for w in candidates if _selects(w.spec, finding, context.environment)]
    if not matching:
        return finding
    active = [w for w in matching if w.spec.active(now)]
    waivable = finding.rule not in rules.non_waivable and rules.known[finding.rule].info.waivable
    if active and not waivable:
        for waiver in active:
            refused[waiver.id] = waiver
        return finding
    if active:
        used.update(w.id for w in active)
        return replace(finding, status=FindingStatus.WAIVED, waiver=active[0].id)
    # Only expired waivers match: the finding fails, and says which waiver lapsed.
    latest = max(matching, key=lambda w: w.spec.expires)
    return replace(finding, waiver=latest.id, waiver_expired=True)


def by_resource(findings: Iterable[Finding]) -> Mapping[str, list[Finding]]:
    """Findings grouped by the resource they are about (file for non-Kubernetes inputs)."""
    groups: dict[str, list[Finding]] = {}
    for finding in findings:
        label = finding.resource.label() or finding.file
        groups.setdefault(label, []).append(finding)
    return groups
