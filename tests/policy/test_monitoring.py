"""The monitoring pack: promtool (real and faked) and alert labels."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from textwrap import dedent

import pytest

from changegate.adapters import policy_inputs
from changegate.adapters.policy_tools import SubprocessTools
from changegate.domain.policy.model import Document, Format, Severity
from changegate.domain.policy.rules import monitoring
from tests.policy.helpers import check, k8s, rule_ids

GOOD = """\
groups:
  - name: odoo
    rules:
      - record: job:odoo_http_requests:rate5m
        expr: sum by (job) (rate(odoo_http_requests_total[5m]))
      - alert: OdooDown
        expr: up{job="odoo"} == 0
        for: 5m
        labels:
          severity: critical
        annotations:
          summary: Odoo is down
          runbook_url: https://runbooks.example.com/odoo-down
"""

BAD_EXPRESSION = """\
groups:
  - name: odoo
    rules:
      - alert: OdooDown
        expr: up{job="odoo" == 0
        for: 5m
        labels:
          severity: critical
        annotations:
          runbook_url: https://runbooks.example.com/odoo-down
"""


def rule_file(
    text: str, tmp_path: Path | None = None, name: str = "odoo.rules.yaml"
) -> list[Document]:
    path = None
    if tmp_path is not None:
        target = tmp_path / name
        target.write_text(text)
        path = str(target)
    documents = policy_inputs.parse(text.encode(), name, path=path)
    return [d for d in documents if d is not None]


class FakeTools:
    def __init__(self, answer: tuple[bool, str] | None) -> None:
        self.answer = answer
        self.paths: list[str] = []

    def promtool_check_rules(self, path: str) -> tuple[bool, str] | None:
        self.paths.append(path)
        return self.answer

    def cosign_verify(self, image: str, arguments: Sequence[str]) -> tuple[bool, str] | None:
        return None


# --------------------------------------------------------------------------- promtool


def test_without_promtool_a_notice_and_no_finding(tmp_path: Path) -> None:
    documents = [
        *rule_file(GOOD, tmp_path, "a.rules.yaml"),
        *rule_file(BAD_EXPRESSION, tmp_path, "b.rules.yaml"),
    ]
    tools = FakeTools(None)
    report = check(monitoring.promtool, documents, tools=tools)
    assert rule_ids(report) == []
    assert "promtool is not installed: 2 rule files were not checked with promtool check rules" in (
        report.notices
    )
    assert len(tools.paths) == 1  # asked once, then known to be missing


def test_without_promtool_one_file_is_said_in_the_singular(tmp_path: Path) -> None:
    report = check(monitoring.promtool, rule_file(GOOD, tmp_path), tools=FakeTools(None))
    assert report.notices == (
        "promtool is not installed: 1 rule file was not checked with promtool check rules",
    )


def test_default_tools_have_no_promtool(tmp_path: Path) -> None:
    report = check(monitoring.promtool, rule_file(GOOD, tmp_path))
    assert report.notices and report.notices[0].startswith("promtool is not installed")


def test_promtool_failures_become_errors_on_the_rule(tmp_path: Path) -> None:
    documents = rule_file(BAD_EXPRESSION, tmp_path)
    path = documents[0].path
    output = (
        f"Checking {path}\n  FAILED:\n"
        f'{path}: 5:15: group "odoo", rule 1, "OdooDown": could not parse expression: 1:15: '
        'parse error: unexpected "=" in label matching, expected "," or "}"\n'
    )
    report = check(monitoring.promtool, documents, tools=FakeTools((False, output)))
    assert rule_ids(report) == ["monitoring.promtool"]
    finding = report.findings[0]
    assert finding.severity is Severity.ERROR
    assert finding.message.startswith('promtool: 5:15: group "odoo", rule 1, "OdooDown": could not')
    assert str(tmp_path) not in finding.message
    assert finding.line == 4  # the rule promtool names
    assert finding.file == "odoo.rules.yaml"


def test_promtool_problems_without_rule_are_placed_by_line(tmp_path: Path) -> None:
    text = dedent(
        """\
        groups:
          - name: odoo
            rules:
              - alert: A
                expr: up == 0
                bogus: 1
        """
    )
    documents = rule_file(text, tmp_path)
    path = documents[0].path
    output = (
        f"Checking {path}\n  FAILED:\n{path}: yaml: unmarshal errors:\n"
        "  line 6: field bogus not found in type rulefmt.RuleNode\n"
    )
    report = check(monitoring.promtool, documents, tools=FakeTools((False, output)))
    assert [(f.line, f.message) for f in report.findings] == [
        (
            6,
            "promtool: yaml: unmarshal errors: line 6: field bogus not found in type "
            "rulefmt.RuleNode",
        )
    ]


def test_promtool_output_is_bounded(tmp_path: Path) -> None:
    documents = rule_file(GOOD, tmp_path)
    output = "\n".join(f"problem number {n} " + "x" * 2000 for n in range(50))
    report = check(monitoring.promtool, documents, tools=FakeTools((False, output)))
    assert len(report.findings) == 21
    assert all(len(f.message) < 600 for f in report.findings)
    assert any("and 30 more problems" in f.message for f in report.findings)


def test_passing_files_and_files_without_path(tmp_path: Path) -> None:
    documents = [*rule_file(GOOD, tmp_path), *rule_file(GOOD)]
    tools = FakeTools((True, "SUCCESS: 2 rules found"))
    report = check(monitoring.promtool, documents, tools=tools)
    assert rule_ids(report) == []
    assert report.notices == (
        "1 rule document not read from a file (standard input) was not checked with promtool "
        "check rules",
    )


def test_prometheus_rule_objects_are_said_not_checked_by_promtool() -> None:
    documents = k8s(PROMETHEUS_RULE)
    tools = FakeTools((True, ""))
    report = check(monitoring.promtool, documents, tools=tools)
    assert tools.paths == []
    assert report.notices == (
        "1 PrometheusRule object was not checked with promtool check rules (only rule files on "
        "disk are); their alert labels were checked",
    )


promtool_missing = pytest.mark.skipif(
    shutil.which("promtool") is None,
    reason="promtool is not installed (apt-get install prometheus provides /usr/bin/promtool)",
)


@promtool_missing
def test_real_promtool_passes_a_good_file(tmp_path: Path) -> None:
    report = check(monitoring.promtool, rule_file(GOOD, tmp_path), tools=SubprocessTools())
    assert rule_ids(report) == []
    assert report.notices == ()


@promtool_missing
def test_real_promtool_fails_a_bad_file(tmp_path: Path) -> None:
    report = check(
        monitoring.promtool, rule_file(BAD_EXPRESSION, tmp_path), tools=SubprocessTools()
    )
    assert rule_ids(report) == ["monitoring.promtool"]
    finding = report.findings[0]
    assert "could not parse expression" in finding.message
    assert "OdooDown" in finding.message
    assert finding.line == 4


@promtool_missing
def test_real_promtool_on_a_duplicate_group(tmp_path: Path) -> None:
    text = GOOD + "  - name: odoo\n    rules:\n      - alert: Again\n        expr: up == 0\n"
    report = check(monitoring.promtool, rule_file(text, tmp_path), tools=SubprocessTools())
    assert rule_ids(report) == ["monitoring.promtool"]
    assert "repeated" in report.findings[0].message
    assert report.findings[0].line == 14


# --------------------------------------------------------------------------- alert labels

PROMETHEUS_RULE = """\
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: odoo
  namespace: tenant-acme
spec:
  groups:
    - name: odoo.rules
      rules:
        - alert: OdooWorkersSaturated
          expr: odoo_workers_busy / odoo_workers_total > 0.9
          labels:
            team: platform
        - alert: OdooDown
          expr: up{job="odoo"} == 0
          labels:
            severity: critical
            runbook_url: https://runbooks.example.com/odoo-down
"""


def test_alert_labels_on_prometheus_rule_objects() -> None:
    documents = k8s(PROMETHEUS_RULE)
    report = check([monitoring.alert_severity, monitoring.alert_runbook], documents)
    assert [(f.rule, f.line, f.message, f.severity) for f in report.findings] == [
        (
            "monitoring.alert-runbook",
            10,
            "alert OdooWorkersSaturated (group odoo.rules) has no runbook_url annotation",
            Severity.WARNING,
        ),
        (
            "monitoring.alert-severity",
            12,
            "alert OdooWorkersSaturated (group odoo.rules) has no severity label",
            Severity.ERROR,
        ),
    ]
    assert report.findings[0].resource.kind == "PrometheusRule"
    assert report.findings[0].resource.namespace == "tenant-acme"


def test_alert_labels_on_rule_files() -> None:
    text = dedent(
        """\
        groups:
          - name: redis
            rules:
              - record: redis:memory:ratio
                expr: redis_memory_used_bytes / redis_memory_max_bytes
              - alert: RedisMemoryHigh
                expr: redis:memory:ratio > 0.9
                labels:
                  severity: ""
                annotations:
                  runbook_url: "  "
              - alert: RedisDown
                expr: redis_up == 0
        """
    )
    report = check([monitoring.alert_severity, monitoring.alert_runbook], rule_file(text))
    assert sorted((f.rule, f.message) for f in report.findings) == [
        ("monitoring.alert-runbook", "alert RedisDown (group redis) has no runbook_url annotation"),
        (
            "monitoring.alert-runbook",
            "alert RedisMemoryHigh (group redis) has no runbook_url annotation",
        ),
        ("monitoring.alert-severity", "alert RedisDown (group redis) has no severity label"),
        ("monitoring.alert-severity", "alert RedisMemoryHigh (group redis) has no severity label"),
    ]


def test_good_rule_file_passes_label_rules() -> None:
    report = check([monitoring.alert_severity, monitoring.alert_runbook], rule_file(GOOD))
    assert rule_ids(report) == []


@pytest.mark.parametrize(
    "data",
    [
        {"groups": None},
        {
            "groups": [
                None,
                1,
                "x",
                {"rules": "x"},
                {"name": 3, "rules": [None, 1, {"alert": None}]},
            ]
        },
        {"groups": [{"rules": [{"alert": "A", "labels": ["severity"], "annotations": "x"}]}]},
    ],
)
def test_odd_rule_files_never_raise(data: object) -> None:
    document = Document("rules.yaml", 0, 1, Format.PROMETHEUS_RULES, data, path="/nonexistent")
    check(monitoring.RULES, [document], tools=FakeTools((False, "garbage\n\n  \n")))


def test_odd_prometheus_rule_objects_never_raise() -> None:
    documents = k8s(
        "apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\n"
        "metadata: {name: x}\nspec: []\n"
    )
    assert rule_ids(check(monitoring.RULES, documents)) == []
