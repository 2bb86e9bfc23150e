"""Rendering a wave: a tenant's files, and the change's images rewritten in them as text
(image scalars, kustomize `images:` entries, Helm `image:` mappings)."""

from __future__ import annotations

import textwrap
import time
from typing import Any

import pytest
import yaml as pyyaml
from hypothesis import given, settings
from hypothesis import strategies as st

from changegate.domain import gitops, rendering
from changegate.errors import InvalidInput

DIGEST = "sha256:" + "a" * 64
OLD_DIGEST = "sha256:" + "0" * 64
ODOO = "registry.example.com/odoo"
WANTED = [(f"{ODOO}:17.0-20261120", DIGEST)]
NEW = f"{ODOO}:17.0-20261120@{DIGEST}"


def yaml(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def render_one(
    text: str | bytes, images: list[tuple[str, str | None]] | None = None, path: str = "t/a.yaml"
) -> str | None:
    """The file after rendering, or None when it does not change."""
    data = text.encode() if isinstance(text, str) else text
    rendered = rendering.render_images({path: data}, WANTED if images is None else images)
    assert rendered.skipped == []
    if not rendered.rewrites:
        return None
    (rewrite,) = rendered.rewrites
    assert rewrite.path == path
    assert rewrite.before == data
    return rewrite.after.decode()


def rules(*patterns: str | dict[str, Any]) -> list[gitops.PathRule]:
    return [
        gitops.PathRule.model_validate(p if isinstance(p, dict) else {"pattern": p})
        for p in patterns
    ]


# --------------------------------------------------------------------------- tenant files


def test_tenant_files_follow_the_deciding_rule() -> None:
    paths = rules(
        "clusters/{cluster}/**",
        "clusters/{cluster}/tenants/{tenant}/**",
        "clusters/{cluster}/tenants/acme/shared/{service}/**",
        {"pattern": "**/*.md", "ignore": True},
    )
    tree = [
        "clusters/eu-1/tenants/acme/values.yaml",
        "clusters/eu-1/tenants/acme/kustomization.yaml",
        "clusters/eu-1/tenants/acme/README.md",  # ignored by the last rule
        "clusters/eu-1/tenants/acme/shared/pg/cluster.yaml",  # a later rule: service pg
        "clusters/eu-1/tenants/globex/values.yaml",  # another tenant
        "clusters/eu-1/ingress.yaml",  # the cluster's
        "README.md",  # unmatched
        "clusters/eu-1/tenants/acme/values.yaml",  # listed twice
    ]
    assert rendering.tenant_files(paths, tree, "acme") == [
        "clusters/eu-1/tenants/acme/kustomization.yaml",
        "clusters/eu-1/tenants/acme/values.yaml",
    ]
    assert rendering.tenant_files(paths, tree, "globex") == [
        "clusters/eu-1/tenants/globex/values.yaml"
    ]
    assert rendering.tenant_files(paths, tree, "initech") == []


def test_a_later_ignore_rule_takes_a_tenant_file_away() -> None:
    paths = rules("tenants/{tenant}/**", {"pattern": "tenants/*/ci/", "ignore": True})
    tree = ["tenants/acme/ci/pipeline.yaml", "tenants/acme/app.yaml"]
    assert rendering.tenant_files(paths, tree, "acme") == ["tenants/acme/app.yaml"]


# --------------------------------------------------------------------------- references


@pytest.mark.parametrize(
    ("text", "repository", "tag", "digest"),
    [
        ("odoo", "odoo", None, None),
        ("odoo:17.0", "odoo", "17.0", None),
        (f"odoo@{DIGEST}", "odoo", None, DIGEST),
        (f"localhost:5000/team/odoo:17@{DIGEST}", "localhost:5000/team/odoo", "17", DIGEST),
        ("registry.example.com:443/odoo", "registry.example.com:443/odoo", None, None),
    ],
)
def test_references_split_into_repository_tag_and_digest(
    text: str, repository: str, tag: str | None, digest: str | None
) -> None:
    assert rendering.parse_reference(text) == rendering.Reference(repository, tag, digest)


@pytest.mark.parametrize(
    "text",
    ["", "{{ .Values.image }}", "Odoo:17", "odoo:", "odoo@sha256:abc", "odoo 17", "a" * 600],
)
def test_what_is_no_reference(text: str) -> None:
    assert rendering.parse_reference(text) is None


@pytest.mark.parametrize(
    ("spelling", "key"),
    [
        ("odoo", "docker.io/library/odoo"),
        ("library/odoo", "docker.io/library/odoo"),
        ("docker.io/odoo", "docker.io/library/odoo"),
        ("index.docker.io/library/odoo", "docker.io/library/odoo"),
        ("bitnami/odoo", "docker.io/bitnami/odoo"),
        ("Registry.Example.com/odoo", "registry.example.com/odoo"),
        ("localhost/odoo", "localhost/odoo"),
    ],
)
def test_repositories_are_compared_normalised(spelling: str, key: str) -> None:
    assert rendering.repository_key(spelling) == key


@pytest.mark.parametrize(
    ("images", "message"),
    [
        ([(ODOO, None)], "neither a tag nor a digest"),
        ([(f"{ODOO}:17", "md5:abc")], "not a sha256 or sha512 digest"),
        ([(f"{ODOO}:17@{OLD_DIGEST}", DIGEST)], "another digest"),
        ([("not an image", None)], "not an image reference"),
        ([(f"{ODOO}:17", None), (f"{ODOO}:18", None)], "the same repository"),
        ([("odoo:17", None), ("docker.io/library/odoo:18", None)], "the same repository"),
    ],
)
def test_bad_images_are_refused_naming_the_entry(
    images: list[tuple[str, str | None]], message: str
) -> None:
    with pytest.raises(InvalidInput, match=message) as caught:
        rendering.render_images({}, images)
    assert caught.value.problems[0].field is not None


def test_the_digest_may_come_inside_the_reference_and_duplicates_agree() -> None:
    text = yaml(f"image: {ODOO}:16\n")
    images: list[tuple[str, str | None]] = [
        (NEW, None),
        (NEW, DIGEST),
        (f"{ODOO}:17.0-20261120", DIGEST),
    ]
    assert render_one(text, images) == f"image: {NEW}\n"


# --------------------------------------------------------------------------- image scalars


def test_image_scalars_in_every_quoting_style_keep_it_and_their_comments() -> None:
    text = yaml(
        f"""
        # image: {ODOO}:16 stays: it is a comment
        apiVersion: apps/v1
        kind: Deployment
        spec:
          template:
            spec:
              initContainers:
              - name: migrate
                image: '{ODOO}:16'
              containers:
                - name: odoo
                  image: {ODOO}:16  # the release
                - name: tools
                  "image": "{ODOO}:16@{OLD_DIGEST}"
        """
    )
    assert render_one(text) == yaml(
        f"""
        # image: {ODOO}:16 stays: it is a comment
        apiVersion: apps/v1
        kind: Deployment
        spec:
          template:
            spec:
              initContainers:
              - name: migrate
                image: '{NEW}'
              containers:
                - name: odoo
                  image: {NEW}  # the release
                - name: tools
                  "image": "{NEW}"
        """
    )


def test_every_document_of_a_file_and_every_workload_kind_is_rendered() -> None:
    text = yaml(
        f"""
        kind: CronJob
        spec:
          jobTemplate:
            spec:
              template:
                spec:
                  containers:
                  - image: {ODOO}:16
        ---
        # a Rollout, then a Job
        kind: Rollout
        spec:
          template:
            spec:
              containers: [{{name: odoo, image: {ODOO}:16}}]
        ---
        kind: Job
        spec:
          template:
            spec:
              containers:
              - image: {ODOO}
        ...
        """
    )
    rendered = rendering.render_images({"t/jobs.yaml": text.encode()}, WANTED)
    (rewrite,) = rendered.rewrites
    after = rewrite.after.decode()
    assert after.count(NEW) == 2
    # Flow mappings are not edited: left exactly as they were.
    assert f"containers: [{{name: odoo, image: {ODOO}:16}}]" in after
    assert rewrite.replaced == ((f"{ODOO}:16", NEW), (ODOO, NEW))
    assert after.replace(NEW, "X") == text.replace(f"{ODOO}:16\n", "X\n").replace(
        f"{ODOO}\n", "X\n"
    )


def test_helm_values_with_a_single_image_string() -> None:
    text = yaml(
        f"""
        replicaCount: 2
        image: "{ODOO}:16"
        sidecar:
          image: busybox:1.36
        """
    )
    assert render_one(text) == text.replace(f"{ODOO}:16", NEW)


@pytest.mark.parametrize(
    "other",
    [
        "registry.example.com/odoo-tools:16",  # the name as a prefix of another repository
        "registry.example.com/odoo/odoo:16",  # a repository below it
        "registry.example.com/team/odoo:16",
        "mirror.example.com/odoo:16",  # another registry
        "odoo:16",  # Docker Hub's odoo
        "registry.example.com/odoo16",
    ],
)
def test_other_repositories_are_not_touched(other: str) -> None:
    text = yaml(
        f"""
        containers:
        - image: {other}
        - image: "{other}@{OLD_DIGEST}"
        images:
        - name: {other.split(":", maxsplit=1)[0]}
          newTag: "16"
        image:
          repository: {other.split(":", maxsplit=1)[0]}
          tag: "16"
        """
    )
    assert render_one(text) is None


@pytest.mark.parametrize(
    ("written", "wanted", "expected"),
    [
        ("odoo:16", "docker.io/library/odoo:17", "odoo:17"),
        ("docker.io/library/odoo:16", "odoo:17", "docker.io/library/odoo:17"),
        ("index.docker.io/odoo", "library/odoo:17", "index.docker.io/odoo:17"),
        ("docker.io/bitnami/odoo:16", "bitnami/odoo:17", "docker.io/bitnami/odoo:17"),
    ],
)
def test_docker_hub_spellings_are_one_repository_and_the_file_keeps_its_own(
    written: str, wanted: str, expected: str
) -> None:
    assert render_one(yaml(f"image: {written}\n"), [(wanted, None)]) == f"image: {expected}\n"


def test_a_file_already_at_the_reference_is_not_rewritten_even_spelled_differently() -> None:
    text = yaml(f"image: odoo:17@{DIGEST}\n")
    assert render_one(text, [("docker.io/library/odoo:17", DIGEST)]) is None


def test_the_new_reference_is_exactly_the_changes() -> None:
    pinned = yaml(f"image: {ODOO}:16@{OLD_DIGEST}\n")
    # Only a tag: the old digest pinned the old image and goes.
    assert render_one(pinned, [(f"{ODOO}:17", None)]) == f"image: {ODOO}:17\n"
    # Only a digest: the tag goes too.
    assert render_one(pinned, [(ODOO, DIGEST)]) == f"image: {ODOO}@{DIGEST}\n"


def test_rendering_twice_gives_nothing_the_second_time() -> None:
    files = {
        "t/deploy.yaml": yaml(f"image: {ODOO}:16\n"),
        "t/kustomization.yaml": yaml(
            f"""
            images:
            - name: odoo
              newName: {ODOO}
            """
        ),
        "t/values.yaml": yaml(
            f"""
            image:
              repository: {ODOO}
            """
        ),
        "t/app.json": f'{{"image": {{"repository": "{ODOO}", "tag": "16"}}}}',
    }
    first = rendering.render_images({path: text.encode() for path, text in files.items()}, WANTED)
    assert [r.path for r in first.rewrites] == sorted(files)
    again = rendering.render_images({r.path: r.after for r in first.rewrites}, WANTED)
    assert again.rewrites == []


def test_unchanged_files_are_left_out() -> None:
    files = {"t/a.yaml": b"image: busybox:1.36\n", "t/b.yaml": f"image: {ODOO}:1\n".encode()}
    rendered = rendering.render_images(files, WANTED)
    assert [r.path for r in rendered.rewrites] == ["t/b.yaml"]
    assert rendered.rewrites[0].replaced == ((f"{ODOO}:1", NEW),)
    assert rendering.render_images(files, []).rewrites == []


# --------------------------------------------------------------------------- kustomize


def test_kustomize_entries_get_the_tag_and_a_digest_line_at_their_indentation() -> None:
    text = yaml(
        f"""
        apiVersion: kustomize.config.k8s.io/v1beta1
        kind: Kustomization
        images:
            # the application
            -   name: odoo
                newName: {ODOO}   # our mirror
                newTag: "16.0"
            - name: {ODOO}-tools
              newTag: "16.0"
        resources:
          - deployment.yaml
        """
    )
    assert render_one(text, path="t/kustomization.yaml") == yaml(
        f"""
        apiVersion: kustomize.config.k8s.io/v1beta1
        kind: Kustomization
        images:
            # the application
            -   name: odoo
                newName: {ODOO}   # our mirror
                newTag: "17.0-20261120"
                digest: "{DIGEST}"
            - name: {ODOO}-tools
              newTag: "16.0"
        resources:
          - deployment.yaml
        """
    )


def test_kustomize_entries_matched_by_name_in_any_order_and_compact_lists() -> None:
    text = yaml(
        f"""
        images:
        - digest: {OLD_DIGEST}
          name: {ODOO}
          newTag: 16.0
        """
    )
    assert render_one(text, path="t/kustomization.yaml") == yaml(
        f"""
        images:
        - digest: {DIGEST}
          name: {ODOO}
          newTag: "17.0-20261120"
        """
    )


def test_kustomize_fields_the_change_does_not_give_are_removed() -> None:
    text = yaml(
        f"""
        images:
        - name: {ODOO}
          newTag: "16"
          digest: {OLD_DIGEST}
        - name: nginx
        """
    )
    assert render_one(text, [(f"{ODOO}:17", None)], "t/kustomization.yaml") == yaml(
        f"""
        images:
        - name: {ODOO}
          newTag: "17"
        - name: nginx
        """
    )
    assert render_one(text, [(ODOO, DIGEST)], "t/kustomization.yaml") == yaml(
        f"""
        images:
        - name: {ODOO}
          digest: {DIGEST}
        - name: nginx
        """
    )


def test_kustomize_tag_and_digest_are_added_at_the_end_of_a_file_without_a_newline() -> None:
    text = f"images:\n  - name: odoo\n    newName: {ODOO}".encode()
    assert render_one(text, path="t/kustomization.yaml") == (
        f"images:\n  - name: odoo\n    newName: {ODOO}\n"
        f'    newTag: "17.0-20261120"\n    digest: {DIGEST}'
    )


def test_a_kustomize_entry_without_override_is_left_alone() -> None:
    text = yaml(
        f"""
        images:
        - name: {ODOO}
        """
    )
    assert render_one(text, path="t/kustomization.yaml") is None


# --------------------------------------------------------------------------- Helm values


def test_helm_image_mappings_get_the_tag_and_a_digest_key_after_it() -> None:
    text = yaml(
        f"""
        odoo:
          image:
            pullPolicy: IfNotPresent
            tag: 16.0  # chart default is appVersion
            repository: {ODOO}
            pullSecrets:
              - name: regcred
          replicas: 1
        """
    )
    assert render_one(text) == yaml(
        f"""
        odoo:
          image:
            pullPolicy: IfNotPresent
            tag: "17.0-20261120"  # chart default is appVersion
            digest: {DIGEST}
            repository: {ODOO}
            pullSecrets:
              - name: regcred
          replicas: 1
        """
    )


def test_helm_registry_and_repository_and_an_existing_digest_are_set() -> None:
    text = yaml(
        """
        image:
          registry: registry.example.com
          repository: odoo
          tag: '16'
          digest: ""
        """
    )
    assert render_one(text) == yaml(
        f"""
        image:
          registry: registry.example.com
          repository: odoo
          tag: '17.0-20261120'
          digest: "{DIGEST}"
        """
    )


def test_helm_without_a_tag_gets_one_and_without_a_digest_empties_it() -> None:
    text = yaml(
        f"""
        image:
          repository: {ODOO}
          digest: {OLD_DIGEST}
        """
    )
    assert render_one(text, [(f"{ODOO}:17", None)]) == yaml(
        f"""
        image:
          repository: {ODOO}
          tag: "17"
          digest: ""
        """
    )


def test_helm_with_only_a_digest_keeps_the_tag() -> None:
    text = yaml(
        f"""
        image:
          repository: {ODOO}
          tag: "16"
        """
    )
    assert render_one(text, [(ODOO, DIGEST)]) == yaml(
        f"""
        image:
          repository: {ODOO}
          tag: "16"
          digest: "{DIGEST}"
        """
    )


@pytest.mark.parametrize(
    "block",
    [
        f"image: {{repository: {ODOO}, tag: '16'}}\n",  # flow form
        f"image:\n  repository: {ODOO}\n  tag: &tag '16'\n",  # an anchor
        f"image:\n  repository: {ODOO}\n  tag: '16'\n  tag: '15'\n",  # a key twice
        f"image:\n  repository: {ODOO}\n  tag:\n    nested: 1\n",  # not a scalar
        f"image:\n  - repository: {ODOO}\n",  # a sequence
    ],
)
def test_helm_mappings_that_are_not_plain_are_left_alone(block: str) -> None:
    assert render_one(block) is None


def test_helm_values_inlined_in_an_argo_application_are_rendered() -> None:
    text = yaml(
        f"""
        kind: Application
        spec:
          source:
            helm:
              values: |
                image:
                  repository: {ODOO}
                  tag: "16"
        """
    )
    assert render_one(text) == yaml(
        f"""
        kind: Application
        spec:
          source:
            helm:
              values: |
                image:
                  repository: {ODOO}
                  tag: "17.0-20261120"
                  digest: "{DIGEST}"
        """
    )


# --------------------------------------------------------------------------- JSON and text


def test_json_files_minified_or_pretty() -> None:
    minified = (
        f'{{"spec":{{"containers":[{{"name":"odoo","image":"{ODOO}:16"}}]}},'
        f'"image":{{"repository":"{ODOO}","tag":16}},'
        f'"images":[{{"name":"{ODOO}","newTag":"16","digest":"{OLD_DIGEST}"}}]}}'
    )
    assert render_one(minified, path="t/app.json") == (
        f'{{"spec":{{"containers":[{{"name":"odoo","image":"{NEW}"}}]}},'
        f'"image":{{"repository":"{ODOO}","tag":"17.0-20261120", "digest": "{DIGEST}"}},'
        f'"images":[{{"name":"{ODOO}","newTag":"17.0-20261120","digest":"{DIGEST}"}}]}}'
    )
    pretty = f'{{\n  "containers": [\n    {{"image": "{ODOO}:16", "note": "image"}}\n  ]\n}}\n'
    assert render_one(pretty, path="t/pod.json") == pretty.replace(f"{ODOO}:16", NEW)


def test_windows_line_endings_are_kept_and_used_for_new_lines() -> None:
    text = f"images:\r\n- name: {ODOO}\r\n  newTag: '16'\r\n".encode()
    assert render_one(text, path="t/kustomization.yaml") == (
        f"images:\r\n- name: {ODOO}\r\n  newTag: '17.0-20261120'\r\n  digest: '{DIGEST}'\r\n"
    )


def test_a_byte_order_mark_is_kept() -> None:
    text = f"\ufeffimage: {ODOO}:16\n".encode()
    assert render_one(text) == f"\ufeffimage: {NEW}\n"


def test_unreadable_files_are_skipped_with_the_reason() -> None:
    big = b"image: " + b"x" * rendering.MAX_FILE_BYTES
    files = {
        "t/latin1.yaml": f"# caf\xe9\nimage: {ODOO}:16\n".encode("latin-1"),
        "t/binary.yaml": b"image: odoo\x00",
        "t/big.yaml": big,
        "t/README.md": f"image: {ODOO}:16\n".encode(),
        "t/chart/templates/deploy.tpl": f"image: {ODOO}:16\n".encode(),
        "t/ok.yml": f"image: {ODOO}:16\n".encode(),
    }
    rendered = rendering.render_images(files, WANTED)
    assert [r.path for r in rendered.rewrites] == ["t/ok.yml"]
    assert rendered.skipped == [
        ("t/README.md", "not a YAML or JSON file"),
        ("t/big.yaml", f"larger than {rendering.MAX_FILE_BYTES} bytes"),
        ("t/binary.yaml", "binary (holds a NUL byte)"),
        ("t/chart/templates/deploy.tpl", "not a YAML or JSON file"),
        ("t/latin1.yaml", "not UTF-8"),
    ]


@pytest.mark.parametrize(
    "line",
    [
        b"image: " + b"a" * 2_000_000,
        b'image: "' + b"\\a" * 1_000_000,
        b"image: '" + b"''" * 1_000_000,
        b"image: a" + b" #" * 1_000_000,
        b"image: " + b"a/" * 1_000_000 + b"a:1",
        b"- " * 1_000_000,
        b"a:" * 1_000_000,
        b"a" * 2_000_000 + b":",
        b'{"image":"' + b'\\"' * 1_000_000,
        b'"' * 2_000_000,
    ],
)
def test_a_pathological_line_of_a_mebibyte_takes_linear_time(line: bytes) -> None:
    data = line[: rendering.MAX_FILE_BYTES]
    started = time.perf_counter()
    rendered = rendering.render_images({"t/x.yaml": data}, WANTED)
    assert time.perf_counter() - started < 2.0  # catastrophic backtracking would take years
    assert rendered.skipped == []


# --------------------------------------------------------------------------- YAML meaning

STYLES = {"plain": "{}", "single": "'{}'", "double": '"{}"'}


@settings(max_examples=300, deadline=None)
@given(
    tag=st.one_of(
        st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,15}", fullmatch=True),
        st.sampled_from(["17.0", "1e3", "0x1F", "0o17", "0b101", "1_000", "2024-11-20", "Yes"]),
        st.sampled_from(["no", "on", "OFF", "true", "Null", "17", "0", "1.5e-3", "1.5E3"]),
    ),
    old=st.sampled_from(["16", "16.0", "old", "2024-01-01"]),
    style=st.sampled_from(sorted(STYLES)),
    digest=st.booleans(),
)
def test_rendered_yaml_reads_back_as_the_changes_reference(
    tag: str, old: str, style: str, digest: bool
) -> None:
    quote = STYLES[style].format
    text = (
        f"containers:\n- image: {quote(ODOO + ':' + old)}  # app\n"
        "---\n"
        f"images:\n- name: odoo\n  newName: {ODOO}\n  newTag: {quote(old)}\n"
        "---\n"
        f"image:\n  repository: {quote(ODOO)}\n  tag: {quote(old)}\n  pullPolicy: Always\n"
    )
    wanted = (f"{ODOO}:{tag}", DIGEST if digest else None)
    after = render_one(text, [wanted])
    assert after is not None
    deployment, kustomization, values = pyyaml.safe_load_all(after)
    expected = f"{ODOO}:{tag}@{DIGEST}" if digest else f"{ODOO}:{tag}"
    assert deployment == {"containers": [{"image": expected}]}
    with_digest = {"digest": DIGEST} if digest else {}
    assert kustomization == {
        "images": [{"name": "odoo", "newName": ODOO, "newTag": tag, **with_digest}]
    }
    assert values == {
        "image": {"repository": ODOO, "tag": tag, "pullPolicy": "Always", **with_digest}
    }
    assert render_one(after, [wanted]) is None
