"""`changegate backup ...` through the console script: the door's permissions and errors.

The dumps and restores themselves run against the real PostgreSQL in
tests/integration/test_backups.py; here the CLI contract (exit codes, JSON, refusals).
"""

from __future__ import annotations

from tests.e2e.test_cli_harness import Cli


def test_listing_is_empty_json_and_unknown_things_are_refused(cli: Cli) -> None:
    assert cli("--as", "frank", "backup", "list", "--json").json() == {"items": []}
    assert cli("--as", "frank", "backup", "drills", "--json").json() == {"items": []}
    unknown = cli("--as", "bob", "backup", "take", "no-such-tenant", expect=1)
    assert "no-such-tenant" in unknown.stderr
    missing = cli("--as", "carol", "backup", "show", "999", expect=1)
    assert "999" in missing.stderr


def test_restoring_over_a_tenant_needs_the_restore_permission(cli: Cli) -> None:
    refused = cli("--as", "alice", "backup", "restore", "1", expect=2)
    assert "backups:restore" in refused.stderr
