"""Custom rules in CEL: compiling, the helpers, matching, messages, errors, variables."""

from __future__ import annotations

import dataclasses
import logging
import re
from datetime import date, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from changegate.domain.policy import cel
from changegate.domain.policy.changeset import ChangeSet, CheckContext
from changegate.domain.policy.config import PolicyConfigSpec, PolicyRuleSpec, RuleSetting
from changegate.domain.policy.model import Document, Format, Severity
from tests.policy.helpers import check, k8s, rule_ids

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: odoo
  namespace: tenant-acme
  labels: {app.kubernetes.io/name: odoo, tier: gold}
spec:
  replicas: 1
  template:
    metadata: {labels: {app: odoo}}
    spec:
      containers:
        - name: odoo
          image: registry.example.com/odoo:17.0
          resources:
            requests: {cpu: 500m, memory: 1Gi}
            limits: {cpu: "2", memory: 2Gi}
        - name: exporter
          image: docker.io/prom/exporter:latest
---
apiVersion: v1
kind: Service
metadata: {name: odoo, namespace: tenant-acme}
spec:
  ports: [{port: 8069}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: pg, namespace: platform-db}
spec:
  replicas: 3
"""


def spec(expression: str, message: str = "the document breaks the rule", **fields: Any) -> Any:
    return PolicyRuleSpec(title="A custom rule", expression=expression, message=message, **fields)


def rule(expression: str, **fields: Any) -> cel.CelRule:
    return cel.compile_rule("custom.test", spec(expression, **fields))


def messages(report: Any) -> list[tuple[str, str, int | None]]:
    return [(f.resource.label(), f.message, f.line) for f in report.findings]


# --- compiling --------------------------------------------------------------------------


def test_a_good_expression_compiles() -> None:
    assert cel.compile_problem("object.spec.replicas >= 2") is None


def test_a_syntax_error_names_its_column() -> None:
    problem = cel.compile_problem("object.spec.replicas >=")
    assert problem is not None
    assert problem.startswith("CEL syntax error at column 24: Syntax error: mismatched input")


def test_a_syntax_error_on_a_later_line_names_line_and_column() -> None:
    problem = cel.compile_problem("object.spec.replicas >= 2 &&\n  has(1)")
    assert problem == "CEL syntax error at line 2, column 7: invalid argument to has() macro"


def test_an_expression_over_10000_characters_is_refused() -> None:
    text = "true" + " && true" * 1250
    assert len(text) > 10_000
    assert cel.compile_problem(text) == (
        f"the expression has {len(text)} characters; at most 10000 are allowed"
    )


def test_unknown_functions_and_variables_are_named() -> None:
    assert cel.compile_problem("object.metadata.name.toLower() == 'a'") == (
        "unknown function toLower: CEL's standard functions and the helpers listed in "
        "docs/policy.md are available"
    )
    assert cel.compile_problem("objet.spec.replicas > 1") == (
        "unknown variable objet: the expression can use object, environment, production, tenant"
    )
    # Names bound by macros are not unknown variables.
    assert cel.compile_problem("object.items.all(item, item.x.exists(y, y > 1))") is None


@pytest.mark.parametrize(
    "text",
    [
        "'abc'.contains('b') && 'abc'.startsWith('a') && 'abc'.endsWith('c')",
        "'abc'.matches('b') && size('abc') == 3 && 'abc'.size() == 3",
        "int('1') == 1 && uint(1) == 1u && double(1) == 1.0 && string(1) == '1'",
        "bytes('a') == b'a' && type(1) == int && dyn(1) == 1",
        "timestamp('2024-01-01T00:00:00Z').getFullYear() == 2024 && duration('1s') > "
        "duration('0s')",
        "optional.of(1).orValue(2) == 1 && optional.none().hasValue() == false",
        "[1, 2].map(x, x * 2).filter(y, y > 2).exists_one(z, z == 4)",
    ],
)
def test_the_standard_functions_are_known(text: str) -> None:
    assert cel.compile_problem(text) is None
    assert cel.evaluate(text) is True


def test_deeply_nested_macros_are_refused() -> None:
    text = "[[[[[1]]]]].all(a, a.all(b, b.all(c, c.all(d, d.all(e, e > 0)))))"
    assert cel.compile_problem(text) == (
        "comprehension macros (all, exists, exists_one, map, filter) are nested 5 deep; "
        "at most 4 are allowed"
    )
    assert cel.compile_problem("[[[[1]]]].all(a, a.all(b, b.all(c, c.all(d, d > 0))))") is None


def test_the_spec_refuses_what_does_not_compile() -> None:
    with pytest.raises(ValidationError, match="CEL syntax error at column"):
        spec("object.spec.replicas >= ")
    with pytest.raises(ValidationError, match="unknown function nope"):
        spec("true", message_expression="nope()")


def test_compile_rule_takes_the_id_pack_and_documentation() -> None:
    compiled = cel.compile_rule(
        "acme.min-replicas",
        spec(
            "object.spec.replicas >= 2",
            severity=Severity.WARNING,
            rationale="One replica is one outage.",
            remediation="Run two.",
            aliases=["ACME_1"],
            waivable=False,
        ),
    )
    info = compiled.info
    assert (info.id, info.pack, info.severity, info.aliases, info.waivable) == (
        "acme.min-replicas",
        "acme",
        Severity.WARNING,
        ("ACME_1",),
        False,
    )
    assert (info.title, info.rationale, info.remediation) == (
        "A custom rule",
        "One replica is one outage.",
        "Run two.",
    )


def test_compile_rule_refuses_an_unvalidated_broken_spec() -> None:
    broken = PolicyRuleSpec.model_construct(title="x", expression="1 +", message="m")
    with pytest.raises(ValueError, match=r"^rule custom\.x: expression: CEL syntax error"):
        cel.compile_rule("custom.x", broken)


def test_programs_are_compiled_once_per_text() -> None:
    first = cel.compile_rule("custom.a", spec("object.spec.replicas >= 3"))
    second = cel.compile_rule("custom.b", spec("object.spec.replicas >= 3"))
    assert first.expression is second.expression


# --- the helpers ------------------------------------------------------------------------

TRUE = [
    # quantities
    "quantity('500m').compareTo(quantity('0.5')) == 0",
    "quantity('1') == quantity('1000m')",
    "quantity('1e3') == quantity('1k')",
    "quantity('1E') == quantity('1e18')",
    "quantity('1Gi').isGreaterThan(quantity('1G'))",
    "quantity('100Mi').isLessThan(quantity('1Gi'))",
    "quantity('2').compareTo(quantity('3')) == -1 && quantity('3').compareTo(quantity('2')) == 1",
    "quantity('1Ki').asInteger() == 1024",
    "quantity('1.5').isInteger() == false && quantity('2k').isInteger()",
    "quantity('100m').asApproximateFloat() == 0.1",
    "quantity('-1').sign() == -1 && quantity('0').sign() == 0 && quantity('5n').sign() == 1",
    "quantity('1').add(quantity('500m')) == quantity('1500m')",
    "quantity('1').add(2) == quantity('3')",
    "quantity('2').sub(quantity('500m')).compareTo(quantity('1.5')) == 0",
    "quantity('2').sub(1) == quantity('1')",
    "isQuantity('1e3') && isQuantity('+.5Ki') && !isQuantity('1.2.3') && !isQuantity('5 m')",
    "object.spec.template.spec.containers.all(c, !has(c.resources) || "
    "quantity(c.resources.limits.memory).isGreaterThan(quantity(c.resources.requests.memory)))",
    # lists
    "[1, 2, 2, 3].isSorted() && ![3, 1].isSorted() && ['a', 'b'].isSorted() && [].isSorted()",
    "[1, 2.5].sum() == 3.5 && [].sum() == 0 && [1, 2, 3].sum() == 6",
    "[duration('1s'), duration('2s')].sum() == duration('3s')",
    "[3, 1, 2].min() == 1 && [3, 1, 2].max() == 3 && ['b', 'a'].min() == 'a'",
    "[1, 2, 1].indexOf(1) == 0 && [1, 2, 1].lastIndexOf(1) == 2 && [1, 2].indexOf(3) == -1",
    "[true, 1].indexOf(1) == 1 && [[1], [2]].indexOf([2]) == 1",
    # strings
    "'hello'.indexOf('l') == 2 && 'hello'.indexOf('l', 3) == 3 && 'hello'.indexOf('z') == -1",
    "'hello'.lastIndexOf('l') == 3 && 'hello'.lastIndexOf('l', 2) == 2",
    "'héllo'.indexOf('l') == 2 && 'hello'.indexOf('') == 0 && 'hello'.lastIndexOf('') == 5",
    "'AbC'.lowerAscii() == 'abc' && 'ÀbC'.lowerAscii() == 'Àbc' && 'abç'.upperAscii() == 'ABç'",
    "'a,b,c'.split(',') == ['a', 'b', 'c'] && 'a,b,c'.split(',', 2) == ['a', 'b,c']",
    "'a,b'.split(',', 0) == [] && 'abc'.split('') == ['a', 'b', 'c']",
    "['a', 'b'].join() == 'ab' && ['a', 'b'].join('-') == 'a-b' && [].join(',') == ''",
    "'  a b \\n'.trim() == 'a b'",
    "'aaa'.replace('a', 'b') == 'bbb' && 'aaa'.replace('a', 'b', 2) == 'bba'",
    "'abc'.charAt(1) == 'b' && 'abc'.charAt(3) == ''",
    "'abc'.substring(1) == 'bc' && 'abc'.substring(1, 2) == 'b'",
    "object.metadata.name.upperAscii().lowerAscii() == object.metadata.name",
    # URLs
    "url('https://example.com:8443/a%20b?x=1&x=2&y=').getScheme() == 'https'",
    "url('https://example.com:8443/a%20b').getHost() == 'example.com:8443'",
    "url('https://example.com:8443/').getHostname() == 'example.com'",
    "url('https://example.com:8443/').getPort() == '8443' && url('http://a/').getPort() == ''",
    "url('https://example.com/a%20b').getEscapedPath() == '/a%20b'",
    "url('https://a/?x=1&x=2&y=').getQuery() == {'x': ['1', '2'], 'y': ['']}",
    "url('https://[::1]:80/').getHostname() == '::1' && url('https://[::1]:80/').getPort() == '80'",
    "isURL('/healthz') && isURL('https://a.example') && !isURL('relative/path')",
    "!isURL('https://a b') && !isURL('https://a/#frag') && !isURL('')",
    # timestamps in a timezone
    "timestamp('2024-01-01T10:00:00Z').getHours('Europe/Paris') == 11",
    "timestamp('2024-01-01T10:00:00Z').getHours('+05:30') == 15",
    "timestamp('2024-01-01T10:00:00Z').getMinutes('+05:30') == 30",
    "timestamp('2024-01-01T03:00:00Z').getFullYear('America/New_York') == 2023",
    "timestamp('2024-01-01T10:00:00Z').getDayOfWeek('UTC') == 1",
    "timestamp('2024-03-01T10:00:00Z').getMonth('UTC') == 2",
    "timestamp('2024-03-01T10:00:00Z').getDate('UTC') == 1",
    "timestamp('2024-03-01T10:00:00Z').getDayOfMonth('UTC') == 0",
    "timestamp('2024-03-01T10:00:00Z').getDayOfYear('UTC') == 60",
    "timestamp('2024-03-01T10:00:07.250Z').getSeconds('UTC') == 7",
    "timestamp('2024-03-01T10:00:07.250Z').getMilliseconds('-01:00') == 250",
    "timestamp('2024-01-01T10:00:00Z').getHours() == 10",  # the library's own, no timezone
]


@pytest.mark.parametrize("text", TRUE)
def test_helper(text: str) -> None:
    document = k8s(DEPLOYMENT)[0]
    assert cel.compile_problem(text) is None
    assert cel.evaluate(text, {"object": document.data}) is True


ERRORS = [
    ("quantity('abc')", "quantity(): not a Kubernetes quantity: 'abc'"),
    ("quantity(5)", "quantity(): quantity takes a string, not int"),
    ("quantity('0.5').asInteger()", "asInteger(): quantity 0.5 is not an integer"),
    ("quantity('1e100').asInteger()", "asInteger(): quantity 1E+100 is not an integer"),
    ("quantity('1e101')", "quantity(): not a Kubernetes quantity"),
    ("isQuantity(1)", "isQuantity(): isQuantity takes a string, not int"),
    ("quantity('1').compareTo('1')", "compareTo(): compareTo takes a quantity"),
    ("[].min()", "min(): min of an empty list"),
    ("[1, 'a'].max()", "max(): max needs elements of one comparable type, found int, string"),
    ("['a'].sum()", "sum(): sum needs numbers or durations, not string"),
    ("[{'a': 1}].isSorted()", "isSorted(): isSorted needs elements of one comparable type"),
    ("'hello'.indexOf('l', 9)", "indexOf(): indexOf offset 9 out of range"),
    ("'hello'.lastIndexOf('l', -1)", "lastIndexOf(): lastIndexOf offset -1 out of range"),
    ("'abc'.charAt(4)", "charAt(): charAt index 4 out of range"),
    ("'abc'.substring(2, 1)", "substring(): substring(2, 1) out of range"),
    ("[1].join()", "join(): join applies to a list of strings"),
    ("1.trim()", "trim(): trim applies to a string, not int"),
    ("url('relative')", "url(): not an absolute URL or absolute path: 'relative'"),
    ("'x'.getScheme()", "getScheme(): getScheme takes a URL"),
    ("timestamp('2024-01-01T10:00:00Z').getHours('Mars/Base')", "unknown timezone 'Mars/Base'"),
    ("duration('1s').getHours('UTC')", "applies to a timestamp, not duration"),
    (
        "'a'" + ".replace('a', 'aaaaaaaaaa')" * 7,
        "replace(): replace would build a string over 1000000 characters",
    ),
]


@pytest.mark.parametrize(("text", "reason"), ERRORS)
def test_helper_errors(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=re.escape(reason)):
        cel.evaluate(text)


def test_a_failing_helper_does_not_fill_the_log(caplog: pytest.LogCaptureFixture) -> None:
    with (
        caplog.at_level(logging.DEBUG),
        pytest.raises(ValueError, match="not a Kubernetes quantity"),
    ):
        cel.evaluate("quantity('abc')")
    assert not [r for r in caplog.records if r.name.startswith("cel")]


def test_the_library_semantics_the_docs_describe() -> None:
    assert cel.evaluate("has(object.a)", {"object": {}}) is False
    assert cel.evaluate("1 == 1.0 && 1 < 2.5 && 2u > 1") is True
    with pytest.raises(ValueError, match="No such overload"):
        cel.evaluate("1 + 1u")
    assert cel.evaluate("(1/0 > 0) || true") is True
    assert cel.evaluate("'abc'.matches('^a.c$') && !'abc'.matches('^b')") is True
    assert cel.evaluate("environment == '' && !production && tenant == ''") is True


# --- matching ---------------------------------------------------------------------------


def test_default_match_is_every_kubernetes_object() -> None:
    report = check(rule("object.metadata.name != 'odoo'"), k8s(DEPLOYMENT))
    assert [f.resource.label() for f in report.findings] == [
        "Deployment tenant-acme/odoo",
        "Service tenant-acme/odoo",
    ]


def test_match_by_kind_api_version_and_namespace() -> None:
    documents = k8s(DEPLOYMENT)

    def labels(**match: Any) -> list[str]:
        found = check(rule("false", match=match), documents).findings
        return [f.resource.label() for f in found]

    assert labels(kinds=["Deployment", "StatefulSet"]) == [
        "Deployment tenant-acme/odoo",
        "StatefulSet platform-db/pg",
    ]
    assert labels(kinds=["*Set"]) == ["StatefulSet platform-db/pg"]
    assert labels(api_versions=["v1"]) == ["Service tenant-acme/odoo"]
    assert labels(api_versions=["apps/*"], namespaces=["tenant-*"]) == [
        "Deployment tenant-acme/odoo"
    ]
    assert labels(namespaces=["platform-db"], kinds=["Deployment"]) == []


def test_match_by_format() -> None:
    dockerfile = Document(
        "Dockerfile",
        0,
        1,
        Format.DOCKERFILE,
        {"instructions": [{"instruction": "FROM", "value": "python:3.11", "line": 1}]},
    )
    documents = [*k8s(DEPLOYMENT), dockerfile]
    report = check(
        rule(
            "object.instructions.exists(i, i.instruction == 'USER')",
            match={"formats": [Format.DOCKERFILE]},
            message="the image runs as root",
        ),
        documents,
    )
    assert messages(report) == [("dockerfile Dockerfile", "the image runs as root", 1)]


# --- messages ---------------------------------------------------------------------------


def test_a_finding_has_the_message_and_the_document_line() -> None:
    report = check(
        rule("object.spec.replicas >= 2", match={"kinds": ["Deployment"]}, message="one replica"),
        k8s(DEPLOYMENT),
    )
    assert rule_ids(report) == ["custom.test"]
    assert messages(report) == [("Deployment tenant-acme/odoo", "one replica", 1)]


def test_message_expression_overrides_message() -> None:
    report = check(
        rule(
            "object.spec.replicas >= 2",
            match={"kinds": ["Deployment"]},
            message_expression=(
                "'runs ' + string(object.spec.replicas) + ' replica(s) of ' + "
                "object.spec.template.spec.containers.map(c, c.name).join(', ')"
            ),
        ),
        k8s(DEPLOYMENT),
    )
    assert [f.message for f in report.findings] == ["runs 1 replica(s) of odoo, exporter"]


@pytest.mark.parametrize(
    "message_expression",
    [
        "object.nothing.here",  # an error
        "42",  # not a string
        "'   '",  # blank
        "'two\\nlines'",  # a line break
    ],
)
def test_message_expression_falls_back_to_message(message_expression: str) -> None:
    report = check(
        rule(
            "false",
            match={"kinds": ["Service"]},
            message="the fallback",
            message_expression=message_expression,
        ),
        k8s(DEPLOYMENT),
    )
    assert [f.message for f in report.findings] == ["the fallback"]


def test_a_long_message_expression_is_cut() -> None:
    long_text = "x" * 1500
    found = check(
        rule("false", match={"kinds": ["Service"]}, message_expression=f"'{long_text}'"),
        k8s(DEPLOYMENT),
    ).findings
    assert len(found[0].message) == 1000
    assert found[0].message.endswith("…")


# --- evaluation errors ------------------------------------------------------------------


def test_an_evaluation_error_is_a_finding_saying_why() -> None:
    report = check(rule("object.spec.replicas >= 2"), k8s(DEPLOYMENT))
    by_kind = {f.resource.kind: f.message for f in report.findings}
    assert by_kind == {
        "Deployment": "the document breaks the rule",
        "Service": (
            "the rule's expression could not be evaluated: no such key: 'replicas' "
            "(guard optional fields with has())"
        ),
    }


def test_a_function_error_names_the_function() -> None:
    report = check(
        rule(
            "object.spec.template.spec.containers.all(c, "
            "quantity(c.resources.limits.cpu).isLessThan(quantity('4')))",
            match={"kinds": ["Deployment"]},
        ),
        k8s(DEPLOYMENT.replace('cpu: "2"', "cpu: two")),
    )
    assert [f.message for f in report.findings] == [
        "the rule's expression could not be evaluated: quantity(): not a Kubernetes quantity: 'two'"
    ]


def test_a_result_that_is_not_a_bool_is_a_finding() -> None:
    report = check(rule("object.spec.replicas", match={"kinds": ["Deployment"]}), k8s(DEPLOYMENT))
    assert [f.message for f in report.findings] == [
        "the rule's expression gave int '1', not a bool"
    ]


def test_odd_data_is_evaluated_as_json_would_carry_it() -> None:
    odd = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "odd"},
        "data": {"when": date(2026, 1, 2), 1: "one", None: "null", "tags": {"b", "a"}},
    }
    document = Document("odd.yaml", 0, 1, Format.KUBERNETES, odd)
    passing = rule(
        "object.data.when == '2026-01-02' && object.data['1'] == 'one' && "
        "object.data['null'] == 'null' && size(object.data.tags) == 2"
    )
    assert check(passing, [document]).findings == ()
    whole = rule("size(object) == 4 && object.data.when == '2026-01-02'")
    assert whole.trie is None
    assert check(whole, [document]).findings == ()


@pytest.mark.parametrize("data", [None, "text", [1, 2], 42])
def test_a_document_that_is_not_a_mapping(data: Any) -> None:
    document = Document("x.json", 0, 1, Format.KUBERNETES, data)
    report = check(rule("has(object.spec)"), [document])
    assert len(report.findings) == 1  # an error (not a map) or false: never a crash


# --- variables --------------------------------------------------------------------------


def test_environment_production_and_tenant_variables() -> None:
    expression = "!(production && environment == 'prod' && tenant == 'acme')"
    documents = k8s(DEPLOYMENT)
    production = check(
        rule(expression, match={"kinds": ["Deployment"]}),
        documents,
        environment="prod",
        production=True,
        tenant_namespaces={"tenant-acme": "acme"},
    )
    assert len(production.findings) == 1
    assert production.findings[0].tenant == "acme"
    staging = check(
        rule(expression, match={"kinds": ["Deployment"]}),
        documents,
        environment="staging",
        production=False,
        tenant="acme",
    )
    assert staging.findings == ()
    # The check's --tenant is the tenant of namespaces the catalog does not map.
    named = check(
        rule("tenant == 'acme'", match={"kinds": ["StatefulSet"]}), documents, tenant="acme"
    )
    assert named.findings == ()


def test_a_variable_only_rule_needs_nothing_from_the_document() -> None:
    compiled = rule("!production || environment != ''")
    assert compiled.trie == {}
    assert check(compiled, k8s(DEPLOYMENT), production=True).findings != ()


# --- reading only what the expression reads ---------------------------------------------

EACH = cel.EACH


@pytest.mark.parametrize(
    ("expression", "trie"),
    [
        ("object.spec.replicas >= 2", {"spec": {"replicas": None}}),
        ("object.metadata.labels['tier'] == 'gold'", {"metadata": {"labels": {"tier": None}}}),
        ("'tier' in object.metadata.labels", {"metadata": {"labels": None}}),
        (
            "object.spec.template.spec.containers.all(c, c.image.startsWith('r/'))",
            {"spec": {"template": {"spec": {"containers": {EACH: {"image": None}}}}}},
        ),
        (
            "object.spec.containers.all(c, c.env.all(e, has(e.valueFrom)))",
            {"spec": {"containers": {EACH: {"env": {EACH: {"valueFrom": None}}}}}},
        ),
        ("object.spec.containers.all(c, true)", {"spec": {"containers": {EACH: {}}}}),
        # filter hands out its elements: keep them whole.
        (
            "object.spec.containers.filter(c, c.name == 'a').all(d, d.image != '')",
            {"spec": {"containers": None}},
        ),
        # a bound name used whole keeps its element whole.
        ("object.spec.containers.exists(c, c == {})", {"spec": {"containers": {EACH: None}}}),
        ("object.spec.x.all(c, true) && size(object.spec.x) > 0", {"spec": {"x": None}}),
        ("size(object) > 0", None),
        ("object.spec.x.all(object, object > 0)", None),
        ("object.spec.a.b > 1 && has(object.spec.a)", {"spec": {"a": None}}),
        ("[1].all(x, x > 0) && object.spec.x.y", {"spec": {"x": {"y": None}}}),
        ("'object.spec' != '' && object.kind == 'A' // object.nope", {"kind": None}),
    ],
)
def test_what_a_rule_reads(expression: str, trie: Any) -> None:
    assert rule(expression).trie == trie


def test_message_expression_reads_are_kept_too() -> None:
    compiled = rule("object.spec.replicas > 1", message_expression="object.metadata.name")
    assert compiled.trie == {"spec": {"replicas": None}, "metadata": {"name": None}}


def deployment(index: int) -> dict[str, Any]:
    """A generated Deployment; some break one expression or another, some have odd types."""
    containers: list[Any] = [
        {
            "name": name,
            "image": f"registry.example.com/{name}:1.{index % 5}"
            if (index + i) % 6
            else f"docker.io/{name}:latest",
            "env": [{"name": "DB_PASSWORD", "value": "x"}]
            if index % 7 == 0
            else [{"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db"}}}],
            **({"resources": {"limits": {"cpu": "1", "memory": "1Gi"}}} if (index + i) % 4 else {}),
        }
        for i, name in enumerate(("odoo", "nginx"))
    ]
    if index % 29 == 0:
        containers.append("not-a-container")
    spec: dict[str, Any] = {
        "replicas": 1 + index % 3 if index % 31 else "two",
        "template": {"spec": {"containers": containers}},
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": f"odoo-{index}",
            "namespace": f"tenant-{index % 13}",
            "labels": {"tier": ("gold", "silver", "free")[index % 3]},
        },
        "spec": spec if index % 37 else {},
    }


EXPRESSIONS = [
    "object.spec.replicas >= 2",
    "object.spec.template.spec.containers.all(c, has(c.resources) && has(c.resources.limits))",
    "object.spec.template.spec.containers.all(c, c.image.startsWith('registry.example.com/'))",
    "object.spec.template.spec.containers.all(c, c.env.all(e, "
    "!e.name.matches('PASSWORD') || has(e.valueFrom)))",
    "object.metadata.labels['tier'] in ['gold', 'silver']",
    "object.spec.template.spec.containers.exists_one(c, c.name == 'odoo')",
    "object.spec.template.spec.containers.map(c, c.name).join(',') == 'odoo,nginx'",
    "object.spec.template.spec.containers.filter(c, c.name == 'odoo').all(c, has(c.env))",
    "object.spec.template.spec.containers.all(c, !has(c.resources) || "
    "quantity(c.resources.limits.cpu).compareTo(quantity('2')) < 0)",
]


def outcomes(compiled: cel.CelRule, documents: list[Document]) -> list[Any]:
    context = CheckContext(config=PolicyConfigSpec())
    found = {h.document.index: h.message for h in compiled.check(ChangeSet(documents), context)}
    return [found.get(d.index) for d in documents]


@pytest.mark.parametrize("expression", EXPRESSIONS)
def test_reading_only_what_is_needed_changes_no_answer(expression: str) -> None:
    documents = [Document("gen.yaml", i, 1, Format.KUBERNETES, deployment(i)) for i in range(120)]
    compiled = rule(expression)
    assert compiled.trie is not None
    unpruned = dataclasses.replace(compiled, trie=None)
    assert outcomes(compiled, documents) == outcomes(unpruned, documents)


def test_a_rule_over_2000_documents() -> None:
    documents = [Document("gen.yaml", i, 1, Format.KUBERNETES, deployment(i)) for i in range(2000)]
    compiled = rule(
        "object.spec.template.spec.containers.all(c, c.image.startsWith('registry.example.com/'))",
        message="an image from outside the registry",
    )
    report = check(compiled, documents)
    expected = sum(
        1
        for i in range(2000)
        if i % 37 == 0 or i % 29 == 0 or any((i + c) % 6 == 0 for c in range(2))
    )
    assert len(report.findings) == expected
    assert report.summary.documents == 2000


# --- the time budget --------------------------------------------------------------------


def test_a_rule_over_its_budget_stops_and_fails() -> None:
    documents = k8s(DEPLOYMENT)
    compiled = cel.compile_rule("custom.slow", spec("true"), budget_seconds=-1.0)
    report = check(compiled, documents)
    assert [(f.resource.label(), f.message) for f in report.findings] == [
        (
            "Service tenant-acme/odoo",
            "the rule stopped after -1 s: its expression is too costly; 2 of 3 documents "
            "were not checked",
        )
    ]


def test_waivers_and_settings_apply_to_custom_rules() -> None:
    config = PolicyConfigSpec(rules={"custom.test": RuleSetting(severity=Severity.WARNING)})
    report = check(rule("false", match={"kinds": ["Service"]}), k8s(DEPLOYMENT), config=config)
    assert [f.severity for f in report.findings] == [Severity.WARNING]
    assert report.passed


def test_durations_and_timestamps_in_data() -> None:
    assert cel.evaluate(
        "object.d + duration('1s') == duration('2s')", {"object": {"d": timedelta(seconds=1)}}
    )
