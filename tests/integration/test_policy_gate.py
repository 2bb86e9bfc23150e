"""The policy gate on a change, on the real store (SQLite and PostgreSQL): assessing checks the
change's artifacts, stores the report, feeds the risk score; unwaived errors block
authorization; a waiver lets the change through until it expires.

The catalog is a copy of the sample platform in `repo/platform`, the change's artifacts live in
`repo/gitops` (the PolicyConfig's default `artifacts_root`, `..`).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from changegate import bootstrap
from changegate.domain import catalog as catalog_model
from changegate.domain.changes import ChangeState
from changegate.errors import NotFound, Refused
from changegate.services import assessments as assessment_service
from changegate.services import audit as audit_service
from changegate.services import changes as change_service
from changegate.services import policy as policy_service
from changegate.services.context import Context, actor_for
from changegate.settings import Settings
from changegate.store import db
from tests.factories import change_spec
from tests.lifecycle import approve_until_authorized

S = ChangeState
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)

PRIVILEGED = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: odoo
  namespace: odoo-shop
spec:
  replicas: 2
  selector:
    matchLabels: {app: odoo}
  template:
    metadata:
      labels: {app: odoo}
    spec:
      containers:
        - name: odoo
          image: registry.example.com/odoo:17.0@sha256:%s
          securityContext:
            privileged: true
""" % ("b" * 64)

WAIVER = {
    "apiVersion": "changegate.io/v1",
    "kind": "Waiver",
    "metadata": {"name": "shop-root"},
    "spec": {
        "rule": "CKV_K8S_23",
        "selector": {"namespace": "odoo-shop", "container": "odoo"},
        "reason": "The vendor's image needs it until 2.x.",
        "owner": "bob",
        "approved_by": "carol",
        "expires": "2026-11-30",
    },
}


@pytest.fixture
def repo(tmp_path: Path, sample_dir: Path) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(sample_dir, root / "platform")
    (root / "gitops" / "shop").mkdir(parents=True)
    (root / "gitops" / "shop" / "odoo.yaml").write_text(PRIVILEGED)
    return root


def make_app(database_url: str, repo: Path) -> bootstrap.App:
    settings = Settings(database_url=database_url, catalog_dir=repo / "platform")
    engine = db.make_engine(settings.database_url)
    db.upgrade(engine)
    engine.dispose()
    return bootstrap.create(settings)


@pytest.fixture
def app(database_url: str, repo: Path) -> Iterator[bootstrap.App]:
    application = make_app(database_url, repo)
    yield application
    application.engine.dispose()


def at(catalog: catalog_model.Catalog, person: str, when: datetime = NOW) -> Context:
    return Context(actor=actor_for(catalog, person), clock=lambda: when)


def file_change(app: bootstrap.App, manifests: list[str]) -> str:
    catalog = app.catalog()
    spec = change_spec(artifacts={"manifests": manifests})
    change = change_service.create(app.engine, catalog, at(catalog, "alice"), spec)
    change_service.submit(app.engine, catalog, at(catalog, "alice"), change.id)
    assessment_service.assess(app.engine, catalog, at(catalog, "alice"), change.id)
    return change.id


def test_assessing_checks_stores_and_scores_the_findings(app: bootstrap.App) -> None:
    catalog = app.catalog()
    change_id = file_change(app, ["gitops/shop/odoo.yaml"])
    assessment = assessment_service.latest(app.engine, at(catalog, "alice"), change_id)
    factor = next(f for f in assessment.factors if f.name == "policy-findings")
    assert factor.points == 20  # capped: many errors and warnings
    assert factor.reason.startswith("5 errors ×10")
    assert "capped at 20" in factor.reason
    stored = policy_service.latest_report(app.engine, at(catalog, "frank"), change_id)
    assert stored.assessment_id == assessment.id
    assert stored.content_hash == assessment.content_hash
    blocking = {f.rule for f in stored.report.blocking}
    assert "k8s.privileged" in blocking
    finding = next(f for f in stored.report.findings if f.rule == "k8s.privileged")
    assert finding.file == "gitops/shop/odoo.yaml"
    assert finding.line == 18
    assert finding.resource.container == "odoo"
    events = audit_service.events(app.engine, at(catalog, "frank"), object_id=change_id)
    assessed = [e for e in events if e.action == "change.assessed"][-1]
    assert assessed.after["policy"]["passed"] is False
    assert assessed.after["policy"]["summary"]["errors"] >= 1


def test_unwaived_errors_block_authorization_on_every_approval(app: bootstrap.App) -> None:
    catalog = app.catalog()
    change_id = file_change(app, ["gitops/shop/odoo.yaml"])
    change_service.transition(app.engine, catalog, at(catalog, "bob"), change_id, S.AUTHORIZE)
    approve_until_authorized(app.engine, catalog, change_id)
    with pytest.raises(Refused, match=r"policy gate blocks it: .*k8s\.privileged"):
        change_service.transition(app.engine, catalog, at(catalog, "bob"), change_id, S.SCHEDULED)


