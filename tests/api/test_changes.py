"""Changes over HTTP: create, read, edit, list with filters and pages, actions, comments."""

from __future__ import annotations

from fastapi.testclient import TestClient

from changegate.domain import catalog as catalog_model
from tests.api.conftest import as_, assert_problem, create, move


def _prod_tenants(catalog: catalog_model.Catalog, count: int) -> list[str]:
    found = [t.id for t in catalog.tenants.values() if t.spec.environment == "prod"]
    assert len(found) >= count
    return found[:count]


def test_create_returns_201_location_etag_and_the_change(client: TestClient) -> None:
    from tests.factories import change_data

    response = client.post("/api/v1/changes", json=change_data(), headers=as_("alice"))
    assert response.status_code == 201
    body = response.json()
    assert response.headers["location"] == f"/api/v1/changes/{body['id']}"
    assert response.headers["etag"] == '"1"'
    assert response.headers["content-type"] == "application/json"
    assert body["title"] == change_data()["title"]
    assert body["targets"]["selectors"] == [
        {"tier": "gold", "odoo_series": None, "deployment_model": None, "cluster": None}
    ]
    assert body["content_hash"].startswith("sha256:")
    assert body["catalog_digest"]
    follow = client.get(response.headers["location"], headers=as_("bob"))
    assert follow.json() == body
    assert (
        client.get(f"/api/v1/changes/{body['id'].removeprefix('CHG-')}", headers=as_("bob")).json()
        == body
    )


def test_patch_edits_a_draft_and_bumps_the_version(client: TestClient) -> None:
    change = create(client)
    url = f"/api/v1/changes/{change['id']}"
    response = client.patch(
        url,
        json={"title": "Better title", "test_evidence": ["run 1"]},
        headers={**as_("alice"), "If-Match": '"1"'},
    )
    assert response.status_code == 200, response.text
    edited = response.json()
    assert edited["title"] == "Better title"
    assert edited["test_evidence"] == ["run 1"]
    assert edited["version"] == 2
    assert edited["content_hash"] != change["content_hash"]
    history = client.get(f"{url}/history", headers=as_("alice")).json()["items"]
    assert history[-1]["action"] == "change.edited"
    assert history[-1]["after"]["title"] == "Better title"


def test_patch_resending_unchanged_material_fields_after_submit_writes_nothing(
    client: TestClient,
) -> None:
    change = create(client)
    url = f"/api/v1/changes/{change['id']}"
    submitted = client.post(f"{url}/submit", headers=as_("alice")).json()
    history = client.get(f"{url}/history", headers=as_("alice")).json()["items"]
    same = {k: change[k] for k in ("title", "targets", "rollback_plan", "planned_start")}
    response = client.patch(url, json={**same, "version": 2}, headers=as_("alice"))
    assert response.status_code == 200, response.text
    assert response.json() == submitted
    assert response.headers["etag"] == '"2"'
    assert client.get(f"{url}/history", headers=as_("alice")).json()["items"] == history
    # With a non-material change alongside, only that one is written.
    evidence = client.patch(
        url, json={**same, "test_evidence": ["run 7"]}, headers=as_("alice")
    ).json()
    assert (evidence["version"], evidence["test_evidence"]) == (3, ["run 7"])
    last = client.get(f"{url}/history", headers=as_("alice")).json()["items"][-1]
    assert set(last["after"]) == {"test_evidence", "version", "content_hash"}


def test_transitions_endpoint_lists_allowed_next(client: TestClient) -> None:
    change = create(client, type="emergency", category="security-patch")
    response = client.get(f"/api/v1/changes/{change['id']}/transitions", headers=as_("bob"))
    assert response.status_code == 200
    assert response.headers["etag"] == '"1"'
    assert response.json() == {
        "id": change["id"],
        "state": "draft",
        "held_from": None,
        "version": 1,
        "allowed_next": ["assess", "authorize", "canceled", "on-hold"],
    }
    submitted = client.post(
        f"/api/v1/changes/{change['id']}/submit", json={"version": 1}, headers=as_("alice")
    )
    assert submitted.json()["state"] == "authorize"


def test_hold_resume_and_cancel_actions(client: TestClient) -> None:
    change = create(client)
    url = f"/api/v1/changes/{change['id']}"
    change = move(client, change, "assess", "alice")
    held = client.post(
        f"{url}/hold",
        json={"reason": "waiting for vendor"},
        headers={**as_("carol"), "If-Match": '"2"'},
    )
    assert held.status_code == 200, held.text
    assert held.json()["state"] == "on-hold"
    assert held.json()["held_from"] == "assess"
    assert held.json()["allowed_next"] == ["assess", "canceled"]
    resumed = client.post(f"{url}/resume", headers=as_("carol"))
    assert resumed.json()["state"] == "assess"
    canceled = client.post(
        f"{url}/cancel", json={"version": 4, "reason": "superseded"}, headers=as_("alice")
    )
    assert canceled.json()["state"] == "canceled"
    events = client.get(f"{url}/history", headers=as_("alice")).json()["items"]
    assert events[2]["after"]["reason"] == "waiting for vendor"
    assert events[-1]["after"] == {"state": "canceled", "version": 5, "reason": "superseded"}


