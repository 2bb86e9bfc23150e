"""PostgreSQL rules: restart-required, dangerous-settings, major-upgrade, and their helpers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from changegate.domain import catalog
from changegate.domain.policy.config import PolicyConfigSpec
from changegate.domain.policy.model import Document, Format, Severity
from changegate.domain.policy.rules import postgresql as pg
from tests import catalog_builders as b
from tests.policy.helpers import check, k8s, rule_ids

Files = dict[str, list[dict[str, Any]]]


def make_catalog(change: Callable[[Files], None] | None = None) -> catalog.Catalog:
    """The builders' platform (pg-1: PostgreSQL 16, max_connections 400, shared_buffers 8GB,
    jit off; tenant acme, gold, on pg-1), changed by `change`."""
    files = b.platform()
    if change is not None:
        change(files)
    return catalog.build(b.documents(files), digest="sha256:" + "0" * 64, commit=None, root="r")


def more_tenants(files: Files) -> None:
    files["tenants.yaml"] += [
        b.extra_tenant(name, tier="bronze") for name in ("globex", "initech", "umbrella", "hooli")
    ]


def conf(values: dict[str, Any], file: str = "pg-1.postgresql.conf") -> Document:
    """A postgresql.conf document whose parameters are on lines 1, 2, 3... in order."""
    lines = {name: number for number, name in enumerate(values, start=1)}

    def locate(path: tuple[str | int, ...]) -> int | None:
        return lines.get(path[0]) if path and isinstance(path[0], str) else None

    return Document(file, 0, 1, Format.POSTGRESQL_CONF, dict(values), locate)


def cnpg(
    image: str = "ghcr.io/cloudnative-pg/postgresql:16.4", name: str = "pg-1", **params: str
) -> list[Document]:
    """A CloudNativePG Cluster; its first parameter is on line 11."""
    lines = "".join(f"      {key}: {value!r}\n" for key, value in params.items())
    return k8s(
        "apiVersion: postgresql.cnpg.io/v1\n"
        "kind: Cluster\n"
        "metadata:\n"
        f"  name: {name}\n"
        "  namespace: databases\n"
        "spec:\n"
        "  instances: 3\n"
        f"  imageName: {image}\n"
        "  postgresql:\n"
        "    parameters:\n" + (lines or "      {}\n")
    )


def messages(report: Any, rule_id: str) -> list[str]:
    return [f.message for f in report.findings if f.rule == rule_id]


# --------------------------------------------------------------------------- helpers


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("on", True),
        ("off", False),
        ("ON", True),
        ("Off", False),
        ("true", True),
        ("FALSE", False),
        ("yes", True),
        ("no", False),
        ("1", True),
        ("0", False),
        ("t", True),
        ("tr", True),
        ("f", False),
        ("fal", False),
        ("y", True),
        ("n", False),
        ("of", False),
        (" off ", False),
        ("o", None),  # on or off: ambiguous
        ("", None),
        ("2", None),
        ("offf", None),
        ("enabled", None),
        (True, True),
        (False, False),
        (1, True),
        (0, False),
        (1.5, None),
        (None, None),
        ([], None),
        ({"on": 1}, None),
    ],
)
def test_pg_bool_accepts_postgresql_spellings(value: Any, expected: bool | None) -> None:
    assert pg.pg_bool(value) is expected


@pytest.mark.parametrize(
    ("one", "other", "same"),
    [
        ("8GB", "8GB", True),
        ("8GB", "8192MB", True),
        ("8GB", "8gb", True),
        ("'8GB'", "8GB", True),
        ("1s", "1000ms", True),
        ("1min", "60s", True),
        (400, "400", True),
        ("400", "400.0", True),
        ("on", True, True),
        ("off", "false", True),
        (False, "off", True),
        ("pg_stat_statements, auto_explain", "pg_stat_statements,auto_explain", True),
        ("8GB", "16GB", False),
        ("1024", "8MB", False),  # a bare number is in the parameter's own unit
        ("400", "500", False),
        ("replica", "logical", False),
        ("on", "off", False),
        (None, "x", False),
        ("x", [], False),
    ],
)
def test_same_value_compares_meaning(one: Any, other: Any, same: bool) -> None:
    assert pg.same_value(one, other) is same


@pytest.mark.parametrize(
    ("value", "major"),
    [
        ("16", (16,)),
        ("16.4", (16,)),
        ("v17", (17,)),
        ("17.2-standard-bookworm", (17,)),
        ("9.6", (9, 6)),
        ("9.6.24", (9, 6)),
        ("9", (9,)),
        (17, (17,)),
        (9.6, (9, 6)),
        (0, None),
        (True, None),
        ("latest", None),
        ("", None),
        (None, None),
        (["16"], None),
    ],
)
def test_major_of(value: Any, major: tuple[int, ...] | None) -> None:
    assert pg.major_of(value) == major


def test_the_restart_list_covers_the_usual_suspects() -> None:
    for name in ("shared_buffers", "max_connections", "wal_level", "shared_preload_libraries"):
        assert pg.POSTMASTER[name] == (0, None)
    assert "work_mem" not in pg.POSTMASTER
    assert pg.POSTMASTER["autovacuum_max_workers"] == (0, 17)
    assert pg.POSTMASTER["autovacuum_worker_slots"] == (18, None)


# --------------------------------------------------------------------------- restart-required


def test_unchanged_restart_parameters_pass() -> None:
    report = check(
        pg.restart_required,
        cnpg(max_connections="400", shared_buffers="8192MB", work_mem="64MB"),
        catalog=make_catalog(),
    )
    assert rule_ids(report) == []


def test_changed_restart_parameter_names_the_tenants_and_the_line() -> None:
    documents = cnpg(max_connections="600", work_mem="64MB")
    report = check(pg.restart_required, documents, catalog=make_catalog(more_tenants))
    [finding] = report.findings
    assert finding.rule == "postgresql.restart-required"
    assert finding.severity is Severity.WARNING
    assert finding.line == 11
    assert finding.resource.label() == "Cluster databases/pg-1"
    assert "max_connections = '600'" in finding.message
    assert "the catalog records '400' for pg-1" in finding.message
    assert "5 tenants on pg-1 (acme, globex, initech and 2 more)" in finding.message


def test_restart_parameter_the_catalog_does_not_record() -> None:
    report = check(pg.restart_required, [conf({"wal_level": "logical"})], catalog=make_catalog())
    [message] = messages(report, "postgresql.restart-required")
    assert "the catalog records no value for pg-1" in message
    assert "1 tenant on pg-1 (acme)" in message


def test_restart_parameter_without_catalog_says_it_cannot_compare() -> None:
    report = check(pg.restart_required, [conf({"shared_buffers": "8GB", "work_mem": "4MB"})])
    [message] = messages(report, "postgresql.restart-required")
    assert "if it differs from the running value" in message
    assert "no catalog service matches" in message


def test_a_service_without_tenants_is_said_so() -> None:
    def drop_tenants(files: Files) -> None:
        files["tenants.yaml"] = []
        files["people.yaml"] = [p for p in files["people.yaml"] if p["metadata"]["name"] != "lotte"]

    report = check(
        pg.restart_required, [conf({"port": "5433"})], catalog=make_catalog(drop_tenants)
    )
    [message] = messages(report, "postgresql.restart-required")
    assert "the catalog lists no tenant database on pg-1" in message


@pytest.mark.parametrize(
    ("image", "parameter", "flagged"),
    [
        ("ghcr.io/cloudnative-pg/postgresql:17.2", "autovacuum_max_workers", True),
        ("ghcr.io/cloudnative-pg/postgresql:18.0", "autovacuum_max_workers", False),
        ("ghcr.io/cloudnative-pg/postgresql:18.0", "autovacuum_worker_slots", True),
        ("ghcr.io/cloudnative-pg/postgresql:17.2", "io_method", False),
        ("ghcr.io/cloudnative-pg/postgresql:18.1-standard-trixie", "io_method", True),
        ("ghcr.io/cloudnative-pg/postgresql:16.4", "old_snapshot_threshold", True),
        ("ghcr.io/cloudnative-pg/postgresql:17.2", "old_snapshot_threshold", False),
        ("ghcr.io/cloudnative-pg/postgresql:15.8", "restore_command", False),
    ],
)
def test_restart_depends_on_the_major_version(image: str, parameter: str, flagged: bool) -> None:
    report = check(pg.restart_required, cnpg(image, **{parameter: "4"}))
    assert bool(report.findings) is flagged


def test_unknown_version_flags_version_bound_parameters_with_a_note() -> None:
    report = check(pg.restart_required, [conf({"autovacuum_max_workers": "6"}, "x.conf")])
    [message] = messages(report, "postgresql.restart-required")
    assert "(on PostgreSQL 17 and older)" in message
    report = check(pg.restart_required, [conf({"io_method": "worker"}, "x.conf")])
    assert "(on PostgreSQL 18 and later)" in messages(report, "postgresql.restart-required")[0]


def test_conf_version_comes_from_the_catalog() -> None:
    def on_18(files: Files) -> None:
        b.find(files, "Service", "pg-1")["spec"]["postgresql"]["version"] = "18.1"

    documents = [conf({"autovacuum_max_workers": "6"})]
    assert check(pg.restart_required, documents, catalog=make_catalog(on_18)).findings == ()
    assert check(pg.restart_required, documents, catalog=make_catalog()).findings


@pytest.mark.parametrize(
    "file",
    [
        "pg-1.postgresql.conf",
        "platform/pg-1-tuning.postgresql.conf",
        "platform/pg-1/postgresql.conf",
        "platform\\pg-1\\postgresql.auto.conf",
    ],
)
def test_conf_files_map_to_services_by_name_or_folder(file: str) -> None:
    report = check(
        pg.restart_required, [conf({"max_connections": "400"}, file)], catalog=make_catalog()
    )
    assert report.findings == ()


def test_conf_file_naming_another_thing_does_not_map() -> None:
    report = check(
        pg.restart_required,
        [conf({"max_connections": "400"}, "platform/pg-10.postgresql.conf")],
        catalog=make_catalog(),
    )
    assert "no catalog service matches" in report.findings[0].message


def test_operator_spec_maps_by_annotation() -> None:
    documents = k8s(
        """\
apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata:
  name: main
  annotations:
    changegate.io/service: pg-1
spec:
  postgresql:
    parameters:
      max_connections: "400"
"""
    )
    assert check(pg.restart_required, documents, catalog=make_catalog()).findings == ()


def test_zalando_and_crunchy_specs_are_read() -> None:
    documents = k8s(
        """\
apiVersion: acid.zalan.do/v1
kind: postgresql
metadata: {name: pg-1, namespace: databases}
spec:
  postgresql:
    version: "16"
    parameters: {max_connections: "500", work_mem: "64MB"}
---
apiVersion: postgres-operator.crunchydata.com/v1beta1
kind: PostgresCluster
metadata: {name: pg-1, namespace: databases}
spec:
  postgresVersion: 16
  config:
    parameters: {shared_buffers: 16GB}
  patroni:
    dynamicConfiguration:
      postgresql:
        parameters: {wal_level: logical, max_connections: 400}
"""
    )
    report = check(pg.restart_required, documents, catalog=make_catalog())
    found = sorted((f.line, f.message.split(" = ")[0]) for f in report.findings)
    assert found == [(7, "max_connections"), (15, "shared_buffers"), (19, "wal_level")]


def test_other_kinds_named_cluster_are_ignored() -> None:
    documents = k8s(
        """\
