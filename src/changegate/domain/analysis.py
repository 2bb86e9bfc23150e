"""Verification analysis with Argo Rollouts' AnalysisTemplate semantics.

A template (`argoproj.io/v1alpha1`, kind AnalysisTemplate or ClusterAnalysisTemplate) lists
metrics; each metric is measured `count` times, `interval` apart, after `initialDelay`, and
each measurement is judged by `successCondition` and `failureCondition`. The rules below are
Argo Rollouts' own (docs/features/analysis.md; analysis/analysis.go `assessMetricStatus`;
utils/evaluate `EvaluateResult`; utils/analysis/factory.go `ValidateMetric`), so a team can
bring the templates it already has:

- A measurement is Error when the provider failed or a condition could not be evaluated.
  Otherwise, with no condition it is Successful; with only a success condition it is
  Successful when that holds, else Failed; with only a failure condition it is Failed when
  that holds, else Successful; with both, Failed when the failure condition holds, else
  Successful when the success condition holds, else Inconclusive.
- A metric is Failed when failed measurements > failureLimit (default 0; -1 disables it),
  Inconclusive when inconclusive ones > inconclusiveLimit (default 0), Error when errors in
  a row > consecutiveErrorLimit (default 4); then Successful when consecutiveSuccessLimit
  (default 0: off) successes in a row were measured; then, once `count` non-error
  measurements were taken: Inconclusive when consecutiveSuccessLimit is on and failureLimit
  too, Failed when only consecutiveSuccessLimit is on, Successful otherwise. Without count
  and interval a metric is measured once; with an interval alone it runs until a limit or
  a termination ends it. A metric's phase, once reached, never changes.
- A run is the worst of its metrics (Successful < Running < Inconclusive < Error < Failed)
  and Running while any metric is. As soon as one metric is Failed, Error or Inconclusive
  the run terminates: metrics still running end Successful, unless a limit says otherwise.

Conditions are written in Argo's expr language; changegate evaluates them with CEL after a
few documented rewrites (see `translate` and docs/analysis.md). The run is a pure state
machine: `Run.record(metric, measurement)` returns the run's phase and
`Run.next_measurement_at(now)` says when to measure next, so the worker and
`changegate analysis replay` drive the very same rules.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from changegate.domain import godurations, validation
from changegate.domain.policy import cel as policy_cel
from changegate.errors import InvalidInput, Problem

API_VERSION = "argoproj.io/v1alpha1"
KINDS = ("AnalysisTemplate", "ClusterAnalysisTemplate")
DEFAULT_CONSECUTIVE_ERROR_LIMIT = 4
# Argo retries a measurement that ended in Error after this long, whatever the interval.
ERROR_RETRY_INTERVAL = timedelta(seconds=10)
# Argo's Prometheus provider gives up on a query after this long unless `timeout` says.
DEFAULT_PROMETHEUS_TIMEOUT_SECONDS = 30
MAX_CONDITION = 10_000

Locator = Callable[[tuple[str | int, ...]], int | None]


class Phase(StrEnum):
    """The phase of a measurement, a metric or a run, spelled as Argo spells it."""

    PENDING = "Pending"
    RUNNING = "Running"
    SUCCESSFUL = "Successful"
    FAILED = "Failed"
    ERROR = "Error"
    INCONCLUSIVE = "Inconclusive"

    @property
    def completed(self) -> bool:
        return self not in (Phase.PENDING, Phase.RUNNING)


# Best to worst, as Argo orders completed phases when it picks a run's phase.
_ORDER = (
    Phase.SUCCESSFUL,
    Phase.RUNNING,
    Phase.PENDING,
    Phase.INCONCLUSIVE,
    Phase.ERROR,
    Phase.FAILED,
)


def worst(phases: Iterable[Phase]) -> Phase | None:
    """The worst of phases in Argo's order, or None when there are none."""
    ranked = [_ORDER.index(p) for p in phases]
    return _ORDER[max(ranked)] if ranked else None


# --- durations ---------------------------------------------------------------------------


def parse_duration(text: str) -> timedelta:
    """A Go duration string (`30s`, `5m`, `1h30m`, `500ms`) as Argo's DurationString takes it.

    Raises ValueError for anything else; negative durations are refused.
    """
    nanos = godurations.nanoseconds(text)
    if nanos is None:
        raise ValueError(f"not a duration (such as 30s, 5m or 1h30m): {text!r}")
    if nanos < 0:
        raise ValueError(f"a negative duration is not allowed: {text!r}")
    return timedelta(microseconds=float(nanos / 1000))


# --- the template, as Argo writes it -------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, populate_by_name=True)


class Metadata(BaseModel):
    """A Kubernetes object's metadata; only the name is read (other fields are ignored, as
    `kubectl get -o yaml` output carries many)."""

    model_config = ConfigDict(extra="allow", frozen=True, strict=True)

    name: str = Field(min_length=1, max_length=253)
    namespace: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class Argument(_Strict):
    """A template argument: `{{args.<name>}}` in the metrics; without a value it is required."""

    name: str = Field(min_length=1, max_length=253, pattern=r"^[A-Za-z0-9_.-]+$")
    value: str | None = None


