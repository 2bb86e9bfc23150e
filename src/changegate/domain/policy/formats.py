"""A policy report as SARIF 2.1.0 (code-scanning views) and as JUnit XML (CI test reports).

Both are pure: a `Report` in, a dict or a string out; the CLI writes them. Every text in a
report may come from untrusted input (a resource name, a value quoted in a message), so both
formats clean and bound it: SARIF replaces lone surrogates, JUnit replaces what XML 1.0 cannot
hold, and long texts are cut with a note of how much was cut.

SARIF follows the OASIS schema (tests validate against it) and what GitHub code scanning reads
(docs.github.com, "SARIF support for code scanning"): `partialFingerprints.primaryLocationLineHash`
is the only fingerprint GitHub uses, at most 20 tags per rule and 25,000 results per run (over
that the upload is rejected), and a result whose location has no physical location makes GitHub
reject the whole file.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

from changegate.domain.policy.engine import Report, Waiver
from changegate.domain.policy.model import Finding, FindingStatus, RuleInfo, Severity

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
TOOL_NAME = "changegate"
INFORMATION_URI = "https://changegate.dev/"
SOURCE_ROOT = "%SRCROOT%"  # the uriBaseId of every path relative to `base`
STDIN = "-"  # the file name of documents read from standard input
# GitHub rejects a run with more results than this; the rest are dropped, loudly.
MAX_RESULTS = 25_000
MAX_TAGS = 20  # GitHub rejects a rule with more tags
MAX_TEXT = 4_000  # characters of one message, name or label kept in either format
FINGERPRINT = "changegate/v1"

LEVELS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}
# GitHub code scanning reads `security-severity` as over 9.0 critical, 7.0-8.9 high,
# 4.0-6.9 medium, 0.1-3.9 low: an error is high, a warning medium, info low.
SECURITY_SEVERITY = {Severity.ERROR: "8.0", Severity.WARNING: "5.0", Severity.INFO: "2.0"}

_SURROGATES = re.compile("[\ud800-\udfff]")
# XML 1.0 allows tab, newline, carriage return and everything from U+0020 but surrogates and
# U+FFFE/U+FFFF.
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _bounded(text: str, limit: int = MAX_TEXT) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit} more characters)"


def _json_text(value: object, limit: int = MAX_TEXT) -> str:
    """A string UTF-8 can encode (a lone surrogate from undecodable input becomes U+FFFD),
    bounded. Every string of the log that is not a constant goes through here."""
    text = value if isinstance(value, str) else str(value)
    return _SURROGATES.sub("\ufffd", _bounded(text, limit))


def _json_texts(values: Iterable[str]) -> list[str]:
    return [_json_text(value, 253) for value in values]


def _xml_text(value: object, limit: int = MAX_TEXT) -> str:
    """A string XML 1.0 can carry: forbidden characters replaced by U+FFFD, bounded."""
    text = value if isinstance(value, str) else str(value)
    return _NOT_XML.sub("\ufffd", _bounded(text, limit))


def _optional(value: str | None) -> str | None:
    return None if value is None else _json_text(value, 253)


def _line(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 1 else None


# -- SARIF ---------------------------------------------------------------------------------


def sarif(
    report: Report,
    *,
    tool_version: str,
    base: str | None = None,
    stdin_uri: str | None = None,
    include_waived: bool = True,
    max_results: int | None = MAX_RESULTS,
) -> dict[str, Any]:
    """The report as a SARIF 2.1.0 log with one run, ready for `json.dumps`.

    `base` is the directory paths are made relative to (the repository root, for GitHub);
    relative paths then carry the uriBaseId `%SRCROOT%`. Documents read from standard input
    have no file: their results locate the Kubernetes resource only, unless `stdin_uri` names
    the file the input stands for (GitHub rejects results without a file). Waived findings are
    results with an accepted external suppression; `include_waived=False` leaves them out.
    Over `max_results` results (GitHub's limit), the least severe are dropped and a
    notification says how many.
    """
    rules = list(report.rules)
    index = {info.id: position for position, info in enumerate(rules)}
    findings = [f for f in report.findings if include_waived or f.status is FindingStatus.FAILED]
    for finding in findings:
        if finding.rule not in index:  # a finding of a rule the report does not list
            index[finding.rule] = len(rules)
            rules.append(_stand_in(finding))
    kept = _keep(findings, max_results)
    dropped = len(findings) - len(kept)

    seen: Counter[str] = Counter()
    results: list[dict[str, Any]] = []
    relative = False
    for finding in kept:
        artifact = _artifact(finding.file, base, stdin_uri)
        relative = relative or (artifact is not None and "uriBaseId" in artifact)
        key = _fingerprint_key(finding, artifact)
        seen[key] += 1
        results.append(_result(finding, index[finding.rule], artifact, f"{key}:{seen[key]}"))

    notifications = _notifications(report, base, stdin_uri)
    if dropped:
        notifications.append(
            _notification(
                "warning",
                f"{dropped} of {len(findings)} results left out: GitHub code scanning rejects "
                f"a run of more than {max_results} results; the most severe failing ones are kept",
            )
        )
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": TOOL_NAME,
                "informationUri": INFORMATION_URI,
                "version": _json_text(tool_version, 100),
                "rules": [_descriptor(info) for info in rules],
            }
        },
        "invocations": [{"executionSuccessful": True, "toolExecutionNotifications": notifications}],
        "results": results,
        "properties": {
            "environment": _optional(report.environment),
            "tenant": _optional(report.tenant),
            "passed": report.passed,
            "summary": report.summary.as_dict(),
        },
    }
    if relative:
        run["originalUriBaseIds"] = {
            SOURCE_ROOT: {"description": {"text": "The directory the paths are relative to."}}
        }
    return {"$schema": SARIF_SCHEMA, "version": SARIF_VERSION, "runs": [run]}


def _stand_in(finding: Finding) -> RuleInfo:
    return RuleInfo(
        finding.rule,
        finding.rule,
        finding.severity,
        "",
        finding.remediation,
        finding.rule.split(".", 1)[0],
        finding.aliases,
    )


def _keep(findings: list[Finding], limit: int | None) -> list[Finding]:
    """At most `limit` findings, failing before waived and errors first, in report order."""
    if limit is None or len(findings) <= limit:
        return findings
    ranked = sorted(
        range(len(findings)),
        key=lambda i: (findings[i].status is not FindingStatus.FAILED, findings[i].severity.rank),
    )
    return [findings[i] for i in sorted(ranked[: max(limit, 0)])]


def _descriptor(info: RuleInfo) -> dict[str, Any]:
    rule_id = _json_text(info.id, 253)
    title = _json_text(info.title) or rule_id
    rationale = _json_text(info.rationale) or title
    remediation = _json_text(info.remediation)
    aliases = _json_texts(info.aliases)
    markdown = [f"**{title}**", "", rationale]
    if remediation:
        markdown += ["", f"**Remediation:** {remediation}"]
    if aliases:
        markdown += ["", "Equivalent checks: " + ", ".join(f"`{a}`" for a in aliases)]
    if not info.waivable:
        markdown += ["", "This rule cannot be waived."]
    tags = [_json_text(tag, 100) for tag in ("security", info.pack, *aliases)]
    return {
        "id": rule_id,
        "name": rule_id,
        "shortDescription": {"text": title},
        "fullDescription": {"text": rationale},
        "help": {"text": remediation or rationale, "markdown": "\n".join(markdown)},
        "defaultConfiguration": {"level": LEVELS[info.severity]},
        "properties": {
            "tags": list(dict.fromkeys(tags))[:MAX_TAGS],
            "security-severity": SECURITY_SEVERITY[info.severity],
            "pack": _json_text(info.pack, 253),
            "aliases": aliases,
            "waivable": info.waivable,
        },
    }


def _result(
    finding: Finding, rule_index: int, artifact: dict[str, str] | None, fingerprint: str
) -> dict[str, Any]:
    resource = finding.resource
    label = resource.label()
    text = finding.message or finding.rule
    if label:
        text = f"{text} ({label})"
    if finding.waiver_expired:
        text = f"{text}. Waiver {finding.waiver} has expired."
    location: dict[str, Any] = {}
    if artifact is not None:
        physical: dict[str, Any] = {"artifactLocation": artifact}
        line = _line(finding.line)
        if line is not None:
            physical["region"] = {"startLine": line}
        location["physicalLocation"] = physical
    logical = _logical(finding)
    if logical is not None:
        location["logicalLocations"] = [logical]
    result: dict[str, Any] = {
        "ruleId": _json_text(finding.rule, 253),
        "ruleIndex": rule_index,
        "level": LEVELS[finding.severity],
        "message": {"text": _json_text(text)},
        "locations": [location] if location else [],
        "partialFingerprints": {"primaryLocationLineHash": fingerprint, FINGERPRINT: fingerprint},
        "properties": {
            "tenant": _json_text(finding.tenant),
            "aliases": _json_texts(finding.aliases),
            "waiver": _json_text(finding.waiver),
            "waiver_expired": finding.waiver_expired,
            "resource": {k: _json_text(v) for k, v in resource.as_dict().items()},
        },
    }
    if finding.commit:
        # The file as it is at this commit (a change's GitOps range), not in the work tree.
        result["properties"]["commit"] = _json_text(finding.commit, 64)
    if finding.status is FindingStatus.WAIVED:
        result["suppressions"] = [
            {
                "kind": "external",
                "status": "accepted",
                "justification": _json_text(f"waiver {finding.waiver}"),
            }
        ]
    return result


def _logical(finding: Finding) -> dict[str, str] | None:
    resource = finding.resource
    parts = [resource.namespace, resource.kind, resource.name, resource.container]
    present = [part for part in parts if part]
    if not present:
        return None
    return {
        "name": _json_text(present[-1]),
        "fullyQualifiedName": _json_text("/".join(present)),
        "kind": "resource",
    }


def _fingerprint_key(finding: Finding, artifact: Mapping[str, str] | None) -> str:
    """What makes a finding the same one across commits: rule, file and resource, not line."""
    resource = finding.resource
    where = artifact["uri"] if artifact is not None else finding.file
    parts = [finding.rule, where, resource.kind, resource.namespace, resource.name]
    parts.append(resource.container)
    data = "\x00".join(parts).encode("utf-8", "surrogatepass")
    return hashlib.sha256(data).hexdigest()[:32]


_DRIVE = re.compile(r"^[A-Za-z]:/")


def _artifact(file: str, base: str | None, stdin_uri: str | None) -> dict[str, str] | None:
    """The artifactLocation of a file: relative to base with %SRCROOT%, or an absolute URI."""
    if file == STDIN:
        if not stdin_uri:
            return None
        file = stdin_uri
    if not file:
        return None
    path = posixpath.normpath(file.replace("\\", "/"))
    if path.startswith("//"):  # normpath keeps a leading double slash
        path = "/" + path.lstrip("/")
    if base is not None:
        root = posixpath.normpath(base.replace("\\", "/"))
        inside = _inside(path, root)
        if inside is not None:
            return {"uri": _encode(inside), "uriBaseId": SOURCE_ROOT}
    if _DRIVE.match(path):  # C:/x -> file:///C:/x, the drive's colon kept
        return {"uri": f"file:///{path[:2]}{_encode(path[2:])}"}
    if path.startswith("/"):
        return {"uri": f"file://{_encode(path)}"}
    if path == ".." or path.startswith("../"):  # outside the root: no base to resolve against
        return {"uri": _encode(path)}
    return {"uri": _encode(path), "uriBaseId": SOURCE_ROOT}


def _inside(path: str, root: str) -> str | None:
    """path relative to root when it is lexically inside it, else None."""
    if root == ".":
        outside = path.startswith(("/", "../")) or path == ".." or _DRIVE.match(path)
        return None if outside else path
    prefix = root if root.endswith("/") else root + "/"
    if path.startswith(prefix) and len(path) > len(prefix):
        return path[len(prefix) :]
    return None


def _encode(path: str) -> str:
    # Every reserved character is escaped, ":" included, so the first segment of a relative
    # reference can never read as a scheme.
    return quote(_SURROGATES.sub("\ufffd", path), safe="/")  # quote cannot encode surrogates


def _notification(level: str, text: str, location: dict[str, Any] | None = None) -> dict[str, Any]:
    notification: dict[str, Any] = {"level": level, "message": {"text": _json_text(text)}}
    if location is not None:
        notification["locations"] = [location]
    return notification


def _notifications(report: Report, base: str | None, stdin_uri: str | None) -> list[dict[str, Any]]:
    notifications = [_notification("warning", notice) for notice in report.notices]
    for problem in report.problems:
        file, line, message = _problem(problem)
        location = None
        artifact = _artifact(file, base, stdin_uri) if file else None
        if artifact is not None:
            physical: dict[str, Any] = {"artifactLocation": artifact}
            if line is not None:
                physical["region"] = {"startLine": line}
            location = {"physicalLocation": physical}
        notifications.append(_notification("error", _where(file, line, message), location))
    for text, level in _waiver_notes(report):
        notifications.append(_notification(level, text))
    return notifications


def _problem(problem: Mapping[str, Any]) -> tuple[str, int | None, str]:
    """(file, line, message) of an input problem; any field may be missing or odd."""
    file = problem.get("file") if isinstance(problem, Mapping) else None
    line = problem.get("line") if isinstance(problem, Mapping) else None
    message = problem.get("message") if isinstance(problem, Mapping) else None
    if not isinstance(message, str) or not message:
        message = str(problem)
    return (file if isinstance(file, str) else "", _line(line), message)


def _where(file: str, line: int | None, message: str) -> str:
    if not file:
        return message
    return f"{file}:{line}: {message}" if line is not None else f"{file}: {message}"


def _waiver_notes(report: Report) -> list[tuple[str, str]]:
    notes = [
        (f"waiver {w.id}{_at(w)} expired at {w.spec.expires.isoformat()}", "warning")
        for w in report.expired_waivers
    ]
    notes += [
        (f"waiver {w.id}{_at(w)} matches no finding of rule {w.spec.rule}", "note")
        for w in report.orphan_waivers
    ]
    notes += [
        (f"waiver {w.id}{_at(w)} does nothing: rule {w.spec.rule} cannot be waived", "warning")
        for w in report.refused_waivers
    ]
    return notes


def _at(waiver: Waiver) -> str:
    if not waiver.file:
        return ""
    return f" ({waiver.file}:{waiver.line})" if waiver.line else f" ({waiver.file})"


# -- JUnit XML -----------------------------------------------------------------------------


def junit(report: Report) -> str:
    """The report as JUnit XML (UTF-8) for GitLab and Jenkins test reports.

    One <testsuite> per rule pack, in the order the rules ran. A rule that found nothing is
    one passing testcase named by its title; a rule that found something is one testcase per
    resource (classname: the rule id; name: title and resource), failing with every finding
    on that resource, or skipped when waivers let all of them through. Unreadable inputs are
    <error> testcases of a `changegate` suite, whose <system-out> carries notices and waiver
    news. Warnings and info fail their testcase too (type says the severity): the exit code,
    not the test report, says whether the check blocks.
    """
    by_rule: dict[str, list[Finding]] = {}
    for finding in report.findings:
        by_rule.setdefault(finding.rule, []).append(finding)
    infos = {info.id: info for info in report.rules}
    order = [info.id for info in report.rules] + [r for r in by_rule if r not in infos]

    suites: dict[str, ET.Element] = {}
    for rule_id in order:
        info = infos.get(rule_id)
        pack = info.pack if info is not None else rule_id.split(".", 1)[0]
        suite = suites.get(pack)
        if suite is None:
            suite = suites[pack] = _suite(pack, report)
        title = info.title if info is not None and info.title else rule_id
        found = by_rule.get(rule_id)
        if not found:
            ET.SubElement(suite, "testcase", classname=_xml_text(rule_id), name=_xml_text(title))
            continue
        _rule_cases(suite, rule_id, title, info, found)

    root = ET.Element("testsuites", name="changegate policy")
    root.extend(suites.values())
    extra = _changegate_suite(report)
    if extra is not None:
        root.append(extra)
    totals = Counter[str]()
    for suite in root:
        counts = _count(suite)
        for key, value in counts.items():
            suite.set(key, str(value))
            totals[key] += value
    for key in ("tests", "failures", "errors", "skipped"):
        root.set(key, str(totals[key]))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _suite(name: str, report: Report) -> ET.Element:
    suite = ET.Element("testsuite", name=_xml_text(name))
    given = {"environment": report.environment, "tenant": report.tenant}
    if any(given.values()):
        properties = ET.SubElement(suite, "properties")
        for key, value in given.items():
            if value:
                ET.SubElement(properties, "property", name=key, value=_xml_text(value))
    return suite


def _rule_cases(
    suite: ET.Element, rule_id: str, title: str, info: RuleInfo | None, found: list[Finding]
) -> None:
    groups: dict[tuple[str, str], list[Finding]] = {}
    for finding in found:
        groups.setdefault((finding.resource.label() or finding.file, finding.file), []).append(
            finding
        )
    labels = Counter(label for label, _ in groups)
    for (label, file), members in groups.items():
        name = f"{title}: {label}" if label else title
        if labels[label] > 1 and file:
            name = f"{name} in {file}"
        case = ET.SubElement(suite, "testcase", classname=_xml_text(rule_id), name=_xml_text(name))
        if file and file != STDIN:
            case.set("file", _xml_text(file))
        failing = [f for f in members if f.status is FindingStatus.FAILED]
        body = _case_body(members, info)
        if failing:
            worst = min(failing, key=lambda f: f.severity.rank)
            message = failing[0].message or rule_id
            if len(failing) > 1:
                message = f"{message} (and {len(failing) - 1} more)"
            element = ET.SubElement(
                case, "failure", message=_xml_text(message, 1000), type=worst.severity.value
            )
        else:
            waivers = ", ".join(dict.fromkeys(f.waiver for f in members))
            element = ET.SubElement(
                case, "skipped", message=_xml_text(f"waived by {waivers}", 1000)
            )
        element.text = _xml_text(body, 20 * MAX_TEXT)


def _case_body(members: Iterable[Finding], info: RuleInfo | None) -> str:
    lines: list[str] = []
    for finding in members:
        where = finding.file or "(no file)"
        if finding.commit:
            where = f"{finding.commit[:12]}:{where}"
        if _line(finding.line) is not None:
            where = f"{where}:{finding.line}"
        line = f"{where}: {finding.severity.value}: {_bounded(finding.message)}"
        if finding.status is FindingStatus.WAIVED:
            line += f" (waived by {finding.waiver})"
        elif finding.waiver_expired:
            line += f" (waiver {finding.waiver} has expired)"
        lines.append(line)
    remediation = info.remediation if info is not None else ""
    if not remediation:
        remediation = next((f.remediation for f in members if f.remediation), "")
    if remediation:
        lines += ["", f"Remediation: {remediation}"]
    aliases = info.aliases if info is not None else ()
    if aliases:
        lines.append("Equivalent checks: " + ", ".join(aliases))
    return "\n".join(lines)


def _changegate_suite(report: Report) -> ET.Element | None:
    news = [*report.notices, *(text for text, _ in _waiver_notes(report))]
    if not report.problems and not news:
        return None
    suite = ET.Element("testsuite", name=TOOL_NAME)
    names: Counter[str] = Counter()
    for problem in report.problems:
        file, line, message = _problem(problem)
        name = f"read {file}" if file else "read input"
        names[name] += 1
        if names[name] > 1:
            name = f"{name} ({names[name]})"
        case = ET.SubElement(suite, "testcase", classname="changegate.inputs", name=_xml_text(name))
        if file and file != STDIN:
            case.set("file", _xml_text(file))
        error = ET.SubElement(case, "error", message=_xml_text(message, 1000), type="input")
        error.text = _xml_text(_where(file, line, message))
    if news:
        ET.SubElement(suite, "system-out").text = _xml_text("\n".join(news), 20 * MAX_TEXT)
    return suite


def _count(suite: ET.Element) -> dict[str, int]:
    cases = suite.findall("testcase")
    return {
        "tests": len(cases),
        "failures": sum(1 for c in cases if c.find("failure") is not None),
        "errors": sum(1 for c in cases if c.find("error") is not None),
        "skipped": sum(1 for c in cases if c.find("skipped") is not None),
    }
