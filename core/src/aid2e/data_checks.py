"""Whether Ax can take a trial's result: the checks a result passes before it reaches Ax.

Ax stores what it is given and fails only later, at the next generation, and again on every
resume. So a result it cannot digest is refused here and its trial FAILED with the reason:

- every metric's values all carry a standard error or all do not (Ax's model fitting fails
  with "Input data contains NaN values" on a mix); the first completed result of a metric sets
  its convention, read from the completed trial records, so it holds across a resume;
- a standard error is not negative;
- no value or standard error is beyond :data:`MAX_MAGNITUDE`.

Non-finite values never get here: :class:`~aid2e.types.Measurement` refuses them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .types import Measurement

#: Largest absolute value and standard error handed to Ax. Ax and BoTorch work in float64
#: (largest 1.8e308) and square values and standard errors (variances) and sum them over trials.
#: Measured with ax-platform 1.3.1 (Sobol then BoTorch, 2 parameters): two results of 1e308 make
#: the next generation raise a bare StopIteration; a standard error of 1e199 (variance 1e398)
#: makes model fitting fail; values and standard errors of 1e150 next to values near 1, or 20
#: values spread over +-1e150 up to +-1e306, still fit and generate. 1e150 keeps every square
#: below 1e300, so sums over up to 1e8 trials stay finite. No physical metric comes near it.
MAX_MAGNITUDE = 1e150


def _form(has_sem: bool) -> str:
    return "(mean, sem)" if has_sem else "a bare value (no sem)"


def result_problem(metrics: Mapping[str, Measurement], conventions: Mapping[str, bool]) -> str | None:
    """Why Ax cannot take ``metrics`` (one line naming the metric), or None when it can.

    ``conventions`` says, for each metric that already has results in Ax, whether they carry a
    standard error (True) or not (False); see :func:`metric_conventions`. E.g. a bare ``1.0``
    for ``a`` when ``conventions == {"a": True}`` gives "metric 'a' came as a bare value (no sem)
    but earlier trials gave it as (mean, sem): ..."."""
    for name in sorted(metrics):
        value = metrics[name]
        if value.sem is not None and value.sem < 0:
            return f"metric {name!r}: sem {value.sem:g} is negative (a standard error is >= 0)"
        for what, number in (("value", value.mean), ("sem", value.sem)):
            if number is not None and abs(number) > MAX_MAGNITUDE:
                return (f"metric {name!r}: {what} {number:g} is beyond {MAX_MAGNITUDE:g}, more than Ax "
                        "can model: rescale the metric (e.g. return its logarithm)")
        has_sem = value.sem is not None
        if conventions.get(name, has_sem) != has_sem:
            return (f"metric {name!r} came as {_form(has_sem)} but earlier trials gave it as "
                    f"{_form(not has_sem)}: return every result of a metric in one form (Ax fails on a mix)")
    return None


def metric_conventions(records: Iterable[Any], names: Iterable[str]) -> dict[str, bool]:
    """For each metric in ``names`` with a completed result among ``records`` (trial records:
    ``status``, ``metrics``), whether its results carry a standard error. The completed records
    agree (each passed :func:`result_problem`), so the first one with the metric decides."""
    wanted = set(names)
    found: dict[str, bool] = {}
    for record in records:
        if record.status != "COMPLETED":
            continue
        for name in wanted.intersection(record.metrics):
            found[name] = record.metrics[name].sem is not None
        wanted.difference_update(found)
        if not wanted:
            break
    return found


def refused_records(records: Iterable[Any]) -> dict[int, str]:
    """Completed records Ax cannot take, ``{trial index: reason}``: for a state written by an
    older aid2e that did not check. Records are judged in the order they ended (then by index),
    so the earliest result of a metric sets its convention and later offenders are refused."""
    completed = [r for r in records if r.status == "COMPLETED"]
    completed.sort(key=lambda r: (r.ended_at if r.ended_at is not None else float("inf"), r.index))
    conventions: dict[str, bool] = {}
    refused: dict[int, str] = {}
    for record in completed:
        problem = result_problem(record.metrics, conventions)
        if problem is not None:
            refused[record.index] = problem
            continue
        for name, value in record.metrics.items():
            conventions.setdefault(name, value.sem is not None)
    return refused
