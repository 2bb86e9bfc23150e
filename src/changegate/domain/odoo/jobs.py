"""The Kubernetes Jobs that run a tenant database's upgrade, as Argo CD PreSync hooks.

Per tenant database, two Jobs in the order the upgrade needs them, before Argo CD applies the
new image (docs/odoo-plan.md):

1. `odoo-drain` (hook sync-wave -1): scales the tenant's Odoo Deployment to 0 replicas and
   waits for its pods to end, so no old worker writes while the schema changes. Its image
   needs kubectl and a POSIX shell, and its service account the right to scale the
   Deployment and list pods; pods already gone (a second attempt) count as drained, where
   `kubectl wait --for=delete` alone fails with "no matching resources found";
2. `odoo-upgrade` (hook sync-wave 0): runs the new image against the database, either
   `click-odoo-update` (updates what changed by checksum and stores the new checksums) or
   `odoo -u <modules> --stop-after-init` (the modules the plan updates); `backoffLimit: 0`,
   since Odoo commits module by module and a second attempt on a half-migrated database is
   not the same upgrade (the backup is the way back).

Argo CD then syncs the Deployment at the new image (and its replicas): the rollout's sync
step waits for it and the verification follows. The pre-change backup is the rollout's
`backup` step, before the commit that carries these Jobs. Pure: returns plain manifests.
"""

from __future__ import annotations

import dataclasses
import shlex
from collections.abc import Sequence
from typing import Any, Literal

from changegate.domain.odoo.plan import TenantPlan, rehearsal_database

HOOK = "argocd.argoproj.io/hook"
HOOK_DELETE = "argocd.argoproj.io/hook-delete-policy"
SYNC_WAVE = "argocd.argoproj.io/sync-wave"
Tool = Literal["click-odoo-update", "odoo"]
# A default only: pin your own by digest, from a registry the policy allows (`--kubectl-image`).
DEFAULT_KUBECTL_IMAGE = "registry.k8s.io/kubectl:v1.31.0"


def _name(prefix: str, tenant: str) -> str:
    return f"{prefix}-{tenant}"[:63].rstrip("-")


def _security() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }


def _pod_security() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": 101,
        "runAsGroup": 101,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _metadata(component: str, name: str, namespace: str, tenant: str, wave: int) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": namespace,
        "labels": {
            "app.kubernetes.io/name": component,
            "app.kubernetes.io/instance": tenant,
            "app.kubernetes.io/managed-by": "changegate",
        },
        "annotations": {
            HOOK: "PreSync",
            HOOK_DELETE: "BeforeHookCreation",
            SYNC_WAVE: str(wave),
        },
    }


def command(plan: TenantPlan, tool: Tool, config: str = "/etc/odoo/odoo.conf") -> list[str]:
    """The upgrade's command line for one tenant database."""
    if tool == "click-odoo-update":
        return ["click-odoo-update", "-c", config, "-d", plan.database]
    modules = [update.module for update in plan.update]
    argv = ["odoo", "-c", config, "-d", plan.database, "--no-http", "--stop-after-init"]
    if modules:
        argv += ["-u", ",".join(modules)]
    if plan.install:
        argv += ["-i", ",".join(plan.install)]
    return argv


def upgrade_jobs(
    plan: TenantPlan,
    *,
    namespace: str,
    image: str,
    tool: Tool = "click-odoo-update",
    deployment: str = "odoo",
    config_secret: str = "odoo-config",  # noqa: S107 - the name of a Secret, not a secret
    filestore_claim: str = "odoo-filestore",
    service_account: str = "changegate-upgrade",
    kubectl_image: str = DEFAULT_KUBECTL_IMAGE,
    pod_selector: str | None = None,
    deadline_seconds: int = 3600,
) -> list[dict[str, Any]]:
    """The drain Job and the upgrade Job of one tenant database (see the module doc).

    `pod_selector` selects the Deployment's pods (default `app.kubernetes.io/name=<deployment>`).
    """
    tenant = plan.tenant
    drain_name = _name("odoo-drain", tenant)
    upgrade_name = _name("odoo-upgrade", tenant)
    selector = pod_selector or f"app.kubernetes.io/name={deployment}"
    drain = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _metadata("odoo-drain", drain_name, namespace, tenant, -1),
        "spec": {
            "backoffLimit": 2,
            "activeDeadlineSeconds": 600,
            "ttlSecondsAfterFinished": 86400,
            "template": {
                "metadata": {"labels": _pod_labels("odoo-drain", tenant)},
                "spec": {
                    "restartPolicy": "Never",
                    "serviceAccountName": service_account,
                    "securityContext": _pod_security(),
                    "containers": [
                        {
                            "name": "drain",
                            "image": kubectl_image,
                            "command": ["sh", "-c", drain_script(deployment, selector)],
                            "securityContext": _security(),
                            "resources": _resources("50m", "64Mi", "200m", "128Mi"),
                        }
                    ],
                },
            },
        },
    }
    upgrade = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _metadata("odoo-upgrade", upgrade_name, namespace, tenant, 0),
        "spec": _upgrade_spec(
            "odoo-upgrade",
            tenant,
            image,
            command(plan, tool),
            config_secret,
            {"persistentVolumeClaim": {"claimName": filestore_claim}},
            deadline_seconds,
        ),
    }
    return [drain, upgrade]


