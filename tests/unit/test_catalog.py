"""The catalog model: shapes, references and consistency rules, on in-memory documents."""

from __future__ import annotations

import copy
from datetime import date, datetime, timedelta
from typing import Any

import pytest

from changegate.domain import catalog
from changegate.domain.changes import Category, ChangeType
from changegate.errors import InvalidInput, NotFound, Problem
from tests import catalog_builders as b


def build(files: b.Platform) -> catalog.Catalog:
    return catalog.build(b.documents(files), digest="sha256:" + "0" * 64, commit=None, root="r")


def problems(files: b.Platform) -> list[Problem]:
    with pytest.raises(InvalidInput) as caught:
        build(files)
    return caught.value.problems


def only_problem(files: b.Platform) -> Problem:
    found = problems(files)
    assert len(found) == 1, [str(p) for p in found]
    return found[0]


# ------------------------------------------------------------------ a valid catalog


def test_every_kind_is_built_from_a_valid_platform() -> None:
    built = build(b.platform())
    assert built.as_dict()["counts"] == {
        "tiers": 2,
        "environments": 2,
        "clusters": 2,
        "services": 5,
        "tenants": 1,
        "teams": 1,
        "people": 3,
        "windows": 3,
        "holidaycalendars": 0,
        "riskpolicies": 0,
        "approvalpolicies": 0,
        "schedulingpolicies": 0,
        "standardtemplates": 0,
        "policyconfigs": 0,
        "waivers": 0,
        "policyrules": 0,
        "gitopsrepositories": 0,
    }
    assert set(catalog.KINDS) == {info.kind for info in catalog.REGISTRY}
    assert isinstance(built.tiers["gold"].spec, catalog.TierSpec)
    assert built.environments["prod"].spec.production is True
    assert built.clusters["shared-1"].spec.mode is catalog.ClusterMode.SHARED
    pg = built.services["pg-1"].spec
    assert isinstance(pg.settings(), catalog.PostgresqlSettings)
    assert pg.postgresql is not None and pg.postgresql.parameters["jit"] is False
    assert built.services["objects"].spec.object_storage is not None
    tenant = built.tenants["acme"]
    assert tenant.spec.deployment_model is catalog.DeploymentModel.MULTI_TENANT
    assert tenant.labels == {"tier": "gold"}
    assert (tenant.file, tenant.line) == ("tenants.yaml", 1)
    assert built.teams["platform"].spec.lead == "carol"
    assert catalog.Role.CUSTOMER_APPROVER in built.people["lotte"].spec.roles


def test_windows_parse_schedules_durations_and_exemptions() -> None:
    built = build(b.platform())
    sunday = built.windows["sunday"].spec
    assert sunday.duration == timedelta(hours=4)
    assert sunday.match == "any"
    assert built.windows["staging-releases"].spec.duration == timedelta(hours=6)
    freeze = built.windows["year-end"].spec
    assert (freeze.start, freeze.end) == (date(2026, 12, 18), date(2027, 1, 4))
    assert freeze.scope.global_ is True
    assert freeze.exempt.types == [ChangeType.EMERGENCY]
    assert freeze.exempt.categories == [Category.SECURITY_PATCH]


def test_entity_as_dict_is_json_with_aliases() -> None:
    built = build(b.platform())
    data = built.get("service", "objects").as_dict()
    assert data["kind"] == "Service"
    assert data["spec"]["object-storage"]["bucket"] == "odoo-backups"
    assert data["file"] == "services.yaml"
    window = built.get("windows", "year-end").as_dict()["spec"]
    assert window["start"] == "2026-12-18"
    assert window["scope"]["global"] is True


def test_get_list_person_and_kind_names() -> None:
    built = build(b.platform())
    assert built.get("Tenant", "acme") is built.get("tenants", "acme") is built.tenants["acme"]
    assert built.get("people", "alice") is built.get("person", "alice")
    assert [e.id for e in built.list("Person")] == ["alice", "carol", "lotte"]
    assert built.person("carol") is built.people["carol"]
    assert built.person("nobody") is None
    with pytest.raises(NotFound, match="no Tenant 'nope'"):
        built.get("tenant", "nope")
    assert catalog.normalize_kind(" Windows ") == "Window"
    assert catalog.normalize_kind("envs") == "Environment"
    with pytest.raises(InvalidInput, match="expected one of: Tier, Environment"):
        catalog.normalize_kind("gizmos")


