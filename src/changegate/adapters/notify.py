"""Notifications: a JSON POST to an HTTP receiver (a chat bridge, an incident tool, a pager).

One request per event, with a timeout, never retried in a loop: a rollout does not wait on
a receiver that is down; the failure is recorded on the step instead. When a secret is set,
the body is signed as GitHub signs its webhooks (`X-Changegate-Signature-256: sha256=<hex
HMAC-SHA256 of the body>`), so the receiver can check it came from changegate.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any

USER_AGENT = "changegate-notify"
SIGNATURE_HEADER = "X-Changegate-Signature-256"


class NotifyError(Exception):
    """The receiver could not be reached or refused the event; the message says which."""


@dataclass(frozen=True, slots=True)
class HttpNotifier:
    url: str
    secret: str | None = field(default=None, repr=False)
    timeout_seconds: float = 10.0

    def __post_init__(self) -> None:
        parts = urllib.parse.urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"notification URL {self.url!r} is not an http(s) URL")

    def send(self, event: dict[str, Any]) -> int:
        """POST the event as JSON; the HTTP status, or NotifyError."""
        body = json.dumps(event, sort_keys=True, default=str).encode("utf-8")
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
        if self.secret:
            digest = hmac.new(self.secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
            headers[SIGNATURE_HEADER] = f"sha256={digest}"
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")  # noqa: S310 - checked scheme
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_seconds) as answer:  # noqa: S310
                return int(answer.status)
        except urllib.error.HTTPError as exc:
            raise NotifyError(f"{self._shown()} answered HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise NotifyError(f"{self._shown()} unreachable: {reason}") from None

    def _shown(self) -> str:
        """The receiver without credentials or query (they may carry tokens)."""
        parts = urllib.parse.urlsplit(self.url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{host}{port}{parts.path}"
