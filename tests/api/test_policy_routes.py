"""/api/v1 policy routes: the stored report of a change, rules, waivers, and a check of
documents sent in the body (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
from fastapi.testclient import TestClient

from tests.api.conftest import as_, assert_problem, create, move

SCHEMA = json.loads(
    (Path(__file__).parents[1] / "policy" / "data" / "sarif-schema-2.1.0.json").read_text()
)

PRIVILEGED = """\
apiVersion: v1
kind: Pod
metadata:
  name: debug
  namespace: odoo-shop
spec:
  containers:
    - name: shell
      image: registry.example.com/tools:1.0
      securityContext:
        privileged: true
"""


def test_check_documents_in_the_body(client: TestClient) -> None:
    body = {
        "files": [
            {"name": "apps/debug.yaml", "content": PRIVILEGED},
            {"name": "odoo.conf", "content": "[options]\nworkers = 0\n"},
            {"name": "broken.yaml", "content": "a: [b\n"},
        ],
        "environment": "prod",
    }
    response = client.post("/api/v1/policy/check", json=body, headers=as_("alice"))
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["passed"] is False
    assert report["environment"] == "prod"
    rules = {f["rule"] for f in report["findings"]}
    assert {"k8s.privileged", "odoo.workers"} <= rules
    privileged = next(f for f in report["findings"] if f["rule"] == "k8s.privileged")
    assert (privileged["file"], privileged["line"]) == ("apps/debug.yaml", 11)
    assert [p["file"] for p in report["problems"]] == ["broken.yaml"]


def test_check_as_sarif_and_junit(client: TestClient) -> None:
    body = {"files": [{"name": "apps/debug.yaml", "content": PRIVILEGED}]}
    sarif = client.post("/api/v1/policy/check?format=sarif", json=body, headers=as_("alice"))
    assert sarif.headers["content-type"].startswith("application/sarif+json")
    jsonschema.validate(sarif.json(), SCHEMA)
    junit = client.post("/api/v1/policy/check?format=junit", json=body, headers=as_("alice"))
    assert ET.fromstring(junit.text).tag == "testsuites"


def test_check_refuses_bad_bodies(client: TestClient) -> None:
    url = "/api/v1/policy/check"
    assert_problem(client.post(url, json={"files": []}, headers=as_("alice")), 422, "invalid-input")
    unknown = client.post(
        url, json={"files": [{"name": "a.yaml", "content": ""}], "x": 1}, headers=as_("alice")
    )
    assert_problem(unknown, 422, "invalid-input")
    env = client.post(
        url,
        json={"files": [{"name": "a.yaml", "content": PRIVILEGED}], "environment": "moon"},
        headers=as_("alice"),
    )
    problem = assert_problem(env, 422, "invalid-input")
    assert "unknown environment 'moon'" in json.dumps(problem)
    stdin = client.post(
        url, json={"files": [{"name": "-", "content": "a: b"}]}, headers=as_("alice")
    )
    assert stdin.json()["problems"][0]["field"] == "files.0.name"
    anonymous = client.post(url, json={"files": [{"name": "a.yaml", "content": ""}]})
    assert anonymous.status_code == 401


def test_rules_and_waivers(client: TestClient) -> None:
    rules = client.get("/api/v1/policy/rules", headers=as_("frank")).json()
    assert any(r["id"] == "custom.tenant-label" for r in rules)
    waivers = client.get("/api/v1/policy/waivers", headers=as_("frank")).json()
    assert [(w["id"], w["state"]) for w in waivers] == [("legacy-exporter-root", "active")]


def test_a_changes_report_after_assessment(client: TestClient) -> None:
    change = create(client)
    url = f"/api/v1/changes/{change['id']}/policy"
    assert_problem(client.get(url, headers=as_("frank")), 404, "not-found")
    move(client, change, "assess", "alice")
    assessed = client.post(f"/api/v1/changes/{change['id']}/assessments", headers=as_("alice"))
    assert assessed.status_code in (200, 201), assessed.text
    report = client.get(url, headers=as_("frank"))
    assert report.status_code == 200, report.text
    body = report.json()
    assert body["passed"] is True, body["findings"]
    assert body["content_hash"].startswith("sha256:")
    assert body["summary"]["documents"] == 0  # the factory change ships no artifact
    sarif = client.get(url + "?format=sarif", headers=as_("frank"))
    jsonschema.validate(sarif.json(), SCHEMA)
    assert client.get(url + "?format=yaml", headers=as_("frank")).status_code == 422


def test_nothing_to_check_is_a_problem_as_on_the_cli(client: TestClient) -> None:
    body = {"files": [{"name": "notes.yaml", "content": "just: values\n"}]}
    response = client.post("/api/v1/policy/check", json=body, headers=as_("alice"))
    report = response.json()
    assert report["passed"] is False
    assert [p["message"] for p in report["problems"]] == [
        "nothing to check: no policy input found in notes.yaml"
    ]