def test_empty_documents_are_skipped() -> None:
    docs = [*b.documents(b.platform()), b.FakeDocument("empty.yaml", 0, 1, None)]
    built = catalog.build(docs, digest="sha256:x", commit="abc", root="r", dirty=True)
    assert built.as_dict()["commit"] == "abc"
    assert built.dirty is True


# ------------------------------------------------------------------ envelope


def test_wrong_api_version_and_unknown_kind_name_the_accepted_ones() -> None:
    files = b.platform()
    files["tiers.yaml"][0]["apiVersion"] = "changegate.io/v2"
    files["tiers.yaml"][1]["kind"] = "tier"
    files["extra.yaml"] = [["not", "a", "mapping"]]  # type: ignore[list-item]
    found = problems(files)
    assert [(p.file, p.field) for p in found] == [
        ("extra.yaml", None),
        ("tiers.yaml", "apiVersion"),
        ("tiers.yaml", "kind"),
    ]
    assert "changegate.io/v1" in found[1].message
    assert "did you mean Tier?" in found[2].message
    assert "Tier, Environment, Cluster, Service, Tenant, Team, Person, Window" in found[2].message


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("Acme", "String should match pattern"),
        ("-acme", "String should match pattern"),
        ("a" * 64, "String should match pattern"),
    ],
)
def test_ids_are_dns_labels(name: str, problem: str) -> None:
    files = b.platform()
    b.find(files, "Tier", "bronze")["metadata"]["name"] = name
    found = only_problem(files)
    assert found.field == "metadata.name"
    assert problem in found.message


# ------------------------------------------------------------------ field validation


def test_unknown_field_is_named() -> None:
    found = only_problem(b.with_spec(b.platform(), "Tenant", "acme", colour="blue"))
    assert (found.file, found.field, found.message) == (
        "tenants.yaml",
        "spec.colour",
        "unknown field",
    )


def test_unknown_field_in_metadata_and_nested_sections() -> None:
    files = b.platform()
    b.find(files, "Tier", "gold")["metadata"]["owner"] = "x"
    b.find(files, "Service", "pg-1")["spec"]["postgresql"]["replicas"] = 2
    assert {p.field for p in problems(files)} == {"metadata.owner", "spec.postgresql.replicas"}


def test_wrong_types_are_not_coerced() -> None:
    files = b.with_spec(b.platform(), "Environment", "prod", order="30")
    files = b.with_spec(files, "Tenant", "acme", display_name=["Acme"])
    files = b.with_spec(files, "Cluster", "dedicated-1", kubernetes_version=1.31)
    found = {p.field: p.message for p in problems(files)}
    assert found == {
        "spec.order": "Input should be a valid integer",
        "spec.display_name": "Input should be a valid string",
        "spec.kubernetes_version": "Input should be a valid string",
    }


def test_bad_enum_value_lists_the_allowed_ones() -> None:
    found = only_problem(b.with_spec(b.platform(), "Tenant", "acme", deployment_model="shared-ish"))
    assert found.field == "spec.deployment_model"
    assert "'multi-tenant', 'dedicated-namespace' or 'dedicated-cluster'" in found.message


def test_missing_required_field() -> None:
    found = only_problem(b.with_spec(b.platform(), "Tenant", "acme", timezone=None))
    assert (found.field, found.message) == ("spec.timezone", "required field is missing")


