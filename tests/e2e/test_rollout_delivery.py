"""Issue 6, "Done when": a change filed from a Git diff goes through assessment, approval and
scheduling, and the worker carries it wave by wave through the GitOps repository, verified
against a real Prometheus; a metric that fails in wave 2 reverts wave 2 in Git, restores the
tenant database from its pre-change backup (the data is checked), skips wave 3 and closes the
change unsuccessful.

Real: Git (a bare remote, a clone as the worker's working copy), Prometheus (Debian's binary
scraping an exporter this test controls), PostgreSQL (pg_dump/pg_restore of a database with
rows). A stand-in: Argo CD's application API, an HTTP server answering each tenant's
application as Synced and Healthy at the remote branch's current tip. Time is virtual: when
nothing is due, the worker's clock jumps to the next instant something is (a wave's slot, the
next measurement), so the test waits for nothing but real I/O.
"""

from __future__ import annotations

import http.server
import json
import os
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
import yaml

from changegate import bootstrap
from changegate.adapters import argocd_status, pgbackup, prometheus
from changegate.adapters import git as git_adapter
from changegate.domain import catalog as catalog_model
from changegate.domain.changes import Category, ChangeState, CloseCode
from changegate.domain.rollout import RolloutStatus, StepKind, StepStatus
from changegate.services import approvals as approval_service
from changegate.services import assessments as assessment_service
from changegate.services import audit as audit_service
from changegate.services import changes as change_service
from changegate.services import drift as drift_service
from changegate.services import gitops as gitops_service
from changegate.services import rollout as rollout_service
from changegate.services.context import Context, actor_for
from changegate.settings import Settings
from changegate.store import db
from changegate.worker import Worker
from tests.factories import change_spec
from tests.integration.test_prometheus import prometheus_url  # noqa: F401 - a fixture
from tests.integration.test_rollout import git, make_remote, wave_commits
from tests.lifecycle import drive

S = ChangeState
TENANTS = ("harbor-printing", "aperture-retail", "sterling-plastics")
OLD = "registry.example.com/odoo:17.0-20261101"
NEW_TAG = "registry.example.com/odoo:17.0-20261120"
DIGEST = "sha256:" + "ab" * 32
ITEMS = [(1, "alpha"), (2, "beta"), (3, "gamma")]


@pytest.fixture(autouse=True)
def _no_git_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")


class Exporter:
    """odoo_error_ratio per tenant (and the sample the Prometheus fixture waits for)."""

    def __init__(self) -> None:
        self.ratios = dict.fromkeys(TENANTS, 0.01)
        exporter = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                lines = ["# TYPE odoo_success_ratio gauge", "odoo_success_ratio 1"]
                lines.append("# TYPE odoo_error_ratio gauge")
                for tenant, value in exporter.ratios.items():
                    lines.append(f'odoo_error_ratio{{tenant="{tenant}"}} {value}')
                body = ("\n".join(lines) + "\n").encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def exporter() -> Iterator[Exporter]:
    served = Exporter()
    yield served
    served.server.shutdown()
    served.server.server_close()


