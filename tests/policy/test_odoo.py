"""Odoo rules: list-db, admin-passwd, proxy-mode, dbfilter, workers, db-superuser."""

from __future__ import annotations

from typing import Any

import pytest

from changegate.domain.policy.model import Document, Format, Severity
from changegate.domain.policy.rules import odoo
from tests.policy.helpers import check, k8s, rule_ids

HASH = (
    "$pbkdf2-sha512$600000$4CDQnvNgcQZPLBrCFRaJzA$J7efyW8mR/YPs0Ft9yZxKZmg1G95Kl4FZM87"
    ".duKv97PJXEALS0hO8YULccJaR1UTV5UfxtAehnFPgATouoEWg"
)
GOOD = {
    "admin_passwd": HASH,
    "db_user": "acme",
    "db_name": "acme",
    "list_db": "False",
    "proxy_mode": "True",
    "workers": "4",
}


def conf(changes: dict[str, str | None] | None = None, file: str = "odoo.conf") -> Document:
    """A good odoo.conf with options changed (None removes one); option n is on line n + 1,
    after the [options] header."""
    values: dict[str, Any] = dict(GOOD)
    for key, value in (changes or {}).items():
        if value is None:
            values.pop(key, None)
        else:
            values[key] = value
    lines = {name: number for number, name in enumerate(values, start=2)}

    def locate(path: tuple[str | int, ...]) -> int | None:
        return lines.get(path[0]) if path and isinstance(path[0], str) else None

    return Document(file, 0, 1, Format.ODOO_CONF, values, locate)


def findings(rule: Any, changes: dict[str, str | None], *, production: bool = True) -> list[Any]:
    return list(check(rule, [conf(changes)], production=production).findings)


def test_a_good_configuration_passes_every_rule() -> None:
    assert rule_ids(check(odoo.RULES, [conf()], production=True)) == []


# --------------------------------------------------------------------------- booleans


@pytest.mark.parametrize(
    ("value", "legacy", "modern", "agreed"),
    [
        ("True", True, True, True),
        ("true", True, True, True),
        ("False", False, False, False),
        ("false", False, False, False),
        ("1", True, True, True),  # a non-empty text up to 18.0, a boolean from 19.0
        ("yes", True, True, True),
        ("On", True, True, True),
        ("TRUE", True, True, True),
        ("0", True, False, None),  # true up to 18.0!
        ("no", True, False, None),
        ("off", True, False, None),
        ("FALSE", True, False, None),
        ("None", True, False, None),
        ("", False, None, None),
        ("maybe", True, None, None),
    ],
)
def test_odoo_bool_follows_every_series(
    value: str, legacy: bool, modern: bool | None, agreed: bool | None
) -> None:
    reading = odoo.odoo_bool(value)
    assert (reading.legacy, reading.modern, reading.agreed) == (legacy, modern, agreed)


def test_parse_odoo_conf_reads_only_the_options_section() -> None:
    parsed = odoo.parse_odoo_conf(
        "; comment\n[options]\nList_DB = False\nproxy_mode: True\n# note\n"
        "admin_passwd =\n[queue_job]\nchannels = root:2\n[options]\nworkers=4\n"
    )
    assert parsed == {"list_db": "False", "proxy_mode": "True", "admin_passwd": "", "workers": "4"}


# --------------------------------------------------------------------------- list-db


def test_list_db_missing_in_production_is_an_error() -> None:
    [finding] = findings(odoo.list_db, {"list_db": None})
    assert finding.severity is Severity.ERROR
    assert finding.line == 1
    assert "list_db is not set: Odoo's default exposes the database manager" in finding.message


def test_list_db_true_points_at_its_line() -> None:
    [finding] = findings(odoo.list_db, {"list_db": "True"})
    assert finding.line == 5
    assert finding.message == "list_db = 'True' exposes the database manager"


@pytest.mark.parametrize("value", ["0", "no", "off", "FALSE"])
def test_list_db_values_older_odoo_reads_as_true(value: str) -> None:
    [finding] = findings(odoo.list_db, {"list_db": value})
    assert "read as true by Odoo 18.0 and earlier" in finding.message
    assert "Odoo 19.0 reads false" in finding.message


