"""Redis rules: maxmemory-policy, persistence-disabled, no-authentication, password-in-config."""

from __future__ import annotations

from typing import Any

import pytest

from changegate.domain import catalog
from changegate.domain.policy.model import Document, Format, Severity
from changegate.domain.policy.rules import redis
from tests import catalog_builders as b
from tests.policy.helpers import check, k8s

SECRET = "Winter2026!odoo"


def make_catalog(labels: dict[str, str] | None = None, **settings: Any) -> catalog.Catalog:
    """The builders' platform, whose redis-1 has the given labels and spec.redis settings."""
    files = b.platform()
    service = b.find(files, "Service", "redis-1")
    service["spec"]["redis"].update(settings)
    if labels:
        service["metadata"]["labels"] = labels
    return catalog.build(b.documents(files), digest="sha256:" + "0" * 64, commit=None, root="r")


def conf(text: str, file: str = "redis-1.redis.conf") -> Document:
    """A redis.conf document read like the input adapter reads one, with its lines."""
    values: dict[str, str] = {}
    lines: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        for key, value in redis.parse_redis_conf(line).items():
            if key in redis.REPEATED and key in values:
                values[key] += "\n" + value
            else:
                values[key], lines[key] = value, number

    def locate(path: tuple[str | int, ...]) -> int | None:
        return lines.get(path[0]) if path and isinstance(path[0], str) else None

    return Document(file, 0, 1, Format.REDIS_CONF, values, locate)


def configmap(text: str, name: str = "redis-configuration", **metadata: Any) -> list[Document]:
    body = "".join(f"    {line}\n" for line in text.splitlines())
    extra = "".join(f"  {key}: {value}\n" for key, value in metadata.items())
    return k8s(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n"
        f"  name: {name}\n  namespace: redis\n{extra}"
        "data:\n  other.txt: hello\n  redis.conf: |\n" + body
    )


# --------------------------------------------------------------------------- parsing


def test_parse_redis_conf_reads_like_the_input_adapter() -> None:
    parsed = redis.parse_redis_conf(
        '# comment\nSave 900 1\nsave ""\nsave 60 10000\nrequirepass "a b"\n'
        "maxmemory-policy\tallkeys-lru\nuser default on nopass\nuser alice on >x\nappendonly\n"
    )
    assert parsed == {
        "save": "900 1\n\n60 10000",
        "requirepass": "a b",
        "maxmemory-policy": "allkeys-lru",
        "user": "default on nopass\nalice on >x",
        "appendonly": "",
    }


# --------------------------------------------------------------------------- maxmemory-policy


def test_unchanged_cache_policy_passes() -> None:
    report = check(
        redis.maxmemory_policy,
        [conf("maxmemory-policy allkeys-lru")],
        catalog=make_catalog(maxmemory_policy="allkeys-lru"),
    )
    assert report.findings == ()


def test_policy_change_against_the_catalog_is_a_warning() -> None:
    report = check(
        redis.maxmemory_policy,
        [conf("maxmemory 2gb\nmaxmemory-policy volatile-lru")],
        catalog=make_catalog(maxmemory_policy="allkeys-lru"),
    )
    [finding] = report.findings
    assert finding.severity is Severity.WARNING
    assert finding.line == 2
    assert "a change from allkeys-lru (catalog service redis-1)" in finding.message


def test_missing_policy_is_the_noeviction_default() -> None:
    report = check(
        redis.maxmemory_policy,
        [conf("maxmemory 2gb")],
        catalog=make_catalog(maxmemory_policy="allkeys-lru"),
    )
    assert "is not set, so Redis uses noeviction" in report.findings[0].message
    assert (
        check(redis.maxmemory_policy, [conf("maxmemory 2gb")], catalog=make_catalog()).findings
        == ()
    )


