"""Results Ax cannot digest (issue 10, item 10) fail their own trial; the campaign goes on and
stays resumable, also from a state an older aid2e wrote with such results in it."""

from __future__ import annotations

import re

import pytest

import aid2e
from aid2e import data_checks
from aid2e.errors import GenerationError


def sem_when_x_small(x, y):
    value = (x - 0.3) ** 2 + y
    return {"objective": (value, 0.01) if x < 0.5 else value}


def plain(x, y):
    return {"objective": x + y}


def huge_when_x_large(x, y):
    return {"objective": 1e308 if x >= 0.5 else x + y}


def _forms_mixed(why):
    return re.search(r"metric 'objective' came as (\(mean, sem\)|a bare value \(no sem\)) but earlier trials "
                     r"gave it as (\(mean, sem\)|a bare value \(no sem\))", why)


@pytest.mark.parametrize(("function", "reason"), [
    (sem_when_x_small, _forms_mixed),
    (huge_when_x_large, lambda why: "value 1e+308 is beyond 1e+150" in why),
])
def test_a_result_ax_cannot_take_fails_its_trial_and_the_model_still_fits(make_ax_client, threads, config,
                                                                          function, reason):
    """Default strategy (Sobol, then BoTorch fitted on the data): before, the mix gave
    InputDataError and two 1e308 a bare StopIteration at the first BoTorch generation."""
    scheduler = aid2e.AxScheduler(make_ax_client("undigestible", sobol=False), threads,
                                  {**config, "tolerated_failure_rate": 1.0})
    scheduler.set_objective_function(function)
    scheduler.run_optimization(max_trials=12)
    trials = {i: (t.status.name, t.status_reason or "") for i, t in scheduler.experiment.trials.items()}
    assert len(trials) == 12
    failed = [why for status, why in trials.values() if status == "FAILED"]
    assert failed and all(why.startswith("result refused: ") and reason(why) for why in failed)
    assert any(status == "COMPLETED" for status, _ in trials.values())
    nodes = [t.generator_runs[0]._generation_node_name for t in scheduler.experiment.trials.values()]
    assert nodes[-1].endswith("BoTorch"), nodes
    assert data_checks.refused_records(scheduler.trials.values()) == {}


def test_a_saved_state_with_mixed_forms_resumes(make_ax_client, threads, config, monkeypatch):
    """A state written by an aid2e that did not check (simulated by switching the check off):
    on resume the later results in the other form are FAILED with the reason, and BoTorch fits."""
    with monkeypatch.context() as old_aid2e:
        old_aid2e.setattr(data_checks, "result_problem", lambda metrics, conventions: None)
        first = aid2e.AxScheduler(make_ax_client("mixed_state", sobol=False), threads, config)
        first.set_objective_function(sem_when_x_small)
        first.run_optimization(max_trials=5)  # the Sobol trials only: no model fitted yet
    forms = {r.metrics["objective"].sem is None for r in first.trials.values()}
    assert forms == {True, False}, "the test needs both forms in the saved state"

    again = aid2e.AxScheduler.resume(str(first.experiment_dir), threads)
    refused = {i: r.message for i, r in again.trials.items() if r.status == "FAILED"}
    assert refused and all(m.startswith("result refused on resume: ") and _forms_mixed(m) for m in refused.values())
    for index, message in refused.items():
        assert again.experiment.trials[index].status.name == "FAILED"
        assert again.experiment.trials[index].status_reason == message
        assert index not in again.experiment.lookup_data().df["trial_index"].tolist()
    again.set_objective_function(lambda x, y: sem_when_x_small(0.0, y))  # one form from now on
    again.run_optimization(max_trials=3)
    assert [again.experiment.trials[i].status.name for i in (5, 6, 7)] == ["COMPLETED"] * 3


def test_a_generation_error_is_one_line_and_the_campaign_resumes(make_ax_client, threads, config, monkeypatch):
    from aid2e.ax_bridge import AxBridge

    real = AxBridge.next_trials
    calls = []

    def breaks_on_the_second_call(self, count):
        calls.append(count)
        if len(calls) == 2:
            raise StopIteration  # what Ax 1.3.1 raised on two results of 1e308
        return real(self, count)

    monkeypatch.setattr(AxBridge, "next_trials", breaks_on_the_second_call)
    scheduler = aid2e.AxScheduler(make_ax_client("gen_error"), threads,
                                  {**config, "max_parallel_trials": 2})
    scheduler.set_objective_function(plain)
    with pytest.raises(GenerationError) as info:
        scheduler.run_optimization(max_trials=6)
    message = str(info.value)
    assert "\n" not in message and "Ax could not generate new trials (StopIteration)" in message
    assert f"aid2e resume {scheduler.experiment_dir}" in message
    monkeypatch.setattr(AxBridge, "next_trials", real)
    again = aid2e.AxScheduler.resume(str(scheduler.experiment_dir), threads)
    done = sum(r.status == "COMPLETED" for r in again.trials.values())
    again.run_optimization(max_trials=2)
    assert sum(r.status == "COMPLETED" for r in again.trials.values()) == done + 2
