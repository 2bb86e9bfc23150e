"""`changegate change approve|reject|approvals` and `changegate approvals --for` as real
processes: the 80-column views, exit codes, and --json equal to the API's JSON."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.api.conftest import as_
from tests.e2e.test_cli_harness import Cli, widest_line
from tests.factories import change_yaml


def words(text: str) -> str:
    return " ".join(text.split())


def waiting(cli: Cli) -> str:
    """The sample change: filed by alice, submitted, assessed, moved to authorize by carol."""
    (cli.workdir / "change.yaml").write_text(change_yaml())
    change_id: str = cli("--as", "alice", "change", "create", "-f", "change.yaml", "--json").json()[
        "id"
    ]
    cli("--as", "alice", "change", "submit", change_id)
    assessed = cli("--as", "alice", "change", "assess", change_id, "--json").json()
    assert assessed["risk_class"] == "high"
    cli("--as", "carol", "change", "transition", change_id, "authorize")
    return change_id


def test_approve_until_authorized_with_views_fitting_80_columns(
    cli: Cli, client: TestClient
) -> None:
    change_id = waiting(cli)
    inbox = cli("--as", "dave", "approvals", columns=80)
    assert widest_line(inbox.stdout) <= 80, inbox.stdout
    assert change_id in inbox.stdout and "cab (1 more)" in words(inbox.stdout)

    shown = cli("--as", "frank", "change", "approvals", change_id, columns=80)
    assert widest_line(shown.stdout) <= 80, shown.stdout
    text = words(shown.stdout)
    assert f"{change_id} risk high; 2 approval(s) needed" in text
    assert "NEED HAVE APPROVED BY WHO CAN RULES" in text
    assert "platform-lead 0/1 - carol high-risk" in text
    assert "cab 0/1 - dave, ivan, peggy high-risk" in text

    first = cli("--as", "carol", "change", "approve", change_id, "--comment", "ok", columns=80)
    assert widest_line(first.stdout) <= 80, first.stdout
    assert first.stdout.startswith(f"carol approved {change_id}\n{change_id}  not authorized")
    second = cli("--as", "dave", "change", "approve", change_id, "--role", "cab", columns=80)
    assert widest_line(second.stdout) <= 80, second.stdout
    assert f"{change_id}  authorized" in second.stdout
    assert "cab 1/1 dave" in words(second.stdout)

    after = cli("--as", "dave", "approvals", "--for", "dave")
    assert change_id not in after.stdout
    assert after.stdout == "nothing waits for dave\n"
    narrow = cli("--as", "frank", "change", "approvals", change_id, columns=60)
    assert widest_line(narrow.stdout) <= 60, narrow.stdout


def test_json_equals_the_api_json(cli: Cli, client: TestClient) -> None:
    change_id = waiting(cli)
    inbox = cli("--as", "frank", "approvals", "--for", "dave", "--json").json()
    api_inbox = client.get(
        "/api/v1/approvals/inbox", params={"person": "dave"}, headers=as_("dave")
    )
    assert inbox == api_inbox.json()
    assert [item["change_id"] for item in inbox["items"]] == [change_id]

    approved = cli("--as", "carol", "change", "approve", change_id, "--json").json()
    url = f"/api/v1/changes/{change_id}/approvals"
    read = cli("--as", "frank", "change", "approvals", change_id, "--json").json()
    from_api = client.get(url, headers=as_("frank")).json()
    assert read == from_api
    assert approved == from_api["decision"]
    assert approved["counted"] == {"carol": "platform-lead"}
    posted = client.post(url, json={}, headers=as_("dave"))
    assert posted.status_code == 201, posted.text
    assert (
        posted.json()
        == cli("--as", "frank", "change", "approvals", change_id, "--json").json()["decision"]
    )

    rejected = cli("--as", "ivan", "change", "reject", change_id, "--comment", "no", "--json")
    change = client.get(f"/api/v1/changes/{change_id}", headers=as_("frank")).json()
    assert rejected.json() == change
    assert change["state"] == "draft"


def test_refusals_conflicts_and_invalid_input_exit_per_their_shape(cli: Cli) -> None:
    change_id = waiting(cli)
    for person, duty in (("alice", "requester"), ("bob", "implementer")):
        refused = cli("--as", person, "change", "approve", change_id, expect=2)
        assert refused.stderr.startswith(f"error: {person} is the {duty} of {change_id}")
        assert "who may: " in refused.stderr
    as_json = cli("--as", "alice", "change", "approve", change_id, "--json", expect=2)
    assert as_json.json()["error"]["type"] == "refused"

    cli("--as", "carol", "change", "approve", change_id)
    twice = cli("--as", "carol", "change", "approve", change_id, expect=3)
    assert "already approved" in twice.stderr

    no_comment = cli("--as", "dave", "change", "reject", change_id, expect=1)
    assert "--comment" in no_comment.stderr
    blank = cli("--as", "dave", "change", "reject", change_id, "--comment", " ", expect=1)
    assert blank.stderr.startswith("error:")
    rejected = cli("--as", "dave", "change", "reject", change_id, "--comment", "not tested")
    assert rejected.stdout.startswith(f"dave rejected {change_id}: not tested\n")
    assert f"{change_id} is draft" in rejected.stdout

    other = cli("--as", "dave", "approvals", "--for", "carol", expect=2)
    assert "may not audit:read" in other.stderr
    unknown = cli("--as", "frank", "approvals", "--for", "nobody", expect=1)
    assert "no person 'nobody'" in unknown.stderr