@pytest.mark.parametrize(
    "policy", ["allkeys-lru", "allkeys-random", "volatile-lru", "volatile-ttl"]
)
def test_evicting_a_session_store_is_an_error(policy: str) -> None:
    report = check(
        redis.maxmemory_policy,
        [conf(f"maxmemory-policy {policy}")],
        catalog=make_catalog({"usage": "sessions"}, maxmemory_policy=policy),
    )
    [finding] = report.findings
    assert finding.severity is Severity.ERROR
    assert "catalog service redis-1 has label usage=sessions" in finding.message
    assert "log users out" in finding.message


def test_noeviction_on_a_session_store_passes() -> None:
    report = check(
        redis.maxmemory_policy,
        [conf("maxmemory-policy noeviction")],
        catalog=make_catalog({"usage": "sessions"}),
    )
    assert report.findings == ()


def test_sessions_known_from_the_configmap() -> None:
    annotated = configmap(
        "maxmemory-policy allkeys-lfu",
        annotations="{changegate.io/usage: 'cache,sessions'}",
    )
    named = configmap("maxmemory-policy allkeys-lfu", name="odoo-sessions")
    cases = ((annotated, "annotation changegate.io/usage", 9), (named, "odoo-sessions", 8))
    for documents, why, line in cases:
        [finding] = check(redis.maxmemory_policy, documents).findings
        assert finding.severity is Severity.ERROR
        assert why in finding.message
        assert finding.line == line  # the redis.conf data key
        assert finding.resource.label() == "ConfigMap redis/" + documents[0].name


def test_evicting_without_catalog_says_it_cannot_tell() -> None:
    [finding] = check(redis.maxmemory_policy, [conf("maxmemory-policy allkeys-lru")]).findings
    assert finding.severity is Severity.WARNING
    assert "cannot tell whether it holds Odoo sessions" in finding.message
    assert check(redis.maxmemory_policy, [conf("maxmemory-policy noeviction")]).findings == ()


def test_unknown_policy_is_reported() -> None:
    [finding] = check(redis.maxmemory_policy, [conf("maxmemory-policy lru")]).findings
    assert "is not a Redis policy" in finding.message


def test_service_mapping_for_configmaps_by_name_prefix() -> None:
    documents = configmap("maxmemory-policy allkeys-lru", name="redis-1-configuration")
    report = check(
        redis.maxmemory_policy, documents, catalog=make_catalog(maxmemory_policy="allkeys-lru")
    )
    assert report.findings == ()


# --------------------------------------------------------------------------- persistence-disabled


def test_persistence_off_against_the_catalog_is_a_warning() -> None:
    report = check(
        redis.persistence_disabled, [conf('save ""\nappendonly no')], catalog=make_catalog()
    )
    [finding] = report.findings
    assert finding.severity is Severity.WARNING
    assert finding.line == 1
    assert "records rdb" in finding.message


def test_persistence_off_for_a_recorded_pure_cache_passes() -> None:
    report = check(
        redis.persistence_disabled,
        [conf('save ""\nappendonly no')],
        catalog=make_catalog(persistence="none"),
    )
    assert report.findings == ()


def test_persistence_off_for_sessions_is_an_error() -> None:
    report = check(
        redis.persistence_disabled,
        [conf('save ""')],
        catalog=make_catalog({"usage": "sessions"}, persistence="none"),
    )
    assert report.findings[0].severity is Severity.ERROR


def test_persistence_off_without_catalog_is_a_warning() -> None:
    [finding] = check(redis.persistence_disabled, [conf("save ''")]).findings
    assert "no catalog service matches" in finding.message


@pytest.mark.parametrize(
    "text",
    [
        "maxmemory 1gb",  # Redis's default snapshots
        'save ""\nappendonly yes',
        'save ""\nsave 900 1',  # snapshots turned on again
        "save 3600 1\nappendonly no",
        'save ""\nappendonly YES',
    ],
)
def test_some_persistence_passes(text: str) -> None:
    assert check(redis.persistence_disabled, [conf(text)], catalog=make_catalog()).findings == ()


# --------------------------------------------------------------------------- no-authentication


def test_no_authentication_is_an_error() -> None:
    [finding] = check(redis.no_authentication, [conf("bind 0.0.0.0\nprotected-mode no")]).findings
    assert finding.severity is Severity.ERROR
    assert finding.line == 2


