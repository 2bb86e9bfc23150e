"""The upgrade Jobs of a tenant database: Argo CD PreSync hooks in the order the upgrade needs
(drain at sync-wave -1, upgrade at 0), the command of both tools, and changegate's own policy
check passing on them (docs/odoo-plan.md)."""

from __future__ import annotations

import os
import re
import stat
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from changegate.adapters import catalog_files
from changegate.domain import catalog as catalog_model
from changegate.domain.odoo import jobs
from changegate.domain.odoo.plan import ModuleUpdate, Policy, TenantPlan
from changegate.services import odoo as odoo_service
from changegate.services import policy as policy_service

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
IMAGE = "registry.example.com/odoo/odoo:17.0-20261120@sha256:" + "a" * 64
KUBECTL = "registry.example.com/mirror/kubectl:v1.31.0@sha256:" + "c" * 64
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def tenant_plan(tenant: str = "acme", database: str = "acme_db") -> TenantPlan:
    return TenantPlan(
        tenant=tenant,
        database=database,
        policy=Policy.VERSION,
        from_series="17.0",
        to_series="17.0",
        update=(
            ModuleUpdate("acme_sale", "version 17.0.1.0 -> 17.0.1.1", "17.0.1.0", "17.0.1.1"),
            ModuleUpdate("acme_stock", "depends on an updated module", "17.0.1.0", "17.0.1.0"),
        ),
        install=("queue_job", "stock_sms"),
    )


