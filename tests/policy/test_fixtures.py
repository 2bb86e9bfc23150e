"""Every built-in rule against its own passing and failing fixtures, through the real inputs.

Layout: `fixtures/<rule-id>/fail/` must make the rule fail at least once, `pass/` must not
make it fail at all; an optional `context.yaml` gives the check's context (environment,
production, tenant, category, config, tenant_namespaces, tenant_tiers, critical_tiers, and
`catalog: sample` for the sample platform). All built-in rules run on each folder, as they
do in `changegate check`, so a fixture also proves the rule holds among the others.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from changegate.adapters import catalog_files, policy_inputs, policy_tools, sample_platform
from changegate.domain.catalog import Catalog
from changegate.domain.policy.changeset import ChangeSet, CheckContext
from changegate.domain.policy.config import PolicyConfigSpec
from changegate.domain.policy.engine import Report, RuleSet, evaluate
from changegate.domain.policy.rules import BUILTIN
from changegate.services import policy
from tests.policy.helpers import NOW

FIXTURES = Path(__file__).parent / "fixtures"
RULE_IDS = sorted(each.info.id for each in BUILTIN)


@pytest.fixture(scope="module")
def sample_catalog(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    folder = tmp_path_factory.mktemp("platform")
    sample_platform.write_sample(folder, tenants=12)
    return catalog_files.load_catalog(folder)


def _context(folder: Path, sample: Catalog) -> CheckContext:
    """The context.yaml of a fixture, over what the catalog gives (as `changegate check`)."""
    path = folder / "context.yaml"
    raw: dict[str, Any] = dict(yaml.safe_load(path.read_text()) or {}) if path.exists() else {}
    catalog = sample if raw.pop("catalog", None) == "sample" else None
    context = policy.context_of(catalog, tools=policy_tools.SubprocessTools())
    config = PolicyConfigSpec.model_validate_json(json.dumps(raw.pop("config", {}) or {}))
    namespaces = {**context.tenant_namespaces, **(raw.pop("tenant_namespaces", {}) or {})}
    tiers = {**context.tenant_tiers, **(raw.pop("tenant_tiers", {}) or {})}
    critical = frozenset(raw.pop("critical_tiers", []) or []) | frozenset(config.critical_tiers)
    return replace(
        context,
        config=config,
        tenant_namespaces=namespaces,
        tenant_tiers=tiers,
        critical_tiers=critical,
        notices=[],
        **raw,
    )


def _run(folder: Path, context: CheckContext) -> Report:
    inputs = policy_inputs.load_paths([str(folder)])
    assert not inputs.problems, inputs.problems
    assert inputs.documents, f"{folder}: no documents recognised"
    ruleset = RuleSet(BUILTIN, context.config)
    return evaluate(ChangeSet(inputs.documents), ruleset, context, now=NOW)


def _cases() -> Iterator[Any]:
    for rule_id in RULE_IDS:
        for outcome in ("fail", "pass"):
            yield pytest.param(rule_id, outcome, id=f"{rule_id}-{outcome}")


def test_every_rule_has_both_fixtures() -> None:
    missing = [
        f"{rule_id}/{outcome}"
        for rule_id in RULE_IDS
        for outcome in ("fail", "pass")
        if not (FIXTURES / rule_id / outcome).is_dir()
    ]
    assert not missing, f"rules without fixtures: {missing}"
    assert RULE_IDS, "no built-in rules"


def test_no_fixture_for_an_unknown_rule() -> None:
    known = set(RULE_IDS)
    strays = [p.name for p in FIXTURES.iterdir() if p.is_dir() and p.name not in known]
    assert not strays


@pytest.mark.parametrize(("rule_id", "outcome"), list(_cases()))
def test_fixture(rule_id: str, outcome: str, sample_catalog: Catalog) -> None:
    folder = FIXTURES / rule_id
    if not (folder / outcome).is_dir():
        pytest.fail(f"missing fixture {folder / outcome}")
    context = _context(folder, sample_catalog)
    report = _run(folder / outcome, context)
    failing = [f for f in report.findings if f.rule == rule_id and f.status.value == "failed"]
    if outcome == "fail":
        assert failing, f"{rule_id} found nothing in {folder / outcome}"
        for finding in failing:
            assert finding.message
            assert finding.file.startswith(str(folder / outcome))
            assert finding.line is None or finding.line >= 1
    else:
        assert not failing, [f"{f.file}:{f.line}: {f.message}" for f in failing]
