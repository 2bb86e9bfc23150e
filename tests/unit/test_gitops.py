"""The GitOpsRepository kind and its patterns: matching, precedence, validation; what a file's
content change says about the category; images from workloads and kustomizations."""

from __future__ import annotations

import re
from typing import Any

import pytest

from changegate.domain import catalog, gitops
from changegate.domain.changes import Category
from changegate.domain.policy.model import Document, Format
from changegate.errors import InvalidInput
from tests import catalog_builders as b

DIGEST = "sha256:" + "c" * 64


def rules(*patterns: str | dict[str, Any]) -> list[gitops.PathRule]:
    return [
        gitops.PathRule.model_validate(p if isinstance(p, dict) else {"pattern": p})
        for p in patterns
    ]


def repository(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "url": "https://git.example.com/fleet.git",
        "paths": [{"pattern": "tenants/{tenant}/**"}],
    }
    return b.doc("GitOpsRepository", spec.pop("name", "fleet"), {**base, **spec})


def build(*extra: dict[str, Any]) -> catalog.Catalog:
    files = b.platform()
    files["gitops.yaml"] = list(extra)
    return catalog.build(b.documents(files), digest="sha256:" + "0" * 64, commit=None, root="r")


# --------------------------------------------------------------------------- patterns


@pytest.mark.parametrize(
    ("pattern", "path", "captures"),
    [
        (
            "clusters/{cluster}/tenants/{tenant}/**",
            "clusters/c1/tenants/acme/a/b.yaml",
            {"cluster": "c1", "tenant": "acme"},
        ),
        ("platform/{service}/**", "platform/pg-1/cluster.yaml", {"service": "pg-1"}),
        ("tenants/{tenant}/values.yaml", "tenants/acme/values.yaml", {"tenant": "acme"}),
        ("tenants/values-{tenant}.yaml", "tenants/values-acme.yaml", {"tenant": "acme"}),
        ("/tenants/{tenant}/*.yaml", "tenants/acme/x.yaml", {"tenant": "acme"}),
        ("**/{tenant}.yaml", "deep/er/acme.yaml", {"tenant": "acme"}),
        ("**/{tenant}.yaml", "acme.yaml", {"tenant": "acme"}),
        ("a/**/{tenant}/x", "a/{tenant}/x".replace("{tenant}", "t"), {"tenant": "t"}),
        ("tenants/{tenant}/", "tenants/acme/deep/file", {"tenant": "acme"}),
        ("tenants/{tenant}/**", 'tenants/acme/we ird\n"name".yaml', {"tenant": "acme"}),
    ],
)
def test_patterns_match_and_capture(pattern: str, path: str, captures: dict[str, str]) -> None:
    found = gitops.match_path(rules(pattern), path)
    assert found is not None
    assert dict(found.captures) == captures


@pytest.mark.parametrize(
    ("pattern", "path"),
    [
        ("tenants/{tenant}/values.yaml", "tenants/acme/sub/values.yaml"),  # {x} is one segment
        ("tenants/{tenant}/*.yaml", "tenants/acme/a/b.yaml"),  # * never crosses /
        ("platform/{service}/**", "platform/pg-1"),  # ** at the end needs a file below
        ("platform/{service}/**", "xplatform/pg-1/a"),  # anchored at the root
        ("tenants/{tenant}/a?.yaml", "tenants/acme/ab.yaml"),  # ? is literal
        ("tenants/{tenant}/[a].yaml", "tenants/acme/a.yaml"),  # [ is literal
    ],
)
def test_patterns_do_not_match(pattern: str, path: str) -> None:
    assert gitops.match_path(rules(pattern), path) is None


def test_the_last_matching_pattern_wins_as_in_codeowners() -> None:
    listed = rules("clusters/{cluster}/**", "clusters/{cluster}/tenants/{tenant}/**")
    found = gitops.match_path(listed, "clusters/c1/tenants/acme/app.yaml")
    assert found is not None
    assert found.index == 1
    assert found.describe() == "paths[1] 'clusters/{cluster}/tenants/{tenant}/**'"
    found = gitops.match_path(listed, "clusters/c1/ingress.yaml")
    assert found is not None
    assert found.index == 0
    reversed_ = rules("clusters/{cluster}/tenants/{tenant}/**", "clusters/{cluster}/**")
    found = gitops.match_path(reversed_, "clusters/c1/tenants/acme/app.yaml")
    assert found is not None
    assert found.index == 1


