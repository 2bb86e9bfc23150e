"""Property: no sequence of approvals, rejections and edits over HTTP lets the requester or
the implementer approve, counts a person twice, or authorizes below quorum (on both backends).

The same examples as tests/integration/test_approvals_properties.py (its module docstring
lists the steps and the invariants, and what each catches), driven through the HTTP API
instead of the services: every step is a request (`POST /changes`, `/submit`,
`/assessments`, `/transitions`, `PATCH /changes/{id}`, `POST /approvals`, `/reject`), every
read of the decision is `GET /changes/{id}/approvals`, and the chain is verified with
`GET /audit/verify`. Only the oracle reads the database directly (the `approvals` and
`audit_events` tables), so the invariants are checked against what is stored, not against
what the API says about it. Problems come back as the service's errors (403 refused,
409 invalid-transition or conflict, 422 invalid input), each with its status checked;
the decision, the approvals document and the changes are checked against their response
models too. The clock is the server's: nothing expires here (the service-level test lets
time pass).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from changegate import bootstrap
from changegate.api import schemas
from changegate.api.routes.approvals import ApprovalsOut, DecisionOut
from changegate.domain import catalog as catalog_model
from changegate.errors import Conflict, InvalidInput, InvalidTransition, Refused
from tests.api.conftest import PROBLEM, as_
from tests.integration.test_approvals_properties import (
    AUDITOR,
    Json,
    Run,
    examples,
    policy_platform,
)

CHANGES = "/api/v1/changes"


@pytest.fixture(scope="module")
def sample_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This module's platform: the sample with the staging quorum policy."""
    return policy_platform(tmp_path_factory)


@dataclass
class ApiDoor:
    """The HTTP API, acting as catalog people through the X-Changegate-User header."""

    client: TestClient

    def _answer(self, response: Any, status: int) -> Json:
        """The JSON of a success of that status, or the service's error for a problem."""
        if response.status_code == status:
            body: Json = response.json()
            return body
        assert response.headers["content-type"].startswith(PROBLEM), response.text
        problem = response.json()
        slug = problem["type"].rsplit("/", 1)[-1]
        expected = {"refused": 403, "invalid-transition": 409, "conflict": 409}
        assert response.status_code == expected.get(slug, 422), response.text
        if slug == "refused":
            raise Refused(problem["detail"], override_by=problem.get("override_by"))
        if slug == "invalid-transition":
            raise InvalidTransition(
                "", problem["current"], problem["requested"], problem["allowed"]
            )
        if slug == "conflict":
            raise Conflict(problem["detail"])
        assert slug == "invalid-input", response.text
        raise InvalidInput(problem["detail"])

    def _change(self, response: Any, status: int = 200) -> Json:
        body = self._answer(response, status)
        schemas.ChangeOut.model_validate(body)
        return body

    def create(self, person: str, data: Json) -> Json:
        return self._change(self.client.post(CHANGES, json=data, headers=as_(person)), 201)

    def get(self, change_id: str) -> Json:
        return self._change(self.client.get(f"{CHANGES}/{change_id}", headers=as_(AUDITOR)))

    def submit(self, person: str, change_id: str) -> Json:
        url = f"{CHANGES}/{change_id}/submit"
        return self._change(self.client.post(url, headers=as_(person)))

    def assess(self, person: str, change_id: str) -> Json:
        url = f"{CHANGES}/{change_id}/assessments"
        return self._answer(self.client.post(url, headers=as_(person)), 201)

    def transition(self, person: str, change_id: str, to: str) -> Json:
        url = f"{CHANGES}/{change_id}/transitions"
        return self._change(self.client.post(url, json={"to": to}, headers=as_(person)))

    def edit(self, person: str, change_id: str, patch: Json) -> Json:
        url = f"{CHANGES}/{change_id}"
        return self._change(self.client.patch(url, json=patch, headers=as_(person)))

    def approve(self, person: str, change_id: str, role: str | None, tenant: str | None) -> Json:
        narrowed = {key: value for key, value in (("role", role), ("tenant", tenant)) if value}
        url = f"{CHANGES}/{change_id}/approvals"
        decision = self._answer(self.client.post(url, json=narrowed, headers=as_(person)), 201)
        DecisionOut.model_validate(decision)
        return decision

    def reject(self, person: str, change_id: str, comment: str | None) -> Json:
        body = {} if comment is None else {"comment": comment}
        url = f"{CHANGES}/{change_id}/reject"
        return self._change(self.client.post(url, json=body, headers=as_(person)))

    def approvals(self, change_id: str) -> Json | None:
        response = self.client.get(f"{CHANGES}/{change_id}/approvals", headers=as_(AUDITOR))
        if response.status_code == 403:
            # Assessed before its last edit: no requirement, so nothing to authorize it.
            assert response.json()["type"].endswith("/refused"), response.text
            assert "assess" in response.json()["detail"], response.text
            return None
        body = self._answer(response, 200)
        ApprovalsOut.model_validate(body)
        return body

    def audit_ok(self) -> bool:
        response = self.client.get("/api/v1/audit/verify", headers=as_(AUDITOR))
        return bool(self._answer(response, 200)["ok"])

    def now(self) -> datetime:
        return datetime.now(UTC)


def test_no_sequence_over_http_breaks_separation_of_duties_or_quorum(
    client: TestClient,
    app: bootstrap.App,
    catalog: catalog_model.Catalog,
    database_url: str,
) -> None:
    """Approvals, rejections, edits, resubmissions and scheduling attempts as HTTP requests:
    after every step the invariants of tests/integration/test_approvals_properties.py hold,
    checked against the database. Each example files a new change in the same database."""
    door = ApiDoor(client)

    @settings(max_examples=examples(database_url, sqlite=60, postgresql=30), deadline=None)
    @given(data=st.data())
    def sequences(data: st.DataObject) -> None:
        Run(door, app.engine, catalog, data).run()

    sequences()
