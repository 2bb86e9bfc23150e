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
        description="a clone of the GitOps repository the webhooks fetch into and read",
    )