apiVersion: cluster.x-k8s.io/v1beta1
kind: Cluster
metadata: {name: pg-1}
spec:
  postgresql:
    parameters: {max_connections: "10"}
"""
    )
    assert check(pg.RULES, documents, catalog=make_catalog()).findings == ()


@pytest.mark.parametrize(
    "spec",
    [
        "spec: nonsense",
        "spec: {postgresql: [1, 2]}",
        "spec: {postgresql: {parameters: [max_connections]}}",
        "spec: {postgresql: {parameters: {max_connections: {a: 1}, fsync: null, port: [5432]}}}",
        "spec: {imageName: 17, imageCatalogRef: {major: [17]}}",
        "spec: {imageName: 'postgresql@sha256:abc', postgresql: {parameters: {fsync: off}}}",
    ],
)
def test_odd_operator_specs_never_raise(spec: str) -> None:
    documents = k8s(
        f"apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata: {{name: pg-1}}\n{spec}\n"
    )
    check(pg.RULES, documents, catalog=make_catalog(), category="kubernetes")


def test_odd_conf_values_never_raise() -> None:
    document = Document(
        "pg-1.postgresql.conf", 0, 1, Format.POSTGRESQL_CONF, {"fsync": None, 3: "x", "port": [1]}
    )
    check(pg.RULES, [document], catalog=make_catalog())
    broken = Document("pg-1.postgresql.conf", 0, 1, Format.POSTGRESQL_CONF, ["not", "a", "dict"])
    assert check(pg.RULES, [broken], catalog=make_catalog()).findings == ()


# --------------------------------------------------------------------------- dangerous-settings


@pytest.mark.parametrize("value", ["off", "OFF", "false", "0", "no", "of", "f"])
def test_fsync_off_in_any_spelling_is_an_error(value: str) -> None:
    report = check(pg.dangerous_settings, [conf({"fsync": value, "full_page_writes": value})])
    assert [f.severity for f in report.findings] == [Severity.ERROR, Severity.ERROR]
    assert "corrupt" in report.findings[0].message
    assert report.findings[0].line == 1
    assert report.findings[1].line == 2


def test_yaml_booleans_in_operator_specs_count() -> None:
    documents = cnpg(fsync="off")
    documents[0].data["spec"]["postgresql"]["parameters"]["full_page_writes"] = False
    report = check(pg.dangerous_settings, documents)
    assert len(report.findings) == 2


@pytest.mark.parametrize("value", ["on", "true", "1", "o", "maybe"])
def test_fsync_on_or_unreadable_passes(value: str) -> None:
    assert check(pg.dangerous_settings, [conf({"fsync": value})]).findings == ()


def test_synchronous_commit_off_on_a_cluster_of_critical_tenants_is_an_error() -> None:
    report = check(
        pg.dangerous_settings,
        [conf({"synchronous_commit": "off"})],
        catalog=make_catalog(more_tenants),
        critical_tiers=frozenset({"gold"}),
    )
    [finding] = report.findings
    assert finding.severity is Severity.ERROR
    assert "acme (gold)" in finding.message
    assert "globex" not in finding.message


def test_critical_tiers_from_the_policy_config_are_patterns() -> None:
    report = check(
        pg.dangerous_settings,
        [conf({"synchronous_commit": "FALSE"})],
        config=PolicyConfigSpec(critical_tiers=["go*"]),
        catalog=make_catalog(),
    )
    assert report.findings[0].severity is Severity.ERROR


def test_context_tenant_tiers_override_the_catalog() -> None:
    report = check(
        pg.dangerous_settings,
        [conf({"synchronous_commit": "off"})],
        catalog=make_catalog(),
        critical_tiers=frozenset({"gold"}),
        tenant_tiers={"acme": "bronze"},
    )
    assert report.findings[0].severity is Severity.INFO


@pytest.mark.parametrize(
    ("kwargs", "why"),
    [
        ({}, "no tier is configured as critical"),
        ({"critical_tiers": frozenset({"platinum"})}, "no tenant of a critical tier"),
    ],
)
def test_synchronous_commit_off_elsewhere_is_info(kwargs: dict[str, Any], why: str) -> None:
    report = check(
        pg.dangerous_settings,
        [conf({"synchronous_commit": "off"})],
        catalog=make_catalog(),
        **kwargs,
    )
    [finding] = report.findings
    assert finding.severity is Severity.INFO
    assert why in finding.message


def test_synchronous_commit_without_catalog_uses_the_namespace_tenant() -> None:
    documents = cnpg(name="main", synchronous_commit="off")
    report = check(
        pg.dangerous_settings,
        documents,
        critical_tiers=frozenset({"gold"}),
        tenant_namespaces={"databases": "acme"},
        tenant_tiers={"acme": "gold"},
    )
    assert report.findings[0].severity is Severity.ERROR
    report = check(pg.dangerous_settings, documents, critical_tiers=frozenset({"gold"}))
    assert "not known to the catalog" in report.findings[0].message


@pytest.mark.parametrize("value", ["on", "local", "remote_write", "remote_apply", "of"])
def test_synchronous_commit_values_that_keep_local_durability_pass(value: str) -> None:
    report = check(
        pg.dangerous_settings,
        [conf({"synchronous_commit": value})],
        catalog=make_catalog(),
        critical_tiers=frozenset({"gold"}),
    )
    assert report.findings == ()


# --------------------------------------------------------------------------- major-upgrade


def test_major_upgrade_outside_a_change_is_a_warning() -> None:
    report = check(
        pg.major_upgrade, cnpg("ghcr.io/cloudnative-pg/postgresql:17.2"), catalog=make_catalog()
    )
    [finding] = report.findings
    assert finding.severity is Severity.WARNING
    assert finding.line == 8
    assert "PostgreSQL 16 to 17 on pg-1" in finding.message
    assert "database-upgrade" in finding.message


def test_major_upgrade_in_the_wrong_category_is_an_error() -> None:
    report = check(
        pg.major_upgrade,
        cnpg("ghcr.io/cloudnative-pg/postgresql:17.2"),
        catalog=make_catalog(),
        category="database-config",
    )
    [finding] = report.findings
    assert finding.severity is Severity.ERROR
    assert "'database-config'" in finding.message


def test_major_upgrade_filed_as_database_upgrade_passes() -> None:
    report = check(
        pg.major_upgrade,
        cnpg("ghcr.io/cloudnative-pg/postgresql:17.2@sha256:" + "a" * 64),
        catalog=make_catalog(),
        category="database-upgrade",
    )
    assert report.findings == ()


def test_major_downgrade_is_always_an_error() -> None:
    report = check(
        pg.major_upgrade,
        cnpg("ghcr.io/cloudnative-pg/postgresql:15.8"),
        catalog=make_catalog(),
        category="database-upgrade",
    )
    assert "goes back from PostgreSQL 16 to 15" in report.findings[0].message


@pytest.mark.parametrize(
    "image",
    [
        "ghcr.io/cloudnative-pg/postgresql:16.6",  # a minor update
        "ghcr.io/cloudnative-pg/postgresql",  # no tag: the operator's default
        "ghcr.io/cloudnative-pg/postgresql@sha256:" + "a" * 64,
        "registry.example.com:5000/postgresql:latest",
    ],
)
def test_same_or_unknown_major_passes(image: str) -> None:
    report = check(pg.major_upgrade, cnpg(image), catalog=make_catalog(), category="kubernetes")
    assert report.findings == ()


def test_major_upgrade_needs_a_catalog_service_to_compare() -> None:
    documents = cnpg("ghcr.io/cloudnative-pg/postgresql:17.2", name="elsewhere")
    assert check(pg.major_upgrade, documents, catalog=make_catalog(), category="x").findings == ()
    assert check(pg.major_upgrade, cnpg("postgresql:17.2"), category="x").findings == ()


def test_major_from_image_catalog_crunchy_and_zalando() -> None:
    documents = k8s(
        """\
apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata: {name: pg-1}
spec:
  imageName: ghcr.io/cloudnative-pg/postgresql:16.4
  imageCatalogRef: {apiGroup: postgresql.cnpg.io, kind: ClusterImageCatalog, name: pg, major: 17}
---
apiVersion: postgres-operator.crunchydata.com/v1beta1
kind: PostgresCluster
metadata: {name: pg-1}
spec: {postgresVersion: 17}
---
apiVersion: acid.zalan.do/v1
kind: postgresql
metadata: {name: pg-1}
spec: {postgresql: {version: "17"}}
"""
    )
    report = check(pg.major_upgrade, documents, catalog=make_catalog(), category="kubernetes")
    assert [f.line for f in report.findings] == [6, 11, 16]
    assert [f.message.split(" upgrades")[0] for f in report.findings] == [
        "CloudNativePG Cluster",
        "Crunchy PostgresCluster",
        "Zalando postgresql",
    ]