class ArgoStandIn:
    """Argo CD's `GET /api/v1/applications/{name}`: every application Synced and Healthy at
    the remote branch's tip (as Argo CD reports once it has synced a commit)."""

    def __init__(self, remote: Path) -> None:
        stand_in = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                name = self.path.split("?")[0].rsplit("/", 1)[-1]
                tip = git(remote, "rev-parse", "main")
                stand_in.asked.append((name, tip))
                body = json.dumps(
                    {
                        "metadata": {"name": name},
                        "status": {
                            "sync": {"status": "Synced", "revision": tip},
                            "health": {"status": "Healthy"},
                            "operationState": {"phase": "Succeeded"},
                        },
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.asked: list[tuple[str, str]] = []
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def pg_tenants(pg_server_url: str, tmp_path: Path) -> Iterator[tuple[dict[str, str], Path]]:
    """A database with rows for each tenant, and a libpq service file naming their servers."""
    server = sa.make_url(pg_server_url)
    names = {tenant: f"cg_e2e_{uuid.uuid4().hex[:10]}" for tenant in TENANTS}
    admin = db.make_engine(pg_server_url).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for name in names.values():
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    for name in names.values():
        with _connect(server, name) as conn:
            conn.execute("CREATE TABLE items (id integer PRIMARY KEY, name text NOT NULL)")
            conn.execute("INSERT INTO items VALUES (1, 'alpha'), (2, 'beta'), (3, 'gamma')")
    service_file = tmp_path / "pg_service.conf"
    sections = [
        f"[{section}]\nhost={server.host}\nport={server.port or 5432}\n"
        f"user={server.username}\npassword={server.password}\n"
        for section in ("pg-ap-southeast-prod-1", "pg-eu-west-prod-1", "pg-us-east-prod-1")
    ]
    service_file.write_text("\n".join(sections), encoding="utf-8")
    service_file.chmod(0o600)
    yield names, service_file
    with admin.connect() as conn:
        for name in names.values():
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _connect(server: sa.URL, dbname: str) -> psycopg.Connection[tuple[Any, ...]]:
    return psycopg.connect(
        host=server.host,
        port=server.port,
        user=server.username,
        password=server.password,
        dbname=dbname,
        autocommit=True,
    )


def _catalog(
    sample_dir: Path, tmp_path: Path, remote: Path, prometheus: str, databases: dict[str, str]
) -> Path:
    """The sample platform, plus the GitOps repository with its analysis template, and the
    three tenants' databases pointed at this test's PostgreSQL."""
    folder = tmp_path / "platform"
    shutil.copytree(sample_dir, folder)
    (folder / "gitops.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "changegate.io/v1",
                "kind": "GitOpsRepository",
                "metadata": {"name": "fleet"},
                "spec": {
                    "url": f"file://{remote}",
                    "branch": "main",
                    "paths": [{"pattern": "tenants/{tenant}/**"}],
                    "rollout": {
                        "sync_timeout": "5m",
                        "sync_poll": "5s",
                        "bake": "15m",
                        "analysis": [{"template": "analysis/error-rate.yaml"}],
                        "probes": {"web_health": False},
                    },
                },
            }
        )
    )
    (folder / "analysis").mkdir()
    (folder / "analysis" / "error-rate.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "argoproj.io/v1alpha1",
                "kind": "AnalysisTemplate",
                "metadata": {"name": "error-rate"},
                "spec": {
                    "args": [{"name": "tenants"}],
                    "metrics": [
                        {
                            "name": "error-rate",
                            "interval": "1m",
                            "count": 3,
                            "failureLimit": 0,
                            "successCondition": "result[0] < 0.05",
                            "provider": {
                                "prometheus": {
                                    "address": prometheus,
                                    "query": 'max(odoo_error_ratio{tenant=~"{{args.tenants}}"})',
                                }
                            },
                        }
                    ],
                },
            }
        )
    )
    for path in (folder / "tenants").glob("*.yaml"):
        documents = list(yaml.safe_load_all(path.read_text()))
        for document in documents:
            if document and document["metadata"]["name"] in databases:
                document["spec"]["database"]["name"] = databases[document["metadata"]["name"]]
        path.write_text(yaml.safe_dump_all(documents, sort_keys=False))
    return folder


def _fleet(tmp_path: Path) -> tuple[Path, Path]:
    """The GitOps repository: each tenant's values on main at the old image; a `release`
    branch moving the three to the new image with its digest (the diff the change is from)."""
    remote, clone = make_remote(tmp_path)
    for tenant in TENANTS:
        path = clone / "tenants" / tenant / "odoo.yaml"
        path.parent.mkdir(parents=True)
        path.write_text(_deployment(tenant, OLD))
    git(clone, "add", "tenants")
    git(clone, "commit", "--quiet", "-m", "tenants")
    git(clone, "push", "--quiet", "origin", "main")
    git(clone, "checkout", "--quiet", "-b", "release")
    for tenant in TENANTS:
        path = clone / "tenants" / tenant / "odoo.yaml"
        path.write_text(_released(tenant))
    git(clone, "commit", "--quiet", "-am", "Odoo 17.0-20261120")
    git(clone, "push", "--quiet", "origin", "release")
    git(clone, "checkout", "--quiet", "main")
    return remote, clone


class VirtualClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _run(
    app: bootstrap.App,
    worker: Worker,
    clock: VirtualClock,
    change_id: str,
    *,
    on_turn: Any = None,
    limit: int = 400,
) -> rollout_service.RolloutView:
    """Run the worker until the change's rollout finishes; when nothing is due, jump the
    clock to the next instant something is (never backwards)."""
    ops = Context(actor=actor_for(worker.catalog(), "frank"), clock=clock)
    view = None
    notes: list[str] = []
    worker.note = notes.append
    for _ in range(limit):
        worker.start_due()
        turn = worker.turn()
        if turn is not None:
            if on_turn is not None:
                on_turn(turn)
            continue
        try:
            view = rollout_service.status(app.engine, ops, change_id)
        except Exception:  # not started yet: its first slot has not opened
            from changegate.services import calendar as calendar_service

            waves = calendar_service.schedule_of(app.engine, worker.catalog(), ops, change_id)
            clock.now = max(clock.now, waves.plan.waves[0].start)
            continue
        if view.rollout.status.finished or view.rollout.status is RolloutStatus.PAUSED:
            return view
        current = next(s for s in view.steps if s.seq == view.rollout.position)
        assert current.due_at > clock.now, current
        clock.now = current.due_at
    raise AssertionError(f"the rollout did not finish: {notes} {view.as_dict() if view else None}")


def _setup(
    tmp_path: Path,
    sample_dir: Path,
    prometheus: str,
    pg: tuple[dict[str, str], Path],
) -> tuple[bootstrap.App, catalog_model.Catalog, Path, Path, ArgoStandIn]:
    remote, clone = _fleet(tmp_path)
    databases, _service_file = pg
    folder = _catalog(sample_dir, tmp_path, remote, prometheus, databases)
    url = f"sqlite:///{tmp_path / 'changegate.db'}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    engine.dispose()
    app = bootstrap.create(Settings(database_url=url, catalog_dir=folder))
    return app, app.catalog(), remote, clone, ArgoStandIn(remote)


def _staging_evidence(
    app: bootstrap.App,
    catalog: catalog_model.Catalog,
    worker: Worker,
    clock: VirtualClock,
    exporter: Exporter,
    prometheus: str,
) -> str:
    """The same digest shipped to staging by a change whose rollout was verified and which
    closed successful (the promotion evidence); its id."""
    staging = next(t for t, e in catalog.tenants.items() if e.spec.environment == "staging")
    exporter.ratios[staging] = 0.01
    _until_scraped(prometheus, (staging,), 0.01)
    spec = change_spec(
        environment="staging",
        category="application-release",
        targets={"tenants": [staging]},
        artifacts={"images": [{"ref": NEW_TAG, "digest": DIGEST}]},
    )
    alice = Context(actor=actor_for(catalog, "alice"), clock=clock)
    made = change_service.create(app.engine, catalog, alice, spec)
    drive(app.engine, catalog, made.id, S.SCHEDULED, as_=_at(catalog, clock))
    view = _run(app, worker, clock, made.id)
    assert view.rollout.status is RolloutStatus.COMPLETE, view.as_dict()
    bob = Context(actor=actor_for(catalog, "bob"), clock=clock)
    change_service.transition(
        app.engine, catalog, bob, made.id, S.CLOSED, close_code=CloseCode.SUCCESSFUL
    )
    return made.id


def _at(catalog: catalog_model.Catalog, clock: VirtualClock) -> Any:
    """People acting at the virtual clock's instant."""
    return lambda person: Context(actor=actor_for(catalog, person), clock=clock)


