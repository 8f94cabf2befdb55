"""Issue 14: how long ``aid2e report`` takes for a 1000-trial campaign.

    python bench/report_build.py [--trials 1000] [--repeat 3] [--browser]

Runs a real campaign first: ``--trials`` quasi-random (Sobol) trials of two objectives with
thresholds on ``JobLibRunner`` threads; one trial in 20 crashes (penalized) and one in 20 is
infeasible (abandoned). Then it
times, ``--repeat`` times each (the median is the figure):

* ``build``: :func:`aid2e.report_data.build`, the data from the saved state (reading it, the
  traces, moocore's Pareto set and the hypervolume after every trial, the timing);
* ``write``: ``aid2e report``'s whole work in this process (build, the page with plotly.js
  inlined, the atomic write);
* ``cli``: ``aid2e report DIR`` as a user runs it (a new interpreter: imports included);
* with ``--browser``: ``draw``, opening the file in headless Chromium until every plot and the
  trial table are drawn (``body[data-drawn]``).

Prints one line per figure and the file's size; the target is "a few seconds".
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 5.0


def objective(x0: float, x1: float) -> dict:
    if int(x0 * 1000) % 20 == 0:  # one trial in 20 crashes: the penalty policy completes it with the penalty
        raise RuntimeError("a crashed simulation")
    if int(x0 * 1000) % 20 == 1:  # one in 20 is infeasible: abandoned
        return {"infeasible": "overlap: the design does not fit"}
    return {"a": x0 + 0.2 * x1, "b": (1 - x0) ** 2 + 0.3 * x1}


def campaign(root: Path, trials: int) -> Path:
    from ax import Client, RangeParameterConfig

    import aid2e
    from aid2e.testing.experiments import sobol_generation_strategy
    from aid2e_joblib import JobLibRunner

    client = Client(random_seed=3)
    client.configure_experiment(name="report_bench", parameters=[
        RangeParameterConfig(name=f"x{i}", parameter_type="float", bounds=(0.0, 1.0)) for i in range(2)])
    client.configure_optimization(objective="-a, -b", outcome_constraints=["a <= 1.1", "b <= 1.2"])
    client.set_generation_strategy(sobol_generation_strategy())
    with JobLibRunner(n_jobs=8, pool="threading") as runner:
        scheduler = aid2e.AxScheduler(client, runner, {
            "job_output_dir": str(root), "monitoring_interval": 1, "tolerated_failure_rate": 1.0,
            "failure_policy": "penalty", "penalty": {"a": 5.0, "b": 5.0}})
        scheduler.set_objective_function(objective)
        scheduler.run_optimization(max_trials=trials)
    return scheduler.experiment_dir


def timed(function, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--browser", action="store_true", help="also time drawing it in headless Chromium")
    args = parser.parse_args()

    import logging

    logging.getLogger("aid2e").setLevel(logging.ERROR)
    from aid2e.report import write
    from aid2e.report_data import build

    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        where = campaign(Path(tmp), args.trials)
        print(f"campaign: {args.trials} trials run in {time.perf_counter() - started:.1f} s")
        build_s, data = timed(lambda: build(where), args.repeat)
        counts = data["counts"]
        print(f"trials: {len(data['trials'])} ({counts['COMPLETED']} completed, {counts['PENALIZED']} penalized, "
              f"{counts['ABANDONED']} abandoned); Pareto set {len(data['pareto'])}; hypervolume points "
              f"{len(data['hypervolume'])}")
        print(f"build: {build_s:.2f} s (median of {args.repeat})")
        write_s, output = timed(lambda: write(where), args.repeat)
        print(f"write: {write_s:.2f} s (median of {args.repeat}); {output.stat().st_size / 1e6:.1f} MB")
        cli_s, _ = timed(lambda: subprocess.run([sys.executable, "-m", "aid2e", "report", str(where)], check=True,
                                                capture_output=True), args.repeat)
        print(f"cli: {cli_s:.2f} s (median of {args.repeat}; a new interpreter, imports included)")
        if args.browser:
            from aid2e.testing.browser import start_browser

            with start_browser() as browser:
                def draw() -> None:
                    browser.open(output)
                    browser.wait_for("body[data-drawn]", timeout=120)

                draw_s, _ = timed(draw, args.repeat)
                errors = browser.console_errors()
            print(f"draw: {draw_s:.2f} s in headless Chromium (median of {args.repeat}); console errors: "
                  f"{len(errors)}")
        verdict = "meets" if cli_s <= TARGET_S else "MISSES"
        print(f"target: aid2e report of {args.trials} trials in <= {TARGET_S:g} s: {verdict} ({cli_s:.2f} s)")


if __name__ == "__main__":
    main()
