"""SARIF 2.1.0 and JUnit XML outputs of a policy report (domain/policy/formats.py)."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from changegate.domain.policy import formats
from changegate.domain.policy.changeset import ChangeSet, CheckContext
from changegate.domain.policy.config import PolicyConfigSpec, WaiverSpec
from changegate.domain.policy.engine import Report, Waiver
from changegate.domain.policy.model import (
    Document,
    Finding,
    FindingStatus,
    Format,
    Hit,
    Resource,
    Severity,
    dig,
    rule,
)
from tests.policy.helpers import check, k8s

SCHEMA = Path(__file__).parent / "data" / "sarif-schema-2.1.0.json"


@cache
def _validator() -> jsonschema.Draft4Validator:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    return jsonschema.Draft4Validator(schema, format_checker=jsonschema.FormatChecker())


# A URI reference as RFC 3986 allows it: unreserved, reserved and percent-escapes only.
_URI = re.compile(r"^(?:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=]|%[0-9A-F]{2})*$")


def _uris(data: Any) -> Iterator[str]:
    if isinstance(data, dict):
        for key, value in data.items():
            if key in ("uri", "informationUri", "$schema") and isinstance(value, str):
                yield value
            else:
                yield from _uris(value)
    elif isinstance(data, list):
        for item in data:
            yield from _uris(item)


def valid_sarif(log: dict[str, Any]) -> dict[str, Any]:
    """The log after checking it against the OASIS schema, as JSON text, with valid URIs."""
    text = json.dumps(log, ensure_ascii=False)
    text.encode("utf-8")  # no lone surrogates
    parsed = json.loads(text)
    errors = sorted(_validator().iter_errors(parsed), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:5])
    for uri in _uris(parsed):
        assert _URI.match(uri), uri
    run = parsed["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert len({r["id"] for r in rules}) == len(rules)
    for result in run["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
    return parsed


# -- rules and documents -------------------------------------------------------------------


@rule(
    "k8s.test-privileged",
    "Containers do not run privileged",
    Severity.ERROR,
    rationale="A privileged container has every capability of the host.",
    remediation="Remove securityContext.privileged or set it to false.",
    aliases=("CKV_K8S_16", "KSV017"),
)
def privileged(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    for workload in changeset.workloads:
        for container in workload.containers:
            if dig(container.data, ("securityContext", "privileged")) is True:
                yield Hit(
                    workload.document,
                    (*container.path, "securityContext", "privileged"),
                    f"container {container.name} runs privileged",
                    container=container.name,
                )


@rule(
    "k8s.test-latest",
    "Images name a tag other than latest",
    Severity.WARNING,
    rationale="latest moves.",
    remediation="Pin a version.",
)
def latest(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    for workload in changeset.workloads:
        for container in workload.containers:
            if container.image.endswith(":latest"):
                yield Hit(
                    workload.document,
                    (*container.path, "image"),
                    f"container {container.name} uses {container.image}",
                    container=container.name,
                )


@rule(
    "odoo.test-never",
    "Nothing is wrong",
    Severity.INFO,
    rationale="",  # a custom rule may document nothing
    remediation="",
)
def never(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    return iter(())


RULES = (privileged, latest, never)

MANIFEST = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: odoo
  namespace: tenant-acme
spec:
  template:
    spec:
      containers:
        - name: odoo
          image: registry.example.com/odoo:latest
          securityContext:
            privileged: true
        - name: sidecar
          image: registry.example.com/proxy:1.0
          securityContext:
            privileged: true
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: worker
  namespace: tenant-acme
spec:
  template:
    spec:
      containers:
        - name: worker
          image: registry.example.com/odoo:17.0
          securityContext:
            privileged: true
"""


def _waiver(rule_id: str, expires: str = "2027-01-01", **selector: str) -> Waiver:
    spec = WaiverSpec.model_validate(
        {
            "rule": rule_id,
            "selector": selector,
            "reason": "sidecar needs it until the CNI migration",
            "owner": "alice",
            "approved_by": "bob",
            "expires": expires,
        }
    )
    return Waiver(f"w-{rule_id}-{len(selector)}-{expires}", spec, "platform/waivers.yaml", 3)


def waivers() -> list[Waiver]:
    return [
        _waiver("k8s.test-privileged", container="sidecar"),
        _waiver("k8s.test-privileged", "2026-01-01", name="worker"),
        _waiver("CKV_K8S_16", name="nothing-matches"),
    ]