class PrometheusProvider(_Strict):
    """`provider.prometheus`: an instant query against Prometheus' HTTP API."""

    address: str | None = None
    query: str = Field(min_length=1)
    timeout: int | None = Field(default=None, ge=1, le=3600, description="seconds")


class WebProvider(_Strict):
    """`provider.web`: a GET whose JSON body (or the part `jsonPath` selects) is the result."""

    url: str = Field(min_length=1)
    json_path: str | None = Field(default=None, alias="jsonPath")
    timeout_seconds: int | None = Field(default=None, alias="timeoutSeconds", ge=1, le=3600)


class Provider(_Strict):
    """Where a metric's measurements come from: exactly one provider."""

    prometheus: PrometheusProvider | None = None
    web: WebProvider | None = None


class MetricSpec(_Strict):
    """One entry of `spec.metrics`."""

    name: str = Field(min_length=1, max_length=253)
    interval: str | None = None
    initial_delay: str | None = Field(default=None, alias="initialDelay")
    count: int | None = Field(default=None, ge=0)
    success_condition: str | None = Field(default=None, alias="successCondition")
    failure_condition: str | None = Field(default=None, alias="failureCondition")
    failure_limit: int | None = Field(default=None, alias="failureLimit")
    inconclusive_limit: int | None = Field(default=None, alias="inconclusiveLimit")
    consecutive_error_limit: int | None = Field(default=None, alias="consecutiveErrorLimit")
    consecutive_success_limit: int | None = Field(default=None, alias="consecutiveSuccessLimit")
    provider: Provider


class TemplateSpec(_Strict):
    """`spec` of an AnalysisTemplate."""

    args: list[Argument] = Field(default_factory=list)
    metrics: list[MetricSpec]


class AnalysisTemplateDocument(_Strict):
    """An AnalysisTemplate or ClusterAnalysisTemplate document."""

    api_version: Literal["argoproj.io/v1alpha1"] = Field(alias="apiVersion")
    kind: Literal["AnalysisTemplate", "ClusterAnalysisTemplate"]
    metadata: Metadata
    spec: TemplateSpec


# Argo fields changegate knows but does not take, by where they appear. A path step "*"
# stands for any list index.
_UNSUPPORTED: dict[tuple[str, ...], str] = {
    ("spec", "dryRun"): "dry-run metrics are not supported by changegate",
    ("spec", "measurementRetention"): "measurementRetention is not supported by changegate "
    "(every measurement of a run is kept)",
    ("spec", "templates"): "nested templates are not supported by changegate: list the "
    "metrics in this template",
    ("spec", "args", "*", "valueFrom"): "valueFrom is not supported by changegate: give the "
    "value with --arg name=value (or a default `value`)",
    ("status",): "a template has no status",
}
_UNSUPPORTED_PROVIDERS = (
    "kayenta", "datadog", "wavefront", "newRelic", "job", "cloudWatch", "graphite",
    "influxdb", "skywalking", "plugin",
)  # fmt: skip
_UNSUPPORTED_PROMETHEUS = ("authentication", "insecure", "headers", "rangeQuery")
_UNSUPPORTED_WEB = (
    "method", "headers", "body", "jsonBody", "insecure", "authentication",
)  # fmt: skip
for _name in _UNSUPPORTED_PROVIDERS:
    _UNSUPPORTED[("spec", "metrics", "*", "provider", _name)] = (
        f"the {_name} provider is not supported by changegate: use prometheus or web"
    )
for _name in _UNSUPPORTED_PROMETHEUS:
    _UNSUPPORTED[("spec", "metrics", "*", "provider", "prometheus", _name)] = (
        f"prometheus.{_name} is not supported by changegate"
    )
for _name in _UNSUPPORTED_WEB:
    _UNSUPPORTED[("spec", "metrics", "*", "provider", "web", _name)] = (
        f"web.{_name} is not supported by changegate (a GET without headers)"
    )


def _strip_unsupported(
    data: Any, source: str | None, locate: Locator | None
) -> tuple[Any, list[Problem]]:
    """A copy of data without the Argo fields changegate does not take, and a problem for each."""
    problems: list[Problem] = []

    def walk(value: Any, path: tuple[str | int, ...], pattern: tuple[str, ...]) -> Any:
        if isinstance(value, dict):
            kept = {}
            for key, item in value.items():
                step = (*pattern, str(key))
                message = _UNSUPPORTED.get(step)
                if message is not None:
                    where = (*path, key)
                    problems.append(
                        Problem(
                            message,
                            file=source,
                            line=locate(where) if locate else None,
                            field=validation.field_path(where),
                        )
                    )
                    continue
                kept[key] = walk(item, (*path, key), step)
            return kept
        if isinstance(value, list):
            return [walk(item, (*path, i), (*pattern, "*")) for i, item in enumerate(value)]
        return value

    return walk(data, (), ()), problems


