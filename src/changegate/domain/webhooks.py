"""Webhook deliveries from GitHub and GitLab: are they authentic, which delivery are they, and
what do they say (pure: no I/O).

Authenticity (docs/webhooks.md):
- GitHub: `X-Hub-Signature-256: sha256=<hex>`, the HMAC-SHA256 of the raw body keyed with the
  webhook secret.
- GitLab: `X-Gitlab-Token`, the secret token itself; and, when a signing token is configured,
  GitLab's Standard Webhooks signature: `webhook-signature: v1,<base64>` (space-separated
  entries), the HMAC-SHA256 of `{webhook-id}.{webhook-timestamp}.{body}`, with
  `webhook-timestamp` (Unix seconds) within a tolerance of now.
Every comparison is constant-time (`hmac.compare_digest`); no message here names a secret.

Replay: `delivery_id` names the delivery (GitHub `X-GitHub-Delivery`, kept on redelivery;
GitLab `Idempotency-Key`, kept across retries, else `X-Gitlab-Event-UUID`). The service
records it with the body's digest and answers a repeat with the first answer.

`parse` turns a push or pull/merge-request payload into an `Event`, or says why it is ignored.
Payloads are hostile until checked: every field is type-checked, commit ids must be 40 or 64
hex digits, branch names are bounded and free of control characters.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

Provider = Literal["github", "gitlab"]
PROVIDERS: tuple[Provider, ...] = ("github", "gitlab")

ZERO_SHA = re.compile(r"^0+$")
_SHA = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")
_DELIVERY = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_REF = 255
MAX_TITLE = 200
MAX_URL = 2048
SIGNATURE_TOLERANCE = timedelta(minutes=5)

GITHUB_PR_ACTIONS = frozenset({"opened", "synchronize", "reopened", "edited", "ready_for_review"})
GITLAB_MR_ACTIONS = frozenset({"open", "update", "reopen"})


class Unverified(Exception):
    """The delivery is not authentic (a missing or wrong signature or token). The message
    says which check failed, never the secret nor the expected value."""


class BadPayload(Exception):
    """The delivery is authentic but its payload or headers are malformed."""


@dataclass(frozen=True, slots=True)
class Ignored:
    """An authentic delivery that asks nothing of changegate, and why."""

    reason: str


@dataclass(frozen=True, slots=True)
class Event:
    """A push to a branch, or a pull/merge request opened or updated, normalised."""

    provider: Provider
    kind: Literal["push", "pull_request"]
    repo_urls: tuple[str, ...]
    branch: str  # push: the branch pushed; pull_request: the base (target) branch
    head_sha: str  # push: `after`; pull_request: the head commit
    before_sha: str | None = None  # push only
    base_sha: str | None = None  # GitHub pull_request: the base branch's tip
    number: int | None = None  # pull_request: GitHub number / GitLab iid
    source_branch: str | None = None
    title: str = ""
    action: str | None = None

    @property
    def key(self) -> str:
        """What identifies the request across pushes: `pr:<n>`, or `push:<branch>`."""
        return f"pr:{self.number}" if self.kind == "pull_request" else f"push:{self.branch}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "kind": self.kind,
            "branch": self.branch,
            "head_sha": self.head_sha,
            "before_sha": self.before_sha,
            "number": self.number,
            "source_branch": self.source_branch,
            "title": self.title,
            "action": self.action,
        }


# --------------------------------------------------------------------------- authenticity


def github_signature(secret: str, body: bytes) -> str:
    """The `X-Hub-Signature-256` value GitHub sends for `body` (for tests and docs)."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify_github(secret: str, body: bytes, header: str | None) -> None:
    """Unverified unless `header` is the HMAC-SHA256 of `body` under `secret`."""
    if not secret:
        raise Unverified("no GitHub webhook secret is configured")
    if not header:
        raise Unverified("X-Hub-Signature-256 is missing")
    expected = github_signature(secret, body).encode("ascii")
    if not hmac.compare_digest(expected, header.strip().encode("utf-8", "replace")):
        raise Unverified("X-Hub-Signature-256 does not match the body")


def verify_gitlab_token(token: str, header: str | None) -> None:
    """Unverified unless `header` is the configured secret token."""
    if not token:
        raise Unverified("no GitLab webhook token is configured")
    if header is None:
        raise Unverified("X-Gitlab-Token is missing")
    if not hmac.compare_digest(token.encode("utf-8"), header.encode("utf-8", "replace")):
        raise Unverified("X-Gitlab-Token is not the configured token")


def _signing_key(key: str) -> bytes:
    """A Standard Webhooks key: `whsec_<base64>` decoded, anything else as its UTF-8 bytes."""
    if key.startswith("whsec_"):
        try:
            return base64.b64decode(key.removeprefix("whsec_"), validate=True)
        except (binascii.Error, ValueError):
            raise Unverified("the configured signing token is not valid whsec_ base64") from None
    return key.encode("utf-8")