def test_nul_characters_are_refused_in_any_text() -> None:
    # PostgreSQL text cannot hold NUL: refused in every kind, in values and in keys.
    files = b.with_spec(b.platform(), "Tier", "gold", display_name="Go\x00ld")
    b.find(files, "Tenant", "acme")["metadata"]["labels"] = {"ti\x00er": "gold"}
    found = [(p.file, p.line, p.field, p.message) for p in problems(files)]
    message = "NUL characters (\\0) are not allowed in text"
    assert found == [
        ("tenants.yaml", 1, "metadata.labels.ti\\0er", message + " (in a key)"),
        ("tiers.yaml", 1, "spec.display_name", message),
    ]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("timezone", "Europe/Atlantis", "unknown IANA timezone 'Europe/Atlantis'"),
        ("timezone", "../../etc/passwd", "unknown IANA timezone"),
        ("business_services", ["invoicing", "Order To Cash"], "String should match pattern"),
        ("services", ["redis-1", "redis-1"], "listed more than once: redis-1"),
    ],
)
def test_tenant_field_rules(field: str, value: Any, message: str) -> None:
    found = only_problem(b.with_spec(b.platform(), "Tenant", "acme", **{field: value}))
    assert found.field is not None and found.field.startswith(f"spec.{field}")
    assert found.message.startswith(message)


def test_odoo_image_needs_a_tag_or_digest() -> None:
    odoo = {"series": "17.0", "image": "registry.example.com/odoo/odoo"}
    found = only_problem(b.with_spec(b.platform(), "Tenant", "acme", odoo=odoo))
    assert found.field == "spec.odoo.image"
    assert "needs a tag or a digest" in found.message


def test_service_takes_only_its_own_section() -> None:
    files = b.platform()
    pg = b.find(files, "Service", "pg-1")["spec"]
    pg["redis"] = {"version": "7.2"}
    found = only_problem(files)
    assert found.field == "spec.redis"
    assert "a postgresql service takes no redis section" in found.message


def test_service_needs_its_section_and_a_cluster() -> None:
    files = b.platform()
    redis = b.find(files, "Service", "redis-1")["spec"]
    del redis["redis"]
    del redis["cluster"]
    found = only_problem(files)
    assert "a redis service needs a redis section" in found.message
    files = b.with_spec(b.platform(), "Service", "redis-1", cluster=None)
    assert "a redis service needs a cluster" in only_problem(files).message


def test_node_pool_bounds_and_unique_names() -> None:
    pools = [
        {"name": "odoo", "min_nodes": 5, "max_nodes": 2},
        {"name": "odoo", "min_nodes": 1, "max_nodes": 2},
    ]
    found = problems(b.with_spec(b.platform(), "Cluster", "shared-1", node_pools=pools))
    messages = " | ".join(p.message for p in found)
    assert "max_nodes must be at least min_nodes" in messages


# ------------------------------------------------------------------ windows


