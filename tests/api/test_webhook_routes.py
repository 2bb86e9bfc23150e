"""POST /api/v1/webhooks/{github,gitlab} through the TestClient, with a real upstream Git
repository and a clone of it as the GitOps workdir (the webhook fetches from it), on the
sample platform plus a GitOpsRepository."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from fastapi import APIRouter, Depends, FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr

from changegate import bootstrap
from changegate.api import auth
from changegate.api.app import create_app
from changegate.domain import webhooks as w
from changegate.services import lifecycle
from changegate.services import webhooks as webhook_service
from changegate.settings import Settings
from changegate.store import changes as change_store
from changegate.store.schema import changes as changes_table
from changegate.store.schema import webhook_deliveries
from tests.api.conftest import as_, assert_problem, create, drive

SECRET = "It's a Secret to Everybody"
TOKEN = "gitlab-token-1"
URL = "https://git.example.com/platform/fleet.git"
DIGEST = "sha256:" + "d" * 64
GIT_ENV = {
    **os.environ,
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "Test Author",
    "GIT_AUTHOR_EMAIL": "author@example.com",
    "GIT_COMMITTER_NAME": "Test Committer",
    "GIT_COMMITTER_EMAIL": "committer@example.com",
}
GITOPS = {
    "apiVersion": "changegate.io/v1",
    "kind": "GitOpsRepository",
    "metadata": {"name": "fleet"},
    "spec": {
        "url": URL,
        "branch": "main",
        "paths": [
            {"pattern": "docs/", "ignore": True},
            {"pattern": "clusters/{cluster}/**"},
            {"pattern": "clusters/{cluster}/tenants/{tenant}/**"},
        ],
    },
}


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), *args], env=GIT_ENV, capture_output=True, check=True, timeout=60
    )
    return done.stdout.decode().strip()


def deployment(image: str) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "odoo"},
            "spec": {"template": {"spec": {"containers": [{"name": "odoo", "image": image}]}}},
        }
    )


@pytest.fixture
def platform(tmp_path: Path, sample_dir: Path) -> Path:
    directory = tmp_path / "platform"
    shutil.copytree(sample_dir, directory)
    (directory / "gitops.yaml").write_text(yaml.safe_dump(GITOPS))
    return directory


@pytest.fixture
def app_path(platform: Path) -> Path:
    """The first tenant's deployment manifest, relative to the repository."""
    for path in sorted((platform / "tenants").glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document and document.get("kind") == "Tenant":
                name, cluster = document["metadata"]["name"], document["spec"]["cluster"]
                return Path("clusters", str(cluster), "tenants", str(name), "deployment.yaml")
    raise AssertionError("the sample has no tenant")


class Upstream:
    """The remote repository (where pushes land) and the webhook's clone of it."""

    def __init__(self, root: Path, app_path: Path) -> None:
        self.path = root / "upstream"
        self.app_path = app_path
        self.path.mkdir()
        git(self.path, "init", "-q", "-b", "main")
        self.initial = self.commit("registry.example.com/odoo/odoo:17.0-1", "initial")
        self.clone = root / "workdir"
        git(root, "clone", "-q", str(self.path), str(self.clone))

    def commit(self, image: str, message: str) -> str:
        target = self.path / self.app_path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(deployment(image))
        git(self.path, "add", "-A")
        git(self.path, "commit", "-q", "--no-gpg-sign", "-m", message)
        return git(self.path, "rev-parse", "HEAD")


@pytest.fixture
def upstream(tmp_path: Path, app_path: Path) -> Upstream:
    return Upstream(tmp_path, app_path)


@pytest.fixture
def settings(database_url: str, platform: Path, upstream: Upstream) -> Settings:
    return Settings(
        database_url=database_url,
        catalog_dir=platform,
        webhook_github_secret=SecretStr(SECRET),
        webhook_gitlab_token=SecretStr(TOKEN),
        webhook_person="alice",
        gitops_workdir=upstream.clone,
    )


@pytest.fixture
def api(app: bootstrap.App) -> FastAPI:
    built = create_app(app)
    assert auth.undeclared_routes(built) == []
    assert auth.loose_body_routes(built) == []
    return built


@pytest.fixture
def client(api: FastAPI) -> Iterator[TestClient]:
    with TestClient(api) as test_client:
        yield test_client


def push(before: str, after: str, message: str = "Release odoo 17.0-2") -> dict[str, Any]:
    return {
        "ref": "refs/heads/main",
        "before": before,
        "after": after,
        "repository": {"clone_url": URL, "html_url": "https://git.example.com/platform/fleet"},
        "head_commit": {"message": message},
    }


def send_github(
    client: TestClient,
    data: Any,
    *,
    event: str = "push",
    delivery: str = "d-1",
    secret: str = SECRET,
    raw: bytes | None = None,
) -> Any:
    payload = raw if raw is not None else json.dumps(data).encode()
    headers = {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": w.github_signature(secret, payload),
        "Content-Type": "application/json",
    }
    return client.post("/api/v1/webhooks/github", content=payload, headers=headers)


def count(app: bootstrap.App, table: sa.Table) -> int:
    with app.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def test_a_push_files_a_change_and_answers_prevented_not_authorized(
    client: TestClient, app: bootstrap.App, upstream: Upstream
) -> None:
    after = upstream.commit(f"registry.example.com/odoo/odoo:17.0-2@{DIGEST}", "Release 17.0-2")
    response = send_github(client, push(upstream.initial, after))
    assert response.status_code == 201, response.text
    answer = response.json()
    assert answer["status"] == "created"
    assert answer["replayed"] is False
    assert answer["gate"]["state"] == "prevented"
    assert answer["gate"]["reason"].startswith(f"{answer['change_id']} is not authorized")
    assert answer["gate"]["change_state"] == "draft"
    change = client.get(
        f"/api/v1/changes/{answer['change_id']}", headers={"X-Changegate-User": "frank"}
    ).json()
    assert change["requester"] == "alice"
    assert change["title"] == "Release odoo 17.0-2"
    assert change["artifacts"]["git"][0]["to_commit"] == after
    assert change["artifacts"]["images"][0]["digest"] == DIGEST
    assert SECRET not in response.text


def test_a_replay_gets_the_first_answer_and_files_no_second_change(
    client: TestClient, app: bootstrap.App, upstream: Upstream
) -> None:
    after = upstream.commit(f"registry.example.com/odoo/odoo:17.0-2@{DIGEST}", "Release")
    first = send_github(client, push(upstream.initial, after))
    assert first.status_code == 201
    again = send_github(client, push(upstream.initial, after))
    assert again.status_code == 201
    assert again.json() == {**first.json(), "replayed": True}
    # The same signed body under a new delivery id is the same delivery too.
    other = send_github(client, push(upstream.initial, after), delivery="d-2")
    assert other.json()["replayed"] is True
    assert count(app, changes_table) == 1
    assert count(app, webhook_deliveries) == 1


def test_a_later_delivery_for_the_same_head_finds_the_change(
    client: TestClient, app: bootstrap.App, upstream: Upstream
) -> None:
    after = upstream.commit(f"registry.example.com/odoo/odoo:17.0-2@{DIGEST}", "Release")
    first = send_github(client, push(upstream.initial, after)).json()
    data = push(upstream.initial, after, message="the same push, re-sent with another body")
    again = send_github(client, data, delivery="d-9")
    assert again.status_code == 200
    assert again.json()["status"] == "existing"
    assert again.json()["change_id"] == first["change_id"]
    assert count(app, changes_table) == 1


def test_a_bad_signature_is_401_and_records_nothing(
    client: TestClient, app: bootstrap.App, upstream: Upstream
) -> None:
    after = upstream.commit("registry.example.com/odoo/odoo:17.0-3", "Release")
    response = send_github(client, push(upstream.initial, after), secret="wrong")
    problem = assert_problem(response, 401, "unauthenticated")
    assert "does not match" in problem["detail"]
    assert SECRET not in response.text
    tampered = client.post(
        "/api/v1/webhooks/github",
        content=json.dumps(push(upstream.initial, after)).encode(),
        headers={
            "X-GitHub-Event": "push",
            "X-GitHub-Delivery": "d-1",
            "X-Hub-Signature-256": w.github_signature(SECRET, b"{}"),
        },
    )
    assert tampered.status_code == 401
    unsigned = client.post(
        "/api/v1/webhooks/github",
        content=b"{}",
        headers={"X-GitHub-Event": "push", "X-GitHub-Delivery": "d-1"},
    )
    assert unsigned.status_code == 401
    assert count(app, webhook_deliveries) == 0
    # The genuine delivery under the same id is still processed.
    assert send_github(client, push(upstream.initial, after)).status_code == 201


@pytest.mark.parametrize(("event", "reason"), [("issues", "not used"), ("ping", "ping")])
def test_events_that_ask_nothing_are_answered_202_ignored(
    client: TestClient, app: bootstrap.App, event: str, reason: str
) -> None:
    response = send_github(client, {"zen": "hello"}, event=event)
    assert response.status_code == 202
    assert response.json()["status"] == "ignored"
    assert reason in response.json()["reason"]
    assert count(app, changes_table) == 0


def test_a_push_to_another_repository_or_branch_is_ignored(
    client: TestClient, upstream: Upstream
) -> None:
    after = upstream.commit("registry.example.com/odoo/odoo:17.0-3", "Release")
    other = push(upstream.initial, after) | {"repository": {"clone_url": URL + "x"}}
    answer = send_github(client, other).json()
    assert answer["status"] == "ignored"
    assert "not the GitOps repository" in answer["reason"]
    branch = push(upstream.initial, after) | {"ref": "refs/heads/feature"}
    answer = send_github(client, branch, delivery="d-2").json()
    assert "not the GitOps branch" in answer["reason"]


def test_a_malformed_payload_is_ignored_with_the_reason(client: TestClient) -> None:
    response = send_github(client, None, raw=b'{"ref": "refs/heads/main", "after": 5}')
    assert response.status_code == 202
    assert "malformed payload" in response.json()["reason"]


def test_a_delivery_without_an_id_is_422(client: TestClient) -> None:
    payload = b"{}"
    response = client.post(
        "/api/v1/webhooks/github",
        content=payload,
        headers={
            "X-GitHub-Event": "push",
            "X-Hub-Signature-256": w.github_signature(SECRET, payload),
        },
    )
    assert_problem(response, 422, "invalid-input")


def test_an_unknown_commit_is_recorded_with_the_reason(
    client: TestClient, upstream: Upstream
) -> None:
    response = send_github(client, push(upstream.initial, "c" * 40))
    assert response.status_code == 202
    assert response.json()["status"] == "recorded"
    assert "unknown commit" in response.json()["reason"]


def test_a_gitlab_merge_request_files_then_updates_its_change(
    client: TestClient, app: bootstrap.App, upstream: Upstream
) -> None:
    git(upstream.path, "checkout", "-q", "-b", "bump")
    head = upstream.commit(f"registry.example.com/odoo/odoo:17.0-2@{DIGEST}", "Bump odoo")
    git(upstream.path, "update-ref", "refs/merge-requests/3/head", head)

    def mr(sha: str, action: str, uuid: str) -> Any:
        data = {
            "object_kind": "merge_request",
            "project": {"git_http_url": URL},
            "object_attributes": {
                "iid": 3,
                "action": action,
                "title": "Bump odoo",
                "target_branch": "main",
                "source_branch": "bump",
                "last_commit": {"id": sha},
            },
        }
        return client.post(
            "/api/v1/webhooks/gitlab",
            json=data,
            headers={
                "X-Gitlab-Event": "Merge Request Hook",
                "X-Gitlab-Token": TOKEN,
                "Idempotency-Key": uuid,
            },
        )

    opened = mr(head, "open", "k-1")
    assert opened.status_code == 201, opened.text
    assert opened.json()["gate"]["state"] == "prevented"
    newer = upstream.commit("registry.example.com/odoo/odoo:17.0-9", "Bump odoo again")
    git(upstream.path, "update-ref", "refs/merge-requests/3/head", newer)
    updated = mr(newer, "update", "k-2")
    assert updated.status_code == 200, updated.text
    assert updated.json()["status"] == "updated"
    assert updated.json()["change_id"] == opened.json()["change_id"]
    change = client.get(
        f"/api/v1/changes/{opened.json()['change_id']}", headers={"X-Changegate-User": "frank"}
    ).json()
    assert change["artifacts"]["git"][0]["to_commit"] == newer
    assert change["artifacts"]["git"][0]["from_commit"] == upstream.initial
    assert count(app, changes_table) == 1
    wrong = client.post(
        "/api/v1/webhooks/gitlab",
        json={},
        headers={"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": "nope", "Idempotency-Key": "x"},
    )
    assert_problem(wrong, 401, "unauthenticated")


def test_an_unconfigured_provider_is_404(database_url: str, platform: Path, tmp_path: Path) -> None:
    settings = Settings(database_url=database_url, catalog_dir=platform)
    application = bootstrap.create(settings)
    try:
        built = create_app(application)
        with TestClient(built) as test_client:
            response = test_client.post(
                "/api/v1/webhooks/github", content=b"{}", headers={"X-GitHub-Event": "push"}
            )
            assert_problem(response, 404, "not-found")
    finally:
        application.engine.dispose()


def test_without_a_workdir_the_event_is_recorded_202(
    database_url: str, platform: Path, upstream: Upstream
) -> None:
    settings = Settings(
        database_url=database_url,
        catalog_dir=platform,
        webhook_github_secret=SecretStr(SECRET),
        webhook_person="alice",
    )
    application = bootstrap.create(settings)
    try:
        built = create_app(application)
        with TestClient(built) as test_client:
            after = upstream.commit("registry.example.com/odoo/odoo:17.0-3", "Release")
            response = send_github(test_client, push(upstream.initial, after))
            assert response.status_code == 202
            assert "CHANGEGATE_GITOPS_WORKDIR is not set" in response.json()["reason"]
    finally:
        application.engine.dispose()


def test_the_openapi_document_declares_signature_authentication(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    operation = document["paths"]["/api/v1/webhooks/github"]["post"]
    assert operation["x-authentication"] == "webhook-signature:github"
    assert "x-permission" not in operation


def test_the_signature_marker_counts_only_under_the_webhooks_prefix(api: FastAPI) -> None:
    stray = APIRouter(prefix="/api/v1/changes", route_class=auth.PermissionRoute)

    @stray.post("/sneaky")
    def sneaky(_signed: Any = Depends(auth.signed_webhook("github"))) -> None:
        return None

    api.include_router(stray)
    assert auth.undeclared_routes(api) == ["POST /api/v1/changes/sneaky"]


def test_a_github_pull_request_files_a_change_its_merge_push_finds(
    client: TestClient, app: bootstrap.App, upstream: Upstream
) -> None:
    git(upstream.path, "checkout", "-q", "-b", "bump")
    head = upstream.commit(f"registry.example.com/odoo/odoo:17.0-2@{DIGEST}", "Bump odoo")
    git(upstream.path, "update-ref", "refs/pull/5/head", head)
    data = {
        "action": "opened",
        "number": 5,
        "pull_request": {
            "number": 5,
            "title": "Bump odoo to 17.0-2",
            "head": {"sha": head, "ref": "bump"},
            "base": {"sha": upstream.initial, "ref": "main"},
        },
        "repository": {"ssh_url": "git@git.example.com:platform/fleet.git"},
    }
    opened = send_github(client, data, event="pull_request", delivery="pr-1")
    assert opened.status_code == 201, opened.text
    change_id = opened.json()["change_id"]
    assert opened.json()["request"]["number"] == 5
    # Merged by fast-forward: the push to main brings the same head, and finds the change.
    git(upstream.path, "checkout", "-q", "main")
    git(upstream.path, "merge", "-q", "--ff-only", "bump")
    merged = send_github(client, push(upstream.initial, head), delivery="push-1")
    assert merged.status_code == 200, merged.text
    assert merged.json()["status"] == "existing"
    assert merged.json()["change_id"] == change_id
    assert count(app, changes_table) == 1


def test_a_later_delivery_answers_the_gate_of_the_change_now(
    client: TestClient, app: bootstrap.App, upstream: Upstream, tmp_path: Path
) -> None:
    after = upstream.commit(f"registry.example.com/odoo/odoo:17.0-2@{DIGEST}", "Release")
    # The policy gate reads the manifests at the pushed commit from the webhook's clone
    # (CHANGEGATE_GITOPS_WORKDIR): nothing of them is on the disk under the artifacts root.
    assert not (tmp_path / "clusters").exists()
    first = send_github(client, push(upstream.initial, after)).json()
    change = client.get(f"/api/v1/changes/{first['change_id']}", headers=as_("bob")).json()
    drive(client, change, "authorize")
    again = send_github(client, push(upstream.initial, after, "re-sent"), delivery="d-2").json()
    assert again["status"] == "existing"
    assert again["gate"]["change_state"] == "authorize"
    assert again["gate"]["state"] == "prevented"
    assert "not authorized: the policy gate blocks it" in again["gate"]["reason"]
    report = client.get(f"/api/v1/changes/{first['change_id']}/policy", headers=as_("bob")).json()
    assert report["problems"] == []
    assert {f["commit"] for f in report["findings"] if f["file"] != "change artifacts"} == {after}


def test_the_gate_is_allowed_for_a_scheduled_change_the_calendar_lets_start(
    client: TestClient, app: bootstrap.App
) -> None:
    change = drive(client, create(client), "scheduled")
    url = f"/api/v1/changes/{change['id']}/schedule"
    start = datetime.fromisoformat(client.get(url, headers=as_("bob")).json()["waves"][0]["start"])
    with app.engine.connect() as conn:
        stored = change_store.get(conn, int(change["id"].removeprefix("CHG-")))
        allowed = webhook_service.gate(conn, app.catalog(), stored, start)
        assert allowed["state"] == "allowed", allowed
        assert allowed["reason"].startswith(f"{change['id']} is scheduled and the calendar")
        # An instant the calendar blocks (outside the tenants' windows): prevented, why.
        blocked = next(
            at
            for at in (start + timedelta(hours=h) for h in range(1, 24 * 14))
            if not lifecycle.start_check(conn, app.catalog(), stored, at).allowed
        )
        late = webhook_service.gate(conn, app.catalog(), stored, blocked)
    assert late["state"] == "prevented"
    assert late["reason"].startswith(f"{change['id']} may not start now")