# --- conditions ----------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""(?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      |(?P<number>0[xX][0-9a-fA-F]+|\d+(?:\.\d*)?(?:[eE][+-]?\d+)?[uU]?)
      |(?P<word>[A-Za-z_][A-Za-z0-9_]*)
      |(?P<space>\s+)
      |(?P<other>.)""",
    re.VERBOSE | re.DOTALL,
)
_WORDS = {"and": "&&", "or": "||", "not": "!", "nil": "null"}
# Functions a condition may call: CEL's own, and Argo's helpers registered below.
HELPERS = frozenset({"isNaN", "isInf", "asInt", "asFloat", "isNil", "default"})
VARIABLES = frozenset({"result"})


def translate(condition: str) -> str:
    """An Argo (expr) condition as CEL. The rewrites, outside string literals only:

    - `len(` becomes `size(`; `and`, `or`, `not` become `&&`, `||`, `!`; `nil` is `null`;
    - an integer literal becomes a double (`100` -> `100.0`) except as a list index
      (`result[0]`), since expr mixes ints and floats in arithmetic and CEL does not.
    """
    parts: list[str] = []
    previous = ""  # the last token that was not white space
    for found in _TOKEN.finditer(condition):
        kind, text = found.lastgroup, found[0]
        if kind == "word":
            calls = condition[found.end() :].lstrip().startswith("(")
            if previous != ".":  # a field name (`result.and`) stays as written
                text = "size" if text == "len" and calls else _WORDS.get(text, text)
        elif kind == "number" and text.isdigit() and previous != "[":
            text += ".0"
        parts.append(text)
        if kind != "space":
            previous = text
    return "".join(parts)


@functools.cache
def _library() -> Any:
    import cel  # imported on first use: it loads a command-line tool at import

    return cel


@functools.lru_cache(maxsize=512)
def _compile(condition: str) -> Any:
    """The compiled condition; raises ValueError saying why it does not compile."""
    if len(condition) > MAX_CONDITION:
        raise ValueError(f"longer than {MAX_CONDITION} characters")
    if not condition.strip():
        raise ValueError("the condition is empty")
    text = translate(condition)
    try:
        program = _library().compile(text)
    except Exception as error:  # the library raises ValueError; anything else is as bad
        first = " ".join(str(error).split())[:300]
        raise ValueError(f"does not compile as CEL ({text!r}): {first}") from None
    unknown = sorted(
        {n for n in program.functions() if n.isidentifier()} - policy_cel.BUILTINS - HELPERS
    )
    if unknown:
        raise ValueError(
            f"unknown function {', '.join(unknown)}: CEL's standard functions and "
            f"{', '.join(sorted(HELPERS))} are available (see docs/analysis.md)"
        )
    names = set(program.variables()) - VARIABLES - _binders(text)
    if names:
        raise ValueError(f"unknown variable {', '.join(sorted(names))}: only result is bound")
    return program


_BINDER = re.compile(r"\.\s*(?:all|exists|exists_one|map|filter)\s*\(\s*([A-Za-z_]\w*)\s*,")


def _binders(text: str) -> set[str]:
    """Names bound by comprehension macros (`result.all(x, x > 0.5)` binds x)."""
    return set(_BINDER.findall(text))


def condition_problem(condition: str) -> str | None:
    """Why a condition cannot be used, or None when it compiles."""
    try:
        _compile(condition)
    except ValueError as error:
        return str(error)
    return None


def _is_nil(value: Any) -> bool:
    return value is None


def _as_int(value: Any) -> int:
    if isinstance(value, bool):
        raise TypeError("asInt() does not take a bool")
    if isinstance(value, int | float):
        return int(value)
    if isinstance(value, str):
        return int(value.strip(), 10)
    raise TypeError(f"asInt() not supported on {type(value).__name__}")


def _as_float(value: Any) -> float:
    if isinstance(value, bool):
        raise TypeError("asFloat() does not take a bool")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        return float(value.strip())
    raise TypeError(f"asFloat() not supported on {type(value).__name__}")


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _is_inf(value: Any) -> bool:
    return isinstance(value, float) and math.isinf(value)


def _has_nan(value: Any) -> bool:
    if isinstance(value, float):
        return math.isnan(value)
    if isinstance(value, list):
        return any(_has_nan(v) for v in value)
    if isinstance(value, dict):
        return any(_has_nan(v) for v in value.values())
    return False


def plain_result(value: Any) -> Any:
    """A measured value as Argo's providers hand it to expr: JSON numbers are floats
    (Go decodes them as float64), lists and maps recursively so; bools, text, null as is."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, list | tuple):
        return [plain_result(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain_result(v) for k, v in value.items()}
    raise TypeError(f"a measured value cannot be a {type(value).__name__}")


def evaluate_condition(condition: str, result: Any) -> bool:
    """Whether condition holds for result; raises ValueError saying why it cannot be evaluated.

    An ordering comparison with NaN (`result >= 0.95` when result is NaN) is an error in CEL
    but false in Go; a condition that fails that way while result holds a NaN is false.
    """
    program = _compile(condition)
    functions = {
        "isNaN": _is_nan,
        "isInf": _is_inf,
        "asInt": _as_int,
        "asFloat": _as_float,
        # Argo's isNil and default look at the result, whatever their first argument.
        "isNil": lambda _value: _is_nil(result),
        "default": lambda _value, fallback: fallback if _is_nil(result) else result,
    }
    try:
        value = program.execute(_library().Context({"result": result}, functions))
    except Exception as error:  # the library raises TypeError, KeyError, IndexError, ...
        reason = " ".join(str(error).split())
        if "No such overload" in reason and _has_nan(result):
            return False
        for tail in (" CEL does not coerce", " Check function arguments", " Check that"):
            reason = reason.split(tail, 1)[0]
        raise ValueError(reason.rstrip(". ")[:300] or type(error).__name__) from None
    if not isinstance(value, bool):
        raise ValueError(f"expected bool, but got {type(value).__name__}")
    return value


# --- metrics, resolved --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Metric:
    """A metric with its template args substituted and Argo's defaults applied."""

    name: str
    provider: Provider
    interval: timedelta | None = None
    initial_delay: timedelta | None = None
    count: int | None = None  # as written; see effective_count
    success_condition: str | None = None
    failure_condition: str | None = None
    failure_limit: int = 0
    inconclusive_limit: int = 0
    consecutive_error_limit: int = DEFAULT_CONSECUTIVE_ERROR_LIMIT
    consecutive_success_limit: int = 0

    @property
    def effective_count(self) -> int | None:
        """Argo's EffectiveCount: count; 1 when neither count nor interval is set; None
        (run until a limit or termination ends it) with an interval alone."""
        if not self.count:
            return 1 if self.interval is None else None
        return self.count

    @property
    def provider_kind(self) -> str:
        return "prometheus" if self.provider.prometheus is not None else "web"

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "provider": self.provider_kind,
            "interval_seconds": _seconds(self.interval),
            "initial_delay_seconds": _seconds(self.initial_delay),
            "count": self.effective_count,
            "success_condition": self.success_condition,
            "failure_condition": self.failure_condition,
            "failure_limit": self.failure_limit,
            "inconclusive_limit": self.inconclusive_limit,
            "consecutive_error_limit": self.consecutive_error_limit,
            "consecutive_success_limit": self.consecutive_success_limit,
        }


