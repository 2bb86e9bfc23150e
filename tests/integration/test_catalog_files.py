"""Loading catalog folders from real files: YAML safety, lines, digests, Git, the sample."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from changegate.adapters import catalog_files, sample_platform, yamlsource
from changegate.domain import catalog
from changegate.errors import InvalidInput, PayloadTooLarge, Problem
from tests import catalog_builders as b


def load_problems(root: Path, **limits: int) -> list[Problem]:
    with pytest.raises(InvalidInput) as caught:
        catalog_files.load_catalog(root, **limits)
    return caught.value.problems


def parse_problems(raw: bytes, display: str = "f.yaml") -> list[Problem]:
    with pytest.raises(InvalidInput) as caught:
        yamlsource.load_bytes(raw, display=display)
    return caught.value.problems


def line_of(path: Path, text: str) -> int:
    """The 1-based line of the first line of path containing text."""
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if text in line:
            return number
    raise AssertionError(f"{text!r} not in {path}")


# ------------------------------------------------------------------ YAML safety


def test_malformed_yaml_names_line_and_column() -> None:
    [problem] = parse_problems(b"a: 1\nb: [1, 2\nc: 3\n")
    assert (problem.file, problem.line) == ("f.yaml", 3)
    assert problem.message.startswith("invalid YAML: did not find expected ',' or ']'")
    assert "at column" in problem.message


def test_alias_bomb_is_refused() -> None:
    levels = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True):
        levels.append(f"{name}: &{name} [" + ",".join([f"*{previous}"] * 9) + "]")
    [problem] = parse_problems("\n".join(levels).encode())
    assert "expands to more than 2000000 nodes (alias bomb?)" in problem.message
    assert problem.line is not None and problem.line > 1


def test_aliases_within_budget_are_fine() -> None:
    [document] = yamlsource.load_bytes(b"a: &x [1, 2]\nb: *x\n", display="f.yaml")
    assert document.data == {"a": [1, 2], "b": [1, 2]}
    with pytest.raises(InvalidInput, match="more than 5 nodes"):
        yamlsource.load_bytes(b"a: &x [1, 2]\nb: *x\n", display="f.yaml", max_nodes=5)


def test_recursive_alias_is_refused() -> None:
    [problem] = parse_problems(b"a: &x\n  b: *x\n")
    assert "recursive" in problem.message


def test_file_over_the_size_limit_is_refused_before_reading(tmp_path: Path) -> None:
    big = tmp_path / "huge.yaml"
    with big.open("wb") as handle:
        handle.truncate(50 * 1024 * 1024)  # sparse: no 50 MB is ever written or read
    with pytest.raises(PayloadTooLarge) as caught:
        yamlsource.load_file(big)
    [problem] = caught.value.problems
    assert problem.file == str(big)
    assert (
        problem.message
        == f"file is {50 * 1024 * 1024} bytes; the limit is {16 * 1024 * 1024} bytes"
    )
    with pytest.raises(PayloadTooLarge, match="the limit is 10 bytes"):
        yamlsource.load_file(tmp_path / "huge.yaml", display="h", max_bytes=10)


def test_catalog_folder_with_an_oversized_file(tmp_path: Path) -> None:
    b.write(tmp_path, b.platform())
    largest = max(path.stat().st_size for path in tmp_path.iterdir())
    (tmp_path / "blob.yaml").write_text("a: " + "x" * largest)
    [problem] = load_problems(tmp_path, max_file_bytes=largest)
    assert problem.file == "blob.yaml"
    assert problem.message == f"file is {largest + 3} bytes; the limit is {largest} bytes"


def test_duplicate_keys_name_both_lines() -> None:
    [problem] = parse_problems(b"a: 1\nb:\n  c: 2\n  c: 3\n")
    assert (problem.line, problem.message) == (4, "duplicate key 'c' (first at line 3)")


def test_many_duplicate_keys_are_refused_in_linear_time() -> None:
    # 50,000 keys written twice: a quadratic lookup of the first occurrence would take
    # minutes here. Problems stop at MAX_PROBLEMS, then one counts the rest.
    keys = 50_000
    raw = "".join(f"key{i}: {i}\n" for i in range(keys)).encode() * 2
    problems = parse_problems(raw, display="dup.yaml")
    assert len(problems) == yamlsource.MAX_PROBLEMS + 1
    first = problems[0]
    assert (first.file, first.line) == ("dup.yaml", keys + 1)
    assert first.message == "duplicate key 'key0' (first at line 1)"
    assert problems[1].message == "duplicate key 'key1' (first at line 2)"
    more = problems[-1]
    assert (more.file, more.line) == ("dup.yaml", None)
    assert more.message == f"... and {keys - yamlsource.MAX_PROBLEMS} more problems"


def test_problems_under_the_cap_are_all_kept() -> None:
    raw = b"".join(b"k%d: 1\n" % i for i in range(yamlsource.MAX_PROBLEMS)) * 2
    problems = parse_problems(raw)
    assert len(problems) == yamlsource.MAX_PROBLEMS
    assert not any("more problems" in p.message for p in problems)


def test_invalid_utf8_names_line_and_column() -> None:
    [problem] = parse_problems("a: 1\nb: café \xff\n".encode("latin-1"))
    assert problem.line == 2
    assert problem.message == "not valid UTF-8: byte 0xe9 at column 7"


def test_bom_is_dropped_and_json_loads() -> None:
    [document] = yamlsource.load_bytes(b"\xef\xbb\xbfa: 1\n", display="f.yaml")
    assert document.data == {"a": 1}
    text = json.dumps({"a": [1, 2.5, True, None, "x"], "b": {"c": "d"}}, indent="\t")
    [document] = yamlsource.load_bytes(text.encode(), display="f.json")
    assert document.data == {"a": [1, 2.5, True, None, "x"], "b": {"c": "d"}}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: !!python/object:os.system {}\n", "unsupported tag !!python/object:os.system"),
        ("a: !!python/name:os.system\n", "unsupported tag !!python/name:os.system"),
        ("a: !vault secret\n", "unsupported tag !vault"),
        ("a: !!binary aGk=\n", "unsupported tag !!binary"),
        ("a: !!set {x}\n", "unsupported tag !!set"),
        ("1: a\n", "key '1' (!!int) must be a string; quote it"),
        ("no: a\n", "key 'no' (!!bool) must be a string; quote it"),
        ("? [a]\n: b\n", "a key must be a string, not a mapping or a list"),
        ("a: \x07\n", "character #x0007 is not allowed at column 4"),
        ("a:\n  <<: 3\n", "a merge key (<<) takes a mapping or a list of mappings"),
    ],
)
def test_unsafe_or_ambiguous_yaml_is_refused(text: str, message: str) -> None:
    [problem] = parse_problems(text.encode())
    assert message in problem.message
    assert problem.line is not None


def test_deep_nesting_is_refused() -> None:
    [problem] = parse_problems(b"a: " + b"[" * 300 + b"]" * 300)
    assert problem.message == "nested deeper than 200 levels"
    [problem] = parse_problems(b"a: " + b"[" * 5000 + b"]" * 5000)
    assert "exceeded maximum nesting depth" in problem.message


def test_scalars_follow_yaml_1_1_and_timestamps_stay_text() -> None:
    text = b"a: 0x1F\nb: 1_000\nc: .inf\nd: 1:30\ne: yes\nf: ~\ng: 2026-12-18\nh: '17.0'\ni: 17.0\n"
    [document] = yamlsource.load_bytes(text, display="f.yaml")
    assert document.data == {
        "a": 31,
        "b": 1000,
        "c": float("inf"),
        "d": 90,
        "e": True,
        "f": None,
        "g": "2026-12-18",
        "h": "17.0",
        "i": 17.0,
    }


def test_merge_keys_explicit_keys_win() -> None:
    text = b"base: &b {x: 1, y: 2}\nmore: &m {y: 9, z: 3}\nc:\n  <<: [*b, *m]\n  x: 5\n"
    [document] = yamlsource.load_bytes(text, display="f.yaml")
    assert document.data["c"] == {"x": 5, "y": 2, "z": 3}


def test_empty_documents_are_returned_as_none() -> None:
    documents = yamlsource.load_bytes(b"---\n---\na: 1\n", display="f.yaml")
    assert [d.data for d in documents] == [None, {"a": 1}]
    assert [d.index for d in documents] == [0, 1]
    assert yamlsource.load_bytes(b"", display="f.yaml") == []


def test_locate_walks_keys_items_and_merges() -> None:
    text = b"""\