def test_list_db_empty_is_refused_by_odoo_19() -> None:
    [finding] = findings(odoo.list_db, {"list_db": ""})
    assert "refuses it at startup" in finding.message


def test_list_db_outside_production_is_not_checked() -> None:
    assert findings(odoo.list_db, {"list_db": "True"}, production=False) == []


# --------------------------------------------------------------------------- admin-passwd


@pytest.mark.parametrize("value", [None, "admin"])
def test_default_master_password(value: str | None) -> None:
    [finding] = findings(odoo.admin_passwd, {"admin_passwd": value})
    assert finding.severity is Severity.ERROR
    assert "Odoo's default, admin" in finding.message
    [outside] = findings(odoo.admin_passwd, {"admin_passwd": value}, production=False)
    assert outside.severity is Severity.WARNING


def test_admin_passwd_false_differs_between_series() -> None:
    [finding] = findings(odoo.admin_passwd, {"admin_passwd": "False"})
    assert finding.severity is Severity.ERROR
    assert "Odoo 19.0 ignores False" in finding.message


def test_clear_text_master_password_is_a_warning_without_revealing_it() -> None:
    for production in (True, False):
        [finding] = findings(odoo.admin_passwd, {"admin_passwd": "S3cret!"}, production=production)
        assert finding.severity is Severity.WARNING
        assert "clear-text" in finding.message
        assert "S3cret" not in finding.message


@pytest.mark.parametrize("value", [HASH, "", "${ODOO_ADMIN_PASSWD}", "$ODOO_ADMIN_PASSWD"])
def test_hashed_empty_or_templated_master_password_passes(value: str) -> None:
    assert findings(odoo.admin_passwd, {"admin_passwd": value}) == []


# --------------------------------------------------------------------------- proxy-mode


@pytest.mark.parametrize("value", [None, "False", "false"])
def test_proxy_mode_off(value: str | None) -> None:
    [finding] = findings(odoo.proxy_mode, {"proxy_mode": value})
    assert finding.severity is Severity.ERROR
    assert "Odoo ignores the headers Traefik sets" in finding.message
    [outside] = findings(odoo.proxy_mode, {"proxy_mode": value}, production=False)
    assert outside.severity is Severity.WARNING


@pytest.mark.parametrize("value", ["True", "true", "1", "yes", "on"])
def test_proxy_mode_on_in_any_portable_spelling(value: str) -> None:
    assert findings(odoo.proxy_mode, {"proxy_mode": value}) == []


def test_proxy_mode_in_an_ambiguous_spelling() -> None:
    [finding] = findings(odoo.proxy_mode, {"proxy_mode": "enabled"})
    assert "proxy_mode = 'enabled' is read as true by Odoo 18.0" in finding.message
    assert "Odoo 19.0 refuses it at startup" in finding.message


# --------------------------------------------------------------------------- dbfilter


@pytest.mark.parametrize(
    "changes",
    [
        {"dbfilter": None},  # one database in db_name: no filter needed
        {"db_name": None, "dbfilter": "^%d$"},
        {"db_name": "acme,globex", "dbfilter": "^%h$"},
        {"db_name": " acme ", "dbfilter": ".*"},
    ],
)
def test_dbfilter_passes(changes: dict[str, str | None]) -> None:
    assert findings(odoo.dbfilter, changes) == []


@pytest.mark.parametrize(
    ("changes", "text"),
    [
        ({"db_name": None}, "db_name names no database"),
        ({"db_name": "False"}, "db_name names no database"),
        ({"db_name": "acme, globex"}, "db_name lists 2 databases (acme, globex)"),
        ({"db_name": "a,b,c,d", "dbfilter": ".*"}, "dbfilter = '.*' while db_name lists 4"),
        ({"db_name": "", "dbfilter": "^.*$"}, "names no database"),
    ],
)
def test_dbfilter_needed(changes: dict[str, str | None], text: str) -> None:
    [finding] = findings(odoo.dbfilter, changes)
    assert finding.severity is Severity.ERROR
    assert text in finding.message


def test_dbfilter_outside_production_is_a_warning() -> None:
    [finding] = findings(odoo.dbfilter, {"db_name": None}, production=False)
    assert finding.severity is Severity.WARNING