def _seconds(value: timedelta | None) -> float | None:
    return None if value is None else value.total_seconds()


_ARG_TAG = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Template:
    """A validated AnalysisTemplate: its metrics still hold `{{args.*}}` until `resolve`."""

    name: str
    kind: str
    args: tuple[Argument, ...]
    metrics: tuple[MetricSpec, ...]
    source: str | None = None
    locate: Locator | None = field(default=None, repr=False, compare=False)

    def resolve(self, values: Mapping[str, str] | None = None) -> list[Metric]:
        """The metrics with args substituted (values given here win over the template's);
        InvalidInput for an undeclared or missing arg, a `{{...}}` that is no declared arg,
        and a value that makes a duration or a condition invalid."""
        given = dict(values or {})
        declared = {arg.name: arg.value for arg in self.args}
        problems = [
            Problem(f"the template declares no arg {name!r}", field=f"args.{name}")
            for name in sorted(set(given) - set(declared))
        ]
        resolved: dict[str, str] = {}
        for name, default in declared.items():
            value = given.get(name, default)
            if value is None:
                problems.append(
                    Problem(
                        f"argument {name!r} was not supplied (give it with --arg {name}=VALUE)",
                        file=self.source,
                        field=f"args.{name}",
                    )
                )
            else:
                resolved[name] = value
        if problems:
            raise InvalidInput(problems)
        metrics: list[Metric] = []
        for index, spec in enumerate(self.metrics):
            path: tuple[str | int, ...] = ("spec", "metrics", index)
            metric = _metric(spec, resolved, self.source, self.locate, path, problems)
            if metric is not None:
                metrics.append(metric)
        if problems:
            raise InvalidInput(problems)
        return metrics


def _substitute(
    text: str | None, args: Mapping[str, str], where: Callable[[str], Problem]
) -> tuple[str | None, Problem | None]:
    if text is None or "{{" not in text:
        return text, None
    missing: list[str] = []

    def one(found: re.Match[str]) -> str:
        tag = found[1].strip()
        if tag.startswith("args.") and tag[5:] in args:
            return args[tag[5:]]
        missing.append(tag)
        return ""

    result = _ARG_TAG.sub(one, text)
    if missing:
        return None, where(f"failed to resolve {{{{{missing[0]}}}}}: not a declared arg")
    return result, None