def _pod_labels(component: str, tenant: str) -> dict[str, str]:
    # Not the Odoo pods' own `app.kubernetes.io/name`: the tenant's Service must not send
    # traffic to these pods, nor the drain wait for them. NetworkPolicies select them by it.
    return {"app.kubernetes.io/name": component, "app.kubernetes.io/instance": tenant}


def drain_script(deployment: str, selector: str, timeout_seconds: int = 300) -> str:
    """The drain's shell command: scale to 0, then wait until no pod of the selector is left.

    `kubectl wait --for=delete -l …` exits 1 with "no matching resources found" when the
    pods are already gone (kubernetes/kubernetes#83242), as on a second attempt after a
    failed upgrade: a failed wait passes when listing the selector finds no pod.
    """
    target, pods = shlex.quote(f"deployment/{deployment}"), shlex.quote(selector)
    return (
        f"kubectl scale {target} --replicas=0 && "
        f"{{ kubectl wait --for=delete pod -l {pods} --timeout={timeout_seconds}s || "
        f'test -z "$(kubectl get pod -l {pods} -o name)"; }}'
    )


def _resources(cpu: str, memory: str, cpu_limit: str, memory_limit: str) -> dict[str, Any]:
    return {
        "requests": {"cpu": cpu, "memory": memory},
        "limits": {"cpu": cpu_limit, "memory": memory_limit},
    }


def order() -> Sequence[str]:
    """The order the rollout carries an Odoo upgrade through, for the docs and the plan."""
    return (
        "backup (the rollout's backup step)",
        "drain the old pods (PreSync hook, sync-wave -1)",
        "upgrade Job (PreSync hook, sync-wave 0)",
        "roll out the new image (Argo CD sync)",
        "verify (the rollout's verify step)",
    )


def rehearsal_job(
    plan: TenantPlan,
    *,
    namespace: str,
    image: str,
    tool: Tool = "click-odoo-update",
    config_secret: str = "odoo-config",  # noqa: S107 - the name of a Secret, not a secret
    deadline_seconds: int = 7200,
) -> dict[str, Any]:
    """A plain Job (no hook: applied by hand in staging) running the upgrade on the restored
    copy of the tenant database (`plan.rehearsal_database`), with an empty filestore: it
    proves the migration scripts run on the tenant's own data before production is touched."""
    rehearsed = dataclasses.replace(plan, database=rehearsal_database(plan.database))
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": _name("odoo-rehearsal", plan.tenant),
            "namespace": namespace,
            "labels": _pod_labels("odoo-rehearsal", plan.tenant),
        },
        "spec": _upgrade_spec(
            "odoo-rehearsal",
            plan.tenant,
            image,
            command(rehearsed, tool),
            config_secret,
            {"emptyDir": {}},
            deadline_seconds,
        ),
    }


def _upgrade_spec(
    component: str,
    tenant: str,
    image: str,
    argv: list[str],
    config_secret: str,
    filestore: dict[str, Any],
    deadline_seconds: int,
) -> dict[str, Any]:
    """The spec of a Job running Odoo's upgrade once (`backoffLimit: 0`: Odoo commits module
    by module, a second attempt on a half-migrated database is not the same upgrade)."""
    return {
        "backoffLimit": 0,
        "activeDeadlineSeconds": deadline_seconds,
        "ttlSecondsAfterFinished": 86400,
        "template": {
            "metadata": {"labels": _pod_labels(component, tenant)},
            "spec": {
                "restartPolicy": "Never",
                "automountServiceAccountToken": False,
                "securityContext": _pod_security(),
                "containers": [
                    {
                        "name": component.removeprefix("odoo-"),
                        "image": image,
                        "command": argv,
                        "securityContext": _security(),
                        "resources": _resources("500m", "1Gi", "2", "3Gi"),
                        "volumeMounts": [
                            {"name": "config", "mountPath": "/etc/odoo", "readOnly": True},
                            {"name": "filestore", "mountPath": "/var/lib/odoo"},
                            {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - in the pod
                        ],
                    }
                ],
                "volumes": [
                    {"name": "config", "secret": {"secretName": config_secret}},
                    {"name": "filestore", **filestore},
                    {"name": "tmp", "emptyDir": {}},
                ],
            },
        },
    }