def test_a_waiver_lets_it_through_until_it_expires(
    app: bootstrap.App, repo: Path, database_url: str
) -> None:
    # Everything but the root user is fixed first: only the waiver stands between.
    fixed = _clean_manifest(root=True)
    (repo / "gitops" / "shop" / "odoo.yaml").write_text(fixed)
    with (repo / "platform" / "waivers.yaml").open("w") as handle:
        yaml.safe_dump(WAIVER, handle)
    waived_app = make_app(database_url, repo)
    try:
        catalog = waived_app.catalog()
        change_id = file_change(waived_app, ["gitops/shop/odoo.yaml"])
        stored = policy_service.latest_report(waived_app.engine, at(catalog, "frank"), change_id)
        assert not stored.report.blocking, [f.rule for f in stored.report.blocking]
        waived = [f for f in stored.report.findings if f.status.value == "waived"]
        assert [(f.rule, f.waiver) for f in waived] == [("k8s.run-as-non-root", "shop-root")]
        bob = at(catalog, "bob")
        change_service.transition(waived_app.engine, catalog, bob, change_id, S.AUTHORIZE)
        approve_until_authorized(waived_app.engine, catalog, change_id)
        # The waiver ends with 2026-11-30 (UTC): a day later the gate blocks again.
        late = at(catalog, "bob", datetime(2026, 12, 1, 0, 0, tzinfo=UTC))
        with pytest.raises(Refused, match="waiver shop-root expired"):
            change_service.transition(waived_app.engine, catalog, late, change_id, S.SCHEDULED)
        in_time = at(catalog, "bob", datetime(2026, 11, 30, 23, 59, tzinfo=UTC))
        moved = change_service.transition(
            waived_app.engine, catalog, in_time, change_id, S.SCHEDULED
        )
        assert moved.state is S.SCHEDULED
    finally:
        waived_app.engine.dispose()


def test_artifact_paths_outside_the_repository_block(app: bootstrap.App) -> None:
    catalog = app.catalog()
    change_id = file_change(app, ["../outside.yaml", "gitops/missing.yaml"])
    stored = policy_service.latest_report(app.engine, at(catalog, "frank"), change_id)
    messages = [p["message"] for p in stored.report.problems]
    assert any("outside the platform repository" in m for m in messages)
    assert any("no such file" in m for m in messages)
    assert not stored.report.passed


def test_no_report_before_an_assessment(app: bootstrap.App) -> None:
    catalog = app.catalog()
    spec = change_spec()
    change = change_service.create(app.engine, catalog, at(catalog, "alice"), spec)
    with pytest.raises(NotFound, match="assess it first"):
        policy_service.latest_report(app.engine, at(catalog, "frank"), change.id)


def test_a_clean_change_passes_the_gate(app: bootstrap.App, repo: Path) -> None:
    (repo / "gitops" / "shop" / "odoo.yaml").write_text(_clean_manifest())
    catalog = app.catalog()
    change_id = file_change(app, ["gitops/shop/odoo.yaml"])
    stored = policy_service.latest_report(app.engine, at(catalog, "frank"), change_id)
    assert stored.report.passed, [f"{f.rule}: {f.message}" for f in stored.report.blocking] + [
        str(p) for p in stored.report.problems
    ]
    assert stored.created_at == NOW  # the service's clock


def _clean_manifest(*, root: bool = False) -> str:
    """A Deployment that passes every error-level rule (but runs as root, if asked)."""
    digest = "c" * 64
    security = "runAsUser: 0" if root else "privileged: false"
    return f"""\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: odoo
  namespace: odoo-shop
spec:
  replicas: 2
  selector:
    matchLabels: {{app: odoo}}
  template:
    metadata:
      labels: {{app: odoo}}
    spec:
      automountServiceAccountToken: false
      serviceAccountName: odoo
      securityContext:
        runAsNonRoot: true
        runAsUser: 1000
        seccompProfile: {{type: RuntimeDefault}}
      containers:
        - name: odoo
          image: registry.example.com/odoo:17.0@sha256:{digest}
          ports: [{{name: http, containerPort: 8069}}]
          resources:
            requests: {{cpu: 500m, memory: 1Gi}}
            limits: {{memory: 2Gi}}
          livenessProbe: {{httpGet: {{path: /web/health, port: http}}, periodSeconds: 20}}
          readinessProbe: {{httpGet: {{path: /web/health, port: http}}, periodSeconds: 5}}
          securityContext:
            {security}
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities: {{drop: [ALL]}}
"""