def _metric(
    spec: MetricSpec,
    args: Mapping[str, str],
    source: str | None,
    locate: Locator | None,
    path: tuple[str | int, ...],
    problems: list[Problem],
) -> Metric | None:
    before = len(problems)

    def at(*steps: str | int) -> Callable[[str], Problem]:
        where = (*path, *steps)

        def make(message: str) -> Problem:
            line = locate(where) if locate else None
            return Problem(message, file=source, line=line, field=validation.field_path(where))

        return make

    def text(value: str | None, *steps: str | int) -> str | None:
        out, problem = _substitute(value, args, at(*steps))
        if problem is not None:
            problems.append(problem)
        return out

    def duration(value: str | None, step: str) -> timedelta | None:
        raw = text(value, step)
        if raw is None:
            return None
        try:
            return parse_duration(raw)
        except ValueError as error:
            problems.append(at(step)(str(error)))
            return None

    interval = duration(spec.interval, "interval")
    initial_delay = duration(spec.initial_delay, "initialDelay")
    success = text(spec.success_condition, "successCondition")
    failure = text(spec.failure_condition, "failureCondition")
    for condition, step in ((success, "successCondition"), (failure, "failureCondition")):
        if condition:
            reason = condition_problem(condition)
            if reason is not None:
                problems.append(at(step)(reason))
    provider = spec.provider
    if provider.prometheus is not None:
        prom = provider.prometheus
        address = text(prom.address, "provider", "prometheus", "address")
        query = text(prom.query, "provider", "prometheus", "query")
        if query is not None:
            provider = Provider(
                prometheus=PrometheusProvider(address=address, query=query, timeout=prom.timeout)
            )
    elif provider.web is not None:
        web = provider.web
        url = text(web.url, "provider", "web", "url")
        json_path = text(web.json_path, "provider", "web", "jsonPath")
        if url is not None:
            provider = Provider(
                web=WebProvider(url=url, json_path=json_path, timeout_seconds=web.timeout_seconds)
            )
    if len(problems) > before:
        return None
    return Metric(
        name=spec.name,
        provider=provider,
        interval=interval,
        initial_delay=initial_delay,
        count=spec.count,
        success_condition=success or None,
        failure_condition=failure or None,
        failure_limit=0 if spec.failure_limit is None else spec.failure_limit,
        inconclusive_limit=spec.inconclusive_limit or 0,
        consecutive_error_limit=(
            DEFAULT_CONSECUTIVE_ERROR_LIMIT
            if spec.consecutive_error_limit is None
            else spec.consecutive_error_limit
        ),
        consecutive_success_limit=spec.consecutive_success_limit or 0,
    )


def _metric_problems(spec: MetricSpec) -> list[tuple[str, str]]:
    """Argo's ValidateMetric rules, as (field, message)."""
    found: list[tuple[str, str]] = []
    count = spec.count or 0
    failure_limit = 0 if spec.failure_limit is None else spec.failure_limit
    success_limit = spec.consecutive_success_limit or 0
    inconclusive_limit = spec.inconclusive_limit or 0
    if success_limit < 0:
        found.append(("consecutiveSuccessLimit", "consecutiveSuccessLimit must be >= 0"))
    if failure_limit < -1:
        found.append(("failureLimit", "failureLimit must be >= 0, or -1 to be disabled"))
    if success_limit == 0 and failure_limit == -1:
        found.append(
            ("failureLimit", "failureLimit and consecutiveSuccessLimit cannot both be disabled")
        )
    if inconclusive_limit < 0:
        found.append(("inconclusiveLimit", "inconclusiveLimit must be >= 0"))
    if spec.consecutive_error_limit is not None and spec.consecutive_error_limit < 0:
        found.append(("consecutiveErrorLimit", "consecutiveErrorLimit must be >= 0"))
    if count > 0 and success_limit >= 0:
        if failure_limit >= 0 and count < failure_limit + success_limit:
            found.append(
                (
                    "count",
                    f"count ({count}) must be >= failureLimit + consecutiveSuccessLimit "
                    f"({failure_limit} + {success_limit}) if both >= 0",
                )
            )
        elif failure_limit < 0 and count < success_limit:
            found.append(("count", "count must be >= consecutiveSuccessLimit"))
    if count > 0 and count < inconclusive_limit:
        found.append(("count", "count must be >= inconclusiveLimit"))
    if count > 1 and spec.interval is None:
        found.append(("interval", "interval must be specified when count > 1"))
    for step, value in (("interval", spec.interval), ("initialDelay", spec.initial_delay)):
        if value is not None and "{{" not in value:
            try:
                parse_duration(value)
            except ValueError as error:
                found.append((step, str(error)))
    providers = [p for p in (spec.provider.prometheus, spec.provider.web) if p is not None]
    if not providers:
        found.append(("provider", "no provider specified (prometheus or web)"))
    elif len(providers) > 1:
        found.append(("provider", "multiple providers specified"))
    for step, condition in (
        ("successCondition", spec.success_condition),
        ("failureCondition", spec.failure_condition),
    ):
        if condition is not None and "{{" not in condition:
            reason = condition_problem(condition)
            if reason is not None:
                found.append((step, reason))
    return found