def window(**spec: Any) -> b.Platform:
    files = b.platform()
    base = {"type": "allow", "purpose": "maintenance", "timezone": "UTC", "scope": {"global": True}}
    files["windows.yaml"] = [b.doc("Window", "w", {**base, **spec})]
    return files


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({}, "give exactly one schedule: rrule, cron, generator, or start and end (given: none)"),
        ({"rrule": "FREQ=DAILY", "cron": "0 2 * * *", "duration": "1h"}, "given: rrule, cron"),
        ({"rrule": "FREQ=DAILY"}, "a window with rrule needs a duration"),
        ({"cron": "0 2 * * *", "duration": "1h", "start": "2026-01-01"}, "cron window takes no"),
        ({"start": "2026-01-02", "end": "2026-01-01"}, "end must not be before start"),
        ({"start": "2026-01-01T10:00:00", "end": "2026-01-01T09:00:00"}, "end must be after"),
        ({"start": "2026-01-01", "end": "2026-01-02T00:00:00"}, "both be dates or both"),
        ({"start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00"}, "an offset, or neither"),
        ({"start": "2026-01-01", "end": "2026-01-02", "duration": "1h"}, "not a duration"),
        ({"start": "01/02/2026", "end": "2026-01-03"}, "not an ISO 8601 date or datetime"),
        ({"cron": "0 2 * *", "duration": "1h"}, "cron needs 5 fields"),
        ({"cron": "0 25 * * *", "duration": "1h"}, "cron hour '25' is not in 0-23"),
        ({"cron": "0 2 * * MON-FRI/0", "duration": "1h"}, "step '0' must be a positive"),
        ({"rrule": "FREQ=FORTNIGHTLY", "duration": "1h"}, "rrule needs FREQ="),
        ({"rrule": "FREQ=WEEKLY;BYDAY=XX", "duration": "1h"}, "rrule BYDAY 'XX'"),
        ({"rrule": "FREQ=WEEKLY;BYHOUR=24", "duration": "1h"}, "BYHOUR=24 is out of range"),
        ({"rrule": "FREQ=DAILY;COUNT=3;UNTIL=20260101", "duration": "1h"}, "COUNT or UNTIL"),
        ({"rrule": "FREQ=DAILY;FREQ=DAILY", "duration": "1h"}, "given twice"),
        ({"rrule": "FREQ=DAILY;BYEASTER=1", "duration": "1h"}, "BYEASTER is not supported"),
        ({"rrule": "FREQ=DAILY;BYSECOND=60", "duration": "1h"}, "BYSECOND=60 is out of range"),
        ({"rrule": "FREQ=DAILY;INTERVAL=1001", "duration": "1h"}, "INTERVAL must be at most"),
        (
            {"rrule": "FREQ=DAILY;COUNT=10001", "duration": "1h", "start": "2026-01-01"},
            "COUNT must be at most 10,000",
        ),
        ({"rrule": "FREQ=DAILY;COUNT=3", "duration": "1h"}, "COUNT counts from its start"),
        (
            {"rrule": "FREQ=DAILY", "generator": {"kind": "month-end", "business_days": 2}},
            "given: rrule, generator",
        ),
        (
            {"generator": {"kind": "month-end", "business_days": 2}, "end": "2026-01-02"},
            "given: generator, start/end",
        ),
        (
            {"generator": {"kind": "month-end", "business_days": 2}, "duration": "1h"},
            "a generator window takes no duration",
        ),
        (
            {"generator": {"kind": "month-end", "business_days": 2}, "start": "2026-01-01"},
            "a generator window takes no start",
        ),
        ({"generator": {"kind": "month-end"}}, "a month-end generator needs business_days"),
        ({"generator": {"kind": "quarter-end", "business_days": 0}}, "greater than or equal to 1"),
        ({"generator": {"kind": "year-end", "business_days": 24}}, "less than or equal to 23"),
        (
            {"generator": {"kind": "year-end", "business_days": 5, "calendar": "be"}},
            "names its holiday calendar with holidays:",
        ),
        ({"generator": {"kind": "holidays"}}, "a holidays generator needs calendar"),
        (
            {"generator": {"kind": "holidays", "calendar": "be", "business_days": 2}},
            "a holidays generator takes calendar only",
        ),
        ({"generator": {"kind": "week-end", "business_days": 2}}, "'month-end', 'quarter-end'"),
        ({"generator": {"kind": "month-end", "business_days": 2, "every": 1}}, "unknown field"),
        ({"rrule": "FREQ=DAILY", "duration": "4 hours"}, "not a duration: '4 hours'"),
        ({"rrule": "FREQ=DAILY", "duration": "0m"}, "longer than zero"),
        ({"rrule": "FREQ=DAILY", "duration": "400d"}, "longer than 366 days"),
        ({"rrule": "FREQ=DAILY", "duration": "1h", "purpose": "freeze"}, "maintenance or release"),
        ({"rrule": "FREQ=DAILY", "duration": "1h", "timezone": "Mars/Olympus"}, "unknown IANA"),
        ({"rrule": "FREQ=DAILY", "duration": "1h", "scope": {}}, "the scope selects nothing"),
        (
            {"rrule": "FREQ=DAILY", "duration": "1h", "scope": {"global": True, "tiers": ["gold"]}},
            "a global scope covers everything",
        ),
        (
            {"rrule": "FREQ=DAILY", "duration": "1h", "exempt": {"types": ["urgent"]}},
            "Input should be 'standard', 'normal' or 'emergency'",
        ),
    ],
)
def test_window_rules(spec: dict[str, Any], message: str) -> None:
    found = problems(window(**spec))
    assert any(message in p.message for p in found), [str(p) for p in found]