def _from_git(
    app: bootstrap.App,
    catalog: catalog_model.Catalog,
    clone: Path,
    clock: VirtualClock,
    *,
    category: Category | None = None,
) -> str:
    """File the change from the release branch's diff, assess it on the commit, authorize
    and schedule it (everyone acting at the virtual clock's instant)."""
    alice = Context(actor=actor_for(catalog, "alice"), clock=clock)
    git(clone, "fetch", "--quiet", "origin")
    # The pull request's range: from where the branch left main (which has moved on since:
    # the staging rollout committed to it) to the branch's tip.
    base = git(clone, "merge-base", "origin/main", "origin/release")
    change, found = gitops_service.from_git(
        app.engine, catalog, alice, clone, f"{base}..origin/release", category=category
    )
    assert sorted(change.spec.targets.tenants) == sorted(TENANTS), found
    assert [(i.ref, i.digest) for i in change.spec.artifacts.images] == [(NEW_TAG, DIGEST)]
    change_service.submit(app.engine, catalog, alice, change.id)
    assessment_service.assess(app.engine, catalog, alice, change.id, gitops_workdir=clone)
    drive(app.engine, catalog, change.id, S.SCHEDULED, as_=_at(catalog, clock))
    return change.id


def _worker(
    app: bootstrap.App,
    catalog: catalog_model.Catalog,
    clone: Path,
    argo: ArgoStandIn,
    clock: VirtualClock,
    service_file: Path,
    tmp_path: Path,
) -> Worker:
    delivery = rollout_service.Delivery(
        target=rollout_service.GitTarget(git_adapter.Clone(clone), "main"),
        status=argocd_status.ArgoCDStatus(argo.url, token="stand-in"),
        backup_tool=pgbackup.PgBackup(service_file=service_file),
        backup_dir=tmp_path / "backups",
    )
    return Worker(app.engine, lambda: catalog, delivery, name="w", clock=clock)


HARDENED = (
    Path(__file__).parents[1] / "policy" / "fixtures" / "k8s.image-tag" / "pass" / "odoo.yaml"
)


def _deployment(tenant: str, image: str) -> str:
    """A Deployment that passes every policy rule (the policy fixture), for tenant, at image."""
    lines = []
    for line in HARDENED.read_text().replace("acme", tenant).splitlines(keepends=True):
        at = line.find("image:")
        lines.append(line[:at] + f"image: {image}\n" if at >= 0 else line)
    return "".join(lines)


def _released(tenant: str) -> str:
    """The tenant's file on the release branch: the new image, and one more replica (a change
    beyond images, which the rollout carries wave by wave too)."""
    return _deployment(tenant, f"{NEW_TAG}@{DIGEST}").replace("replicas: 2", "replicas: 3")


def _values(remote: Path, tenant: str) -> str:
    return git(remote, "show", f"main:tenants/{tenant}/odoo.yaml")


