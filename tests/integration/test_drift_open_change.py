"""`drift --open-change` as a service: one emergency change records what drift found, filed
through the change service (permission, audit), and the same findings never file twice.
Real Git repositories in tmp_path, live state from snapshot files, SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from changegate.adapters import kubectl
from changegate.domain import catalog as catalog_model
from changegate.domain.changes import ChangeFilter, ChangeType
from changegate.errors import InvalidInput, Refused
from changegate.services import audit as audit_service
from changegate.services import changes as change_service
from changegate.services import drift as drift_service
from changegate.services.context import Context, actor_for
from changegate.store import db
from tests import catalog_builders as b
from tests.integration.test_drift import commit, git, live, snapshot, write

URL = "https://git.example.com/platform/fleet.git"
APP = "clusters/shared-1/tenants/acme/app.yaml"
PG = "platform/pg-1/cluster.yaml"
NAMESPACE = "odoo-mt-1"  # acme's namespace in the catalog builders
IMAGE_PATH = "spec.template.spec.containers[odoo].image"


def deployment(image: str = "odoo:17.0", replicas: int = 2) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "odoo-acme", "namespace": NAMESPACE},
        "spec": {
            "replicas": replicas,
            "template": {"spec": {"containers": [{"name": "odoo", "image": image}]}},
        },
    }


def pg_cluster(instances: int = 3) -> dict[str, Any]:
    return {
        "apiVersion": "postgresql.cnpg.io/v1",
        "kind": "Cluster",
        "metadata": {"name": "pg-1", "namespace": "databases"},
        "spec": {"instances": instances},
    }


@pytest.fixture
def catalog() -> catalog_model.Catalog:
    files = b.platform()
    files["gitops.yaml"] = [
        b.doc(
            "GitOpsRepository",
            "fleet",
            {
                "url": URL,
                "paths": [
                    {"pattern": "docs/", "ignore": True},
                    {"pattern": "clusters/{cluster}/tenants/{tenant}/**"},
                    {"pattern": "platform/{service}/**", "category": "database-config"},
                ],
            },
        )
    ]
    return catalog_model.build(
        b.documents(files), digest="sha256:" + "0" * 64, commit=None, root="r"
    )


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    made = db.make_engine(database_url)
    db.upgrade(made)
    yield made
    made.dispose()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "fleet"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    write(path, APP, [deployment()])
    write(path, PG, [pg_cluster()])
    commit(path, "initial\n\nChange-Id: CHG-1\n")
    return path


def ctx_as(catalog: catalog_model.Catalog, person: str) -> Context:
    return Context(actor=actor_for(catalog, person))


def found_in(
    catalog: catalog_model.Catalog, repo: Path, tmp_path: Path, objects: list[dict[str, Any]]
) -> Any:
    desired = drift_service.desired_at_head(catalog, repo)
    return drift_service.live_drift(desired, kubectl.read_snapshot(snapshot(tmp_path, objects)))


def no_change(_: str) -> None:
    return None


def all_changes(engine: sa.Engine, ctx: Context) -> list[Any]:
    return change_service.list_changes(engine, ctx, ChangeFilter(limit=100))[0]


def test_one_emergency_change_records_an_unauthorized_commit_and_the_drift_it_caused(
    catalog: catalog_model.Catalog, repo: Path, engine: sa.Engine, tmp_path: Path
) -> None:
    base = git(repo, "rev-parse", "HEAD")
    write(repo, APP, [deployment(image="odoo:hotfix")])
    sha = commit(repo, "hot fix straight to main")
    # Live runs the hot fix, and someone also set the image by hand to yet another one.
    report = found_in(
        catalog, repo, tmp_path, [live(deployment(image="odoo:by-hand")), live(pg_cluster())]
    )
    commits, _ = drift_service.unauthorized_commits(catalog, repo, f"{base}..main", no_change)
    ctx = ctx_as(catalog, "alice")
    opened = drift_service.open_change(
        engine,
        catalog,
        ctx,
        repo,
        report=report,
        commits=commits,
        context_lines=[f"range {base[:7]}..main"],
    )
    assert opened.status == "opened"
    change = opened.change
    assert change is not None
    spec = change.spec
    assert spec.type is ChangeType.EMERGENCY
    assert spec.title == (
        "Unauthorized change detected: 1 unauthorized commit, 1 drifted object on acme"
    )
    assert spec.category.value == "application-release"  # only images changed, both times
    assert spec.environment == "prod"
    assert spec.targets.tenants == ["acme"] and not spec.targets.services
    assert [g.model_dump() for g in spec.artifacts.git] == [
        {"repo": URL, "from_commit": None, "to_commit": sha}
    ]
    text = spec.justification
    assert f"{sha[:12]} 'hot fix straight to main': no Change-Id trailer" in text
    assert f"Deployment {NAMESPACE}/odoo-acme (apps/v1), declared in {APP}: {IMAGE_PATH}" in text
    assert f"range {base[:7]}..main" in text and f"in {URL} (branch main)" in text
    assert change.requester == "alice" and change.state.value == "draft"
    events = audit_service.events(engine, ctx, object_id=change.id)
    assert [e.action for e in events] == ["change.created"]
    recorded = {f.id: f for f in opened.findings}
    for finding_id in recorded:
        (event,) = audit_service.events(engine, ctx, object_id=finding_id)
        assert event.action == "drift.finding-recorded" and event.object_type == "drift-finding"
        assert event.after["change_id"] == change.id and event.actor == "alice"
    assert f"commit:{sha}" in recorded
    shown = opened.as_dict()
    assert shown["status"] == "opened" and shown["change_id"] == change.id
    assert all(f["recorded_in"] is None for f in shown["findings"])

    # The same findings again: nothing new is filed, and the answer says where they are.
    again = drift_service.open_change(
        engine, catalog, ctx, repo, report=report, commits=commits, context_lines=[]
    )
    assert again.status == "already-recorded" and again.change is None
    assert set(again.recorded.values()) == {change.id}
    assert [c.id for c in all_changes(engine, ctx)] == [change.id]

    # Something new besides: only it is filed, in a second change that points at the first.
    stray = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "x", "namespace": NAMESPACE},
    }
    more = found_in(
        catalog,
        repo,
        tmp_path,
        [live(deployment(image="odoo:by-hand")), live(pg_cluster()), stray],
    )
    third = drift_service.open_change(engine, catalog, ctx, repo, report=more, commits=commits)
    assert third.status == "opened" and third.change is not None
    second = third.change.spec
    assert second.title == "Unauthorized change detected: 1 unmanaged object on acme"
    assert second.category.value == "kubernetes"
    assert "ConfigMap odoo-mt-1/x (v1) is live and declared nowhere" in second.justification
    assert f"2 more findings are recorded already in {change.id}" in second.justification
    assert "namespace odoo-mt-1 is tenant acme's" in second.justification
    assert not second.artifacts.git
    assert len(all_changes(engine, ctx)) == 2


def test_the_rule_category_and_the_latest_environment_fill_in_what_content_does_not_say(
    catalog: catalog_model.Catalog, repo: Path, engine: sa.Engine, tmp_path: Path
) -> None:
    # pg-1's cluster object drifted: a PostgreSQL cluster is database-config by its kind.
    report = found_in(catalog, repo, tmp_path, [live(deployment()), live(pg_cluster(5))])
    ctx = ctx_as(catalog, "alice")
    opened = drift_service.open_change(engine, catalog, ctx, repo, report=report)
    assert opened.change is not None
    assert opened.change.spec.category.value == "database-config"
    assert opened.change.spec.targets.services == ["pg-1"]
    # replicas drifted (content says nothing) in a file whose rule says nothing: kubernetes.
    report = found_in(catalog, repo, tmp_path, [live(deployment(replicas=9)), live(pg_cluster())])
    opened = drift_service.open_change(engine, catalog, ctx, repo, report=report)
    assert opened.change is not None
    assert opened.change.spec.category.value == "kubernetes"
    assert opened.category_reason.startswith("no category is clear")


def test_opening_needs_the_permission_to_create_changes_and_a_target(
    catalog: catalog_model.Catalog, repo: Path, engine: sa.Engine, tmp_path: Path
) -> None:
    report = found_in(catalog, repo, tmp_path, [live(deployment(replicas=9)), live(pg_cluster())])
    with pytest.raises(Refused, match="may not"):
        drift_service.open_change(engine, catalog, ctx_as(catalog, "lotte"), repo, report=report)
    # A live object in a namespace nothing in the catalog or the repository lives in.
    lone = found_in(catalog, repo, tmp_path, [live(deployment()), live(pg_cluster())])
    lone.unmanaged.append(("v1", "Secret", "x", "s"))
    with pytest.raises(InvalidInput, match="map to no tenant, service or cluster") as caught:
        drift_service.open_change(engine, catalog, ctx_as(catalog, "alice"), repo, report=lone)
    assert "namespace x maps to no catalog entity" in str(caught.value)
    # Nothing found: nothing filed, no error.
    clean = found_in(catalog, repo, tmp_path, [live(deployment()), live(pg_cluster())])
    quiet = drift_service.open_change(engine, catalog, ctx_as(catalog, "alice"), repo, report=clean)
    assert quiet.status == "nothing-found" and quiet.change is None
    assert all_changes(engine, ctx_as(catalog, "alice")) == []


def test_findings_recorded_by_another_run_meanwhile_roll_the_second_change_back(
    catalog: catalog_model.Catalog,
    repo: Path,
    engine: sa.Engine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    report = found_in(catalog, repo, tmp_path, [live(deployment(replicas=9)), live(pg_cluster())])
    ctx = ctx_as(catalog, "alice")
    first = drift_service.open_change(engine, catalog, ctx, repo, report=report)
    assert first.change is not None
    # The second run's first look misses the first run's records (as if both looked at once);
    # the look inside its own transaction, after the audit head's lock, sees them.
    real = drift_service._recorded
    looks: list[int] = []

    def late(conn: sa.Connection, findings: Any) -> dict[str, str]:
        looks.append(1)
        return {} if len(looks) == 1 else real(conn, findings)

    monkeypatch.setattr(drift_service, "_recorded", late)
    second = drift_service.open_change(engine, catalog, ctx, repo, report=report)
    assert second.status == "already-recorded"
    assert set(second.recorded.values()) == {first.change.id}
    assert len(looks) == 3  # first look, the look in the rolled-back transaction, the retry
    assert [c.id for c in all_changes(engine, ctx)] == [first.change.id]


def test_targets_in_several_environments_take_the_production_one(
    catalog: catalog_model.Catalog,
) -> None:
    mapped = drift_service.Mapped()
    mapped.add("tenant", "acme", "prod", "a.yaml")
    mapped.add("tenant", "beta", "staging", "b.yaml")
    chosen, why = drift_service._environment(catalog, mapped)
    assert chosen == "prod"
    assert why.startswith("the targets are in prod, staging: prod is the production one")
    with pytest.raises(InvalidInput, match="cannot tell the environment"):
        drift_service._environment(catalog, drift_service.Mapped())