@pytest.mark.parametrize(
    "text",
    [
        "protected-mode yes",
        "bind 0.0.0.0",  # protected-mode is on by default
        f"protected-mode no\nrequirepass {SECRET}",
        "protected-mode no\naclfile /etc/redis/users.acl",
        "protected-mode no\ninclude /etc/redis/secret/auth.conf",
        "protected-mode no\nuser default off",
        "protected-mode no\nuser default on #" + "a" * 64 + " ~* +@all",
        "protected-mode no\nuser default on >pw ~* +@all",
        "protected-mode no\nuser default on nopass\nuser default resetpass",
    ],
)
def test_authentication_in_any_form_passes(text: str) -> None:
    assert check(redis.no_authentication, [conf(text)]).findings == ()


@pytest.mark.parametrize(
    "text",
    [
        'protected-mode no\nrequirepass ""',
        "protected-mode NO\nuser default on nopass ~* +@all",
        "protected-mode no\nuser default on >pw nopass",
        "protected-mode no\nuser alice on >pw ~* +@all",  # the default user stays open
    ],
)
def test_open_default_user_fails(text: str) -> None:
    assert check(redis.no_authentication, [conf(text)]).findings


def test_configmap_without_authentication_is_a_warning() -> None:
    [finding] = check(redis.no_authentication, configmap("protected-mode no")).findings
    assert finding.severity is Severity.WARNING
    assert "--requirepass" in finding.message


# --------------------------------------------------------------------------- password-in-config


def test_literal_passwords_are_reported_without_revealing_them() -> None:
    document = conf(
        f'requirepass "{SECRET}"\nmasterauth {SECRET}\nuser alice on >{SECRET} ~* +@all\n'
        "user bob on #" + "b" * 64 + " ~* +@all"
    )
    report = check(redis.password_in_config, [document])
    assert [(f.line, f.severity) for f in report.findings] == [
        (1, Severity.WARNING),
        (2, Severity.WARNING),
        (3, Severity.WARNING),
    ]
    assert "ACL user alice" in report.findings[2].message
    assert all(SECRET not in f.message for f in report.findings)


@pytest.mark.parametrize(
    "text",
    [
        "requirepass ${REDIS_PASSWORD}",
        "requirepass $REDIS_PASSWORD",
        'requirepass ""',
        "include /etc/redis/secret/auth.conf",
        "user default on #" + "c" * 64,
        "user default on nopass",
    ],
)
def test_no_literal_password_passes(text: str) -> None:
    assert check(redis.password_in_config, [conf(text)]).findings == ()


def test_configmap_password_points_at_the_data_key() -> None:
    [finding] = check(redis.password_in_config, configmap(f"requirepass {SECRET}")).findings
    assert finding.message == "redis.conf: requirepass holds a literal password"
    assert finding.line == 8


# --------------------------------------------------------------------------- odd input


@pytest.mark.parametrize(
    "data",
    [
        ["not", "a", "dict"],
        {"maxmemory-policy": 5, "save": None, "user": ["x"], 3: "y"},
        "text",
    ],
)
def test_odd_conf_data_never_raises(data: Any) -> None:
    document = Document("redis-1.redis.conf", 0, 1, Format.REDIS_CONF, data)
    check(redis.RULES, [document], catalog=make_catalog())


@pytest.mark.parametrize(
    "data",
    [
        "data: [redis.conf]",
        "data: {redis.conf: 5}",
        "data: {redis.conf: null}",
        "data: {app.redis.conf: ''}",
        "data: text",
        "metadata: {name: x, labels: [usage]}\ndata: {redis.conf: 'maxmemory-policy allkeys-lru'}",
    ],
)
def test_odd_configmaps_never_raise(data: str) -> None:
    head = "apiVersion: v1\nkind: ConfigMap\n"
    if not data.startswith("metadata"):
        head += "metadata: {name: redis-1}\n"
    check(redis.RULES, k8s(head + data + "\n"), catalog=make_catalog())
