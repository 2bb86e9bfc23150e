"""GET /api/v1/windows/check and GET /api/v1/calendar/ics over the sample platform."""

from __future__ import annotations

from datetime import UTC, datetime

import vobject
from fastapi.testclient import TestClient

from changegate import bootstrap
from changegate.adapters import ics
from changegate.domain import calendar
from tests.api.conftest import as_, assert_problem, fields

TENANT = "litware-tools"  # in Asia/Singapore, maintained on Saturdays 14:00-18:00Z


def test_check_blocked_by_the_year_end_freeze(client: TestClient) -> None:
    response = client.get(
        "/api/v1/windows/check",
        params={"tenant": TENANT, "at": "2026-12-20T10:00:00Z"},
        headers=as_("alice"),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["allowed"] is False
    assert body["tenant"] == TENANT
    assert body["at"] == "2026-12-20T10:00:00.000000Z"
    assert [d["window"] for d in body["deciding"]] == ["year-end-freeze"]
    assert body["deciding"][0]["type"] == "deny"
    assert body["override_by"] == "cab"
    assert body["next_allowed_at"] is not None
    assert set(body) == {
        "tenant",
        "at",
        "allowed",
        "deciding",
        "exempted",
        "next_allowed_at",
        "override_by",
        "reason",
    }


def test_check_equals_the_domain_decision(client: TestClient, app: bootstrap.App) -> None:
    at = datetime(2026, 12, 20, 10, tzinfo=UTC)
    response = client.get(
        "/api/v1/windows/check",
        params={"tenant": TENANT, "at": at.isoformat(), "type": "emergency"},
        headers=as_("alice"),
    )
    assert response.status_code == 200, response.text
    expected = calendar.decide(app.catalog(), TENANT, at, change_type="emergency").as_dict()
    assert response.json() == expected
    assert response.json()["exempted"] == ["year-end-freeze"]


def test_check_allowed_inside_the_maintenance_window(client: TestClient) -> None:
    response = client.get(
        "/api/v1/windows/check",
        params={"tenant": TENANT, "at": "2026-11-07T15:00:00+00:00"},
        headers=as_("alice"),
    )
    body = response.json()
    assert body["allowed"] is True, body
    assert [d["window"] for d in body["deciding"]] == ["maintenance-ap-southeast"]
    assert body["next_allowed_at"] is None and body["override_by"] is None


def test_check_refuses_bad_input_naming_the_query_field(client: TestClient) -> None:
    naive = client.get(
        "/api/v1/windows/check",
        params={"tenant": TENANT, "at": "2026-12-20T10:00:00"},
        headers=as_("alice"),
    )
    assert fields(assert_problem(naive, 422, "invalid-input")) == {"query.at"}
    bad_type = client.get(
        "/api/v1/windows/check",
        params={"tenant": TENANT, "at": "2026-12-20T10:00:00Z", "type": "sometimes"},
        headers=as_("alice"),
    )
    assert fields(assert_problem(bad_type, 422, "invalid-input")) == {"query.type"}
    unknown = client.get(
        "/api/v1/windows/check",
        params={"tenant": "nobody", "at": "2026-12-20T10:00:00Z"},
        headers=as_("alice"),
    )
    assert_problem(unknown, 404, "not-found")
    missing = client.get("/api/v1/windows/check", params={"tenant": TENANT}, headers=as_("alice"))
    assert missing.status_code == 422


def test_check_and_feed_need_a_person(client: TestClient) -> None:
    params = {"tenant": TENANT, "at": "2026-12-20T10:00:00Z"}
    assert_problem(client.get("/api/v1/windows/check", params=params), 401, "unauthenticated")
    feed = {"from": "2026-11-01T00:00:00Z", "to": "2026-11-15T00:00:00Z"}
    assert_problem(client.get("/api/v1/calendar/ics", params=feed), 401, "unauthenticated")
    stranger = client.get("/api/v1/calendar/ics", params=feed, headers=as_("mallory"))
    assert_problem(stranger, 403, "refused")


def test_the_tenant_feed_is_text_calendar(client: TestClient, app: bootstrap.App) -> None:
    start, end = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 31, tzinfo=UTC)
    response = client.get(
        "/api/v1/calendar/ics",
        params={"tenant": TENANT, "from": "2026-11-01T00:00:00Z", "to": "2026-12-31T00:00:00Z"},
        headers=as_("alice"),
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/calendar; charset=utf-8"
    assert 'filename="changegate-litware-tools.ics"' in response.headers["content-disposition"]
    parsed = vobject.readOne(response.text)
    assert parsed.contents["x-wr-calname"][0].value == f"changegate: {TENANT}"
    got = {
        (e.contents["x-changegate-window"][0].value, e.dtstart.value, e.dtend.value)
        for e in parsed.vevent_list
    }
    catalog = app.catalog()
    expected = {
        (o.window, o.start, o.end)
        for window in calendar.windows_for(catalog, TENANT)
        for o in calendar.occurrences(window, start, end, holidays=catalog.holiday_calendars)
    }
    assert got == expected
    # Without the DTSTAMP lines, the route serves exactly what the adapter makes.
    direct = ics.window_feed(catalog, tenant=TENANT, start=start, end=end)

    def unstamped(data: bytes) -> list[bytes]:
        return [line for line in data.split(b"\r\n") if not line.startswith(b"DTSTAMP")]

    assert unstamped(response.content) == unstamped(direct)


def test_the_platform_feed_has_every_window(client: TestClient, app: bootstrap.App) -> None:
    response = client.get(
        "/api/v1/calendar/ics",
        params={"from": "2026-11-01T00:00:00Z", "to": "2027-01-31T00:00:00Z"},
        headers=as_("alice"),
    )
    assert response.status_code == 200, response.text
    assert 'filename="changegate-platform.ics"' in response.headers["content-disposition"]
    parsed = vobject.readOne(response.text)
    names = {e.contents["x-changegate-window"][0].value for e in parsed.vevent_list}
    assert "year-end-freeze" in names
    assert any(name.startswith("black-friday-") for name in names)
    assert names <= set(app.catalog().windows)


def test_the_feed_refuses_bad_ranges(client: TestClient) -> None:
    naive = client.get(
        "/api/v1/calendar/ics",
        params={"from": "2026-11-01T00:00:00", "to": "2026-11-15T00:00:00Z"},
        headers=as_("alice"),
    )
    assert fields(assert_problem(naive, 422, "invalid-input")) == {"query.from"}
    inverted = client.get(
        "/api/v1/calendar/ics",
        params={"from": "2026-11-15T00:00:00Z", "to": "2026-11-01T00:00:00Z"},
        headers=as_("alice"),
    )
    assert fields(assert_problem(inverted, 422, "invalid-input")) == {"query.to"}
    unknown = client.get(
        "/api/v1/calendar/ics",
        params={"tenant": "nobody", "from": "2026-11-01T00:00:00Z", "to": "2026-11-15T00:00:00Z"},
        headers=as_("alice"),
    )
    assert_problem(unknown, 404, "not-found")


def test_the_routes_declare_catalog_read(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert spec["paths"]["/api/v1/windows/check"]["get"]["x-permission"] == "catalog:read"
    assert spec["paths"]["/api/v1/calendar/ics"]["get"]["x-permission"] == "catalog:read"
    responses = spec["paths"]["/api/v1/calendar/ics"]["get"]["responses"]
    assert "text/calendar" in responses["200"]["content"]
    assert {"CalendarDecisionOut", "WindowOccurrenceOut", "DecisionOut"} <= set(
        spec["components"]["schemas"]
    )
