"""Monitoring changes: Prometheus rule files checked by promtool, and alert labels.

Rule groups come from Prometheus rule files (Format.PROMETHEUS_RULES: `{"groups": [...]}`) and
from prometheus-operator `PrometheusRule` objects (`spec.groups`). promtool only checks rule
files on disk (`Document.path`): a PrometheusRule object's groups are not a file of their own,
and the domain writes no files, so those are said on the report as not checked by promtool.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from changegate.domain.policy.changeset import ChangeSet, CheckContext
from changegate.domain.policy.model import Document, Format, Hit, Path, Severity, rule

# Problems kept from one promtool run, and the longest message taken from it.
_MAX_PROBLEMS = 20
_MAX_MESSAGE = 500
_GROUP_RULE = re.compile(r'group "(?P<group>[^"]*)", rule (?P<rule>\d+)')
_REPEATED = re.compile(r'groupname: "(?P<group>[^"]*)" is repeated')
_LINE = re.compile(r"(?:^|\s)(?P<line>\d+):\d+:|\bline (?P<other>\d+)\b")


def _plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def _problems(output: str, file_path: str) -> list[str]:
    """promtool's error lines, continuation lines joined, the file path dropped."""
    problems: list[str] = []
    for raw in output.splitlines():
        line = raw.rstrip()
        stripped = line.strip()
        if not stripped or stripped.startswith(("Checking ", "SUCCESS", "FAILED")):
            continue
        if line[:1].isspace() and problems:
            problems[-1] += " " + stripped
            continue
        for prefix in (f"{file_path}: ", f"{file_path}:"):
            if stripped.startswith(prefix):
                stripped = stripped[len(prefix) :].strip()
                break
        problems.append(stripped)
    unique = list(dict.fromkeys(problems))
    return [p if len(p) <= _MAX_MESSAGE else p[: _MAX_MESSAGE - 1] + "…" for p in unique]


def _groups(document: Document, prefix: Path) -> list[tuple[int, dict[str, Any]]]:
    groups = document.get(*prefix)
    if not isinstance(groups, list):
        return []
    return [(index, group) for index, group in enumerate(groups) if isinstance(group, dict)]


def _path_for(document: Document, problem: str) -> Path:
    """The path of the group or rule a promtool message is about, as near as it can tell."""
    groups = _groups(document, ("groups",))
    named = _GROUP_RULE.search(problem)
    if named:
        number = int(named.group("rule"))
        for index, group in groups:
            rules = group.get("rules")
            if (
                group.get("name") == named.group("group")
                and isinstance(rules, list)
                and 1 <= number <= len(rules)
            ):
                return ("groups", index, "rules", number - 1)
    repeated = _REPEATED.search(problem)
    if repeated:
        same = [index for index, group in groups if group.get("name") == repeated.group("group")]
        if same:
            return ("groups", same[-1])
    where = _LINE.search(problem)
    if where:
        return _path_at_line(document, groups, int(where.group("line") or where.group("other")))
    return ("groups",)


def _path_at_line(document: Document, groups: list[tuple[int, dict[str, Any]]], line: int) -> Path:
    """The deepest group, rule or rule field written at or just above a line."""
    best: Path = ("groups",)
    best_line = -1
    candidates: list[Path] = []
    for index, group in groups:
        candidates.append(("groups", index))
        rules = group.get("rules")
        for number, item in enumerate(rules if isinstance(rules, list) else []):
            candidates.append(("groups", index, "rules", number))
            if isinstance(item, dict):
                candidates.extend(
                    ("groups", index, "rules", number, key) for key in item if isinstance(key, str)
                )
    for candidate in candidates:
        found = document.locate(candidate)
        if found is not None and best_line <= found <= line:
            best, best_line = candidate, found
    return best