def full_report(file: str = "deploy/manifests.yaml") -> Report:
    """Findings of two severities, a waived one, one under an expired waiver, a silent rule,
    a notice, an input problem and waiver news."""
    report = check(
        RULES, k8s(MANIFEST, file=file), waivers=waivers(), environment="production", tenant="acme"
    )
    return replace(
        report,
        notices=("promtool is not installed: rule files were not checked",),
        problems=({"file": "deploy/broken.yaml", "line": 4, "message": "mapping values here"},),
    )


def results(log: dict[str, Any]) -> list[dict[str, Any]]:
    return list(log["runs"][0]["results"])


# -- SARIF ---------------------------------------------------------------------------------


def test_sarif_of_a_full_report_validates_and_says_everything() -> None:
    log = valid_sarif(formats.sarif(full_report(), tool_version="0.1.0", base="deploy"))
    assert log["version"] == "2.1.0"
    assert log["$schema"].endswith("sarif-schema-2.1.0.json")
    run = log["runs"][0]
    driver = run["tool"]["driver"]
    assert driver["name"] == "changegate"
    assert driver["version"] == "0.1.0"
    assert [r["id"] for r in driver["rules"]] == [
        "k8s.test-privileged",
        "k8s.test-latest",
        "odoo.test-never",
    ]
    found = results(log)
    assert len(found) == 4  # 3 privileged (one waived), 1 latest
    by_message = {r["message"]["text"]: r for r in found}
    sidecar = by_message[
        "container sidecar runs privileged (Deployment tenant-acme/odoo [container sidecar])"
    ]
    assert sidecar["suppressions"] == [
        {"kind": "external", "status": "accepted", "justification": f"waiver {sidecar_waiver()}"}
    ]
    expired = next(r for r in found if "worker" in r["message"]["text"])
    assert "suppressions" not in expired
    assert expired["properties"]["waiver_expired"] is True
    assert expired["message"]["text"].endswith("has expired.")
    assert run["properties"]["environment"] == "production"
    assert run["properties"]["passed"] is False
    notes = run["invocations"][0]["toolExecutionNotifications"]
    texts = [n["message"]["text"] for n in notes]
    assert texts[0] == "promtool is not installed: rule files were not checked"
    assert texts[1] == "deploy/broken.yaml:4: mapping values here"
    assert notes[1]["level"] == "error"
    problem = notes[1]["locations"][0]["physicalLocation"]
    assert problem == {
        "artifactLocation": {"uri": "broken.yaml", "uriBaseId": "%SRCROOT%"},
        "region": {"startLine": 4},
    }
    assert any("expired at" in t for t in texts)
    assert any("matches no finding" in t for t in texts)
    assert run["invocations"][0]["executionSuccessful"] is True


def sidecar_waiver() -> str:
    return _waiver("k8s.test-privileged", container="sidecar").id


def test_rules_carry_their_documentation_level_and_tags() -> None:
    log = valid_sarif(formats.sarif(full_report(), tool_version="0.1.0"))
    rules = {r["id"]: r for r in log["runs"][0]["tool"]["driver"]["rules"]}
    first = rules["k8s.test-privileged"]
    assert first["shortDescription"]["text"] == "Containers do not run privileged"
    assert first["fullDescription"]["text"].startswith("A privileged container")
    assert first["help"]["text"] == "Remove securityContext.privileged or set it to false."
    assert "`CKV_K8S_16`" in first["help"]["markdown"]
    assert first["defaultConfiguration"]["level"] == "error"
    assert first["properties"]["tags"] == ["security", "k8s", "CKV_K8S_16", "KSV017"]
    assert first["properties"]["security-severity"] == "8.0"
    assert rules["k8s.test-latest"]["defaultConfiguration"]["level"] == "warning"
    assert rules["k8s.test-latest"]["properties"]["security-severity"] == "5.0"
    silent = rules["odoo.test-never"]
    assert silent["defaultConfiguration"]["level"] == "note"
    assert silent["properties"]["security-severity"] == "2.0"
    # GitHub needs non-empty descriptions and help even when a custom rule gives none.
    assert silent["fullDescription"]["text"] == "Nothing is wrong"
    assert silent["help"]["text"] == "Nothing is wrong"


