"""Helpers for policy tests: documents from text, and a check with one or more rules."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from changegate.adapters import yamlsource
from changegate.domain.policy.changeset import ChangeSet, CheckContext
from changegate.domain.policy.config import PolicyConfigSpec
from changegate.domain.policy.engine import Report, RuleSet, Waiver, evaluate
from changegate.domain.policy.model import Document, Format, Rule

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def k8s(text: str, file: str = "manifests.yaml") -> list[Document]:
    """Kubernetes documents from multi-document YAML, with line numbers."""
    return [
        Document(file, d.index, d.line, Format.KUBERNETES, d.data, d.locate)
        for d in yamlsource.load_bytes(text.encode(), display=file)
        if d.data is not None
    ]


def check(
    rules: Rule | Iterable[Rule],
    documents: Sequence[Document],
    *,
    config: PolicyConfigSpec | None = None,
    waivers: Sequence[Waiver] = (),
    now: datetime = NOW,
    **context: Any,
) -> Report:
    """Run rules over documents; context fields (environment, production...) as keywords."""
    listed = [rules] if hasattr(rules, "info") else list(rules)  # type: ignore[arg-type]
    config = config or PolicyConfigSpec()
    ruleset = RuleSet(listed, config)  # type: ignore[arg-type]
    ctx = CheckContext(config=config, **context)
    return evaluate(ChangeSet(documents), ruleset, ctx, waivers, now=now)


def rule_ids(report: Report) -> list[str]:
    """The rule ids of the failing findings, in report order."""
    return [f.rule for f in report.findings if f.status.value == "failed"]
