"""Reading policy inputs: formats by name and content, lines, and every kind of bad input."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from changegate.adapters import policy_inputs
from changegate.domain.policy.model import Format


def write(folder: Path, name: str, text: str | bytes) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def load(*paths: Path | str, **kwargs: object) -> policy_inputs.Inputs:
    return policy_inputs.load_paths([str(p) for p in paths], **kwargs)  # type: ignore[arg-type]


def test_formats_by_name_and_content(tmp_path: Path) -> None:
    write(tmp_path, "k8s/app.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: a}\n")
    write(tmp_path, "plan.json", json.dumps({"format_version": "1.2", "resource_changes": []}))
    write(tmp_path, "trivy.json", json.dumps({"SchemaVersion": 2, "Results": []}))
    write(tmp_path, "grype.json", json.dumps({"matches": [], "source": {}}))
    write(tmp_path, "rules.yml", "groups:\n- name: g\n  rules: []\n")
    write(tmp_path, "dynamic.yaml", "http:\n  routers: {}\n")
    write(tmp_path, "dynamic.toml", "[http.routers.a]\nrule = 'Host(`a`)'\n")
    write(tmp_path, "Dockerfile", "FROM python:3.12\n")
    write(tmp_path, "api.Dockerfile", "FROM python:3.12\n")
    write(tmp_path, "pg-main.postgresql.conf", "max_connections = 200\n")
    write(tmp_path, "redis.conf", "maxmemory-policy noeviction\n")
    write(tmp_path, "odoo.conf", "[options]\nworkers = 4\n")
    write(tmp_path, "README.md", "# not an input\n")
    write(tmp_path, ".git/config.yaml", "apiVersion: v1\nkind: Secret\n")
    found = load(tmp_path)
    assert not found.problems
    by_file = {Path(d.file).name: d.format for d in found.documents}
    assert by_file == {
        "app.yaml": Format.KUBERNETES,
        "plan.json": Format.TERRAFORM_PLAN,
        "trivy.json": Format.TRIVY,
        "grype.json": Format.GRYPE,
        "rules.yml": Format.PROMETHEUS_RULES,
        "dynamic.yaml": Format.TRAEFIK,
        "dynamic.toml": Format.TRAEFIK,
        "Dockerfile": Format.DOCKERFILE,
        "api.Dockerfile": Format.DOCKERFILE,
        "pg-main.postgresql.conf": Format.POSTGRESQL_CONF,
        "redis.conf": Format.REDIS_CONF,
        "odoo.conf": Format.ODOO_CONF,
    }
    assert any("1 files skipped" in n for n in found.notices)


def test_multi_document_yaml_lists_and_lines(tmp_path: Path) -> None:
    text = (
        "# rendered by helm template\n"
        "---\n"
        "apiVersion: v1\n"
        "kind: ConfigMap\n"
        "metadata:\n"
        "  name: one\n"
        "---\n"
        "---\n"
        "apiVersion: v1\n"
        "kind: List\n"
        "items:\n"
        "  - apiVersion: v1\n"
        "    kind: Service\n"
        "    metadata:\n"
        "      name: two\n"
        "  - just a string\n"
        "---\n"
        "unrelated: true\n"
    )
    found = load(write(tmp_path, "all.yaml", text))
    docs = found.documents
    assert [(d.kind, d.name, d.line) for d in docs] == [
        ("ConfigMap", "one", 3),
        ("Service", "two", 12),
    ]
    assert docs[1].locate(("metadata", "name")) == 15
    assert any("2 documents not recognised" in n for n in found.notices)


def test_stdin_reads_a_rendered_stream() -> None:
    stream = io.BytesIO(b"apiVersion: v1\nkind: Namespace\nmetadata: {name: tenant-a}\n")
    found = policy_inputs.load_paths(["-"], stdin=stream)
    assert [(d.file, d.kind) for d in found.documents] == [("-", "Namespace")]


def test_displayed_names_are_relative_to_the_base(tmp_path: Path) -> None:
    path = write(tmp_path, "clusters/prod/app.yaml", "apiVersion: v1\nkind: Pod\n")
    found = load(path, base=tmp_path)
    assert found.documents[0].file == "clusters/prod/app.yaml"


def test_malformed_yaml_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.yaml", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: [a\n")
    found = load(path, write(tmp_path, "good.yaml", "apiVersion: v1\nkind: Pod\n"))
    assert [d.file for d in found.documents] == [str(tmp_path / "good.yaml")]
    (problem,) = found.problems
    assert problem.file == str(path)
    assert problem.line is not None and problem.line >= 4
    assert "invalid YAML" in problem.message


def test_an_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]']
    for level in range(1, 9):
        previous = chr(ord("a") + level - 1)
        name = chr(ord("a") + level)
        lines.append(f"{name}: &{name} [{', '.join(['*' + previous] * 10)}]")
    path = write(tmp_path, "bomb.yaml", "\n".join(lines) + "\n")
    (problem,) = load(path).problems
    assert "alias bomb" in problem.message


def test_deeply_nested_json_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "deep.json", "[" * 100_000 + "]" * 100_000)
    (problem,) = load(path).problems
    assert "nested" in problem.message or "deeper" in problem.message
    assert problem.file == str(path)


def test_json_that_yaml_cannot_read_is_read_as_json(tmp_path: Path) -> None:
    # A tab before a value and an escaped slash: valid JSON, refused by YAML 1.1.
    text = '{"format_version":\t"1.2", "resource_changes": [], "x": "a\\/b"}'
    found = load(write(tmp_path, "plan.json", text))
    assert not found.problems
    assert found.documents[0].format is Format.TERRAFORM_PLAN


def test_binary_files(tmp_path: Path) -> None:
    explicit = write(tmp_path, "image.yaml", b"\x89PNG\r\n\x1a\n\x00\x00\x00")
    (problem,) = load(explicit).problems
    assert "binary file" in problem.message
    walked = load(tmp_path)
    assert not walked.problems
    assert any("binary file skipped" in n for n in walked.notices)


def test_invalid_utf8_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "odoo.conf", b"[options]\nadmin_passwd = \xff\xfe\n")
    (problem,) = load(path).problems
    assert problem.line == 2
    assert "UTF-8" in problem.message


def test_a_huge_file_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    with path.open("wb") as handle:
        handle.truncate(100 * 1024 * 1024)  # 100 MB, sparse: nothing is written
    (problem,) = load(path).problems
    assert "limit" in problem.message
    assert "104857600" in problem.message


def test_stdin_over_the_limit() -> None:
    found = policy_inputs.load_paths(["-"], stdin=io.BytesIO(b"a: b\n" * 100), max_bytes=64)
    (problem,) = found.problems
    assert "over the limit" in problem.message


def test_missing_paths_and_stdin(tmp_path: Path) -> None:
    found = load(tmp_path / "nope.yaml", "-")
    assert [p.message for p in found.problems] == [
        "no such file or folder",
        "no standard input to read",
    ]


def test_config_files(tmp_path: Path) -> None:
    pg = write(
        tmp_path,
        "postgresql.conf",
        "# comment\nshared_buffers = '2GB'   # trailing\nFsync off\n"
        "listen_addresses = 'a''b'\ninclude 'other.conf'\n",
    )
    redis = write(
        tmp_path,
        "redis.conf",
        'save ""\nsave 900 1\nappendonly no\nrequirepass "s3cret"\n',
    )
    odoo = write(
        tmp_path,
        "odoo.conf",
        "[options]\n; comment\nlist_db = False\nadmin_passwd: x\n[other]\nlist_db = True\n",
    )
    docs = {d.format: d for d in load(pg, redis, odoo).documents}
    postgres = docs[Format.POSTGRESQL_CONF]
    assert postgres.data == {"shared_buffers": "2GB", "fsync": "off", "listen_addresses": "a'b"}
    assert postgres.locate(("fsync",)) == 3
    assert docs[Format.REDIS_CONF].data == {
        "save": "\n900 1",
        "appendonly": "no",
        "requirepass": "s3cret",
    }
    assert docs[Format.REDIS_CONF].locate(("appendonly",)) == 3
    assert docs[Format.ODOO_CONF].data == {"list_db": "False", "admin_passwd": "x"}
    assert docs[Format.ODOO_CONF].locate(("admin_passwd",)) == 4


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("odoo.conf", "list_db = False\n", "before any [section]"),
        ("odoo.conf", "[server]\nx = 1\n", "no [options] section"),
        ("odoo.conf", "[options]\n=novalue\n", "not an option line"),
        ("postgresql.conf", "shared_buffers\n", "not a parameter line"),
        ("Dockerfile", "# only a comment\n", "empty Dockerfile"),
        ("dynamic.toml", "[http\nrule = 1\n", "invalid TOML"),
    ],
)
def test_bad_config_files(tmp_path: Path, name: str, text: str, message: str) -> None:
    path = write(tmp_path, name, text)
    (problem,) = load(path).problems
    assert message in problem.message
    assert problem.file == str(path)


def test_dockerfile_instructions(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "Dockerfile",
        "# syntax=docker/dockerfile:1\n"
        "FROM python:3.12 AS build\n"
        "RUN apt-get update && \\\n"
        "    # a comment inside\n"
        "    apt-get install -y gcc\n"
        "COPY <<EOF /app/config\n"
        "USER root\n"
        "EOF\n"
        "user 1000\n",
    )
    (doc,) = load(path).documents
    assert doc.data["instructions"] == [
        {"instruction": "FROM", "value": "python:3.12 AS build", "line": 2},
        {"instruction": "RUN", "value": "apt-get update && apt-get install -y gcc", "line": 3},
        {"instruction": "COPY", "value": "<<EOF /app/config", "line": 6},
        {"instruction": "USER", "value": "1000", "line": 9},
    ]
    assert doc.locate(("instructions", 3)) == 9


def test_toml_lines(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "dynamic.toml",
        '[http.routers.shop]\n  rule = "Host(`shop.example.com`)"\n  service = "odoo"\n'
        '[http.routers.shop.tls]\n  certResolver = "le"\n',
    )
    (doc,) = load(path).documents
    assert doc.locate(("http", "routers", "shop", "service")) == 3
    assert doc.locate(("http", "routers", "shop", "tls", "certResolver")) == 5
    assert doc.locate(("http", "routers", "other")) is not None


def test_artifact_paths_stay_inside_the_repository(tmp_path: Path) -> None:
    assert policy_inputs.resolve_under(tmp_path, "a/b.yaml") == (tmp_path / "a/b.yaml").resolve()
    for bad in ("../etc/passwd", "/etc/passwd", "a/../../x"):
        with pytest.raises(Exception, match="platform repository"):
            policy_inputs.resolve_under(tmp_path, bad)


def test_reading_a_large_manifest_set_keeps_memory_bounded(tmp_path: Path) -> None:
    # 5,000 documents in a child process: its peak RSS stays far below the budget.
    doc = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm{n}\ndata:\n  k: '{pad}'\n---\n"
    write(tmp_path, "many.yaml", "".join(doc.format(n=n, pad="x" * 200) for n in range(5000)))
    # VmHWM, not ru_maxrss: the latter survives exec, so a child of a big pytest process
    # would report its parent's peak.
    script = (
        "import sys\n"
        "from changegate.adapters import policy_inputs\n"
        "found = policy_inputs.load_paths([sys.argv[1]])\n"
        "assert len(found.documents) == 5000, len(found.documents)\n"
        "status = open('/proc/self/status').read().split('VmHWM:')[1]\n"
        "print(status.split()[0])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "many.yaml")],
        capture_output=True,
        text=True,
        check=True,
    )
    peak_kib = int(result.stdout.strip())
    assert 0 < peak_kib < 400 * 1024, f"peak RSS {peak_kib} KiB"


LINE_CASES = """\
base: &base
  image: registry.example.com/odoo:17
  env:
    - {name: A, value: "1"}
    - name: B
      value: >-
        folded
        text
spec:
  <<: *base
  image: override
  containers:
    - name: odoo
      ports: [8069, 8072]
      probe:
        httpGet: {path: /web/health, port: 8069}
  more:
  - - nested
    - list
---
apiVersion: v1
kind: ConfigMap
data:
  key: |
    multi
    line
"""


def _paths(value: object, prefix: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


def test_recorded_lines_agree_with_the_composed_nodes() -> None:
    from changegate.adapters import yamlsource

    recorded = yamlsource.load_bytes(LINE_CASES.encode(), display="x.yaml", lines=True)
    composed = yamlsource.load_bytes(LINE_CASES.encode(), display="x.yaml")
    for fast, slow in zip(recorded, composed, strict=True):
        assert fast.lines is not None and slow.lines is None
        paths = _paths(fast.data)
        assert len(paths) >= 5
        for path in [*paths, ("spec", "missing"), ("spec", "containers", 9), ("kind", "x")]:
            assert fast.locate(path) == slow.locate(path), path