def test_a_plain_move_back_to_draft_is_a_withdrawal_not_a_rejection(client: TestClient) -> None:
    # Rejecting is the approval rules' business (POST .../reject, with a comment); moving a
    # change back to draft by a transition is recorded as what it is: a withdrawal.
    change = create(client)
    change = move(client, change, "assess", "alice")
    change = move(client, change, "draft", "alice", reason="needs a tested rollback")
    events = client.get(f"/api/v1/changes/{change['id']}/history", headers=as_("carol")).json()[
        "items"
    ]
    assert events[-1]["action"] == "change.withdrawn"
    assert events[-1]["after"]["pending_approvals_canceled"] is True


def test_list_pages_with_next_links(client: TestClient) -> None:
    ids = [create(client, title=f"Change number {n}")["id"] for n in range(5)]
    first = client.get("/api/v1/changes", params={"limit": 2}, headers=as_("bob"))
    assert first.status_code == 200
    page = first.json()
    assert page["total"] == 5
    assert (page["limit"], page["offset"]) == (2, 0)
    assert [c["id"] for c in page["items"]] == ids[::-1][:2]
    assert page["items"][0]["allowed_next"] == ["assess", "canceled", "on-hold"]
    seen = [c["id"] for c in page["items"]]
    while page["next"]:
        page = client.get(page["next"], headers=as_("bob")).json()
        seen += [c["id"] for c in page["items"]]
    assert seen == ids[::-1]
    assert page["offset"] == 4
    beyond = client.get("/api/v1/changes?offset=10", headers=as_("bob")).json()
    assert (beyond["items"], beyond["total"], beyond["next"]) == ([], 5, None)


def test_list_filters_by_state_tenant_and_text(
    client: TestClient, catalog: catalog_model.Catalog
) -> None:
    one, two = _prod_tenants(catalog, 2)
    a = create(client, title="Patch Redis", targets={"tenants": [one]})
    b = create(client, title="Upgrade Traefik", targets={"tenants": [one, two]})
    c = create(
        client, title="Rotate secrets", targets={"tenants": [two]}, category="secrets-rotation"
    )
    move(client, b, "assess", "alice")
    cancelled = move(client, c, "assess", "alice")
    move(client, cancelled, "canceled", "alice")

    def ids(**params: object) -> list[str]:
        response = client.get("/api/v1/changes", params=params, headers=as_("bob"))
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["items"]]

    assert ids(state="draft") == [a["id"]]
    assert ids(state=["assess", "canceled"]) == [c["id"], b["id"]]
    assert ids(tenant=one) == [b["id"], a["id"]]
    assert ids(tenant=two, state="assess") == [b["id"]]
    assert ids(tenant="no-such-tenant") == []
    assert ids(category="secrets-rotation") == [c["id"]]
    assert ids(q="traefik") == [b["id"]]
    assert ids(requester="alice", type="normal", environment="prod") == [c["id"], b["id"], a["id"]]
    assert ids(requester="bob") == []
    paged = client.get(
        "/api/v1/changes", params={"state": ["assess", "canceled"], "limit": 1}, headers=as_("bob")
    ).json()
    assert paged["next"].count("state=") == 2
    assert [i["id"] for i in client.get(paged["next"], headers=as_("bob")).json()["items"]] == [
        b["id"]
    ]


def test_comments(client: TestClient) -> None:
    change = create(client)
    url = f"/api/v1/changes/{change['id']}/comments"
    assert client.get(url, headers=as_("bob")).json() == {"items": []}
    posted = client.post(url, json={"body": "  Looks fine to me.  "}, headers=as_("bob"))
    assert posted.status_code == 201, posted.text
    comment = posted.json()
    assert comment["author"] == "bob"
    assert comment["body"] == "Looks fine to me."
    assert comment["change_id"] == change["id"]
    assert comment["created_at"].endswith("Z")
    listed = client.get(url, headers=as_("frank")).json()["items"]
    assert listed == [comment]
    blank = client.post(url, json={"body": "   "}, headers=as_("bob"))
    problem = assert_problem(blank, 422, "invalid-input")
    assert {e["field"] for e in problem["errors"]} == {"body.body"}
    history = client.get(f"/api/v1/changes/{change['id']}/history", headers=as_("bob")).json()[
        "items"
    ]
    assert history[-1]["action"] == "change.commented"
    missing = client.post(
        "/api/v1/changes/CHG-404/comments", json={"body": "hi"}, headers=as_("bob")
    )
    assert_problem(missing, 404, "not-found")


def test_history_pages(client: TestClient) -> None:
    change = create(client)
    for n in range(3):
        client.post(
            f"/api/v1/changes/{change['id']}/comments",
            json={"body": f"note {n}"},
            headers=as_("bob"),
        )
    url = f"/api/v1/changes/{change['id']}/history"
    page = client.get(url, params={"limit": 3}, headers=as_("bob")).json()
    assert len(page["items"]) == 3
    rest = client.get(page["next"], headers=as_("bob")).json()
    assert [e["action"] for e in rest["items"]] == ["change.commented"]
    assert rest["next"] is None


def test_if_match_star_accepts_any_version(client: TestClient) -> None:
    change = create(client)
    response = client.patch(
        f"/api/v1/changes/{change['id']}",
        json={"implementer": None},
        headers={**as_("alice"), "If-Match": "*"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["implementer"] is None
