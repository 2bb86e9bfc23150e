"""Policy rules from installed Python packages, found through entry points.

A package adds rules to changegate by declaring entry points in the group
`changegate.policy_rules` (pyproject.toml):

    [project.entry-points."changegate.policy_rules"]
    acme = "acme_policies.rules:RULES"

Each entry point loads to a rule (an object with `info: RuleInfo` and
`check(changeset, context)`, such as what the `rule` decorator of
`changegate.domain.policy.model` makes), a sequence of rules, or a callable taking no
argument that returns either. Every rule is checked before it is used: its `info` is a
RuleInfo whose id is `<pack>.<name>` (lower-case, RULE_ID_PATTERN) with `pack` its first
part, its title is not empty and `check` is callable; ids are unique across plugins and
clash with no built-in rule, and the `custom` pack is the catalog's PolicyRule entities'.

Nothing a plugin does stops changegate: an entry point that does not load, loads to
something else or gives a rule that fails the checks above becomes a problem naming the
entry point (the check shows it as a notice) and that rule, or the whole entry point when
it does not load, is left out; the entry point's other rules still run. A plugin rule that
raises while checking, or yields something other than a Hit, fails the check: its hits so
far stay, a notice says what went wrong, and a finding on the change set's first document
says the rule failed, so a broken rule blocks rather than passes silently.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING, Any

from changegate.domain.policy.config import RULE_ID_PATTERN
from changegate.domain.policy.model import Hit, Rule, RuleInfo, Severity

if TYPE_CHECKING:
    from changegate.domain.policy.changeset import ChangeSet, CheckContext

GROUP = "changegate.policy_rules"
RESERVED_PACKS = frozenset({"custom"})
_RULE_ID = re.compile(RULE_ID_PATTERN)


def _label(entry: EntryPoint) -> str:
    dist = getattr(entry, "dist", None)
    where = f" ({dist.name} {dist.version})" if dist is not None else ""
    return f"entry point {entry.name} = {entry.value}{where}"


def _error(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text[:300]}" if text else type(error).__name__


@dataclass(frozen=True, slots=True)
class PluginRule:
    """A plugin's rule with its checked info, guarded so that its failures are findings."""

    info: RuleInfo
    rule: Rule = field(repr=False)
    entry_point: str = ""

    def check(self, changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
        try:
            for hit in self.rule.check(changeset, context):
                if not isinstance(hit, Hit):
                    raise TypeError(f"check yielded {type(hit).__name__}, not a Hit")
                yield hit
        except Exception as error:
            reason = _error(error)
            context.notice(
                f"policy plugin rule {self.info.id} ({self.entry_point}) failed: {reason}"
            )
            if changeset.documents:
                yield Hit(
                    changeset.documents[0],
                    (),
                    f"the plugin rule {self.info.id} failed, so this change set could not "
                    f"be checked by it: {reason}",
                )


def _is_rule(value: Any) -> bool:
    return hasattr(value, "info") and hasattr(value, "check")


def _candidates(loaded: Any) -> list[Any]:
    """What an entry point's object holds: rules, or things that should be rules."""
    if _is_rule(loaded):
        return [loaded]
    if isinstance(loaded, Sequence) and not isinstance(loaded, str | bytes):
        return list(loaded)
    if isinstance(loaded, Iterable) and not isinstance(loaded, str | bytes | dict):
        return list(loaded)
    raise TypeError(
        f"it gives {type(loaded).__name__}, not a rule, a sequence of rules or a callable "
        "returning them"
    )


def _problem_with(candidate: Any) -> str | None:
    """Why an object is not a usable rule, or None."""
    if not _is_rule(candidate):
        return f"{type(candidate).__name__} is not a rule (it needs `info` and `check`)"
    try:
        info = candidate.info
    except Exception as error:
        return f"reading its info raised {_error(error)}"
    if not isinstance(info, RuleInfo):
        return f"its info is {type(info).__name__}, not a RuleInfo"
    name = info.id if isinstance(info.id, str) else repr(info.id)
    if not isinstance(info.id, str) or len(info.id) > 100 or not _RULE_ID.fullmatch(info.id):
        return f"rule id {name[:100]!r} is not of the form <pack>.<name> (e.g. acme.no-latest)"
    if info.pack != info.id.split(".", 1)[0]:
        return f"rule {name}: pack {info.pack!r} is not the first part of its id"
    if info.pack in RESERVED_PACKS:
        return f"rule {name}: the pack {info.pack!r} is reserved for the catalog's PolicyRules"
    if not isinstance(info.title, str) or not info.title.strip():
        return f"rule {name} has no title"
    if not isinstance(info.severity, Severity):
        return f"rule {name}: severity {info.severity!r} is not a Severity"
    if not callable(getattr(candidate, "check", None)):
        return f"rule {name}: check is not callable"
    return None


def _builtin_ids() -> frozenset[str]:
    from changegate.domain.policy.rules import BUILTIN

    return frozenset(each.info.id for each in BUILTIN)


def load_plugin_rules(
    group: str = GROUP,
    *,
    reserved: Collection[str] | None = None,
    found: Callable[[str], Iterable[EntryPoint]] | None = None,
) -> tuple[list[Rule], list[str]]:
    """The rules of every installed plugin, and the problems of the plugins that failed.

    `reserved` are ids no plugin may take (the built-in rules' by default); `found` lists
    a group's entry points (importlib.metadata's by default).
    """
    taken: dict[str, str] = {}
    reserved_ids = _builtin_ids() if reserved is None else frozenset(reserved)
    listed = found(group) if found is not None else entry_points(group=group)
    rules: list[Rule] = []
    problems: list[str] = []
    for entry in sorted(listed, key=lambda e: (e.name, e.value)):
        label = _label(entry)
        try:
            loaded = entry.load()
            if callable(loaded) and not _is_rule(loaded):
                loaded = loaded()
            candidates = _candidates(loaded)
        except Exception as error:
            problems.append(f"{label}: could not be loaded: {_error(error)}")
            continue
        accepted: list[PluginRule] = []
        refused: list[str] = []
        for candidate in candidates:
            problem = _problem_with(candidate)
            if problem is None:
                rule_id = candidate.info.id
                if rule_id in reserved_ids:
                    problem = f"rule {rule_id} has the id of a built-in rule"
                elif rule_id in taken:
                    problem = f"rule {rule_id} is also given by {taken[rule_id]}"
                elif any(r.info.id == rule_id for r in accepted):
                    problem = f"rule {rule_id} is given twice"
            if problem is not None:
                refused.append(problem)
                continue
            accepted.append(PluginRule(candidate.info, candidate, label))
        # The plugin's good rules still run: a gate missing one broken rule (said in a
        # notice on every report) is better than one missing the whole pack.
        problems.extend(f"{label}: left out: {problem}" for problem in refused)
        if not accepted and not refused:
            problems.append(f"{label}: gives no rule")
        for each in accepted:
            taken[each.info.id] = label
        rules.extend(accepted)
    return rules, problems
