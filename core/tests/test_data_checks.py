"""aid2e.data_checks: which results Ax can take (pure functions, no Ax)."""

from __future__ import annotations

import pytest
from attrs import define, field

from aid2e.data_checks import MAX_MAGNITUDE, metric_conventions, refused_records, result_problem
from aid2e.types import Measurement as M


@define
class Record:
    index: int
    status: str = "COMPLETED"
    metrics: dict = field(factory=dict)
    ended_at: float | None = None


def test_a_result_in_the_metric_s_form_is_taken():
    assert result_problem({"a": M(mean=1.0, sem=0.1), "b": M(mean=2.0)}, {"a": True, "b": False}) is None
    assert result_problem({"a": M(mean=1.0)}, {}) is None  # the first result sets the form
    assert result_problem({"a": M(mean=-MAX_MAGNITUDE, sem=MAX_MAGNITUDE), "b": M(mean=0.0, sem=0.0)}, {}) is None


@pytest.mark.parametrize(("metrics", "conventions", "expected"), [
    ({"a": M(mean=1.0)}, {"a": True},
     "metric 'a' came as a bare value (no sem) but earlier trials gave it as (mean, sem)"),
    ({"a": M(mean=1.0, sem=0.2)}, {"a": False},
     "metric 'a' came as (mean, sem) but earlier trials gave it as a bare value (no sem)"),
    ({"a": M(mean=1.0, sem=-0.1)}, {}, "metric 'a': sem -0.1 is negative"),
    ({"a": M(mean=1e308)}, {}, "metric 'a': value 1e+308 is beyond 1e+150"),
    ({"a": M(mean=-1e151)}, {}, "metric 'a': value -1e+151 is beyond 1e+150"),
    ({"a": M(mean=1.0, sem=1e200)}, {}, "metric 'a': sem 1e+200 is beyond 1e+150"),
    ({"ok": M(mean=1.0), "z": M(mean=1.0)}, {"z": True}, "metric 'z' came as a bare value"),
])
def test_a_result_ax_cannot_take_is_refused_naming_the_metric(metrics, conventions, expected):
    problem = result_problem(metrics, conventions)
    assert problem is not None and problem.startswith(expected) and "\n" not in problem


def test_conventions_come_from_completed_records_only():
    records = [Record(0, status="FAILED", metrics={"a": M(mean=1.0)}),
               Record(1, metrics={"a": M(mean=1.0, sem=0.1)}),
               Record(2, metrics={"b": M(mean=1.0)}),
               Record(3, status="RUNNING")]
    assert metric_conventions(records, ["a", "b", "c"]) == {"a": True, "b": False}
    assert metric_conventions(records, []) == {}


def test_a_mixed_saved_state_refuses_the_later_offenders():
    """An older aid2e let a metric come with and without sem: the form of the result that ended
    first is kept, the later results of the other form are refused (each with its reason)."""
    records = [Record(0, metrics={"a": M(mean=1.0)}, ended_at=30.0),
               Record(1, metrics={"a": M(mean=1.0, sem=0.1)}, ended_at=10.0),
               Record(2, metrics={"a": M(mean=2.0, sem=0.1)}, ended_at=20.0),
               Record(3, metrics={"a": M(mean=1e300, sem=0.1)}, ended_at=25.0),
               Record(4, status="FAILED", metrics={"a": M(mean=1.0)}, ended_at=5.0)]
    refused = refused_records(records)
    assert sorted(refused) == [0, 3]
    assert "came as a bare value (no sem) but earlier trials gave it as (mean, sem)" in refused[0]
    assert "beyond" in refused[3]
    assert refused_records([r for r in records if r.index not in refused]) == {}
