"""Every failure is problem+json with the CLI's message: rules, conflicts, input, auth, limits."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient

from changegate import bootstrap
from changegate.api.app import create_app
from changegate.errors import InvalidTransition, StaleWrite
from changegate.services import changes as changes_service
from tests.api.conftest import PROBLEM, as_, assert_problem, create, drive, fields
from tests.conftest import ctx_for
from tests.factories import change_data


def _audit_count(client: TestClient) -> int:
    report = client.get("/api/v1/audit/verify", headers=as_("frank")).json()
    assert report["ok"] is True
    count: int = report["count"]
    return count


# --------------------------------------------------------------------------- lifecycle rules


def test_illegal_transition_is_409_with_allowed_states_and_the_cli_message(
    client: TestClient, app: bootstrap.App
) -> None:
    change = create(client)
    response = client.post(
        f"/api/v1/changes/{change['id']}/transitions",
        json={"to": "closed", "close_code": "successful"},
        headers=as_("bob"),
    )
    problem = assert_problem(response, 409, "invalid-transition")
    assert problem["allowed"] == ["assess", "canceled", "on-hold"]
    assert problem["current"] == "draft"
    assert problem["requested"] == "closed"
    with pytest.raises(InvalidTransition) as raised:
        changes_service.transition(
            app.engine,
            app.catalog(),
            ctx_for(app.catalog(), "bob"),
            change["id"],
            "closed",
            close_code="successful",
        )
    assert problem["detail"] == str(raised.value)
    assert problem["detail"] == (
        f"{change['id']} is draft; it cannot move to closed. "
        "Allowed next states: assess, canceled, on-hold"
    )


def test_submit_twice_and_resume_when_not_held_are_refused(client: TestClient) -> None:
    change = create(client)
    assert (
        client.post(f"/api/v1/changes/{change['id']}/submit", headers=as_("alice")).status_code
        == 200
    )
    again = client.post(f"/api/v1/changes/{change['id']}/submit", headers=as_("alice"))
    assert assert_problem(again, 409, "invalid-transition")["current"] == "assess"
    resume = client.post(f"/api/v1/changes/{change['id']}/resume", headers=as_("alice"))
    assert "not on-hold" in assert_problem(resume, 403, "refused")["detail"]


def test_closing_without_a_close_code_names_the_body_field(client: TestClient) -> None:
    change = drive(client, create(client), "review")
    response = client.post(
        f"/api/v1/changes/{change['id']}/transitions", json={"to": "closed"}, headers=as_("bob")
    )
    problem = assert_problem(response, 422, "invalid-input")
    assert fields(problem) == {"body.close_code"}


# --------------------------------------------------------------------------- concurrency


def test_stale_if_match_is_412_and_writes_nothing(client: TestClient) -> None:
    change = create(client)
    url = f"/api/v1/changes/{change['id']}"
    edited = client.patch(
        url, json={"title": "First edit"}, headers={**as_("alice"), "If-Match": '"1"'}
    )
    assert edited.status_code == 200, edited.text
    assert edited.headers["etag"] == '"2"'
    before = _audit_count(client)

    stale = client.patch(
        url, json={"title": "Second edit"}, headers={**as_("alice"), "If-Match": '"1"'}
    )
    problem = assert_problem(stale, 412, "precondition-failed")
    assert problem["expected_version"] == 1
    assert problem["current_version"] == 2
    assert problem["detail"] == str(StaleWrite(change["id"], 1, 2))

    stale_move = client.post(
        f"{url}/transitions", json={"to": "assess"}, headers={**as_("alice"), "If-Match": '"1"'}
    )
    assert_problem(stale_move, 412, "precondition-failed")

    after = client.get(url, headers=as_("alice")).json()
    assert after["version"] == 2
    assert after["title"] == "First edit"
    assert after["state"] == "draft"
    assert _audit_count(client) == before


def test_stale_body_version_is_409_and_writes_nothing(client: TestClient) -> None:
    change = create(client)
    url = f"/api/v1/changes/{change['id']}"
    assert (
        client.patch(
            url, json={"title": "First edit", "version": 1}, headers=as_("alice")
        ).status_code
        == 200
    )
    before = _audit_count(client)

    stale = client.patch(url, json={"title": "Second edit", "version": 1}, headers=as_("alice"))
    problem = assert_problem(stale, 409, "stale-write")
    assert problem["current_version"] == 2
    stale_move = client.post(
        f"{url}/transitions", json={"to": "assess", "version": 1}, headers=as_("alice")
    )
    assert_problem(stale_move, 409, "stale-write")
    stale_cancel = client.post(f"{url}/cancel", json={"version": 1}, headers=as_("alice"))
    assert_problem(stale_cancel, 409, "stale-write")

    after = client.get(url, headers=as_("alice")).json()
    assert (after["version"], after["title"], after["state"]) == (2, "First edit", "draft")
    assert _audit_count(client) == before


def test_if_match_and_body_version_must_agree_and_be_well_formed(client: TestClient) -> None:
    change = create(client)
    url = f"/api/v1/changes/{change['id']}"
    disagree = client.patch(
        url, json={"title": "x", "version": 2}, headers={**as_("alice"), "If-Match": '"1"'}
    )
    assert fields(assert_problem(disagree, 422, "invalid-input")) == {"body.version"}
    malformed = client.patch(
        url, json={"title": "x"}, headers={**as_("alice"), "If-Match": 'W/"1"'}
    )
    assert fields(assert_problem(malformed, 422, "invalid-input")) == {"header.If-Match"}
    not_a_number = client.patch(url, json={"title": "x", "version": "1"}, headers=as_("alice"))
    assert fields(assert_problem(not_a_number, 422, "invalid-input")) == {"body.version"}
    assert client.get(url, headers=as_("alice")).json()["version"] == 1


# --------------------------------------------------------------------------- invalid input


def test_wrong_types_unknown_fields_and_bad_enums_name_the_body_fields(
    client: TestClient,
) -> None:
    data = change_data(title=3, category="gardening", colour="blue")
    data["rollback_plan"] = {"steps": "revert", "tested": "yes"}
    response = client.post("/api/v1/changes", json=data, headers=as_("alice"))
    problem = assert_problem(response, 422, "invalid-input")
    assert fields(problem) == {
        "body.title",
        "body.category",
        "body.colour",
        "body.rollback_plan.tested",
    }
    messages = {e["field"]: e["message"] for e in problem["errors"]}
    assert messages["body.colour"] == "unknown field"
    assert "body.category" in problem["detail"]
    assert client.get("/api/v1/changes", headers=as_("alice")).json()["total"] == 0


def test_dangling_catalog_references_name_the_body_fields(client: TestClient) -> None:
    data = change_data(environment="moon", implementer="nobody")
    data["targets"] = {"tenants": ["no-such-tenant"], "clusters": ["no-such-cluster"]}
    response = client.post("/api/v1/changes", json=data, headers=as_("alice"))
    problem = assert_problem(response, 422, "invalid-input")
    assert fields(problem) == {
        "body.environment",
        "body.targets.tenants[0]",
        "body.targets.clusters[0]",
        "body.implementer",
    }
    assert all(e["file"] is None and e["line"] is None for e in problem["errors"])


def test_edit_errors_name_the_body_fields(client: TestClient) -> None:
    change = create(client)
    url = f"/api/v1/changes/{change['id']}"
    response = client.patch(
        url, json={"targets": {"tenants": ["ghost"]}, "shoe_size": 44}, headers=as_("alice")
    )
    problem = assert_problem(response, 422, "invalid-input")
    assert fields(problem) == {"body.shoe_size"}
    response = client.patch(url, json={"targets": {"tenants": ["ghost"]}}, headers=as_("alice"))
    assert fields(assert_problem(response, 422, "invalid-input")) == {"body.targets.tenants[0]"}
    empty = client.patch(url, json={"version": 1}, headers=as_("alice"))
    assert fields(assert_problem(empty, 422, "invalid-input")) == {"body"}


def test_material_edit_after_approval_returns_to_assess_and_is_refused_once_running(
    client: TestClient,
) -> None:
    change = drive(client, create(client), "scheduled")
    url = f"/api/v1/changes/{change['id']}"
    reopened = client.patch(url, json={"title": "Sneaky"}, headers=as_("alice"))
    assert reopened.status_code == 200, reopened.text
    assert reopened.json()["state"] == "assess"
    history = client.get(f"{url}/history", headers=as_("frank")).json()["items"]
    assert history[-1]["action"] == "change.edited"
    assert history[-1]["after"]["state"] == "assess"
    assert sorted(history[-1]["after"]["approvals_invalidated"]) == ["carol", "dave"]
    running = drive(client, reopened.json(), "implementing")
    response = client.patch(url, json={"title": "Too late"}, headers=as_("alice"))
    problem = assert_problem(response, 403, "refused")
    assert problem["detail"] == (
        f"{running['id']} is implementing; title cannot be edited now (approvals bind to "
        "them): file a new change"
    )


def test_fastapi_validation_errors_are_problems_naming_http_fields(client: TestClient) -> None:
    headers = as_("alice")
    limit = client.get("/api/v1/changes", params={"limit": 0}, headers=headers)
    assert fields(assert_problem(limit, 422, "invalid-input")) == {"query.limit"}
    not_int = client.get("/api/v1/changes", params={"limit": "many"}, headers=headers)
    assert fields(assert_problem(not_int, 422, "invalid-input")) == {"query.limit"}
    state = client.get("/api/v1/changes", params={"state": ["draft", "sleeping"]}, headers=headers)
    assert fields(assert_problem(state, 422, "invalid-input")) == {"query.state[1]"}

    change = create(client)
    url = f"/api/v1/changes/{change['id']}/transitions"
    bad_enum = client.post(url, json={"to": "nirvana"}, headers=headers)
    assert fields(assert_problem(bad_enum, 422, "invalid-input")) == {"body.to"}
    extra = client.post(url, json={"to": "assess", "when": "now"}, headers=headers)
    problem = assert_problem(extra, 422, "invalid-input")
    assert problem["errors"] == [
        {"file": None, "line": None, "field": "body.when", "message": "unknown field"}
    ]
    string_version = client.post(url, json={"to": "assess", "version": "1"}, headers=headers)
    assert fields(assert_problem(string_version, 422, "invalid-input")) == {"body.version"}
    missing = client.post(url, json={}, headers=headers)
    assert fields(assert_problem(missing, 422, "invalid-input")) == {"body.to"}


def test_malformed_json_is_a_422_problem(client: TestClient) -> None:
    response = client.post(
        "/api/v1/changes",
        content=b'{"title": ',
        headers={**as_("alice"), "Content-Type": "application/json"},
    )
    problem = assert_problem(response, 422, "invalid-input")
    assert fields(problem) == {"body"}
    assert "invalid JSON" in problem["detail"]
    not_object = client.post("/api/v1/changes", json=["a", "list"], headers=as_("alice"))
    assert fields(assert_problem(not_object, 422, "invalid-input")) == {"body"}


def _post_raw(client: TestClient, url: str, raw: bytes, person: str = "alice") -> Any:
    headers = {**as_(person), "Content-Type": "application/json"}
    return client.post(url, content=raw, headers=headers)


def _patch_raw(client: TestClient, url: str, raw: bytes, person: str = "alice") -> Any:
    headers = {**as_(person), "Content-Type": "application/json"}
    return client.patch(url, content=raw, headers=headers)


def _errors(problem: dict[str, Any]) -> list[tuple[str, str]]:
    return [(e["field"], e["message"]) for e in problem["errors"]]


def test_duplicate_keys_at_any_depth_are_refused_and_nothing_is_written(
    client: TestClient,
) -> None:
    before = _audit_count(client)
    spec = json.dumps(change_data())
    top = _post_raw(client, "/api/v1/changes", (spec[:-1] + ', "title": "b"}').encode())
    problem = assert_problem(top, 422, "invalid-input")
    assert _errors(problem) == [("body.title", "duplicate key")]
    assert problem["detail"] == "body.title: duplicate key"

    nested = (
        b'{"title": "t", "category": "module-update", "environment": "prod",'
        b' "targets": {"tenants": ["a"], "selectors": [{"tier": "gold", "tier": "silver"}],'
        b' "tenants": ["b"]}, "title": "u"}'
    )
    problem = assert_problem(_post_raw(client, "/api/v1/changes", nested), 422, "invalid-input")
    assert _errors(problem) == [  # in document order, each key once
        ("body.title", "duplicate key"),
        ("body.targets.tenants", "duplicate key"),
        ("body.targets.selectors[0].tier", "duplicate key"),
    ]
    assert client.get("/api/v1/changes", headers=as_("alice")).json()["total"] == 0
    assert _audit_count(client) == before

    change = create(client)
    url = f"/api/v1/changes/{change['id']}"
    before = _audit_count(client)
    patches = {
        b'{"targets": {"tenants": [], "tenants": ["acme"]}}': "body.targets.tenants",
        b'{"title": "New title", "version": 1, "version": 1}': "body.version",
        b'{"title": "a", "title": "a"}': "body.title",  # even when the values agree
    }
    for raw, field in patches.items():
        problem = assert_problem(_patch_raw(client, url, raw), 422, "invalid-input")
        assert _errors(problem) == [(field, "duplicate key")]
    moved = _post_raw(client, f"{url}/transitions", b'{"to": "assess", "to": "canceled"}')
    assert _errors(assert_problem(moved, 422, "invalid-input")) == [("body.to", "duplicate key")]
    held = _post_raw(client, f"{url}/hold", b'{"reason": "a", "reason": "b"}')
    assert _errors(assert_problem(held, 422, "invalid-input")) == [("body.reason", "duplicate key")]
    comment = _post_raw(client, f"{url}/comments", b'{"body": "a", "body": "b"}')
    problem = assert_problem(comment, 422, "invalid-input")
    assert _errors(problem) == [("body.body", "duplicate key")]

    after = client.get(url, headers=as_("alice")).json()
    assert (after["version"], after["state"], after["title"]) == (1, "draft", change["title"])
    assert client.get(f"{url}/comments", headers=as_("alice")).json()["items"] == []
    assert _audit_count(client) == before


def test_many_duplicate_keys_are_counted_not_listed(client: TestClient) -> None:
    raw = b"{" + b", ".join(b'"k%d": 1, "k%d": 2' % (i, i) for i in range(150)) + b"}"
    problem = assert_problem(_post_raw(client, "/api/v1/changes", raw), 422, "invalid-input")
    assert len(problem["errors"]) == 101
    assert problem["errors"][0] == {
        "file": None,
        "line": None,
        "field": "body.k0",
        "message": "duplicate key",
    }
    assert problem["errors"][-1]["message"] == "... and 50 more problems"


def test_a_body_that_is_not_utf8_is_a_422_and_writes_nothing(client: TestClient) -> None:
    before = _audit_count(client)
    spec = json.dumps(change_data())
    latin1 = spec[:-1].encode() + b', "justification": "Caf' + bytes([0xE9]) + b'"}'
    response = _post_raw(client, "/api/v1/changes", latin1)
    problem = assert_problem(response, 422, "invalid-input")
    offset = latin1.index(bytes([0xE9]))
    assert _errors(problem) == [("body", f"not valid UTF-8: byte 0xe9 at offset {offset}")]
    utf16 = _post_raw(client, "/api/v1/changes", spec.encode("utf-16"))
    assert "not valid UTF-8" in assert_problem(utf16, 422, "invalid-input")["detail"]
    assert client.get("/api/v1/changes", headers=as_("alice")).json()["total"] == 0
    assert _audit_count(client) == before

    # A UTF-8 byte order mark is allowed, as in change files.
    with_bom = _post_raw(client, "/api/v1/changes", b"\xef\xbb\xbf" + spec.encode())
    assert with_bom.status_code == 201, with_bom.text
    url = with_bom.headers["location"]
    before = _audit_count(client)
    for raw in (b'{"title": "\xff"}', b'{"ti\xc3tle": "x"}', b'\xfe\xff{"title": "x"}'):
        assert_problem(_patch_raw(client, url, raw), 422, "invalid-input")
    cancel = _post_raw(client, f"{url}/cancel", b'{"reason": "\x80"}')
    assert fields(assert_problem(cancel, 422, "invalid-input")) == {"body"}
    after = client.get(url, headers=as_("alice")).json()
    assert (after["version"], after["state"]) == (1, "draft")
    assert _audit_count(client) == before


def test_unpaired_surrogates_are_refused_naming_the_field_not_a_500(client: TestClient) -> None:
    change = create(client)
    url = f"/api/v1/changes/{change['id']}"
    before = _audit_count(client)
    key = _patch_raw(client, url, b'{"x\\ud800": "x"}')
    problem = assert_problem(key, 422, "invalid-input")
    assert _errors(problem) == [
        (
            "body.x\\ud800",
            "unpaired UTF-16 surrogates (\\ud800-\\udfff) are not allowed in text (in a key)",
        )
    ]
    value = _patch_raw(client, url, b'{"test_evidence": ["ok", "\\udc00"]}')
    assert fields(assert_problem(value, 422, "invalid-input")) == {"body.test_evidence[1]"}
    reason = _post_raw(client, f"{url}/hold", b'{"reason": "\\ud83d"}')
    assert fields(assert_problem(reason, 422, "invalid-input")) == {"body.reason"}
    assert client.get(url, headers=as_("alice")).json()["version"] == 1
    assert _audit_count(client) == before
    # A surrogate pair is one character, and fine.
    emoji = _patch_raw(client, url, b'{"title": "Ship it \\ud83d\\ude80"}')
    assert emoji.status_code == 200, emoji.text
    assert emoji.json()["title"] == "Ship it \U0001f680"


def test_json_that_python_would_stretch_is_invalid_json(client: TestClient) -> None:
    for raw, reason in (
        (b'{"title": NaN}', "NaN is not a JSON value"),
        (b'{"rollback_plan": {"tested": -Infinity}}', "-Infinity is not a JSON value"),
        (b'{"version": ' + b"9" * 5000 + b"}", "digits"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ):
        problem = assert_problem(_post_raw(client, "/api/v1/changes", raw), 422, "invalid-input")
        assert fields(problem) == {"body"}
        assert problem["detail"].startswith("body: invalid JSON: ")
        assert reason in problem["detail"]


def test_malformed_change_id_names_the_path_parameter(client: TestClient) -> None:
    response = client.get("/api/v1/changes/CHANGE-ONE", headers=as_("alice"))
    problem = assert_problem(response, 422, "invalid-input")
    assert fields(problem) == {"path.change_id"}


# --------------------------------------------------------------------------- not found


def test_unknown_route_and_unknown_change_are_404_problems(client: TestClient) -> None:
    route = assert_problem(client.get("/api/v1/nothing-here"), 404, "not-found")
    assert route["detail"] == "no such resource: /api/v1/nothing-here"
    change = client.get("/api/v1/changes/CHG-999", headers=as_("alice"))
    assert assert_problem(change, 404, "not-found")["detail"] == "CHG-999 does not exist"
    history = client.get("/api/v1/changes/CHG-999/history", headers=as_("alice"))
    assert_problem(history, 404, "not-found")
    moved = client.post("/api/v1/changes/CHG-999/submit", headers=as_("alice"))
    assert_problem(moved, 404, "not-found")


def test_wrong_method_is_a_405_problem(client: TestClient) -> None:
    response = client.delete("/api/v1/changes", headers=as_("alice"))
    problem = assert_problem(response, 405, "method-not-allowed")
    assert "GET" in response.headers["allow"]
    assert "DELETE is not allowed" in problem["detail"]


# --------------------------------------------------------------------------- auth


def test_missing_person_is_401_and_unknown_person_is_403(client: TestClient) -> None:
    missing = client.get("/api/v1/changes")
    problem = assert_problem(missing, 401, "unauthenticated")
    assert "X-Changegate-User" in problem["detail"]
    assert missing.headers["www-authenticate"].startswith("X-Changegate-User")
    unknown = client.get("/api/v1/changes", headers=as_("mallory"))
    assert "unknown person 'mallory'" in assert_problem(unknown, 403, "refused")["detail"]
    empty = client.post("/api/v1/changes", json=change_data(), headers=as_(""))
    assert_problem(empty, 401, "unauthenticated")


def test_auditor_cannot_create_or_move_but_reads_everything(client: TestClient) -> None:
    refused = client.post("/api/v1/changes", json=change_data(), headers=as_("frank"))
    problem = assert_problem(refused, 403, "refused")
    assert problem["detail"] == "frank (roles: auditor) may not changes:create"
    assert "requester" in problem["override_by"]

    change = create(client)
    moved = client.post(f"/api/v1/changes/{change['id']}/submit", headers=as_("frank"))
    assert_problem(moved, 403, "refused")
    commented = client.post(
        f"/api/v1/changes/{change['id']}/comments", json={"body": "hm"}, headers=as_("frank")
    )
    assert_problem(commented, 403, "refused")

    assert client.get("/api/v1/audit", headers=as_("frank")).status_code == 200
    assert client.get("/api/v1/audit/verify", headers=as_("frank")).status_code == 200
    assert client.get(f"/api/v1/changes/{change['id']}", headers=as_("frank")).status_code == 200
    assert client.get("/api/v1/catalog", headers=as_("frank")).status_code == 200


def test_requester_cannot_read_the_audit_trail(client: TestClient) -> None:
    response = client.get("/api/v1/audit", headers=as_("alice"))
    assert "may not audit:read" in assert_problem(response, 403, "refused")["detail"]
    export = client.get("/api/v1/audit/export", headers=as_("alice"))
    assert_problem(export, 403, "refused")


# --------------------------------------------------------------------------- internal errors


def test_unexpected_errors_are_500_problems_without_internals(
    api: FastAPI, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def explode(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret connection string postgresql://u:hunter2@db/x")

    monkeypatch.setattr(changes_service, "list_changes", explode)
    with TestClient(api, raise_server_exceptions=False) as client:
        response = client.get(
            "/api/v1/changes", headers={**as_("alice"), "X-Request-Id": "trace-500"}
        )
    problem = assert_problem(response, 500, "internal")
    assert "hunter2" not in response.text
    assert "RuntimeError" not in response.text
    assert problem["request_id"] == "trace-500"
    assert response.headers["x-request-id"] == "trace-500"
    assert any("trace-500" in record.getMessage() for record in caplog.records)


def test_database_outage_is_a_retryable_503_without_internals(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreachable(*args: Any, **kwargs: Any) -> Any:
        raise sa.exc.OperationalError(
            "SELECT secret_table", {}, Exception("connection to db.internal refused")
        )

    monkeypatch.setattr(changes_service, "get", unreachable)
    response = client.get("/api/v1/changes/CHG-1", headers=as_("alice"))
    problem = assert_problem(response, 503, "temporary")
    assert problem["detail"] == "the database is unavailable; retry later"
    assert response.headers["retry-after"] == "5"
    assert "db.internal" not in response.text
    assert "secret_table" not in response.text


# --------------------------------------------------------------------------- body size


LIMIT = 2048


@pytest.fixture
def small_api(app: bootstrap.App) -> FastAPI:
    """The API with a 2 KiB body limit."""
    app.settings.max_body_bytes = LIMIT
    return create_app(app)


def test_body_over_the_limit_with_content_length_is_413(small_api: FastAPI) -> None:
    data = change_data(justification="x" * (LIMIT + 10))
    with TestClient(small_api) as client:
        response = client.post("/api/v1/changes", json=data, headers=as_("alice"))
        problem = assert_problem(response, 413, "payload-too-large")
        assert fields(problem) == {"body"}
        assert str(LIMIT) in problem["detail"]
        assert response.headers["x-request-id"]
        assert client.get("/api/v1/changes", headers=as_("alice")).json()["total"] == 0


def test_chunked_body_over_the_limit_is_413(small_api: FastAPI) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"title": "big", "justification": "'
        for _ in range(10):
            yield b"y" * 512
        yield b'"}'

    with TestClient(small_api) as client:
        response = client.post(
            "/api/v1/changes",
            content=chunks(),
            headers={**as_("alice"), "Content-Type": "application/json"},
        )
        assert "content-length" not in response.request.headers
        assert response.request.headers["transfer-encoding"] == "chunked"
        assert_problem(response, 413, "payload-too-large")
        assert client.get("/api/v1/changes", headers=as_("alice")).json()["total"] == 0


def test_streamed_chunks_are_counted_at_the_asgi_level(small_api: FastAPI) -> None:
    """Many small http.request messages without Content-Length, as a real server sends them."""
    messages: list[dict[str, Any]] = []
    pieces = [b'{"title": "', *([b"z" * 300] * 10), b'"}']

    async def receive() -> dict[str, Any]:
        if pieces:
            return {"type": "http.request", "body": pieces.pop(0), "more_body": bool(pieces)}
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/v1/changes",
        "raw_path": b"/api/v1/changes",
        "root_path": "",
        "query_string": b"",
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 1234),
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", b"application/json"),
            (b"x-changegate-user", b"alice"),
        ],
    }
    asyncio.run(small_api(scope, receive, send))
    start = next(m for m in messages if m["type"] == "http.response.start")
    assert start["status"] == 413
    assert (b"content-type", PROBLEM.encode()) in start["headers"]
    assert sum(1 for m in messages if m["type"] == "http.response.start") == 1


def test_body_within_the_limit_passes(small_api: FastAPI) -> None:
    with TestClient(small_api) as client:
        response = client.post("/api/v1/changes", json=change_data(), headers=as_("alice"))
        assert response.status_code == 201
