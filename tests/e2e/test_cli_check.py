"""`changegate check`, `policy rules|waivers` and `change policy` through the real console script.

Exit codes are the CI contract: 0 passed, 1 an input could not be read, 2 error-level
findings remain. The outputs are parsed as their consumers parse them.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest

from tests.e2e.test_cli_harness import Cli, make_cli, widest_line

SCHEMA = json.loads(
    (Path(__file__).parents[1] / "policy" / "data" / "sarif-schema-2.1.0.json").read_text()
)
DIGEST = "sha256:" + "d" * 64

CLEAN = f"""\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: odoo
  namespace: odoo-shop
  labels: {{changegate.io/tenant: shop}}
spec:
  replicas: 2
  selector:
    matchLabels: {{app: odoo}}
  template:
    metadata:
      labels: {{app: odoo}}
    spec:
      automountServiceAccountToken: false
      serviceAccountName: odoo
      securityContext:
        runAsNonRoot: true
        runAsUser: 1000
        seccompProfile: {{type: RuntimeDefault}}
      containers:
        - name: odoo
          image: registry.example.com/odoo:17.0@{DIGEST}
          resources:
            requests: {{cpu: 500m, memory: 1Gi}}
            limits: {{memory: 2Gi}}
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities: {{drop: [ALL]}}
"""

BROKEN = CLEAN.replace("allowPrivilegeEscalation: false", "privileged: true").replace(
    f"registry.example.com/odoo:17.0@{DIGEST}", "docker.io/odoo:latest"
)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "apps").mkdir(parents=True)
    return root


def write(repo: Path, name: str, text: str) -> Path:
    path = repo / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def repo_cli(tmp_path: Path, sample_dir: Path, repo: Path) -> Cli:
    """The CLI working inside the repository (relative paths), with the sample catalog."""
    return make_cli(repo, sample_dir, f"sqlite:///{tmp_path / 'cg.db'}")


def test_a_clean_folder_passes(cli: Cli, repo: Path) -> None:
    write(repo, "apps/odoo.yaml", CLEAN)
    result = cli("check", str(repo / "apps"), "--env", "prod")
    assert "PASSED" in result.stdout
    assert widest_line(result.stdout) <= 80


def test_errors_exit_2_with_a_table_grouped_by_resource(repo_cli: Cli, repo: Path) -> None:
    write(repo, "apps/odoo.yaml", BROKEN)
    result = repo_cli("check", "apps/odoo.yaml", "--env", "prod", expect=2, columns=160)
    assert "Deployment odoo-shop/odoo" in result.stdout
    assert "k8s.privileged" in result.stdout
    assert "k8s.image-tag" in result.stdout
    assert "apps/odoo.yaml:28" in result.stdout
    assert "FAILED" in result.stdout
    assert result.stdout.count("Deployment odoo-shop/odoo [container odoo]") == 1


def test_json_output_is_the_report(repo_cli: Cli, repo: Path) -> None:
    write(repo, "apps/odoo.yaml", BROKEN)
    result = repo_cli("check", str(repo / "apps"), "--base", str(repo), "--json", expect=2)
    report = result.json()
    assert report["passed"] is False
    rules = {f["rule"] for f in report["findings"]}
    assert {"k8s.privileged", "k8s.image-tag", "image.registry"} <= rules
    privileged = next(f for f in report["findings"] if f["rule"] == "k8s.privileged")
    assert privileged["file"] == "apps/odoo.yaml"
    assert privileged["line"] == 28
    assert privileged["resource"]["container"] == "odoo"
    assert "CKV_K8S_16" in privileged["aliases"]
    assert report["summary"]["errors"] >= 3


def test_sarif_validates_and_junit_parses(repo_cli: Cli, repo: Path) -> None:
    write(repo, "apps/odoo.yaml", BROKEN)
    result = repo_cli(
        "check",
        "apps",
        "--env",
        "prod",
        "--format",
        "sarif",
        "--output",
        "out.sarif",
        expect=2,
    )
    assert "FAILED" in result.stdout  # the table still goes to the log
    sarif = json.loads((repo / "out.sarif").read_text())
    jsonschema.validate(sarif, SCHEMA)
    results = sarif["runs"][0]["results"]
    located = next(r for r in results if r["ruleId"] == "k8s.privileged")
    physical = located["locations"][0]["physicalLocation"]
    assert physical["artifactLocation"] == {"uri": "apps/odoo.yaml", "uriBaseId": "%SRCROOT%"}
    assert physical["region"]["startLine"] == 28
    junit = repo_cli("check", "apps", "--env", "prod", "-f", "junit", expect=2)
    root = ET.fromstring(junit.stdout)
    assert root.tag == "testsuites"
    assert int(root.get("failures", "0")) >= 3


def test_stdin_from_helm_template(repo_cli: Cli) -> None:
    result = repo_cli("check", "-", "--stdin-name", "charts/odoo", "--json", stdin=BROKEN, expect=2)
    files = {f["file"] for f in result.json()["findings"]}
    assert files == {"charts/odoo"}


def test_unreadable_input_exits_1_naming_file_and_line(repo_cli: Cli, repo: Path) -> None:
    write(repo, "apps/odoo.yaml", CLEAN)
    write(repo, "apps/bad.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: [x}\n")
    result = repo_cli("check", "apps", expect=1)
    assert "apps/bad.yaml:3" in result.stdout
    assert "inputs could not be read" in result.stdout
    missing = repo_cli("check", "nope.yaml", expect=1)
    assert "no such file or folder" in missing.stdout


def test_unknown_environment_and_bad_usage_exit_1(repo_cli: Cli, repo: Path) -> None:
    write(repo, "apps/odoo.yaml", CLEAN)
    unknown = repo_cli("check", "apps", "--env", "moon", expect=1)
    assert "unknown environment 'moon'" in unknown.stderr
    assert "prod" in unknown.stderr
    table_file = repo_cli("check", "apps", "--output", "x.txt", expect=1)
    assert "--output needs --format" in table_file.stderr


def test_without_a_catalog_the_defaults_apply(tmp_path: Path, repo: Path) -> None:
    bare = make_cli(repo, None, f"sqlite:///{tmp_path / 'bare.db'}")
    write(repo, "apps/odoo.yaml", CLEAN)
    assert "PASSED" in bare("check", "apps").stdout
    needs = bare("check", "apps", "--tenant", "acme", expect=1)
    assert "catalog" in needs.stderr


def test_waivers_in_the_catalog_apply_and_expired_ones_are_loud(
    tmp_path: Path, sample_dir: Path, repo: Path
) -> None:
    import shutil

    catalog = tmp_path / "platform"
    shutil.copytree(sample_dir, catalog)
    (catalog / "more-waivers.yaml").write_text(
        """\