def test_a_change_from_a_git_diff_is_rolled_out_in_three_verified_waves_and_closed(
    tmp_path: Path,
    sample_dir: Path,
    prometheus_url: str,  # noqa: F811
    exporter: Exporter,
    pg_tenants: tuple[dict[str, str], Path],
) -> None:
    app, catalog, remote, clone, argo = _setup(tmp_path, sample_dir, prometheus_url, pg_tenants)
    try:
        clock = VirtualClock(datetime.now().astimezone())
        worker = _worker(app, catalog, clone, argo, clock, pg_tenants[1], tmp_path)
        staged = _staging_evidence(app, catalog, worker, clock, exporter, prometheus_url)
        change_id = _from_git(app, catalog, clone, clock, category=Category.APPLICATION_RELEASE)
        view = _run(app, worker, clock, change_id)
    finally:
        argo.close()
    # The production change's promotion names the verified staging change.
    ops = Context(actor=actor_for(catalog, "bob"), clock=clock)
    promoted = approval_service.authorization(app.engine, catalog, ops, change_id).promotion
    assert promoted is not None
    assert [e.change_id for e in promoted.evidence] == [staged]

    assert view.rollout.status is RolloutStatus.COMPLETE, view.as_dict()
    commits = wave_commits(remote, change_id)
    assert [c["Wave"] for c in commits] == ["1/3", "2/3", "3/3"]
    # Each tenant's file is as the release branch has it: the pull request's diff carried
    # wave by wave (the new image and the replica), comments and layout kept.
    for tenant in TENANTS:
        assert _values(remote, tenant) == _released(tenant).strip()
    commits_steps = [s for s in view.steps if s.kind is StepKind.COMMIT]
    for step in commits_steps:
        assert step.result is not None
        carried = step.result["carried"]["paths"]
        assert carried and all(p.startswith("tenants/") for p in carried)
    verify = [s for s in view.steps if s.kind is StepKind.VERIFY]
    assert len(verify) == 3
    for step in verify:
        assert step.result is not None
        run = step.result["analysis"]
        assert run["phase"] == "Successful"
        assert run["metrics"][0]["count"] == 3  # three real measurements per wave
        assert all(m["value"] == [0.01] for m in run["metrics"][0]["measurements"])
    syncs = [s for s in view.steps if s.kind is StepKind.SYNC]
    assert [s.result and s.result["verdict"] for s in syncs] == ["delivered"] * 3
    staging = change_service.get(app.engine, ops, staged).spec.targets.tenants
    assert {tenant for tenant, _ in argo.asked} == {*TENANTS, *staging}
    # No database is touched by an image release: no backup.
    assert all(s.result == {"needed": False} for s in view.steps if s.kind is StepKind.BACKUP)

    change = change_service.get(app.engine, ops, change_id)
    assert change.state is S.REVIEW
    closed = change_service.transition(
        app.engine, catalog, ops, change_id, S.CLOSED, close_code=CloseCode.SUCCESSFUL
    )
    assert closed.state is S.CLOSED
    report = audit_service.verify(app.engine, Context(actor=actor_for(catalog, "frank")))
    assert report.ok, report.problem