def test_window_schedules_that_are_valid() -> None:
    valid = [
        {
            "rrule": "RRULE:FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-2,-1",
            "duration": "24h",
            "start": "2026-01-01T00:00:00",
        },
        {
            "rrule": "FREQ=YEARLY;BYMONTH=12;BYMONTHDAY=-1;UNTIL=20301231T000000Z;WKST=MO",
            "duration": "P1D",
        },
        {"rrule": "FREQ=MONTHLY;BYDAY=-1FR,2TU;INTERVAL=2", "duration": "1h30m"},
        {"cron": "*/15 22-23,0-4 1-7 JAN,jul SUN-SAT", "duration": "90m"},
        {"rrule": "FREQ=DAILY;COUNT=3", "duration": "1h", "start": "2026-01-01T09:00:00"},
        {"generator": {"kind": "month-end", "business_days": 3}},
        {"generator": {"kind": "quarter-end", "business_days": 23}},
        {"start": "2026-11-26T00:00:00+01:00", "end": "2026-12-01T00:00:00+01:00"},
    ]
    for spec in valid:
        built = build(window(**spec))
        assert built.windows["w"].spec.scope.global_


# ------------------------------------------------------------------ references


@pytest.mark.parametrize(
    ("kind", "name", "changes", "field", "message"),
    [
        ("Tenant", "acme", {"cluster": "shared-9"}, "spec.cluster", "unknown Cluster 'shared-9'"),
        ("Tenant", "acme", {"tier": "golden"}, "spec.tier", "unknown Tier 'golden'"),
        (
            "Tenant",
            "acme",
            {"database": {"service": "pg-2", "name": "acme"}},
            "spec.database.service",
            "unknown Service 'pg-2'",
        ),
        ("Tenant", "acme", {"approvers": ["lotte", "mia"]}, "spec.approvers[1]", "Person 'mia'"),
        ("Person", "alice", {"teams": ["platfrom"]}, "spec.teams[0]", "unknown Team 'platfrom'"),
        ("Cluster", "shared-1", {"environment": "qa"}, "spec.environment", "Environment 'qa'"),
        ("Team", "platform", {"lead": "zed"}, "spec.lead", "unknown Person 'zed'"),
        (
            "Window",
            "sunday",
            {"scope": {"clusters": ["shared-*", "shared-7"]}},
            "spec.scope.clusters[1]",
            "unknown Cluster 'shared-7'",
        ),
    ],
)
def test_dangling_references_name_field_and_id(
    kind: str, name: str, changes: dict[str, Any], field: str, message: str
) -> None:
    found = only_problem(b.with_spec(b.platform(), kind, name, **changes))
    assert found.field == field
    assert message in found.message


def test_dangling_reference_suggests_a_close_id() -> None:
    found = only_problem(b.with_spec(b.platform(), "Person", "alice", teams=["platfrom"]))
    assert found.message == "unknown Team 'platfrom' (did you mean 'platform'?)"


def test_window_generator_references_a_holiday_calendar() -> None:
    files = window(generator={"kind": "month-end", "business_days": 3, "holidays": "be-publc"})
    files["holidays.yaml"] = [b.holiday_calendar("be-public", "2026-12-25")]
    found = only_problem(files)
    assert found.field == "spec.generator.holidays"
    assert found.message == "unknown HolidayCalendar 'be-publc' (did you mean 'be-public'?)"
    files = window(generator={"kind": "holidays", "calendar": "nowhere"})
    assert only_problem(files).field == "spec.generator.calendar"
    files = window(generator={"kind": "holidays", "calendar": "be-public"})
    files["holidays.yaml"] = [b.holiday_calendar("be-public", "2026-12-25", "2026-01-01")]
    built = build(files)
    generator = built.windows["w"].spec.generator
    assert generator is not None
    assert generator.kind is catalog.GeneratorKind.HOLIDAYS
    assert generator.calendar_id() == "be-public"
    calendar = built.holiday_calendars["be-public"]
    assert calendar.spec.days() == {date(2026, 12, 25), date(2026, 1, 1)}
    assert built.get("holidays", "be-public") is calendar
    assert catalog.normalize_kind("holiday-calendars") == "HolidayCalendar"
    assert built.as_dict()["counts"]["holidaycalendars"] == 1
    assert calendar.as_dict()["spec"]["dates"][0] == {
        "date": "2026-12-25",
        "name": "Holiday 2026-12-25",
    }