def parse_template(data: Any, *, source: str | None, locate: Locator | None = None) -> Template:
    """Validate one AnalysisTemplate document (plain data from YAML or JSON).

    InvalidInput lists every problem with file, line and field: unknown fields, Argo fields
    changegate does not support (named as such), and Argo's own validation rules.
    """
    if not isinstance(data, dict):
        raise InvalidInput([Problem("an AnalysisTemplate must be a mapping", file=source)])
    stripped, problems = _strip_unsupported(data, source, locate)
    try:
        document = validation.validate_plain(
            AnalysisTemplateDocument, stripped, source=source, locate=locate
        )
    except InvalidInput as exc:
        raise InvalidInput(problems + exc.problems) from None
    spec = document.spec

    def problem(path: tuple[str | int, ...], message: str) -> None:
        line = locate(path) if locate else None
        problems.append(Problem(message, file=source, line=line, field=validation.field_path(path)))

    if not spec.metrics:
        problem(("spec", "metrics"), "no metrics specified")
    seen: set[str] = set()
    for index, metric in enumerate(spec.metrics):
        if metric.name in seen:
            problem(("spec", "metrics", index, "name"), f"duplicate name {metric.name!r}")
        seen.add(metric.name)
        for step, message in _metric_problems(metric):
            problem(("spec", "metrics", index, step), message)
    names: set[str] = set()
    for index, arg in enumerate(spec.args):
        if arg.name in names:
            problem(("spec", "args", index, "name"), f"duplicate arg {arg.name!r}")
        names.add(arg.name)
    if problems:
        raise InvalidInput(problems)
    return Template(
        name=document.metadata.name,
        kind=document.kind,
        args=tuple(spec.args),
        metrics=tuple(spec.metrics),
        source=source,
        locate=locate,
    )


# --- measurements and runs ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Measurement:
    """One measurement of a metric: its phase, the value measured, why, and when it ended."""

    phase: Phase
    value: Any = None
    message: str = ""
    at: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "phase": self.phase.value,
            "value": json_value(self.value),
            "message": self.message or None,
            "at": self.at.isoformat() if self.at else None,
        }


def json_value(value: Any) -> Any:
    """value with NaN and infinities as Argo prints them ("NaN", "+Inf", "-Inf")."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("+Inf" if value > 0 else "-Inf")
    if isinstance(value, list):
        return [json_value(v) for v in value]
    if isinstance(value, dict):
        return {k: json_value(v) for k, v in value.items()}
    return value


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, list) and not value)


def evaluate(metric: Metric, value: Any, *, at: datetime | None = None) -> Measurement:
    """Judge one measured value by the metric's conditions, as Argo's EvaluateResult does."""
    result = plain_result(value)
    outcomes: dict[str, bool] = {}
    for name, condition in (
        ("successCondition", metric.success_condition),
        ("failureCondition", metric.failure_condition),
    ):
        if not condition:
            continue
        try:
            outcomes[name] = evaluate_condition(condition, result)
        except ValueError as error:
            reason = (
                "metric result is nil or empty: no data returned from the metric provider"
                if _empty(result)
                else str(error)
            )
            message = f"could not evaluate {name} {condition!r}: {reason}"
            return Measurement(Phase.ERROR, result, message, at)
    success = outcomes.get("successCondition")
    failure = outcomes.get("failureCondition")
    if success is None and failure is None:
        return Measurement(Phase.SUCCESSFUL, result, "", at)
    if failure is None:
        failure = not success
    if success is None:
        success = not failure
    if failure:
        return Measurement(Phase.FAILED, result, "", at)
    if not success:
        return Measurement(Phase.INCONCLUSIVE, result, "", at)
    return Measurement(Phase.SUCCESSFUL, result, "", at)


def error(message: str, *, at: datetime | None = None) -> Measurement:
    """A measurement the provider could not take."""
    return Measurement(Phase.ERROR, None, message, at)


@dataclass
class MetricRun:
    """The measurements of one metric so far, their counters and the metric's phase."""

    metric: Metric
    measurements: list[Measurement] = field(default_factory=list)
    phase: Phase = Phase.PENDING
    message: str = ""
    count: int = 0  # measurements that were not Error
    successful: int = 0
    failed: int = 0
    inconclusive: int = 0
    errors: int = 0
    consecutive_errors: int = 0
    consecutive_successes: int = 0

    def record(self, measurement: Measurement) -> Phase:
        """Add a finished measurement and return the metric's phase after it.

        Raises ValueError when the metric has already completed: Argo takes no measurement
        then, and a worker that tries has lost track of the run.
        """
        if self.phase.completed:
            raise ValueError(f"metric {self.metric.name!r} is already {self.phase.value}")
        if not measurement.phase.completed:
            raise ValueError("only finished measurements can be recorded")
        self.measurements.append(measurement)
        if measurement.phase is Phase.ERROR:
            self.errors += 1
            self.consecutive_errors += 1
            self.consecutive_successes = 0
        else:
            self.count += 1
            self.consecutive_errors = 0
            if measurement.phase is Phase.SUCCESSFUL:
                self.successful += 1
                self.consecutive_successes += 1
            else:
                self.consecutive_successes = 0
                if measurement.phase is Phase.FAILED:
                    self.failed += 1
                else:
                    self.inconclusive += 1
        self.phase, self.message = self.assess()
        return self.phase

    def limit_broken(self) -> tuple[Phase, str] | None:
        """Failed, Inconclusive or Error when a limit is exceeded (the later check wins, as
        in Argo's assessMetricFailureInconclusiveOrError)."""
        metric, found = self.metric, None
        if metric.failure_limit >= 0 and self.failed > metric.failure_limit:
            found = (
                Phase.FAILED,
                f"failed ({self.failed}) > failureLimit ({metric.failure_limit})",
            )
        if self.inconclusive > metric.inconclusive_limit:
            found = (
                Phase.INCONCLUSIVE,
                f"inconclusive ({self.inconclusive}) > inconclusiveLimit "
                f"({metric.inconclusive_limit})",
            )
        if self.consecutive_errors > metric.consecutive_error_limit:
            found = (
                Phase.ERROR,
                f"consecutiveErrors ({self.consecutive_errors}) > consecutiveErrorLimit "
                f"({metric.consecutive_error_limit})",
            )
        return found

    def assess(self, *, terminating: bool = False) -> tuple[Phase, str]:
        """The metric's phase and why, by Argo's assessMetricStatus."""
        if self.phase.completed:
            return self.phase, self.message
        if not self.measurements:
            if terminating:
                return Phase.SUCCESSFUL, "terminated before any measurement"
            return Phase.PENDING, ""
        broken = self.limit_broken()
        if broken is not None:
            return broken
        metric = self.metric
        success_limit = metric.consecutive_success_limit
        if success_limit > 0 and self.consecutive_successes >= success_limit:
            return Phase.SUCCESSFUL, f"consecutiveSuccessLimit ({success_limit}) reached"
        count = metric.effective_count
        if count is not None and self.count >= count:
            if success_limit > 0 and metric.failure_limit >= 0:
                return (
                    Phase.INCONCLUSIVE,
                    f"count ({count}) reached: consecutiveSuccessLimit ({success_limit}) not "
                    f"reached and failureLimit ({metric.failure_limit}) not violated",
                )
            if success_limit > 0:
                return (
                    Phase.FAILED,
                    f"count ({count}) reached: consecutiveSuccessLimit ({success_limit}) "
                    "not reached",
                )
            return Phase.SUCCESSFUL, f"count ({count}) reached"
        if terminating:
            return Phase.SUCCESSFUL, "run terminated"
        return Phase.RUNNING, ""

    def next_measurement_at(self, started_at: datetime) -> datetime | None:
        """When this metric should be measured next (may be past: due now); None when no
        further measurement is needed."""
        if self.phase.completed:
            return None
        if not self.measurements:
            return started_at + (self.metric.initial_delay or timedelta(0))
        count = self.metric.effective_count
        if count is not None and self.count >= count:
            return None
        last = self.measurements[-1]
        finished = last.at or started_at
        if last.phase is Phase.ERROR:
            return finished + ERROR_RETRY_INTERVAL
        if self.metric.interval is not None:
            return finished + self.metric.interval
        return None

    def as_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric.name,
            "phase": self.phase.value,
            "message": self.message or None,
            "count": self.count,
            "successful": self.successful,
            "failed": self.failed,
            "inconclusive": self.inconclusive,
            "error": self.errors,
            "consecutive_errors": self.consecutive_errors,
            "consecutive_successes": self.consecutive_successes,
            "measurements": [m.as_dict() for m in self.measurements],
        }


