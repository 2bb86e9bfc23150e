"""Policy rules from installed plugins: real distributions found through entry points."""

from __future__ import annotations

import itertools
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from changegate.adapters import policy_plugins
from changegate.adapters.policy_plugins import load_plugin_rules
from changegate.domain.policy.rules import BUILTIN
from tests.policy.helpers import check, k8s

_numbers = itertools.count()

RULES_MODULE = '''\
from changegate.domain.policy.model import Hit, RuleInfo, Severity, rule


@rule(
    "acme.no-latest",
    "Images are not tagged latest",
    Severity.ERROR,
    rationale="latest moves.",
    remediation="Pin a version.",
)
def no_latest(changeset, context):
    for workload in changeset.workloads:
        for container in workload.containers:
            if container.image.endswith(":latest"):
                yield Hit(
                    workload.document,
                    (*container.path, "image"),
                    f"container {container.name} runs {container.image}",
                    container=container.name,
                )


@rule("acme.has-team", "Objects name their team", Severity.WARNING, rationale="", remediation="")
def has_team(changeset, context):
    for document in changeset.kubernetes():
        if "team" not in document.metadata.get("labels", {}):
            yield Hit(document, ("metadata",), "no team label")


@rule("acme.from-factory", "Made by a factory", Severity.INFO, rationale="", remediation="")
def from_factory(changeset, context):
    return iter(())


RULES = (no_latest, has_team)
single = has_team


def factory():
    return [from_factory]


def explode():
    raise RuntimeError("the plugin's factory fell over")


NUMBER = 42


class NoInfo:
    def check(self, changeset, context):
        return ()


class Plain:
    """Has the right attributes, but not a RuleInfo."""

    info = {"id": "acme.plain"}

    def check(self, changeset, context):
        return ()


def info(id, pack=None, title="A title", severity=Severity.ERROR):
    return RuleInfo(id, title, severity, "", "", pack or id.split(".")[0])


class Custom:
    def __init__(self, info, check=None):
        self.info = info
        self.check = check if check is not None else (lambda changeset, context: ())


INVALID = [
    Custom(info("Acme_Bad")),
    Custom(info("acme.bad-pack", pack="other")),
    Custom(info("custom.mine")),
    Custom(info("acme.untitled", title=" ")),
    Custom(info("acme.graded", severity="high")),
    Custom(info("acme.not-callable"), check="nope"),
    NoInfo(),
    Plain(),
    Custom(info("acme.fine")),
]


def _raise(changeset, context):
    yield from ()
    raise ValueError("the rule's check fell over")


def _wrong(changeset, context):
    yield "not a hit"


CRASHING = [Custom(info("acme.crashes"), _raise), Custom(info("acme.wrong-type"), _wrong)]
DUPLICATE = [no_latest]


def clash():
    from changegate.domain.policy.rules import BUILTIN

    return [Custom(info(BUILTIN[0].info.id))]
'''


@pytest.fixture
def install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], str]]:
    """Install a distribution with the given entry_points.txt body; returns its module."""
    created: list[str] = []

    def make(entry_points: str) -> str:
        number = next(_numbers)
        module = f"acme_policies_{number}"
        root = tmp_path / f"site{number}"
        (root / module).mkdir(parents=True)
        (root / module / "__init__.py").write_text(RULES_MODULE)
        dist = root / f"{module}-1.0.dist-info"
        dist.mkdir()
        (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 1.0\n")
        text = textwrap.dedent(entry_points).replace("MODULE", module)
        (dist / "entry_points.txt").write_text(text)
        monkeypatch.syspath_prepend(str(root))
        created.append(module)
        return module

    yield make
    for module in created:
        for name in [n for n in sys.modules if n == module or n.startswith(module + ".")]:
            del sys.modules[name]


GROUP = "changegate.policy_rules"

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: odoo, namespace: tenant-acme, labels: {app: odoo}}
spec:
  template:
    spec:
      containers:
        - {name: odoo, image: "registry.example.com/odoo:17.0"}
        - {name: sidecar, image: "docker.io/busybox:latest"}
