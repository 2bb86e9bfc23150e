"""Configuration from CHANGEGATE_* environment variables, read once at start-up."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything changegate can be configured with. Only bootstrap reads it."""

    model_config = SettingsConfigDict(env_prefix="CHANGEGATE_", extra="ignore")

    database_url: str = Field(
        default="sqlite:///changegate.db",
        description="SQLAlchemy URL; default: changegate.db in the working directory",
    )
    catalog_dir: Path | None = Field(default=None, description="the platform catalog folder")
    audit_signing_key: Path | None = Field(
        default=None, description="PEM file with the Ed25519 private key signing checkpoints"
    )
    audit_verify_key: Path | None = Field(
        default=None, description="PEM file with the Ed25519 public key verifying checkpoints"
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    allow_dev_auth_on_public_bind: bool = Field(
        default=False,
        description="allow the X-Changegate-User development mode on a non-loopback bind",
    )
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    max_file_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    user: str | None = Field(default=None, description="the CLI's acting person (like --as)")
    backup_dir: Path = Field(
        default=Path("backups"),
        description="where pg_dump archives are written, one folder per tenant",
    )
    pg_service_file: Path | None = Field(
        default=None,
        description="libpq connection service file naming each catalog PostgreSQL service "
        "(PGSERVICEFILE for pg_dump/pg_restore/psql); default: libpq's own",
    )
    # Webhooks (docs/webhooks.md). The secrets are SecretStr: never logged, printed or echoed.
    webhook_github_secret: SecretStr | None = Field(
        default=None,
        description="the GitHub webhook secret (X-Hub-Signature-256); unset: the GitHub "
        "webhook answers 404",
    )
    webhook_gitlab_token: SecretStr | None = Field(
        default=None,
        description="the GitLab webhook secret token (X-Gitlab-Token); unset: the GitLab "
        "webhook answers 404",
    )
    webhook_gitlab_signing_token: SecretStr | None = Field(
        default=None,
        description="the GitLab webhook signing token: when set, the webhook-signature "
        "header is required as well (Standard Webhooks, with a 5-minute timestamp window)",
    )
    webhook_person: str | None = Field(
        default=None,
        description="the catalog person webhooks act as (files and updates changes)",
    )
    gitops_branch: str | None = Field(
        default=None,
        description="the branch the rollout worker commits to; default: the catalog's "
        "GitOpsRepository branch (else main)",
    )
    gitops_workdir: Path | None = Field(
        default=None,
        description="a clone of the GitOps repository (its remote is origin): the rollout "
        "worker commits through it, the webhooks and the policy gate read it",
    )
    # Rollouts (docs/rollout.md).
    gitops_signing_key: str | None = Field(
        default=None,
        description="an OpenPGP key id: the worker signs its wave and revert commits with it",
    )
    worker_embedded: bool = Field(
        default=True,
        description="serve runs a rollout worker in a thread when CHANGEGATE_GITOPS_WORKDIR is set",
    )
    argocd_url: str | None = Field(
        default=None,
        description="the Argo CD API server whose application status the rollout waits on",
    )
    argocd_token: SecretStr | None = Field(
        default=None, description="the Argo CD API token (never logged)"
    )
    delivery_snapshot: Path | None = Field(
        default=None,
        description="a `kubectl get -o json` export read for sync and health instead of Argo "
        "CD (teams without Argo CD; kubectl against a kubeconfig otherwise)",
    )
    kubeconfig: Path | None = Field(
        default=None,
        description="kubectl's kubeconfig: workloads' rollout status is read with kubectl",
    )
    prometheus_url: str | None = Field(
        default=None,
        description="Prometheus for analysis metrics that name no address (else the catalog's "
        "monitoring service of the change's environment)",
    )
    notify_url: str | None = Field(
        default=None, description="where rollout events are POSTed as JSON (rollbacks, pauses)"
    )
    notify_secret: SecretStr | None = Field(
        default=None, description="signs notifications (X-Changegate-Signature-256)"
    )
    incident_url: str | None = Field(
        default=None,
        description="the incident link recorded on a rolled-back change; {change} is replaced",
    )
