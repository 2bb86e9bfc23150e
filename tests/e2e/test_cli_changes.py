"""`changegate change ...` as real processes: the lifecycle, refusals, conflicts, bad files."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.e2e.test_cli_harness import Cli, make_cli, widest_line
from tests.factories import change_yaml

TRANSITIONS = [  # (person, state): who moves the change where, after it was assessed
    ("carol", "authorize"),
    ("carol", "scheduled"),
    ("bob", "implementing"),
    ("bob", "review"),
]
# Who approves the (high-risk) sample change before it may be scheduled.
APPROVERS = [("carol", "platform-lead"), ("dave", "cab")]


def file_change(cli: Cli, name: str = "change.yaml", **overrides: object) -> dict[str, object]:
    path = cli.workdir / name
    path.write_text(change_yaml(**overrides))
    created: dict[str, object] = cli(
        "--as", "alice", "change", "create", "-f", name, "--json"
    ).json()
    return created


def run_lifecycle(cli: Cli) -> None:
    created = file_change(cli)
    assert (created["id"], created["state"], created["version"]) == ("CHG-1", "draft", 1)
    assert created["requester"] == "alice"

    submitted = cli("--as", "alice", "change", "submit", "CHG-1")
    assert "CHG-1 is assess (version 2)" in submitted.stdout
    cli("--as", "alice", "change", "assess", "CHG-1")
    for person, state in TRANSITIONS:
        if state == "scheduled":
            for approver, role in APPROVERS:
                cli("--as", approver, "change", "approve", "CHG-1", "--role", role)
        moved = cli("--as", person, "change", "transition", "CHG-1", state, "--json").json()
        assert moved["state"] == state
    closed = cli(
        "--as",
        "bob",
        "change",
        "transition",
        "CHG-1",
        "closed",
        "--close-code",
        "successful",
        "--notes",
        "p95 down 30%",
        "--json",
    ).json()
    assert (closed["state"], closed["close_code"], closed["version"]) == ("closed", "successful", 7)
    assert closed["close_notes"] == "p95 down 30%"

    shown = cli("--as", "alice", "change", "show", "CHG-1", "--json").json()
    assert shown["state"] == "closed"
    assert shown["allowed_next"] == []
    assert [e["action"] for e in shown["history"]] == [
        "change.created",
        "change.transitioned",
        "change.assessed",
        "change.transitioned",
        "change.approved",
        "change.approved",
        "change.authorized",
        "change.transitioned",
        "change.scheduled",
        "change.transitioned",
        "change.transitioned",
        "change.transitioned",
    ]
    assert [e["actor"] for e in shown["history"][-2:]] == ["bob", "bob"]

    verified = cli("--as", "frank", "audit", "verify", "--json").json()
    assert verified["ok"] is True


def test_lifecycle_from_a_yaml_file_to_closed(calm_cli: Cli) -> None:
    # On the sample without windows, so that starting it does not depend on today's date
    # (a real process cannot be given a clock); the calendar gates have their own tests.
    cli = calm_cli
    run_lifecycle(cli)
    human = cli("--as", "alice", "change", "show", "CHG-1")
    assert "closed" in human.stdout
    assert "successful" in human.stdout
    assert "draft -> assess" in human.stdout
    assert widest_line(human.stdout) <= 80, human.stdout


@pytest.mark.postgres
def test_lifecycle_on_postgresql(tmp_path: Path, calm_sample_dir: Path, pg_url: str) -> None:
    cli = make_cli(tmp_path, calm_sample_dir, database_url=pg_url)
    upgraded = cli("db", "upgrade")
    assert "is at revision" in upgraded.stdout
    assert "***" in upgraded.stdout
    assert "changegate_test_pw" not in upgraded.stdout + upgraded.stderr
    run_lifecycle(cli)
    listed = cli("--as", "alice", "change", "list", "--state", "closed", "--json").json()
    assert [c["id"] for c in listed["items"]] == ["CHG-1"]


def test_illegal_transition_exits_2_naming_the_allowed_states(cli: Cli) -> None:
    file_change(cli)
    refused = cli("--as", "alice", "change", "transition", "CHG-1", "implementing", expect=2)
    assert refused.stderr.startswith("error: CHG-1 is draft; it cannot move to implementing")
    assert "Allowed next states: assess, canceled, on-hold" in refused.stderr
    as_json = cli(
        "--as", "alice", "change", "transition", "CHG-1", "review", "--json", expect=2
    ).json()
    assert as_json["error"]["type"] == "invalid-transition"
    assert as_json["error"]["allowed"] == ["assess", "canceled", "on-hold"]
    shown = cli("--as", "alice", "change", "show", "CHG-1", "--json").json()
    assert (shown["state"], shown["version"], len(shown["history"])) == ("draft", 1, 1)


def test_stale_if_version_exits_3_and_changes_nothing(cli: Cli) -> None:
    file_change(cli)
    cli(
        "--as",
        "alice",
        "change",
        "edit",
        "CHG-1",
        "--set",
        "title=Second look",
        "--if-version",
        "1",
    )
    stale = cli("--as", "alice", "change", "submit", "CHG-1", "--if-version", "1", expect=3)
    assert "you sent version 1, it is now version 2" in stale.stderr
    stale_edit = cli(
        "--as",
        "alice",
        "change",
        "edit",
        "CHG-1",
        "--set",
        "title=Third",
        "--if-version",
        "1",
        "--json",
        expect=3,
    ).json()
    assert stale_edit["error"] == {
        "type": "stale-write",
        "message": stale_edit["error"]["message"],
        "expected_version": 1,
        "current_version": 2,
    }
    shown = cli("--as", "alice", "change", "show", "CHG-1", "--json").json()
    assert (shown["state"], shown["version"], shown["title"]) == ("draft", 2, "Second look")
    assert len(shown["history"]) == 2


def test_malformed_change_file_exits_1_naming_file_and_line(cli: Cli) -> None:
    (cli.workdir / "broken.yaml").write_text(
        "apiVersion: changegate.io/v1\nkind: ChangeRequest\nspec:\n  title: [unclosed\n"
    )
    syntax = cli("--as", "alice", "change", "create", "-f", "broken.yaml", expect=1)
    assert syntax.stderr.startswith("error: broken.yaml:5: invalid YAML"), syntax.stderr

    document = yaml.safe_load(change_yaml())
    document["spec"]["colour"] = "red"
    document["spec"]["category"] = "gardening"
    (cli.workdir / "fields.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    fields = cli("--as", "alice", "change", "create", "-f", "fields.yaml", expect=1)
    lines = fields.stderr.splitlines()
    assert lines[0] == "error: 2 problems:"
    assert any(
        ln.strip().startswith("fields.yaml:") and "spec.colour: unknown field" in ln for ln in lines
    ), fields.stderr
    assert any("spec.category:" in ln for ln in lines)
    errors = cli(
        "--as", "alice", "change", "create", "-f", "fields.yaml", "--json", expect=1
    ).json()["error"]["errors"]
    colour = next(e for e in errors if e["field"] == "spec.colour")
    assert colour["file"] == "fields.yaml"
    text = (cli.workdir / "fields.yaml").read_text().splitlines()
    assert text[colour["line"] - 1].strip().startswith("colour:")

    unknown_ref = cli(
        "--as",
        "alice",
        "change",
        "create",
        "-f",
        "-",
        expect=1,
        stdin=change_yaml(environment="moon"),
    )
    assert "<stdin>" in unknown_ref.stderr
    assert "no environment 'moon'" in unknown_ref.stderr
    listed = cli("--as", "alice", "change", "list", "--json").json()
    assert listed["total"] == 0


def test_stdin_respects_the_byte_limit(cli: Cli) -> None:
    created = cli(
        "--as", "alice", "change", "create", "-f", "-", "--json", stdin=change_yaml()
    ).json()
    assert created["id"] == "CHG-1"
    too_big = cli(
        "--as",
        "alice",
        "change",
        "create",
        "-f",
        "-",
        stdin="#" * 5000,
        expect=1,
        env={"CHANGEGATE_MAX_FILE_BYTES": "1024"},
    )
    assert "over the limit of 1024 bytes" in too_big.stderr


def test_acting_person_is_required_and_must_be_allowed(cli: Cli) -> None:
    (cli.workdir / "change.yaml").write_text(change_yaml())
    missing = cli("change", "create", "-f", "change.yaml", expect=2)
    assert "no acting person: pass --as PERSON" in missing.stderr
    stranger = cli("--as", "mallory", "change", "list", "--json", expect=2)
    assert stranger.json()["error"]["type"] == "refused"
    auditor = cli("--as", "frank", "change", "create", "-f", "change.yaml", expect=2)
    assert "may not changes:create" in auditor.stderr
    from_env = cli(
        "change", "create", "-f", "change.yaml", "--json", env={"CHANGEGATE_USER": "alice"}
    )
    assert from_env.json()["requester"] == "alice"


def test_edit_with_set_and_patch_file(cli: Cli) -> None:
    file_change(cli)
    cli(
        "--as",
        "alice",
        "change",
        "edit",
        "CHG-1",
        "--set",
        "rollback_plan.tested:=false",
        "--set",
        "targets.tenants:=[]",
        "--set",
        "test_plan=Smoke tests on staging",
    )
    (cli.workdir / "patch.yaml").write_text("title: Update sale_stock (v2)\nincidents: [INC-7]\n")
    edited = cli("--as", "alice", "change", "edit", "CHG-1", "-f", "patch.yaml", "--json").json()
    assert edited["title"] == "Update sale_stock (v2)"
    assert edited["rollback_plan"]["tested"] is False
    assert edited["test_plan"] == "Smoke tests on staging"
    assert edited["version"] == 3

    same = cli("--as", "alice", "change", "edit", "CHG-1", "-f", "patch.yaml")
    assert "nothing to change" in same.stderr
    cli("--as", "alice", "change", "submit", "CHG-1")
    # After submit, re-sending material fields that did not change is fine and writes nothing.
    history = cli("--as", "alice", "change", "show", "CHG-1", "--json").json()["history"]
    resent = cli("--as", "alice", "change", "edit", "CHG-1", "-f", "patch.yaml", "--json")
    assert "nothing to change: CHG-1 already has these values" in resent.stderr
    assert (resent.json()["version"], resent.json()["state"]) == (4, "assess")
    shown = cli("--as", "alice", "change", "show", "CHG-1", "--json").json()
    assert shown["history"] == history
    # ...and alongside a non-material change, only that one is written.
    (cli.workdir / "patch.yaml").write_text("title: Update sale_stock (v2)\nincidents: [INC-8]\n")
    touched = cli("--as", "alice", "change", "edit", "CHG-1", "-f", "patch.yaml")
    assert "edited CHG-1: incidents" in touched.stdout
    # A material edit in Assess is allowed: the change stays there, to be assessed again.
    material = cli("--as", "alice", "change", "edit", "CHG-1", "--set", "title=Sneaky")
    assert material.stdout.startswith("edited CHG-1: title\nCHG-1 is assess (version 6)")
    evidence = cli(
        "--as",
        "alice",
        "change",
        "edit",
        "CHG-1",
        "--set",
        'test_evidence:=["https://ci.example.com/runs/1"]',
        "--json",
    ).json()
    assert evidence["test_evidence"] == ["https://ci.example.com/runs/1"]
    bad = cli("--as", "alice", "change", "edit", "CHG-1", "--set", "no_such.field=1", expect=1)
    assert "no_such: unknown field" in bad.stderr
    twice = cli(
        "--as",
        "alice",
        "change",
        "edit",
        "CHG-1",
        "--set",
        'targets:={"tenants": [], "tenants": ["acme"]}',
        expect=1,
    )
    assert "error: targets: duplicate key 'tenants'" in twice.stderr
    lone = cli(
        "--as", "alice", "change", "edit", "CHG-1", "--set", 'test_evidence:=["\\ud800"]', expect=1
    )
    assert lone.stderr.splitlines() == [
        "error: test_evidence: unpaired UTF-16 surrogates (\\ud800-\\udfff) are not allowed in text"
    ]
    # The refused edits wrote nothing: version 6 (title) and 7 (evidence) only.
    assert cli("--as", "alice", "change", "show", "CHG-1", "--json").json()["version"] == 7


def test_notes_are_for_closing_only(cli: Cli) -> None:
    file_change(cli)
    helped = cli("change", "transition", "--help", columns=200)
    assert "Close notes: only when closing (with --close-code); otherwise use --reason." in (
        helped.stdout
    )
    refused = cli(
        "--as", "alice", "change", "transition", "CHG-1", "assess", "--notes", "x", expect=1
    )
    assert "close_notes: close notes are given only when closing; use a reason" in refused.stderr
    shown = cli("--as", "alice", "change", "show", "CHG-1", "--json").json()
    assert (shown["state"], shown["version"]) == ("draft", 1)


def test_hold_resume_cancel_and_comment(cli: Cli) -> None:
    file_change(cli)
    cli("--as", "alice", "change", "submit", "CHG-1", "--reason", "ready for review")
    held = cli("--as", "alice", "change", "hold", "CHG-1", "--reason", "waiting on vendor")
    assert "on-hold, held from assess" in held.stdout
    resumed = cli(
        "--as", "alice", "change", "resume", "CHG-1", "--reason", "vendor replied", "--json"
    ).json()
    assert resumed["state"] == "assess"
    history = cli("--as", "alice", "change", "show", "CHG-1", "--json").json()["history"]
    assert [e["after"].get("reason") for e in history[1:]] == [
        "ready for review",
        "waiting on vendor",
        "vendor replied",
    ]
    comment = cli(
        "--as", "bob", "change", "comment", "CHG-1", "-m", "[b]ready[/b] when you are", "--json"
    ).json()
    assert comment["author"] == "bob"
    cli("--as", "alice", "change", "cancel", "CHG-1", "--reason", "superseded")
    again = cli("--as", "alice", "change", "cancel", "CHG-1", expect=2)
    assert "none (final state)" in again.stderr
    shown = cli("--as", "alice", "change", "show", "CHG-1")
    assert "[b]ready[/b] when you are" in shown.stdout  # printed as written, no markup
    assert "reason: superseded" in shown.stdout


def test_list_filters_json_and_width(cli: Cli) -> None:
    file_change(
        cli,
        title="Rotate Redis passwords in eu-west, a rather long title indeed",
        category="secrets-rotation",
    )
    file_change(
        cli, "second.yaml", title="Emergency patch", type="emergency", category="security-patch"
    )
    cli("--as", "alice", "change", "submit", "CHG-2")
    everything = cli("--as", "alice", "change", "list", "--json").json()
    assert [c["id"] for c in everything["items"]] == ["CHG-2", "CHG-1"]
    assert everything["total"] == 2
    assert set(everything["items"][0]) >= {"id", "state", "version", "title", "requester"}
    drafts = cli("--as", "alice", "change", "list", "--state", "draft", "--json").json()
    assert [c["id"] for c in drafts["items"]] == ["CHG-1"]
    emergency = cli(
        "--as", "alice", "change", "list", "--type", "emergency", "--state", "authorize", "--json"
    ).json()
    assert [c["id"] for c in emergency["items"]] == ["CHG-2"]
    search = cli(
        "--as", "alice", "change", "list", "--search", "redis", "--limit", "1", "--json"
    ).json()
    assert (search["total"], search["limit"]) == (1, 1)
    table = cli("--as", "alice", "change", "list")
    assert widest_line(table.stdout) <= 80, table.stdout
    assert "CHG-1" in table.stdout
    assert "CHG-2" in table.stdout
    assert "1-2 of 2" in table.stderr