def test_results_locate_file_line_and_resource() -> None:
    log = valid_sarif(formats.sarif(full_report(), tool_version="0.1.0", base="deploy"))
    first = next(r for r in results(log) if r["ruleId"] == "k8s.test-privileged")
    assert first["level"] == "error"
    location = first["locations"][0]
    assert location["physicalLocation"] == {
        "artifactLocation": {"uri": "manifests.yaml", "uriBaseId": "%SRCROOT%"},
        "region": {"startLine": 13},
    }
    assert location["logicalLocations"] == [
        {
            "name": "odoo",
            "fullyQualifiedName": "tenant-acme/Deployment/odoo/odoo",
            "kind": "resource",
        }
    ]
    assert first["properties"]["tenant"] == "acme"
    assert first["properties"]["aliases"] == ["CKV_K8S_16", "KSV017"]
    assert log["runs"][0]["originalUriBaseIds"]["%SRCROOT%"]["description"]["text"]


def test_a_report_without_findings_or_rules_is_valid() -> None:
    log = valid_sarif(formats.sarif(check(never, k8s(MANIFEST)), tool_version="0.1.0"))
    assert results(log) == []
    assert "originalUriBaseIds" not in log["runs"][0]
    empty = valid_sarif(formats.sarif(check([], []), tool_version="0.1.0"))
    assert empty["runs"][0]["tool"]["driver"]["rules"] == []


def test_an_unknown_line_leaves_the_region_out() -> None:
    report = full_report()
    report = replace(report, findings=tuple(replace(f, line=None) for f in report.findings))
    log = valid_sarif(formats.sarif(report, tool_version="0.1.0"))
    for result in results(log):
        assert "region" not in result["locations"][0]["physicalLocation"]


def test_standard_input_is_located_by_resource_or_by_the_name_given() -> None:
    report = full_report(file="-")
    log = valid_sarif(formats.sarif(report, tool_version="0.1.0", base="."))
    location = results(log)[0]["locations"][0]
    assert "physicalLocation" not in location
    assert location["logicalLocations"][0]["fullyQualifiedName"] == (
        "tenant-acme/Deployment/odoo/odoo"
    )
    named = valid_sarif(
        formats.sarif(report, tool_version="0.1.0", base=".", stdin_uri="charts/odoo")
    )
    physical = results(named)[0]["locations"][0]["physicalLocation"]
    assert physical["artifactLocation"] == {"uri": "charts/odoo", "uriBaseId": "%SRCROOT%"}


@pytest.mark.parametrize(
    ("file", "base", "expected"),
    [
        ("deploy/a.yaml", None, {"uri": "deploy/a.yaml", "uriBaseId": "%SRCROOT%"}),
        ("./deploy/a.yaml", ".", {"uri": "deploy/a.yaml", "uriBaseId": "%SRCROOT%"}),
        ("/repo/deploy/a.yaml", "/repo", {"uri": "deploy/a.yaml", "uriBaseId": "%SRCROOT%"}),
        ("/repo/deploy/a.yaml", "/repo/", {"uri": "deploy/a.yaml", "uriBaseId": "%SRCROOT%"}),
        ("/elsewhere/a.yaml", "/repo", {"uri": "file:///elsewhere/a.yaml"}),
        ("/repository/a.yaml", "/repo", {"uri": "file:///repository/a.yaml"}),
        ("../a.yaml", ".", {"uri": "../a.yaml"}),
        ("deploy\\win\\a.yaml", None, {"uri": "deploy/win/a.yaml", "uriBaseId": "%SRCROOT%"}),
        (
            "my charts/odoo #1/ça.yaml",
            None,
            {"uri": "my%20charts/odoo%20%231/%C3%A7a.yaml", "uriBaseId": "%SRCROOT%"},
        ),
        ("c:odd.yaml", None, {"uri": "c%3Aodd.yaml", "uriBaseId": "%SRCROOT%"}),
        ("C:\\repo\\a.yaml", None, {"uri": "file:///C:/repo/a.yaml"}),
        ("C:\\repo\\a.yaml", ".", {"uri": "file:///C:/repo/a.yaml"}),
        ("C:/repo/k8s/a b.yaml", "C:\\repo", {"uri": "k8s/a%20b.yaml", "uriBaseId": "%SRCROOT%"}),
        ("/srv/a.yaml", "/", {"uri": "srv/a.yaml", "uriBaseId": "%SRCROOT%"}),
        ("//srv/a.yaml", None, {"uri": "file:///srv/a.yaml"}),
        ("/tmp/\udcff?.yaml", None, {"uri": "file:///tmp/%EF%BF%BD%3F.yaml"}),
    ],
)
def test_artifact_uris(file: str, base: str | None, expected: dict[str, str]) -> None:
    report = full_report(file=file)
    log = valid_sarif(formats.sarif(report, tool_version="0.1.0", base=base))
    assert results(log)[0]["locations"][0]["physicalLocation"]["artifactLocation"] == expected


