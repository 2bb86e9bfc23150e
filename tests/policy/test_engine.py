"""The engine: findings from hits, severities as configured, waivers, counts."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from changegate.domain.policy.changeset import ChangeSet, CheckContext, selector_matches
from changegate.domain.policy.config import PolicyConfigSpec, WaiverSpec
from changegate.domain.policy.engine import Report, RuleSet, Waiver
from changegate.domain.policy.model import Finding, Hit, Severity, rule
from tests.policy.helpers import NOW, check, k8s

MANIFESTS = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: odoo
  namespace: tenant-acme
spec:
  template:
    metadata:
      labels: {app: odoo}
    spec:
      containers:
        - name: odoo
          image: odoo:17
        - name: sidecar
          image: busybox
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: odoo
  namespace: tenant-globex
spec:
  template:
    metadata:
      labels: {app: odoo}
    spec:
      containers:
        - name: odoo
          image: odoo:17
"""


@rule(
    "test.every-container",
    "Every container is reported",
    Severity.ERROR,
    rationale="For the tests.",
    remediation="None.",
    aliases=("CKV_TEST_1", "kube-linter:test"),
)
def every_container(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    for workload in changeset.workloads:
        for container in workload.containers:
            yield Hit(
                workload.document,
                (*container.path, "image"),
                f"container {container.name} seen",
                container=container.name,
            )


@rule(
    "test.never",
    "Finds nothing",
    Severity.WARNING,
    rationale="For the tests.",
    remediation="None.",
)
def never(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    return iter(())


@rule(
    "test.locked",
    "Cannot be waived",
    Severity.ERROR,
    rationale="For the tests.",
    remediation="None.",
    waivable=False,
)
def locked(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    for document in changeset.kubernetes():
        yield Hit(document, ("metadata", "name"), "locked")


NAMESPACES = {"tenant-acme": "acme", "tenant-globex": "globex"}


def waiver(ident: str = "w1", *, expires: str = "2026-12-31", **spec: object) -> Waiver:
    data: dict[str, object] = {
        "rule": "test.every-container",
        "reason": "accepted for the tests",
        "owner": "alice",
        "approved_by": "bob",
        "expires": expires,
        **spec,
    }
    return Waiver(ident, WaiverSpec.model_validate_json(json.dumps(data)), "w.yaml", 3)


def run(*waivers: Waiver, now: datetime = NOW, **config: object) -> Report:
    return check(
        [every_container, never, locked],
        k8s(MANIFESTS),
        config=PolicyConfigSpec.model_validate_json(json.dumps(config)),
        waivers=waivers,
        now=now,
        tenant_namespaces=NAMESPACES,
        environment="prod",
    )


def failing(report: Report, rule_id: str = "test.every-container") -> list[Finding]:
    return [f for f in report.findings if f.rule == rule_id and f.status.value == "failed"]


def test_findings_carry_rule_resource_line_tenant_and_aliases() -> None:
    report = run()
    found = failing(report)
    assert [(f.resource.namespace, f.resource.container, f.line) for f in found] == [
        ("tenant-acme", "odoo", 13),
        ("tenant-acme", "sidecar", 15),
        ("tenant-globex", "odoo", 29),
    ]
    first = found[0]
    assert first.resource.kind == "Deployment"
    assert first.resource.api_version == "apps/v1"
    assert first.tenant == "acme"
    assert first.aliases == ("CKV_TEST_1", "kube-linter:test")
    assert first.file == "manifests.yaml"
    assert report.summary.rules_run == 3
    assert report.summary.passed == 1
    assert report.summary.errors == 5
    assert not report.passed


def test_config_regrades_and_disables_rules_by_id_or_alias() -> None:
    report = run(rules={"CKV_TEST_1": {"severity": "warning"}, "test.locked": {"enabled": False}})
    assert {f.severity for f in failing(report)} == {Severity.WARNING}
    assert not failing(report, "test.locked")
    assert report.summary.rules_run == 2
    assert report.passed


def test_a_waiver_down_to_one_container() -> None:
    report = run(waiver(selector={"namespace": "tenant-acme", "container": "sidecar"}))
    waived = [f for f in report.findings if f.status.value == "waived"]
    assert [(f.resource.namespace, f.resource.container, f.waiver) for f in waived] == [
        ("tenant-acme", "sidecar", "w1")
    ]
    assert len(failing(report)) == 2
    assert report.summary.waived == 1
    assert not report.orphan_waivers


def test_a_waiver_by_tenant_kind_and_name_glob_and_by_alias() -> None:
    report = run(waiver(rule="kube-linter:test", selector={"tenant": "glob*", "kind": "Deploy*"}))
    assert [f.resource.namespace for f in failing(report)] == ["tenant-acme", "tenant-acme"]
    assert report.summary.waived == 1


def test_a_waiver_with_a_date_lasts_to_the_end_of_that_day_utc() -> None:
    w = waiver(expires="2026-11-26")
    assert w.spec.expires == datetime(2026, 11, 27, tzinfo=UTC)
    last_moment = datetime(2026, 11, 26, 23, 59, 59, 999999, tzinfo=UTC)
    assert run(w, now=last_moment).summary.waived == 3
    after = run(w, now=datetime(2026, 11, 27, tzinfo=UTC))
    assert after.summary.waived == 0
    assert after.summary.expired == 3
    assert all(f.waiver == "w1" and f.waiver_expired for f in failing(after))
    assert [x.id for x in after.expired_waivers] == ["w1"]
    assert not after.orphan_waivers


def test_an_instant_expiry_needs_an_offset() -> None:
    with pytest.raises(ValidationError, match="timezone offset"):
        waiver(expires="2026-11-26T10:00:00")
    w = waiver(expires="2026-11-26T10:00:00+02:00")
    assert w.spec.expires == datetime(2026, 11, 26, 8, tzinfo=UTC)


def test_an_active_waiver_wins_over_an_expired_one() -> None:
    report = run(waiver("old", expires="2026-01-01"), waiver("new"))
    assert report.summary.waived == 3
    assert {f.waiver for f in report.findings if f.rule == "test.every-container"} == {"new"}
    assert [w.id for w in report.expired_waivers] == ["old"]


def test_orphan_waivers_match_nothing() -> None:
    report = run(waiver("stray", selector={"namespace": "tenant-nobody"}))
    assert [w.id for w in report.orphan_waivers] == ["stray"]
    assert report.summary.waived == 0


def test_non_waivable_rules_ignore_waivers_and_say_so() -> None:
    report = run(waiver("try", rule="test.locked"))
    assert len(failing(report, "test.locked")) == 2
    assert [w.id for w in report.refused_waivers] == ["try"]
    assert not report.orphan_waivers


def test_the_config_can_make_a_rule_non_waivable() -> None:
    report = run(waiver(), non_waivable=["CKV_TEST_1"])
    assert report.summary.waived == 0
    assert [w.id for w in report.refused_waivers] == ["w1"]


def test_waivers_and_settings_naming_no_rule_are_noticed() -> None:
    report = run(waiver(rule="CKV_K8S_999"), rules={"nope.rule": {"enabled": False}})
    assert any("CKV_K8S_999" in n for n in report.notices)
    assert any("nope.rule" in n for n in report.notices)


def test_waivers_need_two_people() -> None:
    with pytest.raises(ValidationError, match="someone other than the owner"):
        waiver(approved_by="alice")


def test_report_round_trips_through_its_json_shape() -> None:
    report = run(waiver(selector={"container": "sidecar"}), waiver("old", expires="2020-01-01"))
    again = Report.from_dict(report.as_dict())
    assert again.as_dict() == report.as_dict()
    assert again.blocking == report.blocking


def test_rule_ids_are_unique() -> None:
    with pytest.raises(ValueError, match="two rules"):
        RuleSet([never, never], PolicyConfigSpec())


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ({"app": "odoo"}, {"app": "odoo", "tier": "web"}, True),
        ({"app": "odoo"}, {"app": "redis"}, False),
        ({"matchLabels": {"app": "odoo"}}, {"app": "odoo"}, True),
        (
            {"matchExpressions": [{"key": "app", "operator": "In", "values": ["a", "odoo"]}]},
            {"app": "odoo"},
            True,
        ),
        (
            {"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["odoo"]}]},
            {"app": "odoo"},
            False,
        ),
        ({"matchExpressions": [{"key": "app", "operator": "Exists"}]}, {}, False),
        ({"matchExpressions": [{"key": "app", "operator": "DoesNotExist"}]}, {}, True),
        ({"matchExpressions": [{"key": "app", "operator": "Bogus"}]}, {"app": "x"}, False),
        ({}, {"anything": "x"}, True),
        ("app=odoo", {"app": "odoo"}, False),
        ({"matchExpressions": "nope"}, {"app": "odoo"}, False),
    ],
)
def test_label_selectors(selector: object, labels: dict[str, str], expected: bool) -> None:
    assert selector_matches(selector, labels) is expected


def test_expired_waiver_reported_even_when_nothing_matches() -> None:
    report = run(
        waiver(
            "gone",
            expires=(NOW - timedelta(days=3)).date().isoformat(),
            selector={"namespace": "tenant-nobody"},
        )
    )
    assert [w.id for w in report.expired_waivers] == ["gone"]
    assert not report.orphan_waivers


@rule(
    "test.cves",
    "Vulnerabilities",
    Severity.ERROR,
    rationale="For the tests.",
    remediation="None.",
)
def cves(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    for document in changeset.kubernetes()[:1]:
        for cve in ("CVE-2024-1", "CVE-2024-2"):
            yield Hit(document, (), f"{cve} in libssl", subject=cve)


def test_a_waiver_can_select_one_vulnerability() -> None:
    w = Waiver(
        "one-cve",
        WaiverSpec.model_validate_json(
            json.dumps(
                {
                    "rule": "test.cves",
                    "selector": {"subject": "CVE-2024-2"},
                    "reason": "not reachable",
                    "owner": "alice",
                    "approved_by": "bob",
                    "expires": "2026-12-31",
                }
            )
        ),
    )
    report = check(cves, k8s(MANIFESTS), waivers=[w])
    assert [(f.subject, f.status.value) for f in report.findings] == [
        ("CVE-2024-1", "failed"),
        ("CVE-2024-2", "waived"),
    ]


@pytest.mark.parametrize("spelling", ["KSV017", "KSV-0017", "AVD-KSV-0017", "ksv17"])
def test_trivy_ids_in_any_spelling(spelling: str) -> None:
    @rule("test.trivy", "t", Severity.ERROR, rationale="r", remediation="r", aliases=("KSV017",))
    def trivy(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
        return iter(())

    assert RuleSet([trivy], PolicyConfigSpec()).resolve(spelling) == ["test.trivy"]
