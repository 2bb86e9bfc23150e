"""API fixtures: the FastAPI app over the parametrized `app`, a client, and small helpers."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from fastapi import FastAPI
from starlette.exceptions import StarletteDeprecationWarning

with warnings.catch_warnings():
    # Starlette's TestClient wants httpx2 (a dev dependency); with only httpx it still works
    # but warns once, at import. Only that warning, only here.
    warnings.filterwarnings(
        "ignore", "Using `httpx` with `starlette.testclient`", StarletteDeprecationWarning
    )
    from fastapi.testclient import TestClient

from changegate import bootstrap
from changegate.api.app import create_app
from tests.factories import change_data

PROBLEM = "application/problem+json"


def as_(person: str) -> dict[str, str]:
    """Headers acting as a sample-platform person."""
    return {"X-Changegate-User": person}


@pytest.fixture
def api(app: bootstrap.App) -> FastAPI:
    return create_app(app)


@pytest.fixture
def client(api: FastAPI) -> Iterator[TestClient]:
    with TestClient(api) as test_client:
        yield test_client


def create(client: TestClient, person: str = "alice", **overrides: Any) -> dict[str, Any]:
    """File a change through the API and return its JSON."""
    response = client.post("/api/v1/changes", json=change_data(**overrides), headers=as_(person))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def move(
    client: TestClient, change: dict[str, Any], to: str, person: str, **extra: Any
) -> dict[str, Any]:
    """Transition a change, carrying the version it had; returns the moved change."""
    response = client.post(
        f"/api/v1/changes/{change['id']}/transitions",
        json={"to": to, "version": change["version"], **extra},
        headers=as_(person),
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def assert_problem(response: Any, status: int, slug: str) -> dict[str, Any]:
    """The response is a problem+json document of that status and type; returns it."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["type"] == f"https://changegate.dev/problems/{slug}"
    assert body["status"] == status
    assert body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    assert body["instance"] == response.request.url.path
    return body


def fields(problem: dict[str, Any]) -> set[str]:
    """The field names a 422 problem lists."""
    return {error["field"] for error in problem["errors"]}


def approve_until_authorized(client: TestClient, change_id: str) -> dict[str, Any]:
    """Approve through the API as the first candidate of each missing need until the
    decision is authorized; returns the last decision."""
    url = f"/api/v1/changes/{change_id}/approvals"
    decision: dict[str, Any] = client.get(url, headers=as_("frank")).json()["decision"]
    while not decision["authorized"]:
        need = next(n for n in decision["needs"] if not n["satisfied"])
        assert need["candidates"], decision["reason"]
        body = {"tenant": need["tenant"]} if need["tenant"] else {"role": need["role"]}
        response = client.post(url, json=body, headers=as_(need["candidates"][0]))
        assert response.status_code == 201, response.text
        decision = response.json()
    return decision


def start_at_first_wave(client: TestClient, change: dict[str, Any], mover: str) -> Any:
    """Move a scheduled change to implementing with the App's clock at its first wave's
    start, when the calendar allows it (the clock is put back afterwards)."""
    url = f"/api/v1/changes/{change['id']}/schedule"
    waves = client.get(url, headers=as_(mover)).json()["waves"]
    start = datetime.fromisoformat(waves[0]["start"])
    app = client.app.state.changegate  # type: ignore[attr-defined]
    clock = app.clock
    app.clock = lambda: start
    try:
        return move(client, change, "implementing", mover)
    finally:
        app.clock = clock


FORWARD = ("draft", "assess", "authorize", "scheduled", "implementing", "review", "closed")


def drive(client: TestClient, change: dict[str, Any], target: str, mover: str = "bob") -> Any:
    """Move a change forward through the API until it is in `target`: submit, assess (unless
    its latest assessment is of its content), authorize, approve, schedule, implement,
    review, close; returns the change."""
    change_id = change["id"]
    while change["state"] != target:
        state = change["state"]
        if state == "draft":
            response = client.post(f"/api/v1/changes/{change_id}/submit", headers=as_("alice"))
            assert response.status_code == 200, response.text
            change = response.json()
            continue
        if state == "assess":
            latest = client.get(f"/api/v1/changes/{change_id}/assessment", headers=as_(mover))
            if latest.status_code != 200 or (
                latest.json()["content_hash"] != change["content_hash"]
            ):
                url = f"/api/v1/changes/{change_id}/assessments"
                assessed = client.post(url, headers=as_(mover))
                assert assessed.status_code == 201, assessed.text
            change = client.get(f"/api/v1/changes/{change_id}", headers=as_(mover)).json()
            if change["state"] != "assess":
                continue
        if state == "authorize":
            approve_until_authorized(client, change_id)
        if state == "scheduled":
            change = start_at_first_wave(client, change, mover)
            continue
        following = FORWARD[FORWARD.index(state) + 1]
        extra = {"close_code": "successful"} if following == "closed" else {}
        change = move(client, change, following, mover, **extra)
    return change
