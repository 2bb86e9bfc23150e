"""HTTP probes a wave's verification runs: Odoo's health route and a tenant's login page.

- `odoo_health`: `GET <base>/web/health`. Odoo answers `{"status": "pass"}` with HTTP 200
  (the route exists since Odoo 15.0, `auth='none'`, no session). With
  `db_server_status=True` the probe asks `/web/health?db_server_status=1`: Odoo then also
  opens a connection to PostgreSQL and answers `{"status": "pass", "db_server_status": true}`,
  or HTTP 500 with `{"status": "fail", "db_server_status": false}`. That parameter came with
  odoo/odoo#182537 (October 2024) in the stable series 16.0 and later; `supports_db_server_status`
  says which series have it. A server that ignores the parameter (an older build) answers
  without the `db_server_status` key: the probe then fails with that reason, rather than
  passing a database check that never ran.
- `login_page`: a tenant's login page (`https://acme.example.com/web/login`) answers 200
  within N milliseconds.

Every probe returns a ProbeResult (passed or not, and why); nothing raises. Redirects are
followed by urllib (at most its default 10); a timeout, a refused connection, an HTTP error, a
body that is not the expected JSON are failures with their reason.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

DEFAULT_TIMEOUT_SECONDS = 5.0
MAX_BODY_BYTES = 1024 * 1024
USER_AGENT = "changegate-probe"
_SERIES = re.compile(r"^(?:saas[~-])?(\d{1,3})\.(\d{1,2})")


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """One probe: what was asked, whether it passed, why, the HTTP status and the time."""

    probe: str
    url: str
    passed: bool
    reason: str
    status: int | None = None
    elapsed_ms: float | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "probe": self.probe,
            "url": self.url,
            "passed": self.passed,
            "reason": self.reason,
            "status": self.status,
            "elapsed_ms": None if self.elapsed_ms is None else round(self.elapsed_ms, 1),
        }


def _series(text: str) -> tuple[int, int] | None:
    found = _SERIES.match(text.strip())
    return (int(found.group(1)), int(found.group(2))) if found else None


def supports_web_health(series: str) -> bool:
    """Odoo 15.0 and later serve `/web/health`."""
    found = _series(series)
    return found is not None and found >= (15, 0)


def supports_db_server_status(series: str) -> bool:
    """Odoo 16.0 and later (builds from October 2024 on) honour `?db_server_status=1`."""
    found = _series(series)
    return found is not None and found >= (16, 0)


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int | None
    body: bytes
    elapsed_ms: float
    error: str | None


def _checked_url(url: str) -> str | None:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return url


def _get(url: str, timeout: float) -> _Answer:
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked by the caller
        url, headers={"User-Agent": USER_AGENT, "Accept": "*/*"}, method="GET"
    )
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            body = response.read(MAX_BODY_BYTES)
            status = response.status
    except urllib.error.HTTPError as exc:
        try:
            body = exc.read(MAX_BODY_BYTES)
        except OSError:
            body = b""
        return _Answer(exc.code, body, (time.monotonic() - started) * 1000, None)
    except urllib.error.URLError as exc:
        reason = exc.reason
        text = "timed out" if isinstance(reason, TimeoutError) else f"unreachable: {reason}"
        return _Answer(None, b"", (time.monotonic() - started) * 1000, text)
    except TimeoutError:
        return _Answer(None, b"", (time.monotonic() - started) * 1000, "timed out")
    except OSError as exc:
        return _Answer(None, b"", (time.monotonic() - started) * 1000, str(exc.strerror or exc))
    return _Answer(status, body, (time.monotonic() - started) * 1000, None)


def odoo_health(
    base_url: str,
    *,
    db_server_status: bool = False,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> ProbeResult:
    """Odoo's `/web/health` (and the database server check when asked)."""
    probe = "odoo-health-db" if db_server_status else "odoo-health"
    base = base_url.rstrip("/")
    url = f"{base}/web/health" + ("?db_server_status=1" if db_server_status else "")
    if _checked_url(url) is None:
        return ProbeResult(probe, url, False, f"not an http(s) URL: {base_url!r}")
    answer = _get(url, timeout)
    if answer.error is not None:
        reason = answer.error
        if reason == "timed out":
            reason = f"no answer within {timeout:g} s"
        return ProbeResult(probe, url, False, reason, None, answer.elapsed_ms)
    data: object = None
    try:
        data = json.loads(answer.body)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return ProbeResult(
            probe,
            url,
            False,
            f"HTTP {answer.status}, and the body is not Odoo's health JSON",
            answer.status,
            answer.elapsed_ms,
        )
    verdict = data.get("status")
    if answer.status != 200 or verdict != "pass":
        extra = ""
        if db_server_status and data.get("db_server_status") is False:
            extra = ": Odoo cannot reach its PostgreSQL server"
        return ProbeResult(
            probe,
            url,
            False,
            f"HTTP {answer.status}, status {verdict!r}{extra}",
            answer.status,
            answer.elapsed_ms,
        )
    if db_server_status and data.get("db_server_status") is not True:
        return ProbeResult(
            probe,
            url,
            False,
            "the answer has no db_server_status: this Odoo build does not check the database "
            "(16.0+ builds from October 2024 do)",
            answer.status,
            answer.elapsed_ms,
        )
    reason = "status pass" + (", database server reachable" if db_server_status else "")
    return ProbeResult(probe, url, True, reason, answer.status, answer.elapsed_ms)


def login_page(url: str, *, within_ms: float, timeout: float | None = None) -> ProbeResult:
    """A tenant's login page answers HTTP 200 within within_ms milliseconds."""
    probe = "login-page"
    if _checked_url(url) is None:
        return ProbeResult(probe, url, False, f"not an http(s) URL: {url!r}")
    wait = timeout if timeout is not None else max(within_ms / 1000 * 2, 1.0)
    answer = _get(url, wait)
    if answer.error is not None:
        reason = f"no answer within {wait:g} s" if answer.error == "timed out" else answer.error
        return ProbeResult(probe, url, False, reason, None, answer.elapsed_ms)
    if answer.status != 200:
        return ProbeResult(
            probe,
            url,
            False,
            f"HTTP {answer.status}, expected 200",
            answer.status,
            answer.elapsed_ms,
        )
    if answer.elapsed_ms > within_ms:
        return ProbeResult(
            probe,
            url,
            False,
            f"HTTP 200 in {answer.elapsed_ms:.0f} ms, over the {within_ms:g} ms limit",
            answer.status,
            answer.elapsed_ms,
        )
    return ProbeResult(
        probe,
        url,
        True,
        f"HTTP 200 in {answer.elapsed_ms:.0f} ms",
        answer.status,
        answer.elapsed_ms,
    )
