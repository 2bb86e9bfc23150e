"""`changegate windows check|ics|import-argocd` as real processes: exit codes (0 allowed,
2 blocked), 80-column views, --json equal to the API's JSON, feeds and Argo CD imports."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import vobject
import yaml
from fastapi.testclient import TestClient

from changegate.adapters import catalog_files
from changegate.domain import calendar
from tests.api.conftest import as_
from tests.e2e.test_cli_harness import Cli, widest_line

TENANT = "litware-tools"
FROZEN = "2026-12-20T10:00:00Z"  # inside the year-end freeze
OPEN = "2026-11-07T15:00:00Z"  # inside litware-tools' Saturday maintenance window

APPPROJECT = """\
apiVersion: argoproj.io/v1alpha1
kind: AppProject
metadata:
  name: odoo-prod
spec:
  syncWindows:
  - kind: allow
    schedule: '0 2 * * 6'
    duration: 4h
    timeZone: Asia/Singapore
    applications: ['litware-*']
    manualSync: true
  - kind: deny
    schedule: '0 0 24 12 *'
    duration: 48h
    clusters: ['eu-west-*', 'https://kubernetes.default.svc']
    namespaces: [odoo]
"""


def words(text: str) -> str:
    return " ".join(text.split())


def test_check_exits_2_when_blocked_and_0_when_allowed(cli: Cli) -> None:
    blocked = cli("--as", "alice", "windows", "check", "--tenant", TENANT, "--at", FROZEN, expect=2)
    assert widest_line(blocked.stdout) <= 80, blocked.stdout
    text = words(blocked.stdout)
    assert text.startswith(f"{TENANT} at 2026-12-20 10:00Z: BLOCKED")
    assert "freeze 'year-end-freeze'" in text
    assert "WINDOW PURPOSE FROM (UTC) TO (UTC)" in text
    assert "year-end-freeze freeze 2026-12-18 00:00Z" in text
    assert "next allowed at: 2027-" in text
    assert "who may override: cab" in text
    assert blocked.stderr == ""

    allowed = cli("--as", "alice", "windows", "check", "--tenant", TENANT, "--at", OPEN)
    assert widest_line(allowed.stdout) <= 80, allowed.stdout
    assert words(allowed.stdout).startswith(f"{TENANT} at 2026-11-07 15:00Z: allowed")
    assert "maintenance-ap-southeast" in allowed.stdout
    assert "override" not in allowed.stdout

    exempt = cli(
        "--as", "alice", "windows", "check", "--tenant", TENANT, "--at", OPEN, "--type",
        "emergency", "--category", "security-patch", columns=60,
    )  # fmt: skip
    assert widest_line(exempt.stdout) <= 60, exempt.stdout


def test_check_json_equals_the_api_json(cli: Cli, client: TestClient) -> None:
    for at, kind, code in ((FROZEN, None, 2), (FROZEN, "emergency", 2), (OPEN, None, 0)):
        extra = ["--type", kind] if kind else []
        args = ["--as", "alice", "windows", "check", "--tenant", TENANT, "--at", at, *extra]
        result = cli(*args, "--json", expect=code)
        params = {"tenant": TENANT, "at": at, **({"type": kind} if kind else {})}
        from_api = client.get("/api/v1/windows/check", params=params, headers=as_("alice"))
        assert from_api.status_code == 200, from_api.text
        assert result.json() == from_api.json()
        assert result.json()["allowed"] is (code == 0)
    exempted = cli(
        "--as", "alice", "windows", "check", "--tenant", TENANT, "--at", FROZEN, "--type",
        "emergency", "--json", expect=2,
    ).json()  # fmt: skip
    assert exempted["exempted"] == ["year-end-freeze"]


def test_check_bad_input_exits_1_naming_the_option(cli: Cli) -> None:
    naive = cli(
        "--as", "alice", "windows", "check", "--tenant", TENANT, "--at", "2026-12-20T10:00",
        "--json", expect=1,
    )  # fmt: skip
    assert naive.json()["error"]["errors"][0]["field"] == "--at"
    garbage = cli("--as", "alice", "windows", "check", "--tenant", TENANT, "--at", "soon", expect=1)
    assert "--at" in garbage.stderr
    bad_type = cli(
        "--as", "alice", "windows", "check", "--tenant", TENANT, "--at", FROZEN, "--type", "x",
        expect=1,
    )  # fmt: skip
    assert "error: --type:" in bad_type.stderr
    unknown = cli(
        "--as", "alice", "windows", "check", "--tenant", "nobody", "--at", FROZEN, expect=1
    )
    assert "no tenant 'nobody'" in unknown.stderr


def test_ics_feed_to_stdout_and_to_a_file(cli: Cli, sample_dir: Path) -> None:
    args = ("--from", "2026-11-01T00:00:00Z", "--to", "2027-01-01T00:00:00Z")
    shown = cli("--as", "alice", "windows", "ics", "--tenant", TENANT, *args)
    parsed = vobject.readOne(shown.stdout)
    assert parsed.contents["x-wr-calname"][0].value == f"changegate: {TENANT}"
    catalog = catalog_files.load_catalog(sample_dir)
    start, end = datetime(2026, 11, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)
    expected = {
        (o.window, o.start, o.end)
        for window in calendar.windows_for(catalog, TENANT)
        for o in calendar.occurrences(window, start, end, holidays=catalog.holiday_calendars)
    }
    got = {
        (e.contents["x-changegate-window"][0].value, e.dtstart.value, e.dtend.value)
        for e in parsed.vevent_list
    }
    assert got == expected
    assert shown.stderr == f"{len(expected)} events\n"

    written = cli("--as", "alice", "windows", "ics", *args, "-o", "platform.ics")
    assert written.stdout == ""
    assert "events to platform.ics" in written.stderr
    platform = vobject.readOne((cli.workdir / "platform.ics").read_text())
    assert platform.contents["x-wr-calname"][0].value == "changegate: platform"
    assert len(platform.vevent_list) > len(expected)
    assert not (cli.workdir / "platform.ics.partial").exists()


def test_ics_bad_range_exits_1(cli: Cli) -> None:
    naive = cli(
        "--as", "alice", "windows", "ics", "--from", "2026-11-01", "--to", "2026-12-01T00:00:00Z",
        expect=1,
    )  # fmt: skip
    assert "error: --from:" in naive.stderr
    inverted = cli(
        "--as", "alice", "windows", "ics", "--from", "2026-12-01T00:00:00Z", "--to",
        "2026-11-01T00:00:00Z", expect=1,
    )  # fmt: skip
    assert "error: --to:" in inverted.stderr


def test_import_argocd_writes_windows_that_load(cli: Cli, sample_dir: Path) -> None:
    (cli.workdir / "project.yaml").write_text(APPPROJECT)
    shown = cli("windows", "import-argocd", "project.yaml")
    documents = list(yaml.safe_load_all(shown.stdout))
    assert [d["metadata"]["name"] for d in documents] == [
        "argocd-odoo-prod-0",
        "argocd-odoo-prod-1",
    ]
    assert documents[0]["spec"]["scope"] == {"tenants": ["litware-*"]}
    assert documents[1]["spec"]["scope"] == {"clusters": ["eu-west-*"]}
    notes = shown.stderr
    assert "note: project.yaml: intervals:" in notes
    assert "manualSync" in notes and "namespaces odoo" in notes
    assert "https://kubernetes.default.svc" in notes
    assert "timezone Asia/Singapore" not in notes  # no DST there
    assert notes.endswith("2 windows imported\n")

    platform = cli.workdir / "platform"
    shutil.copytree(sample_dir, platform)
    written = cli("windows", "import-argocd", "project.yaml", "-o", "platform/argocd.yaml")
    assert written.stdout == ""
    assert written.stderr.endswith("2 windows imported to platform/argocd.yaml\n")
    cli("catalog", "validate", "platform")
    catalog = catalog_files.load_catalog(platform)
    assert catalog.windows["argocd-odoo-prod-0"].spec.cron == "0 2 * * 6"
    # The imported window now decides for litware-tools like the sample's own.
    checked = cli(
        "--as", "alice", "--catalog", "platform", "windows", "check", "--tenant", TENANT,
        "--at", "2026-11-06T18:30:00Z", "--json",
    ).json()  # fmt: skip
    assert [d["window"] for d in checked["deciding"]] == ["argocd-odoo-prod-0"]

    as_json = cli("windows", "import-argocd", "project.yaml", "--json")
    body = as_json.json()
    assert body["documents"] == documents
    assert body["notes"] and all(isinstance(note, str) for note in body["notes"])
    assert as_json.stderr == "2 windows imported\n"


def test_import_argocd_errors_name_file_line_and_field(cli: Cli) -> None:
    broken = APPPROJECT.replace("duration: 48h", "duration: 2 days")
    (cli.workdir / "broken.yaml").write_text(broken)
    result = cli("windows", "import-argocd", "broken.yaml", "--json", expect=1)
    (error,) = result.json()["error"]["errors"]
    assert error == {
        "file": "broken.yaml",
        "line": 15,
        "field": "spec.syncWindows[1].duration",
        "message": "not a Go duration: '2 days' (e.g. 1h, 30m, 1h30m)",
    }
    assert "error: broken.yaml:15: spec.syncWindows[1].duration: not a Go duration" in (
        result.stderr
    )
    missing = cli("windows", "import-argocd", "nowhere.yaml", expect=1)
    assert "nowhere.yaml: cannot read file" in missing.stderr


def test_calendar_view_json_equals_the_api_and_the_table_fits(cli: Cli, client: TestClient) -> None:
    period = ("--from", "2026-12-14T00:00:00Z", "--to", "2026-12-28T00:00:00Z")
    tenant = next(t for t in ("litware-tools",))
    from_cli = cli("--as", "frank", "calendar", *period, "--tenant", tenant, "--json").json()
    from_api = client.get(
        "/api/v1/calendar",
        params={"from": period[1], "to": period[3], "tenant": tenant},
        headers=as_("frank"),
    )
    assert from_api.status_code == 200, from_api.text
    assert from_cli == from_api.json()
    ids = [item["id"] for item in from_cli["items"]]
    assert "year-end-freeze" in ids
    human = cli("--as", "frank", "calendar", *period, "--tenant", tenant, columns=80)
    assert widest_line(human.stdout) <= 80, human.stdout
    assert "year-end-freeze" in human.stdout
    unknown = cli("--as", "frank", "calendar", *period, "--tenant", "nobody", expect=1)
    assert "no tenant 'nobody'" in unknown.stderr
