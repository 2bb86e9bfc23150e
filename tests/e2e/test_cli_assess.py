"""`changegate change assess` and `changegate report risk-calibration` as real processes:
the 80-column views, exit codes, and --json equal to the API's JSON."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.api.conftest import as_
from tests.e2e.test_cli_harness import Cli, drive, file_change, widest_line

PG = "pg-eu-west-prod-1"
WIDE: dict[str, Any] = {
    "category": "database-upgrade",
    "targets": {"services": [PG]},
    "rollback_plan": {"steps": "", "irreversible": True},
    "test_plan": "",
}


def words(text: str) -> str:
    """The text with every run of whitespace made one space: wrapped cells read whole."""
    return " ".join(text.split())


def test_the_breakdown_fits_80_columns(cli: Cli, client: TestClient) -> None:
    change_id = file_change(cli, **WIDE)
    shown = cli("--as", "alice", "change", "assess", change_id, columns=80)
    out = shown.stdout
    assert widest_line(out) <= 80, out
    assert shown.stderr == ""
    latest = client.get(f"/api/v1/changes/{change_id}/assessment", headers=as_("frank"))
    assert latest.status_code == 200, latest.text
    body = latest.json()
    lines = [line.rstrip() for line in out.splitlines()]
    assert lines[0] == f"{change_id}  risk {body['score']}/100  {body['risk_class']}"
    text = words(out)
    assert f"class {body['class_reason']}" in text
    assert f"catalog {body['catalog_digest']}" in text  # whole, to reproduce it
    assert f"rules {body['rule_version']} (built-in defaults)" in text
    assert f"run assessment #{body['id']}," in text and "by alice" in text
    assert words(body["impact"]["summary"]) in text
    header = next(line for line in lines if line.startswith("POINTS"))
    assert header.split() == ["POINTS", "FACTOR", "REASON"]
    # Every factor with its signed points and its whole reason (wrapped in its column).
    for factor in body["factors"]:
        assert f"{factor['points']:+d} {factor['name']} " in text, factor
        assert words(factor["reason"]) in text, factor
    assert sum(f["points"] for f in body["factors"]) == body["score"]
    assert lines[-1].split()[:2] == [str(body["score"]), "score"]
    # A narrower terminal wraps the reasons further; nothing is cut.
    narrow = cli("--as", "alice", "change", "assess", change_id, columns=60).stdout
    assert widest_line(narrow) <= 60, narrow
    assert all(words(f["reason"]) in words(narrow) for f in body["factors"])


def test_json_equals_the_api_json_for_the_latest_assessment(cli: Cli, client: TestClient) -> None:
    for name, overrides in (("wide.yaml", WIDE), ("gold.yaml", {})):
        change_id = file_change(cli, name, **overrides)
        from_cli = cli("--as", "alice", "change", "assess", change_id, "--json").json()
        from_api = client.get(f"/api/v1/changes/{change_id}/assessment", headers=as_("frank"))
        assert from_api.status_code == 200, from_api.text
        assert from_cli == from_api.json()
        assert from_cli["change_id"] == change_id
        assert sum(f["points"] for f in from_cli["factors"]) == from_cli["score"]
        # And a run through the API has the same shape and the same breakdown.
        posted = client.post(f"/api/v1/changes/{change_id}/assessments", headers=as_("alice"))
        assert posted.status_code == 201, posted.text
        again = posted.json()
        assert set(again) == set(from_cli)
        assert again["factors"] == from_cli["factors"]
        assert again["id"] == from_cli["id"] + 1


def test_show_names_the_latest_risk(cli: Cli) -> None:
    change_id = file_change(cli)
    before = cli("--as", "frank", "change", "show", change_id).stdout
    assert "risk not assessed (changegate change assess ID)" in words(before)
    score = cli("--as", "alice", "change", "assess", change_id, "--json").json()
    after = cli("--as", "frank", "change", "show", change_id)
    assert widest_line(after.stdout) <= 80, after.stdout
    text = words(after.stdout)
    assert f"risk {score['score']} {score['risk_class']} (assessment #{score['id']}," in text
    assert f"risk {score['score']} ({score['risk_class']}), assessment #{score['id']}" in text
    assert "edited since" not in text
    cli("--as", "alice", "change", "edit", change_id, "--set", "title=Another title")
    stale = words(cli("--as", "frank", "change", "show", change_id).stdout)
    assert "; the change was edited since: assess it again" in stale


def test_refusals_and_errors_exit_per_their_shape(cli: Cli) -> None:
    change_id = file_change(cli)
    auditor = cli("--as", "frank", "change", "assess", change_id, "--json", expect=2)
    assert auditor.stderr.startswith("error: frank (roles: auditor) may not changes:transition")
    assert auditor.json()["error"]["type"] == "refused"
    missing = cli("--as", "alice", "change", "assess", "CHG-99", expect=1)
    assert missing.stderr == "error: CHG-99 does not exist\n"
    malformed = cli("--as", "alice", "change", "assess", "bogus", expect=1)
    assert "not a change id" in malformed.stderr
    cli("--as", "alice", "change", "cancel", change_id)
    final = cli("--as", "alice", "change", "assess", change_id, expect=2)
    assert "a final change is not assessed again" in final.stderr
    nobody = cli("change", "assess", change_id, expect=2)
    assert nobody.stderr.startswith("error: no acting person")


def close(cli: Cli, change_id: str, code: str) -> None:
    drive(cli, change_id, "review")
    cli("--as", "bob", "change", "transition", change_id, "closed", "--close-code", code)


def test_risk_calibration_json_equals_the_api_and_the_table_fits(
    calm_cli: Cli, calm_client: TestClient
) -> None:
    # Closing changes means starting them: on the sample without windows, any date.
    cli, client = calm_cli, calm_client
    wide = file_change(cli, "wide.yaml", **WIDE)
    cli("--as", "alice", "change", "assess", wide)
    close(cli, wide, "unsuccessful")
    plain = file_change(cli, "plain.yaml", type="emergency")
    close(cli, plain, "successful-with-issues")  # an emergency change: never assessed

    from_cli = cli("--as", "frank", "report", "risk-calibration", "--json").json()
    from_api = client.get("/api/v1/reports/risk-calibration", headers=as_("frank"))
    assert from_api.status_code == 200, from_api.text
    assert from_cli == from_api.json()
    rows = {row["risk_class"]: row for row in from_cli["items"]}
    assert list(rows) == ["low", "medium", "high", "critical", "unassessed"]
    assert (rows["critical"]["changes"], rows["critical"]["failed"]) == (1, 1)
    assert rows["critical"]["failure_rate"] == 1.0
    assert (rows["unassessed"]["changes"], rows["unassessed"]["with_issues"]) == (1, 1)

    period = ("--since", "2000-01-01T01:00:00+01:00", "--until", "2999-01-01T00:00:00Z")
    bounded = cli("--as", "frank", "report", "risk-calibration", *period, "--json").json()
    api_bounded = client.get(
        "/api/v1/reports/risk-calibration",
        params={"since": period[1], "until": period[3]},
        headers=as_("frank"),
    ).json()
    assert bounded == api_bounded
    assert (bounded["since"], bounded["until"]) == (
        "2000-01-01T00:00:00.000000Z",
        "2999-01-01T00:00:00.000000Z",
    )
    assert bounded["items"] == from_cli["items"]

    table = cli("--as", "frank", "report", "risk-calibration", columns=80)
    assert widest_line(table.stdout) <= 80, table.stdout
    lines = [line.rstrip() for line in table.stdout.splitlines()]
    assert lines[0] == "Risk calibration: 2 changes closed at any time"
    header = next(line for line in lines if line.startswith("CLASS"))
    assert words(header) == "CLASS CHANGES SUCCESSFUL WITH ISSUES FAILED FAILURE RATE"
    assert next(line for line in lines if line.startswith("critical")).split() == [
        "critical",
        "1",
        "0",
        "0",
        "1",
        "100.0%",
    ]
    assert next(line for line in lines if line.startswith("low")).split()[-1] == "-"
    assert next(line for line in lines if line.startswith("unassessed")).split() == [
        "unassessed",
        "1",
        "0",
        "1",
        "0",
        "0.0%",
    ]


def test_a_bad_period_names_the_option(cli: Cli) -> None:
    cli("db", "upgrade")
    naive = cli("--as", "frank", "report", "risk-calibration", "--since", "2026-01-01", expect=1)
    assert naive.stderr == "error: --since: needs a timezone offset, e.g. 2026-11-01T00:00:00Z\n"
    backwards = cli(
        "--as",
        "frank",
        "report",
        "risk-calibration",
        "--since",
        "2026-02-01T00:00:00Z",
        "--until",
        "2026-01-01T00:00:00Z",
        "--json",
        expect=1,
    )
    assert backwards.stderr == "error: --until: until must be after since\n"
    assert backwards.json()["error"]["errors"][0]["field"] == "--until"
    garbage = cli("--as", "frank", "report", "risk-calibration", "--until", "soon", expect=1)
    assert garbage.stderr.startswith("error: --until: not an ISO 8601 date or instant")
