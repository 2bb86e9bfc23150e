"""Webhook deliveries (domain.webhooks): signatures, tokens, delivery ids and payloads,
hostile ones included."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from changegate.domain import webhooks as w

SHA_A = "a" * 40
SHA_B = "b" * 40
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def body(data: Any) -> bytes:
    return json.dumps(data).encode()


# --------------------------------------------------------------------------- GitHub


def test_the_github_signature_matches_githubs_documented_test_values() -> None:
    # docs.github.com "Validating webhook deliveries": secret and payload with its signature.
    expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert w.github_signature("It's a Secret to Everybody", b"Hello, World!") == expected
    w.verify_github("It's a Secret to Everybody", b"Hello, World!", expected)


@pytest.mark.parametrize(
    ("payload", "header", "message"),
    [
        (b"Hello, World?", None, "does not match"),  # tampered body
        (b"Hello, World!", "sha256=" + "0" * 64, "does not match"),
        (b"Hello, World!", "sha1=abc", "does not match"),
        (b"Hello, World!", "", "is missing"),
        (b"Hello, World!", "sha256=\u00e9\u00e9", "does not match"),
    ],
)
def test_a_tampered_or_missing_github_signature_is_unverified(
    payload: bytes, header: str | None, message: str
) -> None:
    good = w.github_signature("It's a Secret to Everybody", b"Hello, World!")
    with pytest.raises(w.Unverified, match=message) as caught:
        w.verify_github(
            "It's a Secret to Everybody", payload, header if header is not None else good
        )
    assert "Secret" not in str(caught.value)
    assert good not in str(caught.value)


def test_a_signature_under_another_secret_is_unverified() -> None:
    with pytest.raises(w.Unverified):
        w.verify_github("secret", b"x", w.github_signature("other", b"x"))
    with pytest.raises(w.Unverified, match="no GitHub webhook secret"):
        w.verify_github("", b"x", w.github_signature("", b"x"))


# --------------------------------------------------------------------------- GitLab


def test_the_gitlab_token_is_compared_whole() -> None:
    w.verify_gitlab_token("s3cret", "s3cret")
    for wrong in ("s3cre", "s3cret ", "", "S3CRET"):
        with pytest.raises(w.Unverified, match="not the configured token"):
            w.verify_gitlab_token("s3cret", wrong)
    with pytest.raises(w.Unverified, match="missing"):
        w.verify_gitlab_token("s3cret", None)


def _signed(key: str, payload: bytes, at: datetime, message_id: str = "msg_1") -> dict[str, str]:
    timestamp = str(int(at.timestamp()))
    return {
        "webhook-id": message_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": w.standard_signature(key, message_id, timestamp, payload),
    }


def test_a_standard_webhooks_signature_within_the_window_is_verified() -> None:
    headers = _signed("signing-key", b"{}", NOW - timedelta(minutes=4))
    w.verify_standard_webhook("signing-key", b"{}", headers, NOW)
    # Several signatures (a key rotation): one valid is enough.
    headers["webhook-signature"] = "v1,AAAA " + headers["webhook-signature"]
    w.verify_standard_webhook("signing-key", b"{}", headers, NOW)


def test_the_standard_webhooks_whsec_key_is_base64() -> None:
    key = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    headers = _signed(key, b"{}", NOW)
    w.verify_standard_webhook(key, b"{}", headers, NOW)
    with pytest.raises(w.Unverified, match="base64"):
        w.verify_standard_webhook("whsec_!!", b"{}", headers, NOW)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"webhook-timestamp": str(int((NOW - timedelta(minutes=6)).timestamp()))}, "from now"),
        ({"webhook-timestamp": str(int((NOW + timedelta(minutes=6)).timestamp()))}, "from now"),
        ({"webhook-timestamp": "12.5"}, "Unix seconds"),
        ({"webhook-id": "msg_2"}, "does not match"),
        ({"webhook-signature": ""}, "are required"),
    ],
)
def test_old_or_altered_standard_webhooks_deliveries_are_unverified(
    change: dict[str, str], message: str
) -> None:
    headers = _signed("signing-key", b"{}", NOW) | change
    with pytest.raises(w.Unverified, match=message):
        w.verify_standard_webhook("signing-key", b"{}", headers, NOW)


def test_a_replayed_standard_webhooks_delivery_with_a_new_timestamp_fails() -> None:
    headers = _signed("signing-key", b"{}", NOW - timedelta(hours=1))
    headers["webhook-timestamp"] = str(int(NOW.timestamp()))
    with pytest.raises(w.Unverified, match="does not match"):
        w.verify_standard_webhook("signing-key", b"{}", headers, NOW)


# --------------------------------------------------------------------------- delivery ids


def test_delivery_ids_come_from_the_documented_headers() -> None:
    assert w.delivery_id("github", {"x-github-delivery": "72d3162e-cc78"}) == "72d3162e-cc78"
    both = {"idempotency-key": "key-1", "x-gitlab-event-uuid": "uuid-1"}
    assert w.delivery_id("gitlab", both) == "key-1"
    assert w.delivery_id("gitlab", {"x-gitlab-event-uuid": "uuid-1"}) == "uuid-1"
    with pytest.raises(w.BadPayload, match="no id"):
        w.delivery_id("github", {"x-gitlab-event-uuid": "uuid-1"})
    with pytest.raises(w.BadPayload, match="not a delivery id"):
        w.delivery_id("github", {"x-github-delivery": "a b\n"})
    with pytest.raises(w.BadPayload, match="not a delivery id"):
        w.delivery_id("github", {"x-github-delivery": "x" * 129})


# --------------------------------------------------------------------------- payloads


def github_push(**overrides: Any) -> dict[str, Any]:
    return {
        "ref": "refs/heads/main",
        "before": SHA_A,
        "after": SHA_B,
        "repository": {
            "clone_url": "https://github.com/acme/fleet.git",
            "ssh_url": "git@github.com:acme/fleet.git",
            "html_url": "https://github.com/acme/fleet",
        },
        "head_commit": {"message": "Release odoo 17.0-2\n\nlong body"},
        **overrides,
    }


def github_pr(action: str = "opened", **pr: Any) -> dict[str, Any]:
    return {
        "action": action,
        "number": 7,
        "pull_request": {
            "number": 7,
            "title": "Bump odoo",
            "head": {"sha": SHA_B, "ref": "bump"},
            "base": {"sha": SHA_A, "ref": "main"},
            **pr,
        },
        "repository": {"clone_url": "https://github.com/acme/fleet.git"},
    }


def test_a_github_push_is_normalised() -> None:
    event = w.parse("github", "push", body(github_push()))
    assert isinstance(event, w.Event)
    assert (event.kind, event.branch, event.before_sha, event.head_sha) == (
        "push",
        "main",
        SHA_A,
        SHA_B,
    )
    assert event.title == "Release odoo 17.0-2"
    assert event.key == "push:main"
    assert "https://github.com/acme/fleet.git" in event.repo_urls


def test_a_github_pull_request_is_normalised() -> None:
    event = w.parse("github", "pull_request", body(github_pr("synchronize")))
    assert isinstance(event, w.Event)
    assert (event.kind, event.number, event.branch, event.base_sha, event.head_sha) == (
        "pull_request",
        7,
        "main",
        SHA_A,
        SHA_B,
    )
    assert event.key == "pr:7"
    assert event.source_branch == "bump"


def test_gitlab_push_and_merge_request_are_normalised() -> None:
    push = {
        "object_kind": "push",
        "ref": "refs/heads/main",
        "before": SHA_A,
        "after": SHA_B,
        "project": {"git_http_url": "https://gitlab.example.com/platform/fleet.git"},
        "commits": [{"message": "first"}, {"message": "second"}],
    }
    event = w.parse("gitlab", "Push Hook", body(push))
    assert isinstance(event, w.Event)
    assert (event.branch, event.head_sha, event.title) == ("main", SHA_B, "second")
    mr = {
        "object_kind": "merge_request",
        "project": {"git_ssh_url": "git@gitlab.example.com:platform/fleet.git"},
        "object_attributes": {
            "iid": 12,
            "action": "update",
            "title": "Bump",
            "target_branch": "main",
            "source_branch": "bump",
            "last_commit": {"id": SHA_B},
        },
    }
    event = w.parse("gitlab", "Merge Request Hook", body(mr))
    assert isinstance(event, w.Event)
    assert (event.number, event.branch, event.head_sha, event.base_sha) == (12, "main", SHA_B, None)


@pytest.mark.parametrize(
    ("provider", "name", "data", "reason"),
    [
        ("github", "ping", {"zen": "x"}, "ping"),
        ("github", "issues", {}, "not used"),
        ("gitlab", "System Hook", {}, "not used"),
        ("github", "push", github_push(ref="refs/tags/v1"), "not to a branch"),
        ("github", "push", github_push(after="0" * 40), "deleted"),
        ("github", "push", github_push(before="0" * 40), "created"),
        ("github", "pull_request", github_pr("closed"), "not used"),
        ("github", "pull_request", github_pr("labeled"), "not used"),
    ],
)
def test_events_that_ask_nothing_are_ignored_with_the_reason(
    provider: w.Provider, name: str, data: dict[str, Any], reason: str
) -> None:
    found = w.parse(provider, name, body(data))
    assert isinstance(found, w.Ignored)
    assert reason in found.reason


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"ref": 1, "ref": 2}', "repeats the key"),
        (b'{"ref": NaN}', "not JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "not JSON"),
        (body(github_push(after="B" * 40)), "after is not a commit id"),
        (body(github_push(after="b" * 39)), "after is not a commit id"),
        (body(github_push(before=["a"])), "before is not a commit id"),
        (body(github_push(ref="refs/heads/--upload-pack=x")), "not a branch name"),
        (body(github_push(ref="refs/heads/a..b")), "not a branch name"),
        (body(github_push(ref="refs/heads/ma\nin")), "not a short single-line string"),
        (body(github_push(ref="refs/heads/" + "x" * 300)), "not a short single-line string"),
        (body(github_push(repository={"clone_url": 5})), "clone_url"),
        (body(github_push(repository="x")), None),
    ],
)
def test_hostile_push_payloads_are_refused_not_crashed_on(raw: bytes, message: str | None) -> None:
    if message is None:
        found = w.parse("github", "push", raw)  # no repository URL: the service ignores it
        assert isinstance(found, w.Event)
        assert found.repo_urls == ()
        return
    with pytest.raises(w.BadPayload, match=message):
        w.parse("github", "push", raw)


@pytest.mark.parametrize("number", [True, -1, 0, "7", 2**40, 1.5, None])
def test_a_request_number_must_be_a_positive_integer(number: Any) -> None:
    with pytest.raises(w.BadPayload, match="not a request number"):
        w.parse("github", "pull_request", body(github_pr(number=number)))


def test_titles_are_one_bounded_line_without_control_characters() -> None:
    data = github_pr(title="Bump\x1b[31m odoo " + "x" * 300 + "\nsecond line")
    event = w.parse("github", "pull_request", body(data))
    assert isinstance(event, w.Event)
    assert "\x1b" not in event.title
    assert len(event.title) == w.MAX_TITLE
    assert "second" not in event.title


def test_no_event_type_is_a_bad_payload() -> None:
    with pytest.raises(w.BadPayload, match="no event type"):
        w.parse("github", None, b"{}")


# --------------------------------------------------------------------------- repositories


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/Acme/fleet.git",
        "https://github.com/acme/fleet",
        "https://github.com/acme/fleet/",
        "git@github.com:acme/fleet.git",
        "ssh://git@github.com:22/acme/fleet.git",
        "https://user@GitHub.com/acme/fleet.git",
    ],
)
def test_the_urls_of_one_repository_compare_equal(url: str) -> None:
    assert w.same_repository("https://github.com/acme/fleet.git", (url,))


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/acme/fleet2.git",
        "https://github.com/acme/fleet/extra",
        "https://gitlab.com/acme/fleet.git",
        "https://github.com.evil.example/acme/fleet.git",
    ],
)
def test_other_repositories_do_not(url: str) -> None:
    assert not w.same_repository("https://github.com/acme/fleet.git", (url,))
    assert not w.same_repository("https://github.com/acme/fleet.git", ())