_ENDING = (Phase.FAILED, Phase.ERROR, Phase.INCONCLUSIVE)


class Run:
    """An analysis run: one MetricRun per metric, and the run's phase by Argo's rules.

    A run's state is a pure function of its measurements, so a worker may persist the
    measurements alone and rebuild the run by recording them again.
    """

    def __init__(self, metrics: Sequence[Metric], *, started_at: datetime | None = None):
        if not metrics:
            raise ValueError("a run needs at least one metric")
        self.started_at = started_at
        self.metrics: dict[str, MetricRun] = {m.name: MetricRun(m) for m in metrics}
        self.terminated = False
        self.phase = Phase.PENDING
        self.message = ""

    def record(self, metric: str, measurement: Measurement) -> Phase:
        """Record a finished measurement of metric; the run's phase after it.

        Raises KeyError for an unknown metric, ValueError when that metric or the run has
        already completed.
        """
        if self.phase.completed:
            raise ValueError(f"the run is already {self.phase.value}")
        self.metrics[metric].record(measurement)
        return self._assess()

    def terminate(self) -> Phase:
        """End the run now (a rollout that finished, or was aborted): metrics that broke no
        limit end Successful, as Argo terminates a run."""
        self.terminated = True
        return self._assess()

    @property
    def terminating(self) -> bool:
        return self.terminated or any(r.phase in _ENDING for r in self.metrics.values())

    def _assess(self) -> Phase:
        terminating = self.terminating
        phases: list[Phase] = []
        self.message = ""
        for run in self.metrics.values():
            run.phase, run.message = run.assess(terminating=terminating)
            phases.append(run.phase)
        if not all(p.completed for p in phases):
            self.phase = Phase.RUNNING
            return self.phase
        found = worst(phases)
        assert found is not None
        self.phase = found
        for run in self.metrics.values():
            if run.phase is found and found is not Phase.SUCCESSFUL:
                self.message = f"metric {run.metric.name!r} assessed {found.value}: {run.message}"
                break
        return self.phase

    def due(self, now: datetime) -> list[str]:
        """The metrics to measure at now."""
        started = self.started_at or now
        return [
            name
            for name, run in self.metrics.items()
            if not self.terminating
            and (at := run.next_measurement_at(started)) is not None
            and at <= now
        ]

    def next_measurement_at(self, now: datetime) -> datetime | None:
        """The earliest instant a metric should be measured (now or before: due now); None
        when the run is complete or terminating (Argo takes no new measurement then)."""
        if self.phase.completed or self.terminating:
            return None
        started = self.started_at or now
        instants = [
            at
            for run in self.metrics.values()
            if (at := run.next_measurement_at(started)) is not None
        ]
        return min(instants) if instants else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "phase": self.phase.value,
            "message": self.message or None,
            "metrics": [run.as_dict() for run in self.metrics.values()],
        }