base: &base
  tier: gold
spec:
  <<: *base
  contacts:
    - name: a
    - name: b
      email: b@x
  odoo:
    series: '17.0'
"""
    [document] = yamlsource.load_bytes(text, display="f.yaml")
    assert document.locate(("spec", "contacts", 1, "email")) == 8
    assert document.locate(("spec", "contacts", 1)) == 7
    assert document.locate(("spec", "odoo")) == 9  # a block mapping: its key's line
    assert document.locate(("spec", "tier")) == 2  # found through the merge key
    assert document.locate(("spec", "contacts", 7, "name")) == 5  # nearest ancestor
    assert document.locate(("spec", "missing")) == 3
    assert document.locate(()) == 1


def test_load_file_shows_the_path_when_no_display_is_given(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("a: [\n")
    with pytest.raises(InvalidInput) as caught:
        yamlsource.load_file(path)
    assert caught.value.problems[0].file == str(path)
    with pytest.raises(InvalidInput, match="cannot read file"):
        yamlsource.load_file(tmp_path / "absent.yaml")


# ------------------------------------------------------------------ catalog folders


def test_missing_and_empty_directories_are_named(tmp_path: Path) -> None:
    [problem] = load_problems(tmp_path / "nope")
    assert (problem.file, problem.message) == (
        str(tmp_path / "nope"),
        "catalog directory does not exist",
    )
    (tmp_path / "notes.txt").write_text("hello")
    [problem] = load_problems(tmp_path)
    assert problem.file == str(tmp_path)
    assert "no catalog files" in problem.message


def test_files_are_found_recursively_skipping_hidden_and_outside_links(tmp_path: Path) -> None:
    root = b.write(tmp_path / "platform", b.platform())
    (root / ".git").mkdir()
    (root / ".git" / "junk.yaml").write_text("not: [valid")
    (root / ".editor.yaml").write_text("not: [valid")
    outside = tmp_path / "outside.yaml"
    outside.write_text("not: [valid")
    (root / "linked.yaml").symlink_to(outside)
    (root / "nested" / "deeper").mkdir(parents=True)
    (root / "nested" / "deeper" / "extra.YML").write_text(
        b.dump(
            [
                b.doc(
                    "Tier",
                    "silver",
                    {
                        "display_name": "Silver",
                        "availability_target": 99.5,
                        "rpo_minutes": 60,
                        "rto_minutes": 240,
                        "risk_weight": 2,
                    },
                )
            ]
        )
    )
    (root / "inside-link.yaml").symlink_to(root / "nested" / "deeper" / "extra.YML")
    found = [name for name, _ in catalog_files.find_files(root)]
    assert found == [
        "clusters.yaml",
        "environments.yaml",
        "inside-link.yaml",
        "nested/deeper/extra.YML",
        "people.yaml",
        "services.yaml",
        "teams.yaml",
        "tenants.yaml",
        "tiers.yaml",
        "windows.yaml",
    ]
    (root / "inside-link.yaml").unlink()
    assert "silver" in catalog_files.load_catalog(root).tiers
    with pytest.raises(InvalidInput, match="more than 3 catalog files"):
        catalog_files.find_files(root, max_files=3)


def test_json_catalog_files_load(tmp_path: Path) -> None:
    files = b.platform()
    tiers = files.pop("tiers.yaml")
    b.write(tmp_path, files)
    (tmp_path / "tiers.json").write_text(json.dumps(tiers, indent=2))
    with pytest.raises(InvalidInput):
        catalog_files.load_catalog(tmp_path)  # a JSON array is one document, not many
    for tier in tiers:
        (tmp_path / f"tier-{tier['metadata']['name']}.json").write_text(json.dumps(tier))
    (tmp_path / "tiers.json").unlink()
    assert set(catalog_files.load_catalog(tmp_path).tiers) == {"gold", "bronze"}


def test_problems_carry_real_file_lines(tmp_path: Path) -> None:
    files = b.platform()
    b.find(files, "Tenant", "acme")["spec"]["odoo"]["series"] = 17.0
    b.find(files, "Tenant", "acme")["spec"]["contacts"][0]["email"] = "not-an-email"
    b.find(files, "Environment", "prod")["spec"]["order"] = "30"
    b.find(files, "Person", "alice")["spec"]["teams"] = ["platform", "nobody"]
    root = b.write(tmp_path, files)
    found = [(p.file, p.line, p.field) for p in load_problems(root)]
    assert found == [
        ("environments.yaml", line_of(root / "environments.yaml", "order: '30'"), "spec.order"),
        ("people.yaml", line_of(root / "people.yaml", "- nobody"), "spec.teams[1]"),
        ("tenants.yaml", line_of(root / "tenants.yaml", "series: 17.0"), "spec.odoo.series"),
        (
            "tenants.yaml",
            line_of(root / "tenants.yaml", "email: not-an-email"),
            "spec.contacts[0].email",
        ),
    ]


def test_nul_characters_are_refused_with_file_line_and_field(tmp_path: Path) -> None:
    files = b.platform()
    b.find(files, "Tenant", "acme")["spec"]["display_name"] = "Acme\x00Corp"
    root = b.write(tmp_path, files)
    # A YAML "\0" escape, as PyYAML writes it.
    assert '"Acme\\0Corp"' in (root / "tenants.yaml").read_text()
    (root / "tiers.json").write_text(
        '{"apiVersion": "changegate.io/v1", "kind": "Tier", "metadata": {"name": "steel"},\n'
        ' "spec": {"display_name": "Steel\\u0000", "availability_target": 99,\n'
        ' "rpo_minutes": 1, "rto_minutes": 1, "risk_weight": 1}}\n'
    )
    message = "NUL characters (\\0) are not allowed in text"
    found = [(p.file, p.line, p.field, p.message) for p in load_problems(root)]
    assert found == [
        (
            "tenants.yaml",
            line_of(root / "tenants.yaml", "Acme\\0Corp"),
            "spec.display_name",
            message,
        ),
        ("tiers.json", 2, "spec.display_name", message),
    ]


def test_many_unknown_fields_are_located_in_linear_time(tmp_path: Path) -> None:
    # Each of 50,000 unknown fields is located by key; a scan per lookup would be quadratic.
    keys = 50_000
    body = "".join(f"  k{i}: 1\n" for i in range(keys))
    (tmp_path / "tier.yaml").write_text(
        f"apiVersion: changegate.io/v1\nkind: Tier\nmetadata:\n  name: gold\nspec:\n{body}"
    )
    found = [(p.line, p.field) for p in load_problems(tmp_path) if p.message == "unknown field"]
    assert len(found) == keys
    assert found[0] == (6, "spec.k0") and found[-1] == (keys + 5, f"spec.k{keys - 1}")


def test_problems_across_files_are_all_reported_in_order(tmp_path: Path) -> None:
    files = b.platform()
    b.find(files, "Tier", "gold")["spec"]["risk_weight"] = -1
    b.find(files, "Tier", "bronze")["spec"]["colour"] = "brown"
    b.find(files, "Cluster", "dedicated-1")["spec"]["mode"] = "exclusive"
    b.find(files, "Window", "sunday")["spec"]["rrule"] = "FREQ=SOMETIMES"
    b.find(files, "Window", "year-end")["spec"]["end"] = "2025-01-01"
    root = b.write(tmp_path, files)
    found = load_problems(root)
    assert [(p.file, p.line, p.field) for p in found] == [
        ("clusters.yaml", line_of(root / "clusters.yaml", "mode: exclusive"), "spec.mode"),
        ("tiers.yaml", line_of(root / "tiers.yaml", "risk_weight: -1"), "spec.risk_weight"),
        ("tiers.yaml", line_of(root / "tiers.yaml", "colour: brown"), "spec.colour"),
        ("windows.yaml", line_of(root / "windows.yaml", "rrule: FREQ=SOMETIMES"), "spec.rrule"),
        ("windows.yaml", line_of(root / "windows.yaml", "name: year-end") + 1, "spec"),
    ]


def test_duplicate_ids_across_files_name_both_places(tmp_path: Path) -> None:
    files = b.platform()
    files["zz/tenants.yaml"] = [
        b.doc(
            "Tier",
            "platinum",
            {
                "display_name": "Platinum",
                "availability_target": 99.95,
                "rpo_minutes": 5,
                "rto_minutes": 30,
                "risk_weight": 4,
            },
        ),
        b.find(files, "Tenant", "acme"),
    ]
    root = b.write(tmp_path, files)
    [problem] = load_problems(root)
    assert problem.file == "zz/tenants.yaml"
    assert problem.line == line_of(root / "zz/tenants.yaml", "name: acme")
    assert problem.message == "duplicate Tenant id 'acme': also defined at tenants.yaml:2"


def test_parse_problems_of_every_file_are_collected(tmp_path: Path) -> None:
    b.write(tmp_path, b.platform())
    (tmp_path / "a.yaml").write_text("a: [1\n")
    (tmp_path / "z.yaml").write_text("k: 1\nk: 2\n")
    (tmp_path / "m.yaml").write_bytes(b"k: \xff\n")
    assert [(p.file, p.line) for p in load_problems(tmp_path)] == [
        ("a.yaml", 2),
        ("m.yaml", 1),
        ("z.yaml", 2),
    ]


def test_anchors_and_merge_keys_in_catalog_files(tmp_path: Path) -> None:
    files = b.platform()
    del files["services.yaml"][1:3]
    root = b.write(tmp_path, files)
    redis = """\
