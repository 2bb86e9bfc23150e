"""Drift, pure: desired ⊆ live, server-filled fields ignored, missing and unmanaged objects."""

from __future__ import annotations

import base64
import copy
from typing import Any

from changegate.domain import drift as d


def desired_deployment() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "odoo", "namespace": "t1", "labels": {"app": "odoo"}},
        "spec": {
            "replicas": 2,
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "odoo",
                            "image": "odoo:17.0",
                            "resources": {"limits": {"cpu": "1000m", "memory": "1Gi"}},
                            "env": [{"name": "A", "value": "1"}],
                        }
                    ]
                }
            },
        },
    }


def live_of(obj: dict[str, Any]) -> dict[str, Any]:
    """What the server answers: filled-in metadata, defaults, status."""
    live = copy.deepcopy(obj)
    live["metadata"].update(
        {
            "uid": "u-1",
            "resourceVersion": "42",
            "generation": 3,
            "creationTimestamp": "2024-01-01T00:00:00Z",
            "managedFields": [{"manager": "argocd"}],
            "annotations": {"deployment.kubernetes.io/revision": "3"},
        }
    )
    container = live["spec"]["template"]["spec"]["containers"][0]
    container["imagePullPolicy"] = "IfNotPresent"
    container["resources"]["limits"]["cpu"] = "1"
    container["resources"]["limits"]["memory"] = "1073741824"
    live["spec"]["strategy"] = {"type": "RollingUpdate"}
    live["status"] = {"replicas": 2}
    return live


def test_no_drift_when_live_only_adds_server_fields_and_defaults() -> None:
    want = desired_deployment()
    report = d.compare([d.DesiredObject(want, "a.yaml")], [live_of(want)])
    assert report.compared == 1 and not report.found


def test_ignored_fields_are_ignored_even_when_the_manifest_sets_them() -> None:
    want = desired_deployment()
    want["metadata"]["annotations"] = {"kubectl.kubernetes.io/last-applied-configuration": "{}"}
    want["status"] = {"replicas": 9}
    assert d.differences(want, live_of(desired_deployment())) == []


def test_changed_fields_are_reported_with_their_paths() -> None:
    want = desired_deployment()
    live = live_of(want)
    live["spec"]["replicas"] = 5
    live["spec"]["template"]["spec"]["containers"][0]["image"] = "odoo:evil"
    live["spec"]["template"]["spec"]["containers"][0]["env"] = []
    live["metadata"]["labels"] = {}
    report = d.compare([d.DesiredObject(want, "a.yaml")], [live])
    assert len(report.drifted) == 1
    paths = {x.path: x for x in report.drifted[0].differences}
    assert set(paths) == {
        "metadata.labels.app",
        "spec.replicas",
        "spec.template.spec.containers[odoo].image",
        "spec.template.spec.containers[odoo].env[A]",
    }
    assert paths["spec.replicas"].desired == 2 and paths["spec.replicas"].live == 5
    assert paths["metadata.labels.app"].missing


def test_containers_match_by_name_not_position() -> None:
    want = desired_deployment()
    live = live_of(want)
    containers = live["spec"]["template"]["spec"]["containers"]
    containers.insert(0, {"name": "sidecar", "image": "envoy"})
    assert d.differences(want, live) == []


def test_missing_and_unmanaged_objects() -> None:
    want = desired_deployment()
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}}
    live = [
        live_of(want),
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "hand", "namespace": "t1"}},
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "kube-root-ca.crt", "namespace": "t1"},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {"name": "odoo-1", "namespace": "t1", "ownerReferences": [{"kind": "D"}]},
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "other", "namespace": "kube-system"},
        },
    ]
    report = d.compare(
        [d.DesiredObject(want, "a.yaml"), d.DesiredObject(config, "b.yaml")],
        live,
        default_namespace="t1",
    )
    assert report.missing == [(("v1", "ConfigMap", "t1", "cfg"), "b.yaml")]
    assert report.unmanaged == [("v1", "ConfigMap", "t1", "hand")]


def test_secret_string_data_compares_as_data_and_values_stay_hidden() -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "db", "namespace": "t1"},
        "stringData": {"password": "s3cret"},
    }
    live = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "db", "namespace": "t1"},
        "data": {"password": base64.b64encode(b"s3cret").decode()},
        "type": "Opaque",
    }
    assert d.differences(secret, live) == []
    live["data"]["password"] = base64.b64encode(b"changed").decode()
    report = d.compare([d.DesiredObject(secret, "s.yaml")], [live])
    shown = report.as_dict()["drifted"][0]["differences"]
    assert shown == [{"path": "data.password", "missing": False}]
    assert "s3cret" not in repr(report.as_dict())


def test_quantities() -> None:
    assert d.quantity("500m") == d.quantity("0.5")
    assert d.quantity("1Gi") == 1024**3
    assert d.quantity("1e3") == d.quantity("1k")
    assert d.quantity("abc") is None
    assert d.quantity(True) is None


def test_cluster_scoped_kinds_have_no_namespace_and_kustomizations_are_not_objects() -> None:
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "t1"}}
    assert d.key_of(ns, "default") == ("v1", "Namespace", "", "t1")
    kust = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization"}
    assert not d.is_cluster_object(kust)


def test_change_id_trailers() -> None:
    assert d.change_ids("wave 1\n\nbody\n\nChange-Id: CHG-12\nWave: 1/3\n") == ["CHG-12"]
    assert d.change_ids("Change-Id: CHG-12") == []  # a subject is no trailer
    assert d.change_ids("subject\n\nChange-Id: CHG-1 in the middle\n\nSigned-off-by: x") == []