@pytest.mark.parametrize(
    ("spec", "field", "message"),
    [
        (
            {"dates": [{"date": "2026-12-25", "name": "A"}, {"date": "2026-12-25", "name": "B"}]},
            "spec.dates",
            "2026-12-25 is listed more than once ('A' and 'B')",
        ),
        ({"dates": [{"date": "2026-13-01", "name": "A"}]}, "spec.dates[0].date", "not an ISO"),
        (
            {"dates": [{"date": "2026-12-25T00:00:00", "name": "A"}]},
            "spec.dates[0].date",
            "not an ISO 8601 date",
        ),
        ({"dates": [{"date": "2026-12-25"}]}, "spec.dates[0].name", "required field"),
        ({"dates": [{"date": "2026-12-25", "name": ""}]}, "spec.dates[0].name", "at least 1"),
        (
            {"dates": [{"date": "2026-01-01", "name": "x"}] * 5001},
            "spec.dates",
            "at most 5000 items",
        ),
        ({"display_name": None}, "spec.display_name", "required field"),
    ],
)
def test_holiday_calendar_rules(spec: dict[str, Any], field: str, message: str) -> None:
    files = b.platform()
    document = b.holiday_calendar("cal")
    for key, value in spec.items():
        if value is None:
            document["spec"].pop(key)
        else:
            document["spec"][key] = value
    files["holidays.yaml"] = [document]
    found = only_problem(files)
    assert found.field == field
    assert message in found.message


def test_window_globs_need_not_match_anything() -> None:
    files = b.with_spec(b.platform(), "Window", "sunday", scope={"tenants": ["zz-*", "a?m[e]"]})
    assert build(files).windows["sunday"].spec.scope.tenants == ["zz-*", "a?m[e]"]


# ------------------------------------------------------------------ consistency


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        (
            {"deployment_model": "dedicated-cluster"},
            "spec.cluster",
            "a dedicated-cluster tenant needs a dedicated cluster; 'shared-1' is shared",
        ),
        (
            {"cluster": "dedicated-1"},
            "spec.cluster",
            "a multi-tenant tenant needs a shared cluster; 'dedicated-1' is dedicated",
        ),
        (
            {"database": {"service": "redis-1", "name": "acme"}},
            "spec.database.service",
            "'redis-1' is a redis service, not postgresql",
        ),
        (
            {"environment": "staging"},
            "spec.cluster",
            "cluster 'shared-1' is in environment 'prod', the tenant in 'staging'",
        ),
    ],
)
def test_tenant_consistency(changes: dict[str, Any], field: str, message: str) -> None:
    found = problems(b.with_spec(b.platform(), "Tenant", "acme", **changes))
    assert any((p.field, p.message) == (field, message) for p in found), [str(p) for p in found]


def test_tenant_services_must_share_its_environment() -> None:
    files = b.with_spec(b.platform(), "Service", "objects", environment="staging")
    found = {(p.file, p.field, p.message) for p in problems(files)}
    assert (
        "tenants.yaml",
        "spec.services[2]",
        "service 'objects' is in environment 'staging', the tenant in 'prod'",
    ) in found


def test_approver_must_be_a_customer_approver_covering_the_tenant() -> None:
    files = b.with_spec(b.platform(), "Tenant", "acme", approvers=["alice"])
    found = problems(files)
    assert [(p.field, p.message) for p in found] == [
        ("spec.approvers[0]", "'alice' is not a customer-approver"),
    ]
    # lotte still approves for acme; once she does not, acme cannot name her
    files = b.with_spec(b.platform(), "Person", "lotte", tenants=None, roles=["approver"])
    messages = [p.message for p in problems(files)]
    assert messages == ["'lotte' is not a customer-approver"]


def test_customer_approver_lists_tenants_iff_role() -> None:
    files = b.platform()
    files["people.yaml"].append(
        b.doc(
            "Person",
            "mia",
            {"display_name": "Mia", "email": "mia@x.example", "roles": ["customer-approver"]},
        )
    )
    files = b.with_spec(files, "Person", "alice", tenants=["acme"])
    found = sorted((p.line, p.message) for p in problems(files))
    assert found == [
        (1, "only a customer-approver lists tenants"),
        (31, "a customer-approver needs the tenants they approve for"),
    ]


