"""Failed jobs become FAILED trials in Ax with their reason; nothing completes with a made-up value."""

from __future__ import annotations

import math
import textwrap

import pytest

import aid2e


def raises(parameterization):
    raise RuntimeError(f"geometry overlap at x={parameterization['x']:.3f}")


def returns_nan(x, y):
    return {"objective": math.nan}


def wrong_metric(x, y):
    return {"other": 1.0}


def not_a_dict(x, y):
    return 0.5


def fail_when_x_small(x, y):
    if x < 0.5:
        raise ValueError("x too small")
    return {"objective": x + y}


def ax_trials(scheduler):
    return {i: (t.status.name, t.status_reason) for i, t in scheduler.experiment.trials.items()}


@pytest.mark.parametrize(
    "function, reason",
    [
        (raises, "RuntimeError: geometry overlap at x="),
        (returns_nan, "not a finite number"),
        (wrong_metric, "lacks objective metric(s) 'objective'"),
        (not_a_dict, "must return a dict"),
    ],
)
def test_function_failures_reach_ax_with_reason(make_ax_client, threads, config, function, reason):
    scheduler = aid2e.AxScheduler(make_ax_client("fn_fail"), threads, {**config, "tolerated_failure_rate": 1.0})
    scheduler.set_objective_function(function)
    assert scheduler.run_optimization(max_trials=3) is None
    trials = ax_trials(scheduler)
    assert len(trials) == 3
    for status, why in trials.values():
        assert status == "FAILED"
        assert reason in why
    assert scheduler.experiment.lookup_data().df.empty
    assert {r.status for r in scheduler.trials.values()} == {"FAILED"}


@pytest.mark.parametrize(
    "body, reason",
    [
        ("import sys; print('boom', file=sys.stderr); sys.exit(3)", "exited with code 3 (stderr: boom)"),
        ("pass", "wrote no result to $AID2E_RESULT_FILE"),
        ("import os; open(os.environ['AID2E_RESULT_FILE'], 'w').write('{not json')", "not valid JSON"),
        ("import os; open(os.environ['AID2E_RESULT_FILE'], 'w').write('{\"objective\": NaN}')", "not a finite number"),
        ("import os, signal; os.kill(os.getpid(), signal.SIGKILL)", "killed by signal SIGKILL"),
    ],
)
def test_script_failures_reach_ax_with_reason(make_ax_client, threads, config, tmp_path, body, reason):
    script = tmp_path / "objective.py"
    script.write_text(body + "\n")
    scheduler = aid2e.AxScheduler(make_ax_client("script_fail"), threads, {**config, "tolerated_failure_rate": 1.0})
    scheduler.set_script_objective(str(script))
    scheduler.run_optimization(max_trials=2)
    for status, why in ax_trials(scheduler).values():
        assert status == "FAILED"
        assert reason in why


def test_a_script_traceback_gives_a_one_line_reason_with_the_whole_tail_below(make_ax_client, threads, config,
                                                                               tmp_path):
    """The first line of the reason (what progress lines, aid2e status and the failure-rate stop
    show) is the exit code and the exception line; stderr's tail follows on the next lines."""
    from aid2e.progress import trial_text

    script = tmp_path / "objective.py"
    script.write_text("def build(x):\n    raise ValueError(f'bad geometry at x={x}')\n\nbuild(1)\n")
    scheduler = aid2e.AxScheduler(make_ax_client("traceback"), threads, {**config, "tolerated_failure_rate": 1.0})
    scheduler.set_script_objective(str(script))
    scheduler.run_optimization(max_trials=1)
    record = scheduler.trials[0]
    first, *rest = record.message.splitlines()
    assert first == "script exited with code 1: ValueError: bad geometry at x=1"
    assert rest[0] == "stderr (its end):" and rest[1] == "Traceback (most recent call last):"
    assert rest[-1] == "ValueError: bad geometry at x=1" and any("in build" in line for line in rest)
    assert trial_text(record, None).startswith(f"trial 0 FAILED: {first} in ")
    assert ax_trials(scheduler)[0] == ("FAILED", record.message)


def test_failure_rate_stops_launching(make_ax_client, threads, config):
    scheduler = aid2e.AxScheduler(make_ax_client("rate"), threads, {**config, "max_parallel_trials": 2})
    scheduler.set_objective_function(raises)
    with pytest.raises(aid2e.FailureRateExceededError, match=r"trials failed.*tolerated_failure_rate=0.5"):
        scheduler.run_optimization(max_trials=40)
    launched = len(scheduler.trials)
    assert 3 <= launched <= 5, launched
    statuses = ax_trials(scheduler)
    assert all(statuses[i][0] == "FAILED" for i in scheduler.trials)
    # quasi-random candidates generated ahead but never launched are abandoned, saying so
    assert all(status == "ABANDONED" and "not launched" in why
               for i, (status, why) in statuses.items() if i not in scheduler.trials)


def test_some_failures_are_tolerated(make_ax_client, threads, config):
    scheduler = aid2e.AxScheduler(make_ax_client("mixed"), threads, {**config, "tolerated_failure_rate": 0.9})
    scheduler.set_objective_function(fail_when_x_small)
    best = scheduler.run_optimization(max_trials=10)
    statuses = [s for s, _ in ax_trials(scheduler).values()]
    assert statuses.count("FAILED") + statuses.count("COMPLETED") == 10
    assert statuses.count("FAILED") >= 1 and statuses.count("COMPLETED") >= 1
    assert best["x"] >= 0.5


def test_missing_interpreter_is_a_failed_trial(make_ax_client, threads, config, tmp_path):
    script = tmp_path / "objective"
    script.write_text("#!/nonexistent/interpreter\n")
    script.chmod(0o755)
    scheduler = aid2e.AxScheduler(make_ax_client("noint"), threads, {**config, "tolerated_failure_rate": 1.0})
    scheduler.set_script_objective(str(script))
    scheduler.run_optimization(max_trials=1)
    status, why = ax_trials(scheduler)[0]
    assert status == "FAILED" and "could not start the script" in why


def test_failed_trial_keeps_its_directory_and_completed_ones_are_cleaned(make_ax_client, threads, config, tmp_path):
    script = tmp_path / "objective.py"
    script.write_text(textwrap.dedent("""
        import json, os, sys
        p = json.load(open(os.environ["AID2E_PARAMS_FILE"]))
        if os.environ["AID2E_TRIAL_INDEX"] == "0":
            sys.exit("first trial fails")
        json.dump({"objective": p["x"]}, open(os.environ["AID2E_RESULT_FILE"], "w"))
    """))
    scheduler = aid2e.AxScheduler(make_ax_client("cleanup"), threads,
                                  {**config, "cleanup_after_completion": True, "tolerated_failure_rate": 1.0})
    scheduler.set_script_objective(str(script))
    scheduler.run_optimization(max_trials=3)
    assert (scheduler.trial_dir(0) / "stderr.txt").read_text().strip() == "first trial fails"
    assert not scheduler.trial_dir(1).exists() and not scheduler.trial_dir(2).exists()