def standard_signature(key: str, message_id: str, timestamp: str, body: bytes) -> str:
    """The `v1,<base64>` Standard Webhooks signature of a delivery (for tests and docs)."""
    signed = message_id.encode("utf-8") + b"." + timestamp.encode("ascii") + b"." + body
    mac = hmac.new(_signing_key(key), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode("ascii")


def verify_standard_webhook(
    key: str,
    body: bytes,
    headers: Mapping[str, str],
    now: datetime,
    tolerance: timedelta = SIGNATURE_TOLERANCE,
) -> None:
    """Unverified unless `webhook-signature` holds a valid v1 signature of `webhook-id`,
    `webhook-timestamp` and the body, and the timestamp is within `tolerance` of `now`."""
    message_id = headers.get("webhook-id")
    timestamp = headers.get("webhook-timestamp")
    signatures = headers.get("webhook-signature")
    if not message_id or not timestamp or not signatures:
        raise Unverified("webhook-id, webhook-timestamp and webhook-signature are required")
    if not timestamp.isdigit() or len(timestamp) > 12:
        raise Unverified("webhook-timestamp is not Unix seconds")
    sent = int(timestamp)
    if abs(now.timestamp() - sent) > tolerance.total_seconds():
        raise Unverified(
            f"webhook-timestamp is more than {int(tolerance.total_seconds())} s from now"
        )
    expected = standard_signature(key, message_id, timestamp, body).encode("ascii")
    found = False
    for entry in signatures.split(" ")[:16]:
        # Compare every entry, so the time taken does not say which one matched.
        found |= hmac.compare_digest(expected, entry.encode("utf-8", "replace"))
    if not found:
        raise Unverified("webhook-signature does not match the delivery")


def delivery_id(provider: Provider, headers: Mapping[str, str]) -> str:
    """The delivery's id (the same on redelivery), from lower-cased header names."""
    names = (
        ("x-github-delivery",)
        if provider == "github"
        else ("idempotency-key", "webhook-id", "x-gitlab-event-uuid")
    )
    for name in names:
        value = headers.get(name)
        if value:
            if not _DELIVERY.match(value):
                raise BadPayload(f"{name} is not a delivery id")
            return value
    raise BadPayload(f"the delivery has no id ({' or '.join(names)})")


def body_digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


# --------------------------------------------------------------------------- payloads


def _get(data: Any, *path: str) -> Any:
    for name in path:
        if not isinstance(data, dict):
            return None
        data = data.get(name)
    return data


def _text(data: Any, *path: str, limit: int = MAX_URL) -> str | None:
    value = _get(data, *path)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit or _CONTROL.search(value):
        raise BadPayload(f"{'.'.join(path)} is not a short single-line string")
    return value


def _sha(data: Any, *path: str) -> str:
    value = _get(data, *path)
    if not isinstance(value, str) or not _SHA.match(value):
        raise BadPayload(f"{'.'.join(path)} is not a commit id")
    return value


def _branch(value: str | None, name: str) -> str:
    if value is None or not value or len(value) > MAX_REF or _CONTROL.search(value):
        raise BadPayload(f"{name} is not a branch name")
    if value.startswith("-") or ".." in value or " " in value:
        raise BadPayload(f"{name} is not a branch name")
    return value


def _number(data: Any, *path: str) -> int:
    value = _get(data, *path)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**31:
        raise BadPayload(f"{'.'.join(path)} is not a request number")
    return value


def _title(value: Any) -> str:
    if not isinstance(value, str):
        return ""
    line = value.strip().splitlines()[0] if value.strip() else ""
    line = _CONTROL.sub(" ", line).strip()
    return line if len(line) <= MAX_TITLE else line[: MAX_TITLE - 1] + "…"


def _urls(*values: str | None) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v for v in values if v))


def load(body: bytes) -> dict[str, Any]:
    """The JSON object of a body; BadPayload for anything else (repeated keys included)."""

    def no_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for key, value in pairs:
            if key in found:
                raise BadPayload(f"the payload repeats the key {key[:50]!r}")
            found[key] = value
        return found

    def no_constants(name: str) -> Any:
        raise BadPayload(f"the payload holds {name}, which is not JSON")

    try:
        data = json.loads(body, object_pairs_hook=no_repeats, parse_constant=no_constants)
    except (ValueError, RecursionError) as exc:
        if isinstance(exc, BadPayload):
            raise
        raise BadPayload("the payload is not JSON") from None
    if not isinstance(data, dict):
        raise BadPayload("the payload is not a JSON object")
    return data


def parse(provider: Provider, event: str | None, body: bytes) -> Event | Ignored:
    """What an authentic delivery asks for: a push or pull/merge-request Event, or Ignored."""
    if not event:
        raise BadPayload("the delivery names no event type")
    if provider == "github":
        if event == "ping":
            return Ignored("ping: the webhook is set up")
        if event == "push":
            return _github_push(load(body))
        if event == "pull_request":
            return _github_pull_request(load(body))
    else:
        if event == "Push Hook":
            return _gitlab_push(load(body))
        if event == "Merge Request Hook":
            return _gitlab_merge_request(load(body))
    return Ignored(f"{event[:64]!r} events are not used: send push and pull/merge requests")