def test_environment_orders_are_unique() -> None:
    found = only_problem(b.with_spec(b.platform(), "Environment", "prod", order=20))
    assert (found.field, found.message) == (
        "spec.order",
        "order 20 is already used by environment 'staging'",
    )


def test_team_lead_is_a_member() -> None:
    found = only_problem(b.with_spec(b.platform(), "Person", "carol", teams=None))
    assert found.message == "lead 'carol' is not a member (add 'platform' to their teams)"


def test_database_names_and_dedicated_namespaces_are_not_shared() -> None:
    files = b.platform()
    second = b.doc("Tenant", "globex", b.tenant_spec(display_name="Globex", approvers=[]))
    files["tenants.yaml"].append(second)
    found = [(p.field, p.message) for p in problems(files)]
    assert found == [
        ("spec.database.name", "database 'acme' on 'pg-1' already belongs to tenant 'acme'")
    ]
    second["spec"]["database"]["name"] = "globex"
    second["spec"]["deployment_model"] = "dedicated-namespace"
    found = [(p.field, p.message) for p in problems(files)]
    assert found == [
        (
            "spec.namespace",
            "namespace 'odoo-mt-1' on 'shared-1' is already used by tenant 'acme'; only "
            "multi-tenant tenants share a namespace",
        )
    ]


def test_backup_target_must_be_object_storage() -> None:
    files = b.platform()
    b.find(files, "Service", "pg-1")["spec"]["postgresql"]["backup"]["object_storage"] = "redis-1"
    found = only_problem(files)
    assert found.field == "spec.postgresql.backup.object_storage"
    assert found.message == "'redis-1' is a redis service, not object-storage"


# ------------------------------------------------------------------ many problems at once


def test_duplicate_ids_across_files_name_both_places() -> None:
    files = b.platform()
    files["more-tenants.yaml"] = [copy.deepcopy(files["tenants.yaml"][0])]
    found = only_problem(files)
    assert (found.file, found.field) == ("more-tenants.yaml", "metadata.name")
    assert found.message == "duplicate Tenant id 'acme': also defined at tenants.yaml:1"


def test_every_problem_is_reported_at_once_sorted_by_file_and_line() -> None:
    files = b.platform()
    b.find(files, "Tier", "bronze")["spec"]["risk_weight"] = 0  # tiers.yaml, doc 1
    b.find(files, "Tier", "gold")["spec"]["colour"] = "gold"  # tiers.yaml, doc 0
    b.find(files, "Tenant", "acme")["spec"]["cluster"] = "nowhere"  # tenants.yaml
    b.find(files, "Window", "year-end")["spec"]["timezone"] = "Nowhere/Land"  # windows.yaml
    b.find(files, "Window", "sunday")["spec"]["duration"] = "forever"  # windows.yaml
    found = problems(files)
    assert [(p.file, p.line, p.field) for p in found] == [
        ("tenants.yaml", 1, "spec.cluster"),
        ("tiers.yaml", 1, "spec.colour"),
        ("tiers.yaml", 11, "spec.risk_weight"),
        ("windows.yaml", 1, "spec.duration"),
        ("windows.yaml", 21, "spec.timezone"),
    ]
    assert "5 problems" in str(InvalidInput(found))


def test_parse_duration_forms() -> None:
    assert catalog.parse_duration("90m") == timedelta(minutes=90)
    assert catalog.parse_duration("1h30m") == timedelta(minutes=90)
    assert catalog.parse_duration("2d") == timedelta(days=2)
    assert catalog.parse_duration("45s") == timedelta(seconds=45)
    assert catalog.parse_duration("PT4H") == timedelta(hours=4)
    assert catalog.parse_duration("P1DT2H") == timedelta(days=1, hours=2)
    assert catalog.parse_duration("P2W") == timedelta(weeks=2)
    for bad in ("", "P", "PT", "4", "h", "4H", "1m1h", "-1h", "P1Y"):
        with pytest.raises(ValueError, match="not a duration"):
            catalog.parse_duration(bad)


def test_window_datetimes_keep_their_offset() -> None:
    built = build(window(start="2026-11-26T00:00:00+01:00", end="2026-12-01T00:00:00+01:00"))
    start = built.windows["w"].spec.start
    assert isinstance(start, datetime)
    assert start.utcoffset() == timedelta(hours=1)