# --- replay ----------------------------------------------------------------------------


def parse_recorded(data: Any, *, source: str | None) -> dict[str, list[Measurement | tuple[Any]]]:
    """Recorded measurements: `{metric: [value | {"error": text} | {"value": any}, ...]}`.

    A value is a number (NaN and Infinity as bare JSON tokens), a list, text, a bool or
    null; an object holding only `error` is a failed measurement; one holding only `value`
    wraps any value (a map a web provider returned). Returns each measured value as a
    1-tuple, and each error as an Error Measurement.
    """
    if not isinstance(data, dict):
        raise InvalidInput(
            [Problem("recorded measurements must be an object: {metric: [value, ...]}", source)]
        )
    problems: list[Problem] = []
    recorded: dict[str, list[Measurement | tuple[Any]]] = {}
    for name, values in data.items():
        if not isinstance(values, list):
            problems.append(Problem("must be a list of measurements", source, field=name))
            continue
        items: list[Measurement | tuple[Any]] = []
        for index, value in enumerate(values):
            where = f"{name}[{index}]"
            if isinstance(value, dict):
                if set(value) == {"error"} and isinstance(value["error"], str):
                    items.append(error(value["error"]))
                elif set(value) == {"value"}:
                    items.append((value["value"],))
                else:
                    problems.append(
                        Problem(
                            'an object must be {"error": "why"} or {"value": ...}',
                            source,
                            field=where,
                        )
                    )
            else:
                items.append((value,))
        recorded[name] = items
    if problems:
        raise InvalidInput(problems)
    return recorded


@dataclass(frozen=True, slots=True)
class ReplayStep:
    """One recorded measurement and what became of it."""

    metric: str
    index: int
    measurement: Measurement | None  # None: not taken, the metric or run had completed
    metric_phase: Phase

    def as_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "index": self.index,
            "taken": self.measurement is not None,
            "measurement": self.measurement.as_dict() if self.measurement else None,
            "metric_phase": self.metric_phase.value,
        }


@dataclass(frozen=True, slots=True)
class Replay:
    """The outcome of evaluating a template against recorded measurements."""

    template: str
    run: Run
    steps: list[ReplayStep]
    terminated: bool

    def as_dict(self) -> dict[str, Any]:
        body = self.run.as_dict()
        return {
            "template": self.template,
            "phase": body["phase"],
            "message": body["message"],
            "terminated": self.terminated,
            "metrics": [
                {k: v for k, v in m.items() if k != "measurements"} for m in body["metrics"]
            ],
            "steps": [s.as_dict() for s in self.steps],
        }


def replay(
    template: str,
    metrics: Sequence[Metric],
    recorded: Mapping[str, Sequence[Measurement | tuple[Any]]],
    *,
    terminate: bool = False,
) -> Replay:
    """Feed recorded measurements to a run: the first of every metric (in the template's
    order), then the second of every metric, and so on, as if all were measured together.

    Measurements recorded after a metric (or the run) completed are listed as not taken.
    With `terminate`, the run is then ended as Argo ends one when the rollout moves on
    (metrics still running become Successful unless a limit is broken); without it a
    metric that needs more measurements leaves the run Running.
    """
    known = {m.name for m in metrics}
    unknown = sorted(set(recorded) - known)
    if unknown:
        raise InvalidInput(
            [Problem(f"the template has no metric {name!r}", field=name) for name in unknown]
        )
    run = Run(metrics)
    steps: list[ReplayStep] = []
    longest = max((len(recorded.get(m.name, ())) for m in metrics), default=0)
    for index in range(longest):
        for metric in metrics:
            items = recorded.get(metric.name, ())
            if index >= len(items):
                continue
            metric_run = run.metrics[metric.name]
            if metric_run.phase.completed or run.phase.completed or run.terminating:
                steps.append(ReplayStep(metric.name, index, None, metric_run.phase))
                continue
            item = items[index]
            measurement = item if isinstance(item, Measurement) else evaluate(metric, item[0])
            run.record(metric.name, measurement)
            steps.append(ReplayStep(metric.name, index, measurement, metric_run.phase))
    if terminate and not run.phase.completed:
        run.terminate()
    return Replay(template, run, steps, terminate)
