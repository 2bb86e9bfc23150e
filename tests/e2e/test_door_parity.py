"""The CLI and the HTTP API on one database: the same data in the same shape, the same refusals.

ARCHITECTURE.md: "API, web UI and CLI are three doors to the same services: a rule enforced
in one is enforced in all". The CLI runs as a real process; the API in-process on the very
same SQLite file.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.api.conftest import as_
from tests.e2e.test_cli_harness import Cli
from tests.factories import change_yaml


def _file(cli: Cli, name: str, **overrides: object) -> None:
    (cli.workdir / name).write_text(change_yaml(**overrides))
    cli("--as", "alice", "change", "create", "-f", name)


def test_change_list_json_items_are_the_api_list_items(cli: Cli, client: TestClient) -> None:
    _file(cli, "one.yaml")
    _file(cli, "two.yaml", title="Emergency patch", type="emergency", category="security-patch")
    cli("--as", "alice", "change", "submit", "CHG-2")
    from_cli = cli("--as", "alice", "change", "list", "--limit", "1", "--json").json()
    from_api = client.get("/api/v1/changes?limit=1", headers=as_("alice")).json()
    assert from_cli["items"] == from_api["items"]
    assert from_cli["items"][0]["allowed_next"] == ["draft", "scheduled", "canceled", "on-hold"]
    assert {k: from_cli[k] for k in ("total", "limit", "offset")} == {
        k: from_api[k] for k in ("total", "limit", "offset")
    }
    # `next` is the API's URL of the next page; the CLI's next page is --offset offset+limit.
    assert set(from_api) - set(from_cli) == {"next"}

    shown = cli("--as", "alice", "change", "show", "CHG-1", "--json").json()
    one = client.get("/api/v1/changes/CHG-1", headers=as_("alice")).json()
    assert {k: v for k, v in shown.items() if k not in ("comments", "history")} == one
    moved = cli("--as", "alice", "change", "hold", "CHG-1", "--json").json()
    assert moved == client.get("/api/v1/changes/CHG-1", headers=as_("alice")).json()


def test_export_period_is_refused_in_the_same_words_on_both_doors(
    cli: Cli, client: TestClient
) -> None:
    _file(cli, "one.yaml")
    count = client.get("/api/v1/audit/verify", headers=as_("frank")).json()["count"]
    cases = [
        ({"since": "2026-01-01T00:00:00"}, "since"),
        ({"until": "2026-01-01"}, "until"),
        ({"since": "2026-01-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "until"),
    ]
    for params, field in cases:
        options = [part for key, value in params.items() for part in (f"--{key}", value)]
        on_cli = cli("--as", "frank", "audit", "export", *options, expect=1)
        on_api = client.get("/api/v1/audit/export", params=params, headers=as_("frank"))
        assert on_api.status_code == 422
        [problem] = on_api.json()["errors"]
        assert problem["field"] == f"query.{field}"
        assert on_cli.stderr.splitlines() == [f"error: --{field}: {problem['message']}"]
    assert client.get("/api/v1/audit/verify", headers=as_("frank")).json()["count"] == count


def test_submit_and_resume_reasons_reach_the_trail_from_both_doors(
    cli: Cli, client: TestClient
) -> None:
    _file(cli, "one.yaml")
    _file(cli, "two.yaml")
    cli("--as", "alice", "change", "submit", "CHG-1", "--reason", "go")
    client.post("/api/v1/changes/CHG-2/submit", json={"reason": "go"}, headers=as_("alice"))
    for change in ("CHG-1", "CHG-2"):
        history = client.get(f"/api/v1/changes/{change}/history", headers=as_("alice")).json()
        assert history["items"][-1]["after"] == {"state": "assess", "version": 2, "reason": "go"}