def containers(job: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = job["spec"]["template"]["spec"]["containers"]
    return found


@pytest.fixture(scope="module")
def sample_catalog(sample_dir: Path) -> catalog_model.Catalog:
    return catalog_files.load_catalog(sample_dir)


def test_two_presync_hooks_drain_then_upgrade() -> None:
    drain, upgrade = jobs.upgrade_jobs(tenant_plan(), namespace="odoo-acme", image=IMAGE)
    for job in (drain, upgrade):
        assert (job["apiVersion"], job["kind"]) == ("batch/v1", "Job")
        assert job["metadata"]["namespace"] == "odoo-acme"
        assert DNS_LABEL.match(job["metadata"]["name"])
        annotations = job["metadata"]["annotations"]
        assert annotations[jobs.HOOK] == "PreSync"
        assert annotations[jobs.HOOK_DELETE] == "BeforeHookCreation"
        pod = job["spec"]["template"]["spec"]
        assert pod["restartPolicy"] == "Never"  # a Job's pods never restart in place
        assert pod["securityContext"]["runAsNonRoot"] is True
        for container in containers(job):
            assert container["name"] and container["image"] and container["command"]
            assert container["resources"]["limits"]["memory"]
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
        # Own labels: the tenant's Service and the drain's selector never pick these pods.
        labels = job["spec"]["template"]["metadata"]["labels"]
        assert labels["app.kubernetes.io/instance"] == "acme"
        assert labels["app.kubernetes.io/name"] in ("odoo-drain", "odoo-upgrade")
    # Argo CD runs lower waves first, each to completion: drain (-1), then the upgrade (0).
    assert drain["metadata"]["annotations"][jobs.SYNC_WAVE] == "-1"
    assert upgrade["metadata"]["annotations"][jobs.SYNC_WAVE] == "0"
    assert drain["metadata"]["name"] == "odoo-drain-acme"
    assert upgrade["metadata"]["name"] == "odoo-upgrade-acme"
    # Odoo commits module by module: never a second attempt on a half-migrated database.
    assert upgrade["spec"]["backoffLimit"] == 0
    assert upgrade["spec"]["template"]["spec"]["automountServiceAccountToken"] is False
    assert containers(upgrade)[0]["image"] == IMAGE
    mounts = {m["mountPath"] for m in containers(upgrade)[0]["volumeMounts"]}
    assert mounts == {"/etc/odoo", "/var/lib/odoo", "/tmp"}


def test_the_command_of_both_tools() -> None:
    found = tenant_plan()
    (_, by_odoo) = jobs.upgrade_jobs(found, namespace="n", image=IMAGE, tool="odoo")
    assert containers(by_odoo)[0]["command"] == [
        "odoo",
        "-c",
        "/etc/odoo/odoo.conf",
        "-d",
        "acme_db",
        "--no-http",
        "--stop-after-init",
        "-u",
        "acme_sale,acme_stock",
        "-i",
        "queue_job,stock_sms",
    ]
    (_, by_click) = jobs.upgrade_jobs(found, namespace="n", image=IMAGE, tool="click-odoo-update")
    assert containers(by_click)[0]["command"] == [
        "click-odoo-update",
        "-c",
        "/etc/odoo/odoo.conf",
        "-d",
        "acme_db",
    ]
    nothing = TenantPlan("acme", "acme_db", Policy.VERSION, "17.0", "17.0")
    assert jobs.command(nothing, "odoo")[-1] == "--stop-after-init"  # no empty -u or -i


def test_names_stay_valid_labels_for_long_tenant_ids() -> None:
    long_id = "a-very-long-tenant-identifier-for-a-customer-with-many-words-in-it"
    for job in jobs.upgrade_jobs(tenant_plan(long_id), namespace="n", image=IMAGE):
        assert DNS_LABEL.match(job["metadata"]["name"]), job["metadata"]["name"]


def test_the_drain_waits_for_the_deployments_pods_only() -> None:
    drain, _ = jobs.upgrade_jobs(
        tenant_plan(), namespace="n", image=IMAGE, deployment="odoo-web", kubectl_image=KUBECTL
    )
    command = containers(drain)[0]["command"]
    assert command[:2] == ["sh", "-c"]
    assert command[2] == jobs.drain_script("odoo-web", "app.kubernetes.io/name=odoo-web")
    assert containers(drain)[0]["image"] == KUBECTL
    assert drain["spec"]["template"]["spec"]["serviceAccountName"] == "changegate-upgrade"


# ---------------------------------------------------------------------------- the drain's shell

FAKE_KUBECTL = """#!/bin/sh
echo "$*" >> "$KUBECTL_LOG"
case "$1" in
  scale) exit "${SCALE_EXIT:-0}" ;;
  wait) echo "error: no matching resources found" >&2; exit 1 ;;
  get) printf '%s' "$PODS_LEFT"; exit 0 ;;
esac
exit 3
"""


def run_drain(tmp_path: Path, **env: str) -> tuple[int, list[str]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "kubectl"
    fake.write_text(FAKE_KUBECTL)
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    log = tmp_path / "kubectl.log"
    log.write_text("")
    environment = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "KUBECTL_LOG": str(log),
        **env,
    }
    script = jobs.drain_script("odoo", "app.kubernetes.io/name=odoo")
    done = subprocess.run(["sh", "-c", script], env=environment, check=False, timeout=30)
    return done.returncode, log.read_text().splitlines()


def test_the_drain_passes_when_the_pods_are_already_gone(tmp_path: Path) -> None:
    # `kubectl wait --for=delete -l …` fails when nothing matches (a second attempt).
    code, calls = run_drain(tmp_path, PODS_LEFT="")
    assert code == 0
    assert calls == [
        "scale deployment/odoo --replicas=0",
        "wait --for=delete pod -l app.kubernetes.io/name=odoo --timeout=300s",
        "get pod -l app.kubernetes.io/name=odoo -o name",
    ]


def test_the_drain_fails_while_pods_are_left(tmp_path: Path) -> None:
    code, _ = run_drain(tmp_path, PODS_LEFT="pod/odoo-7d9f-abcde\n")
    assert code != 0


def test_the_drain_stops_when_scaling_fails(tmp_path: Path) -> None:
    code, calls = run_drain(tmp_path, SCALE_EXIT="1")
    assert code != 0
    assert calls == ["scale deployment/odoo --replicas=0"]


# ---------------------------------------------------------------------------- policy


def guardrails(namespace: str) -> str:
    """What the tenant's GitOps folder holds besides: the policy judges the folder."""
    documents = [
        {
            "apiVersion": "v1",
            "kind": "LimitRange",
            "metadata": {"name": "limits", "namespace": namespace},
            "spec": {
                "limits": [
                    {
                        "type": "Container",
                        "default": {"cpu": "1", "memory": "1Gi"},
                        "defaultRequest": {"cpu": "100m", "memory": "256Mi"},
                        "max": {"cpu": "4", "memory": "8Gi"},
                    }
                ]
            },
        },
        {
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": {"name": "quota", "namespace": namespace},
            "spec": {
                "hard": {
                    "requests.cpu": "8",
                    "requests.memory": "16Gi",
                    "limits.cpu": "16",
                    "limits.memory": "32Gi",
                    "persistentvolumeclaims": "10",
                    "requests.storage": "200Gi",
                }
            },
        },
    ]
    return yaml.safe_dump_all(documents, sort_keys=False)


def prod_tenant(catalog: catalog_model.Catalog) -> str:
    return next(t for t, e in sorted(catalog.tenants.items()) if e.spec.environment == "prod")


@pytest.mark.parametrize("tool", ["odoo", "click-odoo-update"])
def test_the_jobs_pass_changegates_own_policy_check(
    sample_catalog: catalog_model.Catalog, tool: str
) -> None:
    tenant = prod_tenant(sample_catalog)
    spec = sample_catalog.tenants[tenant].spec
    found = tenant_plan(tenant, spec.database.name)
    rendered = odoo_service.job_documents(
        sample_catalog,
        [found],
        tool="odoo" if tool == "odoo" else "click-odoo-update",
        kubectl_image=KUBECTL,
    )
    text = rendered[tenant]
    documents = list(yaml.safe_load_all(text))
    assert [d["metadata"]["name"] for d in documents] == [
        f"odoo-drain-{tenant}",
        f"odoo-upgrade-{tenant}",
    ]
    assert containers(documents[1])[0]["image"] == spec.odoo.image  # pinned by digest
    report = policy_service.check_texts(
        sample_catalog,
        [("odoo-upgrade.yaml", text), ("guardrails.yaml", guardrails(spec.namespace))],
        now=NOW,
        environment="prod",
        tenant=tenant,
    )
    assert report.passed, [f"{f.rule}: {f.message}" for f in report.failing_errors]
    assert not report.problems
    left = sorted(
        {(f.rule, f.severity.value) for f in report.findings if f.file == "odoo-upgrade.yaml"}
    )
    # Warnings only, and only what the Jobs cannot settle alone: the drain calls the API
    # (it needs its token), and the NetworkPolicies live elsewhere in the tenant's folder.
    assert left == [
        ("k8s.automount-token", "warning"),
        ("k8s.network-policy-coverage", "warning"),
    ]


def test_the_default_kubectl_image_fails_a_production_policy(
    sample_catalog: catalog_model.Catalog,
) -> None:
    tenant = prod_tenant(sample_catalog)
    spec = sample_catalog.tenants[tenant].spec
    rendered = odoo_service.job_documents(
        sample_catalog, [tenant_plan(tenant, spec.database.name)], tool="odoo"
    )
    report = policy_service.check_texts(
        sample_catalog,
        [("odoo-upgrade.yaml", rendered[tenant]), ("g.yaml", guardrails(spec.namespace))],
        now=NOW,
        environment="prod",
        tenant=tenant,
    )
    failing = {(f.rule, f.resource.container) for f in report.failing_errors}
    assert failing == {("image.digest", "drain"), ("image.registry", "drain")}


def test_a_major_upgrade_is_rehearsed_on_a_restored_copy_by_a_plain_job() -> None:
    import dataclasses

    major = dataclasses.replace(tenant_plan(), from_series="16.0", to_series="17.0")
    rehearsal = major.rehearsal()
    assert rehearsal is not None
    assert rehearsal["copy"] == "acme_db_rehearsal"
    assert rehearsal["steps"][1] == (
        "changegate backup restore ID --into acme_db_rehearsal  (on the staging server)"
    )
    job = jobs.rehearsal_job(major, namespace="acme", image=IMAGE, tool="odoo")
    # Applied by hand in staging: no Argo CD hook, and it upgrades the copy, never the tenant's.
    assert "annotations" not in job["metadata"]
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["command"][container["command"].index("-d") + 1] == "acme_db_rehearsal"
    assert "acme_db" not in container["command"]
    assert job["spec"]["backoffLimit"] == 0
    volumes = {v["name"]: v for v in job["spec"]["template"]["spec"]["volumes"]}
    assert volumes["filestore"] == {"name": "filestore", "emptyDir": {}}
    assert DNS_LABEL.match(job["metadata"]["name"])
    # A minor update has no rehearsal.
    assert tenant_plan().rehearsal() is None
    long = dataclasses.replace(major, database="d" * 63)
    assert (
        len(
            jobs.rehearsal_job(long, namespace="n", image=IMAGE)["spec"]["template"]["spec"][
                "containers"
            ][0]["command"][4]
        )
        <= 63
    )