def test_a_metric_failing_in_wave_2_reverts_it_restores_its_database_and_stops(
    tmp_path: Path,
    sample_dir: Path,
    prometheus_url: str,  # noqa: F811
    exporter: Exporter,
    pg_tenants: tuple[dict[str, str], Path],
) -> None:
    databases, service_file = pg_tenants
    app, catalog, remote, clone, argo = _setup(tmp_path, sample_dir, prometheus_url, pg_tenants)
    try:
        clock = VirtualClock(datetime.now().astimezone())
        worker = _worker(app, catalog, clone, argo, clock, service_file, tmp_path)
        _staging_evidence(app, catalog, worker, clock, exporter, prometheus_url)
        change_id = _from_git(app, catalog, clone, clock, category=Category.DATABASE_MIGRATION)
        ops = Context(actor=actor_for(catalog, "frank"), clock=clock)
        touched: dict[str, str] = {}

        def on_turn(turn: rollout_service.Turn) -> None:
            # Wave 2's commit "migrates" its tenant's database destructively and its error
            # ratio climbs: the verification must catch it.
            if turn.wave == 2 and turn.kind is StepKind.COMMIT and turn.outcome == "done":
                wave_tenants = _wave_tenants(app, catalog, ops, change_id, 2)
                for tenant in wave_tenants:
                    touched[tenant] = databases[tenant]
                    with _connect(_server(pg_tenants), databases[tenant]) as conn:
                        conn.execute("DELETE FROM items WHERE id > 1")
                        conn.execute("UPDATE items SET name = 'migrated'")
                    exporter.ratios[tenant] = 0.40
                _until_scraped(prometheus_url, wave_tenants, 0.40)

        view = _run(app, worker, clock, change_id, on_turn=on_turn)
    finally:
        argo.close()

    assert view.rollout.status is RolloutStatus.FAILED, view.as_dict()
    assert "analysis Failed" in (view.rollout.reason or "")
    commits = wave_commits(remote, change_id)
    waves = [c["Wave"] for c in commits]
    # Waves 1 and 2 committed, wave 2 reverted (its revert names the commit), no wave 3.
    assert waves == ["1/3", "2/3", "2/3"], commits
    wave2, revert = commits[1], commits[2]
    assert revert["Reverts"] == wave2["sha"]
    # The restore waited until the wave's application ran the reverted revision.
    assert any(tip == revert["sha"] for _, tip in argo.asked)
    wave1_tenants = _wave_tenants(app, catalog, ops, change_id, 1)
    for tenant in TENANTS:
        expected = _released(tenant) if tenant in wave1_tenants else _deployment(tenant, OLD)
        assert _values(remote, tenant) == expected.strip(), tenant
    # The touched database is back as it was before the change.
    assert touched
    for name in touched.values():
        with _connect(_server(pg_tenants), name) as conn:
            assert conn.execute("SELECT id, name FROM items ORDER BY id").fetchall() == ITEMS
    kinds = {(s.wave, s.kind): s.status for s in view.steps}
    assert kinds[(2, StepKind.VERIFY)] is StepStatus.FAILED
    assert all(status is StepStatus.SKIPPED for (wave, kind), status in kinds.items() if wave == 3)
    assert kinds[(2, StepKind.REVERT)] is StepStatus.DONE
    assert kinds[(2, StepKind.RESTORE)] is StepStatus.DONE
    conclude = next(s for s in view.steps if s.kind is StepKind.CONCLUDE)
    assert conclude.result is not None
    assert conclude.result["incident"]["id"] == f"{change_id}-rollback"

    change = change_service.get(app.engine, ops, change_id)
    assert (change.state, change.close_code) == (S.CLOSED, CloseCode.UNSUCCESSFUL)
    assert "wave 2/3" in change.close_notes
    actions = [e.action for e in audit_service.events(app.engine, ops, object_id=change_id)]
    for action in ("rollout.failed", "rollout.revert", "rollout.restore", "rollout.conclude"):
        assert action in actions
    # Drift counts changegate's own commits as authorized, the revert of an unsuccessful
    # change included: nothing on the branch is unauthorized.
    first = git(remote, "merge-base", "main", "release")  # the fleet before any change
    unauthorized, governed = drift_service.unauthorized_commits(
        catalog,
        remote,
        f"{first}..main",
        lambda ident: change_service.get(app.engine, ops, ident),
        rollout_commits=lambda ident: rollout_service.recorded_commits(app.engine, ops, ident),
    )
    assert governed >= 3 and unauthorized == [], unauthorized
    report = audit_service.verify(app.engine, ops)
    assert report.ok, report.problem


def _until_scraped(url: str, tenants: tuple[str, ...], value: float) -> None:
    """Wait (bounded) until Prometheus has scraped the exporter's new value."""
    client = prometheus.Prometheus(url, timeout_seconds=5)
    query = 'max(odoo_error_ratio{tenant=~"' + "|".join(tenants) + '"})'
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if client.query(query) == [value]:
            return
        time.sleep(0.2)
    raise AssertionError(f"Prometheus did not scrape {value} for {tenants}")


def _server(pg: tuple[dict[str, str], Path]) -> sa.URL:
    text = pg[1].read_text().split("\n")
    values = dict(line.split("=", 1) for line in text[1:5])
    return sa.URL.create(
        "postgresql",
        username=values["user"],
        password=values["password"],
        host=values["host"],
        port=int(values["port"]),
    )


def _wave_tenants(
    app: bootstrap.App, catalog: catalog_model.Catalog, ctx: Context, change_id: str, wave: int
) -> tuple[str, ...]:
    from changegate.services import calendar as calendar_service

    return (
        calendar_service.schedule_of(app.engine, catalog, ctx, change_id)
        .plan.waves[wave - 1]
        .tenants
    )