def _fingerprints(report: Report, **options: Any) -> dict[str, str]:
    log = formats.sarif(report, tool_version="0.1.0", **options)
    return {
        r["message"]["text"]: r["partialFingerprints"]["primaryLocationLineHash"]
        for r in results(log)
    }


def test_fingerprints_are_stable_and_follow_the_resource_not_the_line() -> None:
    first = _fingerprints(full_report())
    assert first == _fingerprints(full_report())
    assert len(set(first.values())) == len(first)  # different resources, different prints
    # The same manifests moved down by a document: lines change, fingerprints do not.
    shifted = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n---\n" + MANIFEST
    moved = check(RULES, k8s(shifted, file="deploy/manifests.yaml"), waivers=waivers())
    assert _fingerprints(moved) == first
    # Another file, another fingerprint; the key is versioned for SARIF consumers too.
    elsewhere = _fingerprints(full_report(file="other/manifests.yaml"))
    assert not set(elsewhere.values()) & set(first.values())
    result = results(formats.sarif(full_report(), tool_version="0.1.0"))[0]
    prints = result["partialFingerprints"]
    assert prints["changegate/v1"] == prints["primaryLocationLineHash"]
    assert re.fullmatch(r"[0-9a-f]{32}:1", prints["changegate/v1"])


def test_fingerprints_of_findings_on_the_same_resource_count_up() -> None:
    report = full_report()
    doubled = replace(report, findings=(report.findings[0], report.findings[0]))
    log = formats.sarif(doubled, tool_version="0.1.0")
    values = [r["partialFingerprints"]["primaryLocationLineHash"] for r in results(log)]
    assert values[0].endswith(":1")
    assert values[1].endswith(":2")
    assert values[0].split(":")[0] == values[1].split(":")[0]


def test_waived_findings_can_be_left_out() -> None:
    log = valid_sarif(formats.sarif(full_report(), tool_version="0.1.0", include_waived=False))
    assert len(results(log)) == 3
    assert all("suppressions" not in r for r in results(log))


def test_a_finding_of_an_unlisted_rule_gets_a_descriptor() -> None:
    report = full_report()
    stray = replace(report.findings[0], rule="custom.stray", remediation="")
    log = valid_sarif(formats.sarif(replace(report, findings=(stray,)), tool_version="0.1.0"))
    rules = log["runs"][0]["tool"]["driver"]["rules"]
    assert rules[-1]["id"] == "custom.stray"
    assert results(log)[0]["ruleIndex"] == len(rules) - 1


def test_over_the_result_limit_the_most_severe_failing_results_stay() -> None:
    report = full_report()
    log = valid_sarif(formats.sarif(report, tool_version="0.1.0", max_results=2))
    kept = results(log)
    assert len(kept) == 2
    assert all(r["level"] == "error" and "suppressions" not in r for r in kept)
    notes = log["runs"][0]["invocations"][0]["toolExecutionNotifications"]
    assert "2 of 4 results left out" in notes[-1]["message"]["text"]
    unlimited = formats.sarif(report, tool_version="0.1.0", max_results=None)
    assert len(results(unlimited)) == 4


