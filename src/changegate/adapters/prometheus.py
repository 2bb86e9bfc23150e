"""A small Prometheus client: instant queries through the HTTP API (`/api/v1/query`).

The result is handed to the conditions as Argo Rollouts' Prometheus provider hands it: a
vector (or a matrix) as a list of floats, one per sample, a scalar as a float; `NaN`,
`+Inf` and `-Inf` are floats too. Any failure — no address, the server unreachable, a
timeout, an HTTP error, a body that is not Prometheus' JSON, `status: error`, a string
result — becomes an Error measurement naming the cause: nothing raises out of `measure`.

Only the standard library is used (urllib); the query is POSTed as a form, so long PromQL
is not limited by URL length. Responses over MAX_RESPONSE_BYTES are refused.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from changegate.domain import analysis

MAX_RESPONSE_BYTES = 10 * 1024 * 1024
USER_AGENT = "changegate-analysis"


class QueryError(Exception):
    """The query could not be answered; the message says why."""


@dataclass(frozen=True, slots=True)
class Prometheus:
    """One Prometheus server, by its base URL (`http://prometheus:9090`)."""

    address: str
    timeout_seconds: float = analysis.DEFAULT_PROMETHEUS_TIMEOUT_SECONDS

    def query(self, promql: str) -> Any:
        """The instant query's result as Argo sees it (a float or a list of floats).

        Raises QueryError with the reason.
        """
        url = self._url()
        body = urllib.parse.urlencode({"query": promql}).encode("utf-8")
        request = urllib.request.Request(  # noqa: S310 - the scheme is checked in _url
            url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
                "User-Agent": USER_AGENT,
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_seconds) as response:  # noqa: S310
                raw = response.read(MAX_RESPONSE_BYTES + 1)
        except urllib.error.HTTPError as exc:
            # Prometheus answers 400/422/503 with its JSON error body: the reason is there.
            raw = exc.read(MAX_RESPONSE_BYTES + 1)
            detail = _error_detail(raw)
            suffix = f": {detail}" if detail else ""
            raise QueryError(f"HTTP {exc.code} from {url}{suffix}") from None
        except TimeoutError:
            raise QueryError(
                f"no answer from {url} within {self.timeout_seconds:g} seconds"
            ) from None
        except urllib.error.URLError as exc:
            reason = exc.reason
            if isinstance(reason, TimeoutError):
                raise QueryError(
                    f"no answer from {url} within {self.timeout_seconds:g} seconds"
                ) from None
            raise QueryError(f"cannot reach {url}: {reason}") from None
        except OSError as exc:
            raise QueryError(f"cannot reach {url}: {exc}") from None
        if len(raw) > MAX_RESPONSE_BYTES:
            raise QueryError(f"the answer from {url} is over {MAX_RESPONSE_BYTES} bytes")
        return _result(raw, url)

    def _url(self) -> str:
        address = self.address.strip()
        parts = urllib.parse.urlsplit(address)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise QueryError(f"the Prometheus address must be an http(s) URL, not {address!r}")
        return address.rstrip("/") + "/api/v1/query"


def _error_detail(raw: bytes) -> str:
    try:
        data = json.loads(raw)
    except ValueError:
        return raw[:200].decode("utf-8", "replace").strip()
    if isinstance(data, dict) and data.get("error"):
        kind = data.get("errorType")
        return f"{kind}: {data['error']}" if kind else str(data["error"])
    return ""


def _sample(value: Any) -> float:
    """A sample value `[timestamp, "1.5"]` as a float ("NaN", "+Inf" included)."""
    if not isinstance(value, list) or len(value) != 2 or not isinstance(value[1], str):
        raise QueryError(f"unexpected sample {str(value)[:100]}")
    try:
        return float(value[1])
    except ValueError:
        raise QueryError(f"unexpected sample value {value[1][:100]!r}") from None


def _result(raw: bytes, url: str) -> Any:
    try:
        data = json.loads(raw)
    except ValueError:
        raise QueryError(f"the answer from {url} is not JSON") from None
    if not isinstance(data, dict):
        raise QueryError(f"the answer from {url} is not a Prometheus API response")
    if data.get("status") != "success":
        detail = _error_detail(raw) or "status is not success"
        raise QueryError(f"Prometheus refused the query: {detail}")
    payload = data.get("data")
    if not isinstance(payload, dict):
        raise QueryError("the answer has no data")
    kind, result = payload.get("resultType"), payload.get("result")
    if kind == "scalar":
        return _sample(result)
    if kind == "vector" and isinstance(result, list):
        return [_sample(item.get("value")) for item in result if isinstance(item, dict)]
    if kind == "matrix" and isinstance(result, list):
        return [
            _sample(pair)
            for item in result
            if isinstance(item, dict)
            for pair in (item.get("values") or [])
        ]
    raise QueryError(f"Prometheus metric type not supported: {kind}")


def measure(
    metric: analysis.Metric, *, at: datetime | None = None, address: str | None = None
) -> analysis.Measurement:
    """Take one measurement of a Prometheus metric and judge it; never raises.

    address is used when the metric names none (a default from the settings).
    """
    prom = metric.provider.prometheus
    if prom is None:
        return analysis.error(f"metric {metric.name!r} has no prometheus provider", at=at)
    target = prom.address or address
    if not target:
        return analysis.error("no Prometheus address: set provider.prometheus.address", at=at)
    timeout = prom.timeout or analysis.DEFAULT_PROMETHEUS_TIMEOUT_SECONDS
    try:
        value = Prometheus(target, timeout).query(prom.query)
    except QueryError as exc:
        return analysis.error(str(exc), at=at or datetime.now(UTC))
    except Exception as exc:  # a client bug must still be a measurement, not a crash
        return analysis.error(f"query failed: {type(exc).__name__}: {exc}", at=at)
    return analysis.evaluate(metric, value, at=at or datetime.now(UTC))