def _push_common(
    provider: Provider, data: dict[str, Any], urls: tuple[str, ...]
) -> Event | Ignored:
    ref = _text(data, "ref", limit=MAX_REF + 11)
    if ref is None or not ref.startswith("refs/heads/"):
        return Ignored(f"a push to {ref or 'nothing'!r}, not to a branch")
    branch = _branch(ref.removeprefix("refs/heads/"), "ref")
    before, after = _sha(data, "before"), _sha(data, "after")
    if ZERO_SHA.match(after):
        return Ignored(f"branch {branch!r} was deleted")
    if ZERO_SHA.match(before):
        return Ignored(f"branch {branch!r} was created: no range to file a change from")
    if before == after:
        return Ignored("the push moved nothing")
    return Event(
        provider=provider,
        kind="push",
        repo_urls=urls,
        branch=branch,
        head_sha=after,
        before_sha=before,
    )


def _github_urls(data: dict[str, Any]) -> tuple[str, ...]:
    return _urls(
        _text(data, "repository", "clone_url"),
        _text(data, "repository", "ssh_url"),
        _text(data, "repository", "html_url"),
        _text(data, "repository", "git_url"),
    )


def _github_push(data: dict[str, Any]) -> Event | Ignored:
    found = _push_common("github", data, _github_urls(data))
    if isinstance(found, Event):
        title = _title(_get(data, "head_commit", "message"))
        return Event(**{**_fields(found), "title": title})
    return found


def _github_pull_request(data: dict[str, Any]) -> Event | Ignored:
    action = _text(data, "action", limit=64) or ""
    if action not in GITHUB_PR_ACTIONS:
        return Ignored(f"pull request action {action!r} is not used")
    return Event(
        provider="github",
        kind="pull_request",
        repo_urls=_github_urls(data),
        branch=_branch(_text(data, "pull_request", "base", "ref", limit=MAX_REF), "base.ref"),
        head_sha=_sha(data, "pull_request", "head", "sha"),
        base_sha=_sha(data, "pull_request", "base", "sha"),
        number=_number(data, "pull_request", "number"),
        source_branch=_text(data, "pull_request", "head", "ref", limit=MAX_REF),
        title=_title(_get(data, "pull_request", "title")),
        action=action,
    )


def _gitlab_urls(data: dict[str, Any]) -> tuple[str, ...]:
    return _urls(
        _text(data, "project", "git_http_url"),
        _text(data, "project", "git_ssh_url"),
        _text(data, "project", "web_url"),
        _text(data, "repository", "git_http_url"),
        _text(data, "repository", "git_ssh_url"),
        _text(data, "repository", "homepage"),
    )


def _gitlab_push(data: dict[str, Any]) -> Event | Ignored:
    found = _push_common("gitlab", data, _gitlab_urls(data))
    if isinstance(found, Event):
        commits = _get(data, "commits")
        last = commits[-1] if isinstance(commits, list) and commits else None
        return Event(**{**_fields(found), "title": _title(_get(last, "message"))})
    return found


def _gitlab_merge_request(data: dict[str, Any]) -> Event | Ignored:
    action = _text(data, "object_attributes", "action", limit=64) or ""
    if action not in GITLAB_MR_ACTIONS:
        return Ignored(f"merge request action {action!r} is not used")
    return Event(
        provider="gitlab",
        kind="pull_request",
        repo_urls=_gitlab_urls(data),
        branch=_branch(
            _text(data, "object_attributes", "target_branch", limit=MAX_REF), "target_branch"
        ),
        head_sha=_sha(data, "object_attributes", "last_commit", "id"),
        number=_number(data, "object_attributes", "iid"),
        source_branch=_text(data, "object_attributes", "source_branch", limit=MAX_REF),
        title=_title(_get(data, "object_attributes", "title")),
        action=action,
    )


def _fields(event: Event) -> dict[str, Any]:
    return {name: getattr(event, name) for name in Event.__slots__}


# --------------------------------------------------------------------------- repositories


_SCP = re.compile(r"^(?:[A-Za-z0-9._-]+@)?([A-Za-z0-9.-]+):(?!//)(.+)$")


def normalise_url(url: str) -> str:
    """A repository URL reduced to `host/path` (lower-case host, no scheme, user, port,
    `.git` or trailing slash), so HTTPS, SSH and web URLs of one repository compare equal."""
    text = url.strip()
    scheme, sep, rest = text.partition("://")
    if not sep:
        scp = _SCP.match(text)
        if scp is None:
            return text.rstrip("/").removesuffix(".git").lower()
        host, path = scp.group(1), scp.group(2)
    else:
        del scheme
        authority, _, path = rest.partition("/")
        host = authority.rpartition("@")[2].partition(":")[0]
    path = path.strip("/").removesuffix(".git").rstrip("/")
    return f"{host}/{path}".lower()


def same_repository(configured: str, urls: tuple[str, ...]) -> bool:
    """Whether any of the payload's URLs names the configured repository."""
    wanted = normalise_url(configured)
    return any(normalise_url(url) == wanted for url in urls)
