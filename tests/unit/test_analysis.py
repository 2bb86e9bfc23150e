"""Analysis outcome rules against Argo Rollouts' documented behaviour (docs/features/
analysis.md, analysis/analysis.go): measurement phases from the conditions, metric phases
from the limits and the count, the run's phase from its metrics, and template validation."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml

from changegate.adapters import yamlsource
from changegate.domain import analysis
from changegate.domain.analysis import Phase
from changegate.errors import InvalidInput

S, F, N, E = Phase.SUCCESSFUL, Phase.FAILED, Phase.INCONCLUSIVE, Phase.ERROR
PROM = analysis.Provider(prometheus=analysis.PrometheusProvider(address="http://p", query="q"))
T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def metric(**fields: Any) -> analysis.Metric:
    return analysis.Metric(name=fields.pop("name", "m"), provider=PROM, **fields)


def outcome(phase: Phase) -> analysis.Measurement:
    return analysis.Measurement(phase, message="" if phase is not E else "boom")


def feed(m: analysis.Metric, *phases: Phase, terminate: bool = False) -> Phase:
    run = analysis.Run([m])
    for phase in phases:
        run.record(m.name, outcome(phase))
        if run.phase.completed:
            break
    if terminate and not run.phase.completed:
        run.terminate()
    return run.phase


# --- one measurement -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("success", "failure", "value", "expected"),
    [
        (None, None, 1.0, S),  # no condition: Successful (Argo's EvaluateResult)
        ("result >= 0.95", None, 0.97, S),
        ("result >= 0.95", None, 0.5, F),  # success only: not success is Failed
        (None, "result > 0.1", 0.5, F),
        (None, "result > 0.1", 0.01, S),  # failure only: not failure is Successful
        ("result[0] >= 0.90", "result[0] < 0.50", [0.95], S),
        ("result[0] >= 0.90", "result[0] < 0.50", [0.40], F),
        ("result[0] >= 0.90", "result[0] < 0.50", [0.70], N),  # neither: Inconclusive
        ("result > 0", "result > 0", 1.0, F),  # both hold: failure wins
    ],
)
def test_measurement_phase_from_conditions(
    success: str | None, failure: str | None, value: Any, expected: Phase
) -> None:
    m = metric(success_condition=success, failure_condition=failure)
    assert analysis.evaluate(m, value).phase is expected


@pytest.mark.parametrize(
    ("success", "failure", "expected"),
    [
        ("isNaN(result) || result >= 0.95", None, S),
        ("result >= 0.95", "result < 0.95", N),
        ("result >= 0.95", None, F),
        ("!isNaN(result) && result >= 0.95", None, F),
    ],
)
def test_nan_as_argo_documents_it(success: str, failure: str | None, expected: Phase) -> None:
    m = metric(success_condition=success, failure_condition=failure)
    assert analysis.evaluate(m, math.nan).phase is expected


def test_infinity_as_argo_documents_it() -> None:
    assert analysis.evaluate(metric(success_condition="result >= 0.95"), math.inf).phase is S
    assert analysis.evaluate(metric(failure_condition="isInf(result)"), math.inf).phase is F


def test_empty_vector_as_argo_documents_it() -> None:
    lenient = metric(success_condition="len(result) == 0 || result[0] >= 0.95")
    strict = metric(success_condition="len(result) > 0 && result[0] >= 0.95")
    assert analysis.evaluate(lenient, []).phase is S
    assert analysis.evaluate(strict, []).phase is F


def test_condition_that_cannot_be_evaluated_is_an_error() -> None:
    m = metric(success_condition="result[0] >= 0.95")
    empty = analysis.evaluate(m, [])
    assert empty.phase is E
    assert "no data returned" in empty.message
    wrong = analysis.evaluate(metric(success_condition="result.ok"), {"other": True})
    assert wrong.phase is E
    assert "successCondition" in wrong.message


def test_expr_idioms_translate() -> None:
    assert analysis.translate("len(result) > 0 and not isNaN(result[0])") == (
        "size(result) > 0.0 && ! isNaN(result[0])"
    )
    assert analysis.translate("result == nil or result.len == 'len(x)'") == (
        "result == null || result.len == 'len(x)'"
    )
    m = metric(success_condition="result * 100 >= 95 and asInt('3') == 3")
    assert analysis.evaluate(m, 0.97).phase is S
    assert analysis.evaluate(metric(success_condition="default(result, 1) > 0.5"), None).phase is S
    assert analysis.evaluate(metric(failure_condition="isNil(result)"), None).phase is F


def test_integer_measurements_are_floats_as_in_go() -> None:
    m = metric(success_condition="result.count > 10 and result.ok")
    assert analysis.evaluate(m, {"count": 12, "ok": True}).phase is S


# --- a metric's phase ----------------------------------------------------------------------


def test_failure_limit_default_zero_fails_on_first_failure() -> None:
    assert feed(metric(interval=timedelta(minutes=1), count=5), S, F) is F


def test_failure_limit_tolerates_up_to_the_limit() -> None:
    m = metric(interval=timedelta(minutes=1), count=5, failure_limit=2)
    assert feed(m, F, F, S, S, S) is S  # count reached with failures within the limit
    assert feed(m, F, S, F, F) is F  # 3 > 2


def test_inconclusive_limit() -> None:
    assert feed(metric(interval=timedelta(minutes=1), count=3), S, N) is N
    m = metric(interval=timedelta(minutes=1), count=3, inconclusive_limit=1)
    assert feed(m, N, S, S) is S
    assert feed(m, N, N) is N


def test_consecutive_error_limit_default_four() -> None:
    m = metric(interval=timedelta(minutes=1), count=3)
    assert feed(m, E, E, E, E, S, S, S) is S  # four errors in a row are tolerated
    assert feed(m, E, E, E, E, E) is E  # the fifth is not
    assert feed(m, E, E, S, E, E, E, E, S, S) is S  # a non-error resets the streak


def test_consecutive_error_limit_zero_errors_at_once() -> None:
    assert feed(metric(interval=timedelta(minutes=1), count=3, consecutive_error_limit=0), E) is E


def test_errors_do_not_count_towards_count() -> None:
    run = analysis.Run([metric(interval=timedelta(minutes=1), count=2)])
    assert run.record("m", outcome(E)) is Phase.RUNNING
    assert run.record("m", outcome(S)) is Phase.RUNNING
    assert run.record("m", outcome(S)) is S
    assert run.metrics["m"].count == 2
    assert run.metrics["m"].errors == 1


def test_no_count_no_interval_measures_once() -> None:
    assert metric().effective_count == 1
    assert feed(metric(), S) is S


def test_interval_alone_runs_until_a_limit_or_termination() -> None:
    m = metric(interval=timedelta(minutes=5), failure_limit=3)
    assert m.effective_count is None
    assert feed(m, *([S] * 50)) is Phase.RUNNING
    assert feed(m, S, F, F, F, F) is F
    assert feed(m, S, F, S, terminate=True) is S  # terminated within limits: Successful


def test_consecutive_success_limit_reached() -> None:
    m = metric(
        interval=timedelta(minutes=1), count=10, failure_limit=3, consecutive_success_limit=3
    )
    assert feed(m, F, S, S, S) is S
    assert feed(m, S, S, F, S, S, S) is S


def test_count_reached_without_success_limit_reached_is_inconclusive_with_failure_limit() -> None:
    m = metric(interval=timedelta(minutes=1), count=5, failure_limit=2, consecutive_success_limit=3)
    assert feed(m, S, S, F, S, S) is N  # documented: limit not violated, not satisfied


def test_count_reached_without_success_limit_reached_fails_when_failure_limit_disabled() -> None:
    m = metric(
        interval=timedelta(minutes=1), count=4, failure_limit=-1, consecutive_success_limit=3
    )
    assert feed(m, F, F, F, F) is F
    assert feed(m, F, S, S, S) is S


def test_failure_limit_violated_beats_success_limit() -> None:
    m = metric(interval=timedelta(minutes=1), count=6, failure_limit=1, consecutive_success_limit=2)
    assert feed(m, F, F, S, S) is F


def test_terminated_before_any_measurement_is_successful() -> None:
    run = analysis.Run([metric(interval=timedelta(minutes=1), count=3)])
    assert run.terminate() is S


def test_a_completed_metric_takes_no_more_measurements() -> None:
    run = analysis.Run([metric()])
    run.record("m", outcome(S))
    with pytest.raises(ValueError, match="already"):
        run.record("m", outcome(S))


# --- the run's phase ----------------------------------------------------------------------


def two(**b: Any) -> analysis.Run:
    return analysis.Run(
        [
            metric(name="a", interval=timedelta(minutes=1), count=2),
            metric(name="b", interval=timedelta(minutes=1), count=2, **b),
        ]
    )


def test_run_is_successful_when_every_metric_is() -> None:
    run = two()
    for _ in range(2):
        run.record("a", outcome(S))
        run.record("b", outcome(S))
    assert run.phase is S


def test_any_failed_metric_fails_the_run_and_ends_the_others() -> None:
    run = two()
    run.record("a", outcome(S))
    assert run.record("b", outcome(F)) is F
    assert run.metrics["a"].phase is S  # terminated within its limits
    assert "'b'" in run.message


def test_failed_is_worse_than_error_worse_than_inconclusive() -> None:
    assert analysis.worst([S, N, E]) is E
    assert analysis.worst([N, F, E]) is F
    run = two(consecutive_error_limit=0)
    assert run.record("b", outcome(E)) is E
    run = two()
    assert run.record("b", outcome(N)) is N


def test_next_measurement_times() -> None:
    m = metric(interval=timedelta(minutes=5), count=2, initial_delay=timedelta(minutes=1))
    run = analysis.Run([m], started_at=T0)
    assert run.next_measurement_at(T0) == T0 + timedelta(minutes=1)
    assert run.due(T0) == []
    assert run.due(T0 + timedelta(minutes=1)) == ["m"]
    run.record("m", analysis.error("down", at=T0 + timedelta(minutes=1)))
    assert run.next_measurement_at(T0) == T0 + timedelta(minutes=1, seconds=10)
    run.record("m", analysis.Measurement(S, 1.0, at=T0 + timedelta(minutes=2)))
    assert run.next_measurement_at(T0) == T0 + timedelta(minutes=7)
    run.record("m", analysis.Measurement(S, 1.0, at=T0 + timedelta(minutes=7)))
    assert run.phase is S
    assert run.next_measurement_at(T0) is None


# --- templates ---------------------------------------------------------------------------

TEMPLATE = """\
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata:
  name: success-rate