@rule(
    "monitoring.promtool",
    "Prometheus rule files pass promtool check rules",
    Severity.ERROR,
    rationale=(
        "Prometheus refuses to load a whole rule file when one expression does not parse, so "
        "a typo in one alert silently drops every alert of the file on the next reload: "
        "nobody is paged until someone notices. `promtool check rules` parses every "
        "expression, label and template the way Prometheus will. It runs when promtool is "
        "installed; otherwise the report says plainly which files were not checked."
    ),
    remediation=(
        "Run `promtool check rules FILE` locally and fix what it reports (the finding carries "
        "its message); install promtool (Debian/Ubuntu package `prometheus`, or the release "
        "archive) where `changegate check` runs so the check is not skipped."
    ),
)
def promtool(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    files = changeset.of_format(Format.PROMETHEUS_RULES)
    not_installed = False
    unchecked = 0
    without_file = 0
    checked: set[str] = set()
    for document in files:
        if not document.path:
            without_file += 1
            continue
        if document.path in checked:
            continue
        checked.add(document.path)
        if not_installed:
            unchecked += 1
            continue
        result = context.tools.promtool_check_rules(document.path)
        if result is None:
            not_installed = True
            unchecked += 1
            continue
        passed, output = result
        if passed:
            continue
        problems = _problems(output, document.path) or ["failed without saying why"]
        for problem in problems[:_MAX_PROBLEMS]:
            yield Hit(document, _path_for(document, problem), f"promtool: {problem}")
        if len(problems) > _MAX_PROBLEMS:
            more = len(problems) - _MAX_PROBLEMS
            yield Hit(document, ("groups",), f"promtool: ... and {more} more problems")
    if unchecked:
        files_text = _plural(unchecked, "rule file was", "rule files were")
        context.notice(
            f"promtool is not installed: {files_text} not checked with promtool check rules"
        )
    if without_file:
        documents_text = _plural(without_file, "rule document", "rule documents")
        context.notice(
            f"{documents_text} not read from a file (standard input) "
            f"{'was' if without_file == 1 else 'were'} not checked with promtool check rules"
        )
    objects = len(changeset.of_kind("PrometheusRule"))
    if objects:
        objects_text = _plural(objects, "PrometheusRule object was", "PrometheusRule objects were")
        context.notice(
            f"{objects_text} not checked with promtool check rules (only rule files on disk "
            "are); their alert labels were checked"
        )


def _alerts(
    changeset: ChangeSet,
) -> Iterator[tuple[Document, Path, dict[str, Any], str, str]]:
    """(document, rule path, rule, alert name, group name) of every alerting rule."""
    sources: list[tuple[Document, Path]] = [
        (document, ("groups",)) for document in changeset.of_format(Format.PROMETHEUS_RULES)
    ]
    sources.extend(
        (document, ("spec", "groups")) for document in changeset.of_kind("PrometheusRule")
    )
    for document, prefix in sources:
        for index, group in _groups(document, prefix):
            rules = group.get("rules")
            if not isinstance(rules, list):
                continue
            group_name = group.get("name")
            shown_group = group_name if isinstance(group_name, str) else f"#{index + 1}"
            for number, item in enumerate(rules):
                if not isinstance(item, dict) or "alert" not in item:
                    continue
                alert = item.get("alert")
                name = alert if isinstance(alert, str) and alert else f"#{number + 1}"
                yield document, (*prefix, index, "rules", number), item, name, shown_group


def _has(item: dict[str, Any], section: str, key: str) -> bool:
    values = item.get(section)
    if not isinstance(values, dict):
        return False
    value = values.get(key)
    return value is not None and not (isinstance(value, str) and not value.strip())


@rule(
    "monitoring.alert-severity",
    "Alerts carry a severity label",
    Severity.ERROR,
    rationale=(
        "Alertmanager routes on labels, and `severity` is the one routes, inhibitions and "
        "silences conventionally match: an alert that loses it falls through to the default "
        "route (often nobody) or stops paging, and the loss is only noticed during the outage "
        "it should have announced."
    ),
    remediation=(
        "Give every alerting rule a severity label matching your Alertmanager routes, e.g. "
        "`labels: {severity: critical}` (or warning/info)."
    ),
)
def alert_severity(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    for document, path, item, name, group in _alerts(changeset):
        if not _has(item, "labels", "severity"):
            where = (*path, "labels") if isinstance(item.get("labels"), dict) else path
            yield Hit(document, where, f"alert {name} (group {group}) has no severity label")


@rule(
    "monitoring.alert-runbook",
    "Alerts link a runbook",
    Severity.WARNING,
    rationale=(
        "The person paged at night needs to know what the alert means and what to do; a "
        "`runbook_url` turns an alert into a procedure. It is conventionally an annotation "
        "(it does not identify the alert, so it should not be a label); either is accepted."
    ),
    remediation=(
        "Add `annotations: {runbook_url: https://runbooks.example.com/<alert>}` to the "
        "alerting rule and write the runbook: what it means, how to check, how to mitigate."
    ),
)
def alert_runbook(changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
    for document, path, item, name, group in _alerts(changeset):
        if _has(item, "annotations", "runbook_url") or _has(item, "labels", "runbook_url"):
            continue
        where = (*path, "annotations") if isinstance(item.get("annotations"), dict) else path
        yield Hit(document, where, f"alert {name} (group {group}) has no runbook_url annotation")


RULES = (promtool, alert_severity, alert_runbook)
