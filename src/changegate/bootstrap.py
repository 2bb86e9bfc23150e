"""Wiring: settings -> engine, catalog, keys. The only module that reads Settings."""

from __future__ import annotations

import gc
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import SecretStr

from changegate.adapters import (
    argocd_status,
    catalog_files,
    kubectl,
    notify,
    pgbackup,
    signing,
)
from changegate.adapters import git as git_adapter
from changegate.domain import catalog as catalog_model
from changegate.domain import health
from changegate.errors import InvalidInput, PermanentError, Problem
from changegate.services import catalog as catalog_service
from changegate.services import rollout as rollout_service
from changegate.services import webhooks as webhooks_service
from changegate.services.context import SYSTEM, Context, utcnow
from changegate.services.rollout import Delivery
from changegate.settings import Settings
from changegate.store import db

DEFAULT_CATALOG_DIR = Path("platform")


@dataclass
class App:
    """What every door (API, CLI) needs: the settings, the engine and the loaded catalog."""

    settings: Settings
    engine: sa.Engine
    catalog_dir: Path
    _catalog: catalog_model.Catalog | None = field(default=None, repr=False)
    # The clock every request's context reads; tests replace it to stand at a given instant
    # (inside a maintenance window, past an approval's expiry). Never set from outside.
    clock: Callable[[], datetime] = field(default=utcnow, repr=False)

    def catalog(self) -> catalog_model.Catalog:
        """The catalog, loaded on first use; a changed digest is recorded in the audit trail."""
        if self._catalog is None:
            self._catalog = self._load(explicit=False, ctx=Context(actor=SYSTEM))
        return self._catalog

    def reload_catalog(self, ctx: Context) -> catalog_model.Catalog:
        """Load the catalog again at someone's request; always audited."""
        self._catalog = self._load(explicit=True, ctx=ctx)
        return self._catalog

    def _load(self, *, explicit: bool, ctx: Context) -> catalog_model.Catalog:
        loaded = load_catalog(self.settings, self.catalog_dir)
        catalog_service.record_load(self.engine, loaded, ctx, explicit=explicit)
        # The catalog lives as long as the process (or until a reload): move it out of the
        # cyclic collector's reach, whose full passes would otherwise walk all of it (about
        # 200 ms at 10,000 tenants) in the middle of requests. Reference counting still
        # frees a replaced catalog.
        gc.freeze()
        return loaded

    def signing_key(self) -> Ed25519PrivateKey:
        if self.settings.audit_signing_key is None:
            raise InvalidInput(
                [
                    Problem(
                        "no signing key: set CHANGEGATE_AUDIT_SIGNING_KEY to an Ed25519 PEM file "
                        "(create one with `changegate audit keygen`)",
                        field="CHANGEGATE_AUDIT_SIGNING_KEY",
                    )
                ]
            )
        return signing.load_private(self.settings.audit_signing_key)

    def webhook_config(self) -> webhooks_service.Config:
        """The webhooks' configuration (the secrets unwrapped here only, never logged)."""
        settings = self.settings

        def secret(value: SecretStr | None) -> str | None:
            return value.get_secret_value() if value is not None else None

        return webhooks_service.Config(
            github_secret=secret(settings.webhook_github_secret),
            gitlab_token=secret(settings.webhook_gitlab_token),
            gitlab_signing_token=secret(settings.webhook_gitlab_signing_token),
            person=settings.webhook_person,
            workdir=settings.gitops_workdir,
        )

    @property
    def gitops_workdir(self) -> Path | None:
        """The clone of the GitOps repository (CHANGEGATE_GITOPS_WORKDIR): the policy gate
        reads a change's commits from it, the webhooks fetch into it."""
        return self.settings.gitops_workdir

    def delivery(self, *, workdir: Path | None = None, branch: str | None = None) -> Delivery:
        """What the rollout worker reaches outside the database, from the settings: the
        GitOps clone and branch, the delivery-status source (Argo CD, else a kubectl snapshot
        export, else kubectl with a kubeconfig, else none), backups, Prometheus, notify."""
        settings = self.settings
        directory = workdir or settings.gitops_workdir
        if directory is None:
            raise InvalidInput(
                [
                    Problem(
                        "no GitOps working copy: pass --workdir or set CHANGEGATE_GITOPS_WORKDIR "
                        "to a clone of the GitOps repository",
                        field="workdir",
                    )
                ]
            )
        repository = self.catalog().gitops_repository
        chosen = (
            branch
            or settings.gitops_branch
            or (repository.spec.branch if repository is not None else "main")
        )
        target = rollout_service.GitTarget(
            git_adapter.Clone(directory), chosen, settings.gitops_signing_key
        )
        status: health.DeliveryStatus | None = None
        if settings.argocd_url:
            token = settings.argocd_token
            status = argocd_status.ArgoCDStatus(
                settings.argocd_url, token=token.get_secret_value() if token else None
            )
        elif settings.delivery_snapshot is not None:
            status = kubectl.KubectlStatus.from_snapshot(settings.delivery_snapshot)
        else:
            found = kubectl.Kubectl.configured(settings.kubeconfig)
            if found is not None:
                status = kubectl.KubectlStatus.from_kubectl(found)
        notifier = None
        if settings.notify_url:
            secret = settings.notify_secret
            notifier = notify.HttpNotifier(
                settings.notify_url, secret.get_secret_value() if secret else None
            )
        return rollout_service.Delivery(
            target=target,
            status=status,
            backup_tool=self.backup_tool(),
            backup_dir=self.backup_dir,
            prometheus=settings.prometheus_url,
            notifier=notifier,
            incident_url=settings.incident_url,
        )

    def backup_tool(self) -> pgbackup.PgBackup:
        """The PostgreSQL client tools, connecting through the configured service file."""
        return pgbackup.PgBackup(service_file=self.settings.pg_service_file)

    @property
    def backup_dir(self) -> Path:
        """Where backups are written (CHANGEGATE_BACKUP_DIR)."""
        return self.settings.backup_dir

    def verify_key(self) -> Ed25519PublicKey | None:
        if self.settings.audit_verify_key is not None:
            return signing.load_public(self.settings.audit_verify_key)
        if self.settings.audit_signing_key is not None:
            return signing.load_private(self.settings.audit_signing_key).public_key()
        return None


def catalog_dir(settings: Settings, override: Path | None = None) -> Path:
    return override or settings.catalog_dir or DEFAULT_CATALOG_DIR


def load_catalog(settings: Settings, directory: Path) -> catalog_model.Catalog:
    return catalog_files.load_catalog(directory, max_file_bytes=settings.max_file_bytes)


def engine_for(settings: Settings) -> sa.Engine:
    """The engine; the embedded SQLite file migrates itself, PostgreSQL must be upgraded."""
    engine = db.make_engine(settings.database_url)
    if engine.dialect.name == "sqlite":
        db.upgrade(engine)
    elif not db.is_current(engine):
        raise PermanentError(
            f"the database schema is at {db.current_revision(engine) or 'nothing'}, this "
            f"changegate needs {db.head_revision()}: run `changegate db upgrade`"
        )
    return engine


def create(settings: Settings | None = None, *, catalog: Path | None = None) -> App:
    settings = settings or Settings()
    return App(
        settings=settings, engine=engine_for(settings), catalog_dir=catalog_dir(settings, catalog)
    )