"""


def test_no_plugin_installed_gives_nothing() -> None:
    assert load_plugin_rules("changegate.test_nothing_here") == ([], [])


def test_rules_sequences_and_factories_are_found(install: Callable[[str], str]) -> None:
    module = install(
        """\
        [changegate.policy_rules]
        acme = MODULE:RULES
        factory = MODULE:factory
        """
    )
    rules, problems = load_plugin_rules()
    assert problems == []
    assert [r.info.id for r in rules] == ["acme.no-latest", "acme.has-team", "acme.from-factory"]
    assert all(isinstance(r, policy_plugins.PluginRule) for r in rules)
    first = rules[0]
    assert isinstance(first, policy_plugins.PluginRule)
    assert first.entry_point == f"entry point acme = {module}:RULES ({module} 1.0)"
    report = check(rules, k8s(DEPLOYMENT))
    assert [(f.rule, f.message, f.resource.container, f.line) for f in report.findings] == [
        ("acme.has-team", "no team label", "", 3),
        ("acme.no-latest", "container sidecar runs docker.io/busybox:latest", "sidecar", 9),
    ]


def test_a_single_rule_entry_point(install: Callable[[str], str]) -> None:
    install(
        """\
        [changegate.policy_rules]
        one = MODULE:single
        """
    )
    rules, problems = load_plugin_rules()
    assert (problems, [r.info.id for r in rules]) == ([], ["acme.has-team"])


def test_entry_points_that_do_not_load_are_problems(install: Callable[[str], str]) -> None:
    module = install(
        """\
        [changegate.policy_rules]
        good = MODULE:RULES
        missing = MODULE.nope:RULES
        attribute = MODULE:NOTHING
        explodes = MODULE:explode
        number = MODULE:NUMBER
        """
    )
    rules, problems = load_plugin_rules()
    assert [r.info.id for r in rules] == ["acme.no-latest", "acme.has-team"]
    where = f"({module} 1.0)"
    assert problems == [
        f"entry point attribute = {module}:NOTHING {where}: could not be loaded: "
        f"AttributeError: module '{module}' has no attribute 'NOTHING'",
        f"entry point explodes = {module}:explode {where}: could not be loaded: "
        "RuntimeError: the plugin's factory fell over",
        f"entry point missing = {module}.nope:RULES {where}: could not be loaded: "
        f"ModuleNotFoundError: No module named '{module}.nope'",
        f"entry point number = {module}:NUMBER {where}: could not be loaded: TypeError: it "
        "gives int, not a rule, a sequence of rules or a callable returning them",
    ]


def test_rules_that_break_the_protocol_are_left_out(install: Callable[[str], str]) -> None:
    module = install(
        """\
        [changegate.policy_rules]
        invalid = MODULE:INVALID
        """
    )
    rules, problems = load_plugin_rules()
    assert [r.info.id for r in rules] == ["acme.fine"]  # the good one still runs
    prefix = f"entry point invalid = {module}:INVALID ({module} 1.0): left out: "
    assert [p.removeprefix(prefix) for p in problems] == [
        "rule id 'Acme_Bad' is not of the form <pack>.<name> (e.g. acme.no-latest)",
        "rule acme.bad-pack: pack 'other' is not the first part of its id",
        "rule custom.mine: the pack 'custom' is reserved for the catalog's PolicyRules",
        "rule acme.untitled has no title",
        "rule acme.graded: severity 'high' is not a Severity",
        "rule acme.not-callable: check is not callable",
        "NoInfo is not a rule (it needs `info` and `check`)",
        "its info is dict, not a RuleInfo",
    ]


def test_ids_must_be_unique_and_not_built_in(install: Callable[[str], str]) -> None:
    first = install(
        """\
        [changegate.policy_rules]
        a = MODULE:RULES
        """
    )
    second = install(
        """\
        [changegate.policy_rules]
        b = MODULE:DUPLICATE
        c = MODULE:RULES
        """
    )
    rules, problems = load_plugin_rules()
    assert [r.info.id for r in rules] == ["acme.no-latest", "acme.has-team"]
    assert problems == [
        f"entry point b = {second}:DUPLICATE ({second} 1.0): left out: rule acme.no-latest "
        f"is also given by entry point a = {first}:RULES ({first} 1.0)",
        f"entry point c = {second}:RULES ({second} 1.0): left out: rule acme.no-latest is "
        f"also given by entry point a = {first}:RULES ({first} 1.0)",
        f"entry point c = {second}:RULES ({second} 1.0): left out: rule acme.has-team is "
        f"also given by entry point a = {first}:RULES ({first} 1.0)",
    ]
    rules, problems = load_plugin_rules(reserved={"acme.has-team"})
    assert [r.info.id for r in rules] == ["acme.no-latest"]
    assert "left out: rule acme.has-team has the id of a built-in rule" in problems[0]


def test_built_in_ids_are_reserved_by_default(install: Callable[[str], str]) -> None:
    install(
        """\
        [changegate.policy_rules]
        clash = MODULE:clash
        """
    )
    rules, problems = load_plugin_rules()
    assert rules == []
    assert problems[0].endswith(
        f"left out: rule {BUILTIN[0].info.id} has the id of a built-in rule"
    )


def test_a_plugin_rule_that_fails_while_checking_fails_the_check(
    install: Callable[[str], str],
) -> None:
    install(
        """\
        [changegate.policy_rules]
        crashing = MODULE:CRASHING
        """
    )
    rules, problems = load_plugin_rules()
    assert problems == []
    report = check(rules, k8s(DEPLOYMENT))
    assert [(f.rule, f.message, f.line) for f in report.findings] == [
        (
            "acme.crashes",
            "the plugin rule acme.crashes failed, so this change set could not be checked by "
            "it: ValueError: the rule's check fell over",
            1,
        ),
        (
            "acme.wrong-type",
            "the plugin rule acme.wrong-type failed, so this change set could not be checked "
            "by it: TypeError: check yielded str, not a Hit",
            1,
        ),
    ]
    assert not report.passed
    assert any("policy plugin rule acme.crashes" in n for n in report.notices)


def test_a_failing_rule_with_nothing_to_check_stays_quiet_but_noticed(
    install: Callable[[str], str],
) -> None:
    install(
        """\
        [changegate.policy_rules]
        crashing = MODULE:CRASHING
        """
    )
    rules, _ = load_plugin_rules()
    report = check(rules, [])
    assert report.findings == ()
    assert len(report.notices) == 2