def test_tags_stay_within_what_github_accepts() -> None:
    many = tuple(f"CKV_K8S_{n}" for n in range(40))

    @rule(
        "k8s.test-many",
        "Many aliases",
        Severity.ERROR,
        rationale="r",
        remediation="f",
        aliases=many,
    )
    def noisy(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
        return iter(())

    log = valid_sarif(formats.sarif(check(noisy, []), tool_version="0.1.0"))
    descriptor = log["runs"][0]["tool"]["driver"]["rules"][0]
    assert len(descriptor["properties"]["tags"]) == 20
    assert descriptor["properties"]["aliases"] == list(many)


def test_problems_of_any_shape_become_error_notifications() -> None:
    report = replace(
        check([], []),
        problems=({"message": "stdin is not UTF-8", "file": "-"}, {"odd": 1}, {"line": True}),
    )
    log = valid_sarif(formats.sarif(report, tool_version="0.1.0"))
    notes = log["runs"][0]["invocations"][0]["toolExecutionNotifications"]
    assert [n["level"] for n in notes] == ["error", "error", "error"]
    assert notes[0]["message"]["text"] == "-: stdin is not UTF-8"
    assert "locations" not in notes[0]


# -- hostile strings -----------------------------------------------------------------------

HOSTILE = "<script>alert(1)</script> ]]> &amp; \x00\x01\x08\x0b\x1b\x7f \ud800 😀 \u202e" + (
    "x" * 100_000
)


def hostile_report() -> Report:
    data = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": HOSTILE, "namespace": "tenant-<b>"},
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": HOSTILE,
                            "image": "x:latest",
                            "securityContext": {"privileged": True},
                        }
                    ]
                }
            }
        },
    }
    document = Document("deploy/<evil> ]]>.yaml", 0, 1, Format.KUBERNETES, data)
    report = check(RULES, [document], tenant=HOSTILE)
    return replace(
        report,
        notices=(HOSTILE,),
        problems=({"file": HOSTILE, "line": 2, "message": HOSTILE},),
    )


def test_hostile_strings_survive_sarif() -> None:
    report = hostile_report()
    stray = replace(report.findings[0], rule="custom.\ud800", aliases=(HOSTILE,))
    report = replace(report, findings=(*report.findings, stray))
    log = valid_sarif(formats.sarif(report, tool_version="0.1.0\x00<b>"))
    text = results(log)[0]["message"]["text"]
    assert text.startswith("container <script>alert(1)</script> ]]> &amp; \x00\x01")
    assert "\ufffd 😀" in text
    assert len(text) < 5_000
    assert "more characters" in text


def test_hostile_strings_survive_junit() -> None:
    document = formats.junit(hostile_report())
    root = ET.fromstring(document.encode("utf-8"))
    failure = root.find(".//failure")
    assert failure is not None
    message = failure.get("message", "")
    assert message.startswith("container <script>alert(1)</script> ]]> &amp; \ufffd\ufffd")
    assert "😀" in message
    assert len(message) < 1_100
    assert "\x00" not in document and "\ud800" not in document
    case = root.find(".//testcase[failure]")
    assert case is not None
    assert case.get("file") == "deploy/<evil> ]]>.yaml"


# -- JUnit ---------------------------------------------------------------------------------


def parse(document: str) -> ET.Element:
    assert document.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    return ET.fromstring(document.encode("utf-8"))


def test_junit_counts_suites_and_cases() -> None:
    root = parse(formats.junit(full_report()))
    assert root.tag == "testsuites"
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert list(suites) == ["k8s", "odoo", "changegate"]
    k8s_suite = suites["k8s"]
    cases = k8s_suite.findall("testcase")
    names = [(c.get("classname"), c.get("name")) for c in cases]
    assert names == [
        (
            "k8s.test-privileged",
            "Containers do not run privileged: Deployment tenant-acme/odoo [container odoo]",
        ),
        (
            "k8s.test-privileged",
            "Containers do not run privileged: Deployment tenant-acme/odoo [container sidecar]",
        ),
        (
            "k8s.test-privileged",
            "Containers do not run privileged: Deployment tenant-acme/worker [container worker]",
        ),
        (
            "k8s.test-latest",
            "Images name a tag other than latest: Deployment tenant-acme/odoo [container odoo]",
        ),
    ]
    assert k8s_suite.attrib["tests"] == "4"
    assert k8s_suite.attrib["failures"] == "3"
    assert k8s_suite.attrib["skipped"] == "1"
    assert k8s_suite.attrib["errors"] == "0"
    odoo = suites["odoo"].findall("testcase")
    assert [(c.get("name"), list(c)) for c in odoo] == [("Nothing is wrong", [])]
    tool = suites["changegate"]
    assert tool.attrib["errors"] == "1"
    error = tool.find("testcase/error")
    assert error is not None
    assert error.get("message") == "mapping values here"
    out = tool.findtext("system-out") or ""
    assert "promtool is not installed" in out
    assert "expired at" in out
    for key, value in (("tests", "6"), ("failures", "3"), ("errors", "1"), ("skipped", "1")):
        assert root.attrib[key] == value
    props = {p.get("name"): p.get("value") for p in k8s_suite.iter("property")}
    assert props == {"environment": "production", "tenant": "acme"}