spec:
  args:
  - name: service-name
  - name: threshold
    value: "0.95"
  metrics:
  - name: success-rate
    interval: 5m
    count: 3
    failureLimit: 1
    successCondition: result[0] >= {{args.threshold}}
    provider:
      prometheus:
        address: http://prometheus.example.com:9090
        query: sum(rate(x{service="{{ args.service-name }}"}[5m]))
"""


def load(text: str) -> analysis.Template:
    [doc] = yamlsource.load_bytes(text.encode(), display="t.yaml")
    return analysis.parse_template(doc.data, source="t.yaml", locate=doc.locate)


def test_template_args_are_substituted() -> None:
    [m] = load(TEMPLATE).resolve({"service-name": "odoo"})
    assert m.provider.prometheus is not None
    assert m.provider.prometheus.query == 'sum(rate(x{service="odoo"}[5m]))'
    assert m.success_condition == "result[0] >= 0.95"
    assert m.interval == timedelta(minutes=5)
    assert m.consecutive_error_limit == 4
    [m] = load(TEMPLATE).resolve({"service-name": "odoo", "threshold": "0.99"})
    assert m.success_condition == "result[0] >= 0.99"


def test_missing_and_unknown_args_are_errors() -> None:
    with pytest.raises(InvalidInput, match="'service-name' was not supplied"):
        load(TEMPLATE).resolve({})
    with pytest.raises(InvalidInput, match="declares no arg 'other'"):
        load(TEMPLATE).resolve({"service-name": "x", "other": "y"})


def test_unknown_and_unsupported_fields_name_file_line_field() -> None:
    data = yaml.safe_load(TEMPLATE)
    data["spec"]["metrics"][0]["provider"]["prometheus"]["rangeQuery"] = {"step": "1m"}
    data["spec"]["metrics"][0]["colour"] = "red"
    data["spec"]["dryRun"] = [{"metricName": "*"}]
    with pytest.raises(InvalidInput) as caught:
        load(yaml.safe_dump(data, sort_keys=False))
    problems = {p.field: p for p in caught.value.problems}
    assert "not supported" in problems["spec.dryRun"].message
    assert "not supported" in problems["spec.metrics[0].provider.prometheus.rangeQuery"].message
    assert problems["spec.metrics[0].colour"].message == "unknown field"
    assert all(p.file == "t.yaml" and p.line for p in caught.value.problems)


def test_argo_validation_rules() -> None:
    data = yaml.safe_load(TEMPLATE)
    bad = data["spec"]["metrics"][0]
    bad.update(count=2, failureLimit=-1, interval="soon", successCondition="result >")
    del bad["provider"]["prometheus"]
    bad["provider"]["job"] = {"spec": {}}
    with pytest.raises(InvalidInput) as caught:
        load(yaml.safe_dump(data, sort_keys=False))
    messages = " | ".join(str(p) for p in caught.value.problems)
    assert "job provider is not supported" in messages
    assert "cannot both be disabled" in messages
    assert "not a duration" in messages
    assert "does not compile" in messages
    assert "no provider specified" in messages


def test_duration_parsing_follows_go() -> None:
    assert analysis.parse_duration("1h30m") == timedelta(hours=1, minutes=30)
    assert analysis.parse_duration("500ms") == timedelta(milliseconds=500)
    with pytest.raises(ValueError):
        analysis.parse_duration("5")


def test_replay_interleaves_metrics_and_reports_what_was_not_taken() -> None:
    metrics = load(TEMPLATE).resolve({"service-name": "x"})
    recorded = analysis.parse_recorded(
        {"success-rate": [[0.97], {"error": "timeout"}, [0.5], [0.4], [0.99]]}, source="m.json"
    )
    result = analysis.replay("success-rate", metrics, recorded)
    assert result.run.phase is F
    assert [s.measurement.phase if s.measurement else None for s in result.steps] == [
        S, E, F, F, None,
    ]  # fmt: skip
    body = result.as_dict()
    assert body["metrics"][0]["failed"] == 2


def test_recorded_measurements_are_checked() -> None:
    with pytest.raises(InvalidInput, match="error"):
        analysis.parse_recorded({"m": [{"oops": 1}]}, source="m.json")
    with pytest.raises(InvalidInput, match="no metric 'nope'"):
        analysis.replay("t", load(TEMPLATE).resolve({"service-name": "x"}), {"nope": []})