apiVersion: changegate.io/v1
kind: Waiver
metadata: {name: shop-registry}
spec:
  rule: image.registry
  selector: {namespace: odoo-shop, container: odoo}
  reason: Docker Hub mirror until the move to the internal registry.
  owner: bob
  approved_by: carol
  expires: 2099-12-31
---
apiVersion: changegate.io/v1
kind: Waiver
metadata: {name: shop-latest}
spec:
  rule: k8s.image-tag
  selector: {namespace: odoo-shop}
  reason: Lapsed.
  owner: bob
  approved_by: carol
  expires: 2020-01-31
"""
    )
    waived = make_cli(repo, catalog, f"sqlite:///{tmp_path / 'w.db'}")
    write(repo, "apps/odoo.yaml", BROKEN)
    result = waived("check", "apps", "--env", "prod", "--json", expect=2)
    report = result.json()
    by_rule = {f["rule"]: f for f in report["findings"]}
    assert by_rule["image.registry"]["status"] == "waived"
    assert by_rule["image.registry"]["waiver"] == "shop-registry"
    assert by_rule["k8s.image-tag"]["status"] == "failed"
    assert by_rule["k8s.image-tag"]["waiver_expired"] is True
    assert [w["id"] for w in report["waivers"]["expired"]] == ["shop-latest"]
    table = waived("check", "apps", "--env", "prod", expect=2, columns=200)
    assert "EXPIRED WAIVER shop-latest" in table.stdout
    listed = waived("policy", "waivers", "--json").json()
    states = {w["id"]: w["state"] for w in listed}
    assert states["shop-latest"] == "expired"
    assert states["shop-registry"] == "active"


def test_policy_rules_lists_every_rule(cli: Cli) -> None:
    rules = cli("policy", "rules", "--json").json()
    ids = {r["id"] for r in rules}
    assert {"k8s.privileged", "tf.stateful-delete", "custom.tenant-label"} <= ids
    privileged = next(r for r in rules if r["id"] == "k8s.privileged")
    assert privileged["waivable"] is False  # the sample PolicyConfig says so
    table = cli("policy", "rules")
    assert "k8s.privileged" in table.stdout
    assert widest_line(table.stdout) <= 80


def test_the_rule_reference_is_in_sync_with_the_rules(cli: Cli) -> None:
    bare = make_cli(cli.workdir, None, cli.database_url)
    generated = bare("policy", "rules", "--markdown").stdout
    docs = Path(__file__).parents[2] / "docs" / "policy-rules.md"
    assert docs.read_text() == generated, "regenerate: changegate policy rules --markdown"


def test_nothing_to_check_fails(repo_cli: Cli, repo: Path) -> None:
    write(repo, "apps/README.md", "# not an input\n")
    result = repo_cli("check", "apps", expect=1)
    assert "nothing to check" in result.stdout


def test_a_changes_stored_report_through_the_cli(tmp_path: Path, sample_dir: Path) -> None:
    import shutil

    from tests.e2e.test_cli_harness import file_change

    catalog = tmp_path / "repo" / "platform"
    shutil.copytree(sample_dir, catalog)
    write(tmp_path / "repo", "apps/odoo.yaml", BROKEN)
    cli = make_cli(tmp_path, catalog)
    change_id = file_change(cli, artifacts={"manifests": ["apps/odoo.yaml"]})
    missing = cli("--as", "frank", "change", "policy", change_id, expect=1)
    assert "assess it first" in missing.stderr
    cli("--as", "alice", "change", "submit", change_id)
    cli("--as", "bob", "change", "assess", change_id)
    table = cli("--as", "frank", "change", "policy", change_id, columns=160)
    assert "k8s.privileged" in table.stdout
    assert "apps/odoo.yaml:28" in table.stdout
    stored = cli("--as", "frank", "change", "policy", change_id, "--json").json()
    assert stored["passed"] is False
    assert stored["content_hash"].startswith("sha256:")
    sarif = cli("--as", "frank", "change", "policy", change_id, "-f", "sarif").json()
    jsonschema.validate(sarif, SCHEMA)
    cli("--as", "bob", "change", "transition", change_id, "authorize")
    approvals = cli("--as", "frank", "change", "approvals", change_id, "--json").json()
    assert "policy gate blocks it" in json.dumps(approvals)