def test_junit_failures_say_severity_where_and_how_to_fix() -> None:
    root = parse(formats.junit(full_report()))
    failure = root.find(".//testcase[@classname='k8s.test-privileged']/failure")
    assert failure is not None
    assert failure.get("type") == "error"
    assert failure.get("message") == "container odoo runs privileged"
    body = failure.text or ""
    assert "deploy/manifests.yaml:13: error: container odoo runs privileged" in body
    assert "Remediation: Remove securityContext.privileged" in body
    assert "Equivalent checks: CKV_K8S_16, KSV017" in body
    warning = root.find(".//testcase[@classname='k8s.test-latest']/failure")
    assert warning is not None
    assert warning.get("type") == "warning"
    skipped = root.find(".//testcase/skipped")
    assert skipped is not None
    assert skipped.get("message") == f"waived by {sidecar_waiver()}"
    expired = [c for c in root.iter("testcase") if "worker" in (c.get("name") or "")]
    assert "has expired" in (expired[0].findtext("failure") or "")
    case = root.find(".//testcase[failure]")
    assert case is not None
    assert case.get("file") == "deploy/manifests.yaml"


def test_junit_groups_findings_of_one_resource() -> None:
    report = full_report()
    first = next(f for f in report.findings if f.rule == "k8s.test-privileged")
    second = replace(first, message="another problem", line=20)
    waived = replace(first, message="waived one", status=FindingStatus.WAIVED, waiver="w1")
    root = parse(formats.junit(replace(report, findings=(first, second, waived))))
    cases = root.findall(".//testcase[@classname='k8s.test-privileged']")
    assert len(cases) == 1
    failure = cases[0].find("failure")
    assert failure is not None
    assert failure.get("message") == "container odoo runs privileged (and 1 more)"
    assert "(waived by w1)" in (failure.text or "")


def test_junit_of_a_clean_report() -> None:
    root = parse(formats.junit(check(never, k8s(MANIFEST))))
    assert root.attrib == {
        "name": "changegate policy",
        "tests": "1",
        "failures": "0",
        "errors": "0",
        "skipped": "0",
    }
    empty = parse(formats.junit(check([], [])))
    assert empty.attrib["tests"] == "0"
    assert list(empty) == []


def test_junit_names_stdin_and_unknown_lines_plainly() -> None:
    report = full_report(file="-")
    report = replace(report, findings=tuple(replace(f, line=None) for f in report.findings))
    root = parse(formats.junit(report))
    case = root.find(".//testcase[failure]")
    assert case is not None
    assert "file" not in case.attrib
    assert (case.findtext("failure") or "").startswith("-: error: container odoo")


def test_junit_same_resource_in_two_files_gets_two_names() -> None:
    resource = Resource("apps/v1", "Deployment", "shop", "odoo")
    base = Finding("k8s.test-privileged", Severity.ERROR, "m", resource, "a.yaml", 1, "fix", ())
    report = replace(check(privileged, []), findings=(base, replace(base, file="b.yaml")))
    root = parse(formats.junit(report))
    names = [c.get("name") for c in root.iter("testcase")]
    assert names == [
        "Containers do not run privileged: Deployment shop/odoo in a.yaml",
        "Containers do not run privileged: Deployment shop/odoo in b.yaml",
    ]


def test_outputs_are_deterministic() -> None:
    assert formats.sarif(full_report(), tool_version="1") == formats.sarif(
        full_report(), tool_version="1"
    )
    assert formats.junit(full_report()) == formats.junit(full_report())


def test_config_graded_severity_shows_on_results() -> None:
    config = PolicyConfigSpec.model_validate(
        {"rules": {"k8s.test-latest": {"severity": Severity.ERROR}}}
    )
    report = check(latest, k8s(MANIFEST), config=config)
    log = valid_sarif(formats.sarif(report, tool_version="0.1.0"))
    assert [r["level"] for r in results(log)] == ["error"]