---
apiVersion: changegate.io/v1
kind: Service
metadata: {name: redis-1}
spec:
  <<: &placement {criticality: high, environment: prod, cluster: shared-1}
  type: redis
  redis: {version: '7.2'}
"""
    traefik = """\
---
apiVersion: changegate.io/v1
kind: Service
metadata: {name: traefik-1}
spec:
  <<: *placement
  type: traefik
  criticality: critical
  traefik: {version: '3.1', entrypoints: [{name: web, address: ':80'}]}
"""
    (root / "shared.yaml").write_text(redis + traefik)
    [problem] = load_problems(root)  # anchors do not cross documents
    assert (problem.file, problem.line) == ("shared.yaml", 14)
    assert "found undefined alias" in problem.message
    (root / "shared.yaml").write_text(
        redis + traefik.replace("*placement", "{environment: prod, cluster: shared-1}")
    )
    built = catalog_files.load_catalog(root)
    assert built.services["redis-1"].spec.criticality is catalog.Criticality.HIGH
    assert built.services["traefik-1"].spec.criticality is catalog.Criticality.CRITICAL
    assert built.services["traefik-1"].spec.cluster == "shared-1"


def test_digest_is_stable_and_follows_content(tmp_path: Path) -> None:
    root = b.write(tmp_path / "a", b.platform())
    first = catalog_files.load_catalog(root).digest
    assert first.startswith("sha256:") and len(first) == 7 + 64
    assert catalog_files.load_catalog(root).digest == first
    copy = tmp_path / "b"
    shutil.copytree(root, copy)
    assert catalog_files.load_catalog(copy).digest == first  # the folder's name is not hashed
    teams = root / "teams.yaml"
    teams.write_text(teams.read_text() + "# a comment changes the bytes\n")
    second = catalog_files.load_catalog(root).digest
    assert second != first
    (root / "teams.yaml").rename(root / "teams2.yaml")
    assert catalog_files.load_catalog(root).digest not in (first, second)


def git(root: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(root), *args], check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_git_commit_and_dirty_state_are_recorded(tmp_path: Path) -> None:
    root = b.write(tmp_path / "repo" / "catalog", b.platform())
    assert catalog_files.load_catalog(root).commit is None
    repo = tmp_path / "repo"
    git(repo, "init", "-q")
    git(repo, "config", "user.email", "ci@example.com")
    git(repo, "config", "user.name", "CI")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "catalog")
    head = git(repo, "rev-parse", "HEAD")
    built = catalog_files.load_catalog(root)
    assert (built.commit, built.dirty) == (head, False)
    assert built.as_dict()["commit"] == head
    (repo / "unrelated.txt").write_text("outside the catalog folder")
    assert catalog_files.load_catalog(root).dirty is False
    (root / "teams.yaml").write_text((root / "teams.yaml").read_text() + "# edited\n")
    assert catalog_files.load_catalog(root).dirty is True


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_untracked_catalog_inside_a_work_tree_has_no_commit(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    git(repo, "config", "user.email", "ci@example.com")
    git(repo, "config", "user.name", "CI")
    (repo / ".gitignore").write_text("platform/\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "ignore the local platform")
    root = b.write(repo / "platform", b.platform())
    assert catalog_files.git_state(root) == (None, False)


def test_git_absent_means_no_commit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = b.write(tmp_path, b.platform())
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    assert catalog_files.git_state(root) == (None, False)


# ------------------------------------------------------------------ the sample platform


def test_sample_platform_has_the_promised_shape(tmp_path: Path) -> None:
    written = sample_platform.write_sample(tmp_path)
    assert (tmp_path / "README.md") in written
    names = {path.relative_to(tmp_path).as_posix() for path in written}
    assert {
        "tiers.yaml",
        "environments.yaml",
        "clusters.yaml",
        "people.yaml",
        "teams.yaml",
        "windows.yaml",
        "services/object-storage.yaml",
    } <= names
    built = catalog_files.load_catalog(tmp_path)
    assert len(built.tenants) == 48
    assert set(built.tiers) == {"platinum", "gold", "silver", "bronze"}
    assert set(built.environments) == {"dev", "staging", "prod"}
    clusters = Counter((c.spec.environment, c.spec.mode.value) for c in built.clusters.values())
    assert clusters == {("prod", "shared"): 3, ("prod", "dedicated"): 1, ("staging", "shared"): 1}
    assert len({c.spec.region for c in built.clusters.values()}) == 3
    types = Counter(s.spec.type.value for s in built.services.values())
    assert types["postgresql"] >= 3
    assert types["redis"] == types["traefik"] == len(built.clusters)
    assert types["object-storage"] >= 1 and types["monitoring"] >= 1
    tenants = list(built.tenants.values())
    assert {t.spec.deployment_model.value for t in tenants} == {
        "multi-tenant",
        "dedicated-namespace",
        "dedicated-cluster",
    }
    assert {t.spec.tier for t in tenants} == set(built.tiers)
    assert {t.spec.odoo.series for t in tenants} == {"16.0", "17.0", "18.0"}
    assert len({t.spec.timezone for t in tenants}) >= 5
    assert {"Europe/Brussels", "America/New_York"} <= {t.spec.timezone for t in tenants}
    assert all(t.spec.approvers and t.spec.business_services for t in tenants)
    roles = {role.value for p in built.people.values() for role in p.spec.roles}
    assert roles == {role.value for role in catalog.Role}
    assert set(built.teams) >= {
        "platform",
        "sre",
        "dba",
        "security",
        "cab",
        "audit",
        "customer-success",
    }
    demo = {
        "alice": "requester",
        "bob": "implementer",
        "carol": "platform-lead",
        "dave": "cab",
        "erin": "emergency-approver",
        "frank": "auditor",
        "grace": "admin",
    }
    for person, role in demo.items():
        assert role in built.people[person].spec.roles
    assert "platform" in built.people["alice"].spec.teams
    windows = [w.spec for w in built.windows.values()]
    assert {(w.type.value, w.purpose.value) for w in windows} == {
        ("allow", "maintenance"),
        ("allow", "release"),
        ("deny", "freeze"),
        ("deny", "blackout"),
    }
    month_ends = [w for w in windows if w.generator and w.generator.kind.value == "month-end"]
    assert month_ends and all(w.scope.tenants for w in month_ends)
    assert any(w.generator.holidays == "be-public" for w in month_ends if w.generator)
    assert set(built.holiday_calendars) == {"be-public", "de-public", "us-federal"}
    assert any(w.rrule for w in windows)
    assert any(w.scope.global_ and w.start is not None for w in windows)
    assert any(w.cron for w in windows)


def test_sample_is_deterministic_and_seeded(tmp_path: Path) -> None:
    def contents(directory: Path, seed: int) -> dict[str, str]:
        paths = sample_platform.write_sample(directory, tenants=30, seed=seed)
        return {p.relative_to(directory).as_posix(): p.read_text() for p in paths}

    first = contents(tmp_path / "one", 7)
    assert contents(tmp_path / "two", 7) == first
    assert contents(tmp_path / "three", 8) != first


def test_sample_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "mine.yaml").write_text("precious: true\n")
    with pytest.raises(InvalidInput) as caught:
        sample_platform.write_sample(tmp_path)
    [problem] = caught.value.problems
    assert problem.file == str(tmp_path)
    assert "not empty" in problem.message
    written = sample_platform.write_sample(tmp_path, tenants=5, force=True)
    assert (tmp_path / "tiers.yaml") in written
    assert (tmp_path / "mine.yaml").read_text() == "precious: true\n"
    with pytest.raises(InvalidInput, match="not a directory"):
        sample_platform.write_sample(tmp_path / "mine.yaml")
    with pytest.raises(InvalidInput, match="at least one tenant"):
        sample_platform.write_sample(tmp_path / "new", tenants=0)


@pytest.mark.parametrize("tenants", [1, 2, 13])
def test_small_samples_are_valid(tmp_path: Path, tenants: int) -> None:
    sample_platform.write_sample(tmp_path, tenants=tenants)
    (tmp_path / "README.md").unlink()
    assert len(catalog_files.load_catalog(tmp_path).tenants) == tenants


def test_ten_thousand_tenants_load(tmp_path: Path) -> None:
    sample_platform.write_sample(tmp_path, tenants=10_000)
    built = catalog_files.load_catalog(tmp_path)
    assert len(built.tenants) == 10_000
    models = Counter(t.spec.deployment_model.value for t in built.tenants.values())
    assert set(models) == {"multi-tenant", "dedicated-namespace", "dedicated-cluster"}
    assert os.path.getsize(tmp_path / "people.yaml") < 16 * 1024 * 1024


def test_the_examples_in_docs_catalog_md_form_a_valid_catalog(tmp_path: Path) -> None:
    text = (Path(__file__).parents[2] / "docs" / "catalog.md").read_text()
    blocks = [block.split("```", 1)[0] for block in text.split("```yaml\n")[1:]]
    examples = [block for block in blocks if "kind:" in block and "spec: {}" not in block]
    assert len(examples) == 17  # one block per kind
    for number, block in enumerate(examples):
        (tmp_path / f"example-{number}.yaml").write_text(block)
    counts = catalog_files.load_catalog(tmp_path).as_dict()["counts"]
    assert counts == {
        "tiers": 1,
        "environments": 1,
        "clusters": 1,
        "services": 5,
        "tenants": 1,
        "teams": 1,
        "people": 2,
        "windows": 4,
        "holidaycalendars": 1,
        "riskpolicies": 1,
        "approvalpolicies": 1,
        "schedulingpolicies": 1,
        "standardtemplates": 1,
        "policyconfigs": 1,
        "waivers": 1,
        "policyrules": 1,
        "gitopsrepositories": 1,
    }