# --------------------------------------------------------------------------- workers


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "workers is not set: Odoo runs its threaded server"),
        ("0", "workers = '0': Odoo runs its threaded server"),
        ("False", "threaded server"),
        ("-1", "threaded server"),
        ("four", "is not a number"),
    ],
)
def test_workers_in_production(value: str | None, text: str) -> None:
    [finding] = findings(odoo.workers, {"workers": value})
    assert finding.severity is Severity.ERROR
    assert text in finding.message


def test_workers_outside_production_are_not_checked() -> None:
    assert findings(odoo.workers, {"workers": "0"}, production=False) == []
    assert findings(odoo.workers, {"workers": " 2 "}) == []


# --------------------------------------------------------------------------- db-superuser


@pytest.mark.parametrize("user", ["postgres", "Postgres", "root", "admin", " superuser "])
def test_superuser_roles_are_errors_everywhere(user: str) -> None:
    for production in (True, False):
        [finding] = findings(odoo.db_superuser, {"db_user": user}, production=production)
        assert finding.severity is Severity.ERROR
        assert finding.line == 3


@pytest.mark.parametrize("user", [None, "odoo", "acme", "postgres_acme"])
def test_ordinary_or_unknown_roles_pass(user: str | None) -> None:
    assert findings(odoo.db_superuser, {"db_user": user}) == []


# --------------------------------------------------------------------------- ConfigMaps


CONFIGMAP = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: odoo-config
  namespace: tenant-acme
data:
  README: not a configuration
  acme.odoo.conf: |
    [options]
    db_user = postgres
    list_db = True
    workers = 0
"""


def test_configmap_configurations_are_checked_and_point_at_their_key() -> None:
    report = check(odoo.RULES, k8s(CONFIGMAP), production=True)
    by_rule = {f.rule: f for f in report.findings}
    assert set(by_rule) == {
        "odoo.admin-passwd",
        "odoo.db-superuser",
        "odoo.dbfilter",
        "odoo.list-db",
        "odoo.proxy-mode",
        "odoo.workers",
    }
    assert {f.line for f in report.findings} == {8}
    assert by_rule["odoo.db-superuser"].resource.label() == "ConfigMap tenant-acme/odoo-config"
    assert by_rule["odoo.list-db"].message.startswith("acme.odoo.conf: list_db = 'True'")


def test_other_configmaps_are_ignored() -> None:
    documents = k8s(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {odoo.yaml: 'a: 1'}\n"
    )
    assert check(odoo.RULES, documents, production=True).findings == ()


# --------------------------------------------------------------------------- odd input


@pytest.mark.parametrize(
    "data",
    [
        ["not", "a", "dict"],
        "text",
        {"list_db": False, "proxy_mode": True, "workers": 4, "admin_passwd": None, 7: "x"},
        {"db_user": ["postgres"], "db_name": {"a": 1}, "dbfilter": 3.5},
    ],
)
def test_odd_conf_data_never_raises(data: Any) -> None:
    document = Document("odoo.conf", 0, 1, Format.ODOO_CONF, data)
    check(odoo.RULES, [document], production=True)


def test_yaml_typed_values_read_as_written() -> None:
    document = Document(
        "odoo.conf",
        0,
        1,
        Format.ODOO_CONF,
        {**GOOD, "list_db": False, "proxy_mode": True, "workers": 4},
    )
    assert check(odoo.RULES, [document], production=True).findings == ()


@pytest.mark.parametrize(
    "data", ["data: [odoo.conf]", "data: {odoo.conf: 5}", "data: {.odoorc: null}", "data: text"]
)
def test_odd_configmaps_never_raise(data: str) -> None:
    documents = k8s(f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: x}}\n{data}\n")
    check(odoo.RULES, documents, production=True)


def test_postgres_role_is_one_odoo_itself_refuses() -> None:
    [finding] = findings(odoo.db_superuser, {"db_user": "postgres"})
    assert (
        finding.message
        == "db_user = 'postgres': PostgreSQL's superuser role; Odoo refuses to start with it"
    )
    [finding] = findings(odoo.db_superuser, {"db_user": "root"})
    assert finding.message == "db_user = 'root': a PostgreSQL superuser role by its name"
