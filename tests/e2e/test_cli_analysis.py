"""`changegate analysis replay` as a real process: outcomes per measurement and metric,
exit codes (0 Successful; 2 Failed, Error, Inconclusive or Running; 1 bad input), --json,
args, and errors naming file, line and field. No database is touched."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.test_cli_harness import make_cli, widest_line

TEMPLATE = """\
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata:
  name: odoo-health
spec:
  args:
  - name: tenant
  metrics:
  - name: success-rate
    interval: 1m
    count: 3
    failureLimit: 1
    successCondition: len(result) > 0 && result[0] >= 0.95
    provider:
      prometheus:
        address: http://prometheus:9090
        query: odoo_success_ratio{tenant="{{args.tenant}}"}
  - name: latency
    interval: 1m
    count: 2
    successCondition: result[0] <= 0.5
    failureCondition: result[0] > 2
    provider:
      prometheus:
        address: http://prometheus:9090
        query: odoo_latency_seconds{tenant="{{args.tenant}}"}
"""


def _files(tmp_path: Path, measurements: dict[str, object]) -> tuple[str, str]:
    template = tmp_path / "t.yaml"
    template.write_text(TEMPLATE)
    recorded = tmp_path / "m.json"
    recorded.write_text(json.dumps(measurements))
    return str(template), str(recorded)


def test_successful_replay_exits_zero(tmp_path: Path) -> None:
    cli = make_cli(tmp_path, None)
    t, m = _files(
        tmp_path,
        {
            "success-rate": [[0.99], [0.9], {"error": "timeout"}, [0.97]],
            "latency": [[0.2], [0.3]],
        },
    )
    result = cli("analysis", "replay", "--template", t, "--measurements", m, "--arg", "tenant=x")
    assert "analysis Successful" in result.stdout
    assert "reached" in result.stdout
    assert widest_line(result.stdout) <= 80
    body = cli(
        "analysis", "replay", "--template", t, "--measurements", m, "--arg", "tenant=x", "--json"
    ).json()
    assert body["phase"] == "Successful"
    assert [s["measurement"]["phase"] for s in body["steps"] if s["metric"] == "success-rate"] == [
        "Successful",
        "Failed",
        "Error",
        "Successful",
    ]
    assert body["metrics"][0]["failed"] == 1
    assert not (tmp_path / "changegate.db").exists()


def test_failed_and_inconclusive_exit_two(tmp_path: Path) -> None:
    cli = make_cli(tmp_path, None)
    t, m = _files(tmp_path, {"success-rate": [[0.5], [0.4]], "latency": [[0.2]]})
    result = cli(
        "analysis", "replay", "--template", t, "--measurements", m, "--arg", "tenant=x", expect=2
    )
    assert "FAILED" in result.stdout
    assert "failed (2) > failureLimit (1)" in result.stdout
    t, m = _files(tmp_path, {"success-rate": [[0.99]], "latency": [[1.0]]})
    body = cli(
        "analysis", "replay", "--template", t, "--measurements", m, "--arg", "tenant=x",
        "--json", expect=2,
    ).json()  # fmt: skip
    assert body["phase"] == "Inconclusive"
    assert body["metrics"][1]["phase"] == "Inconclusive"
    # success-rate stopped when the run terminated, within its limits.
    assert body["metrics"][0]["phase"] == "Successful"


def test_running_unless_terminated(tmp_path: Path) -> None:
    cli = make_cli(tmp_path, None)
    t, m = _files(tmp_path, {"success-rate": [[0.99]], "latency": [[0.1]]})
    args = ("analysis", "replay", "--template", t, "--measurements", m, "--arg", "tenant=x")
    result = cli(*args, expect=2)
    assert "still Running" in result.stdout
    assert cli(*args, "--terminate", "--json").json()["phase"] == "Successful"


def test_bad_input_exits_one_with_file_line_field(tmp_path: Path) -> None:
    cli = make_cli(tmp_path, None)
    t, m = _files(tmp_path, {"success-rate": [[0.99]]})
    missing = cli("analysis", "replay", "--template", t, "--measurements", m, expect=1)
    assert "argument 'tenant' was not supplied" in missing.stderr
    Path(t).write_text(TEMPLATE + "  dryRun:\n  - metricName: latency\n")
    bad = cli(
        "analysis", "replay", "--template", t, "--measurements", m, "--arg", "tenant=x",
        "--json", expect=1,
    )  # fmt: skip
    problems = bad.json()["error"]["errors"]
    assert any(
        p["field"] == "spec.dryRun"
        and p["line"] == 27
        and p["file"] == t
        and "not supported" in p["message"]
        for p in problems
    ), problems