def test_a_capture_that_cannot_be_an_id_is_explained() -> None:
    found = gitops.match_path(rules("tenants/{tenant}/**"), "tenants/Acme Corp/x.yaml")
    assert found is not None
    assert gitops.bad_capture(found) == (
        "paths[0] 'tenants/{tenant}/**' captured tenant 'Acme Corp', which is not a valid id "
        "(lowercase letters, digits and -)"
    )


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"pattern": "a/**b/{tenant}"}, "`**` must be a whole path segment"),
        ({"pattern": "{team}/x"}, "unknown placeholder {team}"),
        ({"pattern": "a//{tenant}"}, "empty, `.` or `..` segment"),
        ({"pattern": "../{tenant}"}, "empty, `.` or `..` segment"),
        ({"pattern": "{tenant}/{tenant}"}, "{tenant} is captured more than once"),
        ({"pattern": "a/{tenant"}, "unbalanced braces"),
        ({"pattern": "docs/**"}, "the pattern names no target"),
        ({"pattern": "{environment}/x"}, "the pattern names no target"),
        ({"pattern": "docs/{tenant}", "ignore": True}, "an ignore rule captures nothing"),
        ({"pattern": "/"}, "a pattern cannot be empty"),
        ({"pattern": "x/{tenant}", "category": "nonsense"}, "category"),
    ],
)
def test_bad_rules_are_refused_with_the_reason(rule: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        gitops.PathRule.model_validate(rule)


# --------------------------------------------------------------------------- the kind


def test_the_kind_is_registered_with_its_defaults_and_the_catalog_property() -> None:
    built = build(repository())
    found = built.gitops_repository
    assert found is not None
    assert found.spec.branch == "main"
    assert found.spec.paths[0].pattern == "tenants/{tenant}/**"
    assert catalog.normalize_kind("gitops") == "GitOpsRepository"
    assert built.as_dict()["counts"]["gitopsrepositories"] == 1
    assert build().gitops_repository is None


def test_a_catalog_holds_at_most_one_gitops_repository() -> None:
    with pytest.raises(InvalidInput) as caught:
        build(repository(), repository(name="other"))
    assert "a catalog holds at most one GitOpsRepository; 'fleet' is defined at" in str(
        caught.value
    )


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"url": "not a url"}, "spec.url"),
        ({"branch": "-delete"}, "spec.branch"),
        ({"branch": "a..b"}, "spec.branch"),
        ({"paths": []}, "spec.paths"),
        ({"paths": [{"pattern": "t/{tenant}/**"}, {"pattern": "/t/{tenant}/**"}]}, "spec"),
        ({"unknown": 1}, "spec.unknown"),
    ],
)
def test_bad_repository_specs_name_the_field(spec: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        build(repository(**spec))
    assert any((p.field or "").startswith(field) for p in caught.value.problems), caught.value


def test_ssh_urls_are_accepted() -> None:
    built = build(repository(url="git@github.com:acme/fleet.git", branch="release/2026"))
    assert built.gitops_repository is not None


# --------------------------------------------------------------------------- content


def deployment(image: str, replicas: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "odoo"},
        "spec": {
            "replicas": replicas,
            "template": {"spec": {"containers": [{"name": "odoo", "image": image}]}},
        },
    }


def test_only_image_changes_are_an_application_release() -> None:
    found = gitops.classify_content([deployment("odoo:1")], [deployment("odoo:2")], "a.yaml")
    assert found.category is Category.APPLICATION_RELEASE


def test_other_changes_are_unclear() -> None:
    found = gitops.classify_content(
        [deployment("odoo:1")], [deployment("odoo:2", replicas=3)], "a.yaml"
    )
    assert found.category is None


def test_only_postgresql_cluster_changes_are_database_config() -> None:
    before = [{"apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster", "spec": {"instances": 3}}]
    after = [{"apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster", "spec": {"instances": 5}}]
    found = gitops.classify_content(before, after, "pg.yaml")
    assert found.category is Category.DATABASE_CONFIG
    other = [{"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": "1"}}]
    assert gitops.classify_content(before, [*after, *other], "pg.yaml").category is None


def test_images_and_digests_come_from_workloads_and_kustomizations() -> None:
    doc = Document(
        "a.yaml", 0, 1, Format.KUBERNETES, deployment(f"reg.example.com/odoo:17@{DIGEST}")
    )
    assert gitops.workload_images([doc]) == [gitops.Image("reg.example.com/odoo:17", DIGEST)]
    data = {
        "images": [
            {"name": "odoo", "newName": "reg.example.com/odoo", "newTag": "17.0-3"},
            {"name": "redis", "digest": DIGEST},
            {"newTag": "orphan"},
        ]
    }
    assert gitops.kustomize_images(data) == [
        gitops.Image("reg.example.com/odoo:17.0-3"),
        gitops.Image("redis", DIGEST),
    ]


def test_category_inference_needs_every_file_to_agree() -> None:
    release = Category.APPLICATION_RELEASE
    vote = gitops.CategoryVote
    assert gitops.infer_category([vote("a", release, "images")]).value == "application-release"
    mixed = gitops.infer_category(
        [vote("a", release, "images"), vote("b", Category.DATABASE_CONFIG, "pg")]
    )
    assert mixed.value is None
    assert "different categories" in mixed.reason
    unclear = gitops.infer_category([vote("a", release, "images"), vote("b", None, "a new file")])
    assert unclear.reason == "b: a new file; say --category"
