"""`changegate report retrospectives` and `changegate retrospective show|review` as real
processes: the 80-column views, exit codes, and --json equal to the API's JSON.

A change authorized here is authorized now, so its retrospective is open for 48 hours; to
make one overdue the test moves its deadline back in the database file, as only someone with
file access could.
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.api.conftest import as_
from tests.e2e.test_cli_harness import Cli, file_change, sql, widest_line


def words(text: str) -> str:
    return " ".join(text.split())


def authorized(cli: Cli, **overrides: Any) -> str:
    """An emergency change filed and submitted by alice, authorized by erin."""
    change_id = file_change(cli, type="emergency", **overrides)
    cli("--as", "alice", "change", "submit", change_id)
    approved = cli("--as", "erin", "change", "approve", change_id, "--json").json()
    assert approved["authorized"] is True
    return change_id


def overdue(cli: Cli, change_id: str) -> None:
    """Move the retrospective's deadline into the past."""
    number = int(change_id.removeprefix("CHG-"))
    sql(
        cli.database_url,
        "UPDATE retrospectives SET due_at = '2001-03-06 05:06:00.000000' "
        f"WHERE change_id = {number}",
    )


def without_now(body: dict[str, Any]) -> dict[str, Any]:
    """The report without its instant: two runs are never made at the same microsecond."""
    return {key: value for key, value in body.items() if key != "now"}


def test_report_and_show_fit_80_columns(cli: Cli) -> None:
    empty = cli("--as", "frank", "report", "retrospectives")
    assert empty.stdout.startswith("Retrospectives: 0 open, 0 of them overdue, at ")
    first = authorized(cli, title="Renew the expired wildcard certificate on traefik")
    second = authorized(cli)
    overdue(cli, first)

    listed = cli("--as", "frank", "report", "retrospectives", columns=80)
    assert widest_line(listed.stdout) <= 80, listed.stdout
    text = words(listed.stdout)
    assert text.startswith("Retrospectives: 2 open, 1 of them overdue, at ")
    assert "CHANGE STATUS DUE" in text
    assert f"{first} overdue 2001-03-06 05:06Z" in text
    assert f"{second} open" in text
    # Earliest deadline first.
    assert listed.stdout.index(first) < listed.stdout.index(second)

    only = cli("--as", "frank", "report", "retrospectives", "--status", "overdue", columns=80)
    assert widest_line(only.stdout) <= 80, only.stdout
    assert words(only.stdout).startswith("Retrospectives: 1 overdue at ")
    assert first in only.stdout and second not in only.stdout
    narrow = cli("--as", "frank", "report", "retrospectives", "--status", "all", columns=60)
    assert widest_line(narrow.stdout) <= 60, narrow.stdout
    assert first in narrow.stdout and second in narrow.stdout

    shown = cli("--as", "frank", "retrospective", "show", first, columns=80)
    assert widest_line(shown.stdout) <= 80, shown.stdout
    assert shown.stdout.startswith(f"{first}  overdue  (retrospective by cab)\n")
    assert "requested by alice; the change is authorize" in shown.stdout
    assert "due 2001-03-06 05:06Z" in shown.stdout
    assert "not reviewed yet" in shown.stdout


def test_review_then_done_and_json_equals_the_api_json(cli: Cli, client: TestClient) -> None:
    change_id = authorized(cli)
    url = f"/api/v1/changes/{change_id}/retrospective"
    shown = cli("--as", "frank", "retrospective", "show", change_id, "--json").json()
    assert shown == client.get(url, headers=as_("frank")).json()
    assert shown["status"] == "open"
    report = cli("--as", "frank", "report", "retrospectives", "--json").json()
    from_api = client.get("/api/v1/reports/retrospectives", headers=as_("frank")).json()
    assert without_now(report) == without_now(from_api)
    assert report["items"] == [shown]

    done = cli("--as", "dave", "retrospective", "review", change_id, "--comment", "ok; alert added")
    assert widest_line(done.stdout) <= 80, done.stdout
    assert done.stdout.startswith(f"dave reviewed {change_id}\n{change_id}  done  ")
    assert "by dave" in done.stdout and "comment: ok; alert added" in done.stdout

    after = cli("--as", "frank", "retrospective", "show", change_id, "--json").json()
    assert after == client.get(url, headers=as_("frank")).json()
    assert (after["status"], after["done_by"]) == ("done", "dave")
    everything = cli("--as", "frank", "report", "retrospectives", "--status", "all", "--json")
    api_all = client.get(
        "/api/v1/reports/retrospectives", params={"status": "all"}, headers=as_("frank")
    ).json()
    assert without_now(everything.json()) == without_now(api_all)
    assert everything.json()["items"] == [after]
    assert cli("--as", "frank", "report", "retrospectives", "--json").json()["items"] == []

    # The --json of review is the API's POST answer: review another one over both doors.
    other = authorized(cli)
    overdue(cli, other)
    posted = cli(
        "--as", "ivan", "retrospective", "review", other, "--comment", "late", "--json"
    ).json()
    assert posted["status"] == "done-late"
    assert (
        posted == client.get(f"/api/v1/changes/{other}/retrospective", headers=as_("frank")).json()
    )


def test_refusals_conflicts_and_invalid_input_exit_per_their_shape(cli: Cli) -> None:
    change_id = authorized(cli)
    for person, duty in (("alice", "requester"), ("bob", "implementer")):
        refused = cli(
            "--as", person, "retrospective", "review", change_id, "--comment", "x", expect=2
        )
        assert refused.stderr.startswith(f"error: {person} is the {duty} of {change_id}")
        assert "dave, ivan, peggy" in refused.stderr
    erin = cli(
        "--as", "erin", "retrospective", "review", change_id, "--comment", "x", "--json", expect=2
    )
    assert erin.json()["error"]["type"] == "refused"

    missing = cli("--as", "dave", "retrospective", "review", change_id, expect=1)
    assert "--comment" in missing.stderr
    blank = cli("--as", "dave", "retrospective", "review", change_id, "--comment", " ", expect=1)
    assert blank.stderr.startswith("error: --comment: a retrospective needs a comment")

    cli("--as", "dave", "retrospective", "review", change_id, "--comment", "fine")
    twice = cli(
        "--as", "peggy", "retrospective", "review", change_id, "--comment", "me too", expect=3
    )
    assert "already done by dave" in twice.stderr

    normal = file_change(cli, name="normal.yaml")
    not_one = cli("--as", "frank", "retrospective", "show", normal, expect=1)
    assert f"{normal} is not an emergency change awaiting a retrospective" in not_one.stderr
    bogus = cli("--as", "frank", "report", "retrospectives", "--status", "late", expect=1)
    assert "late" in bogus.stderr
