"""``aid2e report``: one HTML file per campaign, rendered in the real headless Chromium
(scripts/services/browser.sh): its plots drawn (plotly's SVG), one table row per trial, no
console error, nothing fetched from the network; for one, two and three objectives, a staged
campaign, and one with failed and penalized trials. The numbers it draws are checked against
independent computations (best so far, the Pareto set by brute force, the 2-D hypervolume as
a sum of rectangles)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

import pytest

import aid2e
from aid2e.report_data import build
from aid2e.testing.experiments import sobol_generation_strategy

pytestmark = pytest.mark.timeout(300)


def client(name: str, objective: str, thresholds: tuple[str, ...] = (), parameters: int = 2):
    from ax import Client, RangeParameterConfig

    made = Client(random_seed=5)
    made.configure_experiment(name=name, parameters=[
        RangeParameterConfig(name=f"x{i}", parameter_type="float", bounds=(0.0, 1.0)) for i in range(parameters)])
    made.configure_optimization(objective=objective, outcome_constraints=list(thresholds))
    made.set_generation_strategy(sobol_generation_strategy())
    return made


def one(x0, x1):
    return {"loss": (x0 - 0.3) ** 2 + (x1 - 0.6) ** 2}


def two(x0, x1):
    return {"a": x0 + 0.2 * x1, "b": (1 - x0) ** 2 + 0.3 * x1}


def three(x0, x1, x2):
    return {"a": x0, "b": 1 - x0 + x1, "c": x2 + (1 - x1) ** 2}


def run(tmp_path, name, objective, function, trials, thresholds=(), parameters=2):
    from aid2e_joblib import JobLibRunner

    with JobLibRunner(n_jobs=3, pool="threading") as runner:
        scheduler = aid2e.AxScheduler(client(name, objective, thresholds, parameters), runner,
                                      {"job_output_dir": str(tmp_path / "jobs"), "monitoring_interval": 1})
        scheduler.set_objective_function(function)
        scheduler.run_optimization(max_trials=trials)
    return scheduler


STAGE = """\
import json, os, sys
p = json.load(open(os.environ["AID2E_PARAMS_FILE"]))
energy = float(sys.argv[1])
print(f"simulated energy {energy}")
if p["x0"] > 0.8:
    print("overlap: the design does not fit", file=sys.stderr); sys.exit(9)
if p["x1"] > 0.85:
    print("the simulation crashed", file=sys.stderr); sys.exit(3)
json.dump({"value": p["x0"] * energy + p["x1"]}, open(os.environ["AID2E_RESULT_FILE"], "w"))
"""


def merge(x0, x1, inputs):
    values = [job["result"]["value"] for job in inputs["simulate"]]
    return {"loss": sum(values) / len(values)}


def staged(tmp_path, trials=12):
    """A dRICH-shaped staged campaign: a fan-out of 2 simulation scripts and a merge; overlaps
    (x0 > 0.8) exit 9, penalized; crashes (x1 > 0.85) fail their trial."""
    from aid2e_joblib import JobLibRunner

    script = tmp_path / "sim.py"
    script.write_text(STAGE)
    workflow = aid2e.Workflow([
        aid2e.Stage("simulate", script=[sys.executable, str(script), "{energy}"], fan_out={"energy": [1.0, 5.0]},
                    exit_codes={9: "penalty"}),
        aid2e.Stage("merge", function=merge)])
    with JobLibRunner(n_jobs=4, pool="threading") as runner:
        scheduler = aid2e.AxScheduler(client("staged", "-loss"), runner, {
            "job_output_dir": str(tmp_path / "jobs"), "monitoring_interval": 1, "penalty": {"loss": 100.0},
            "tolerated_failure_rate": 1.0})
        scheduler.set_workflow(workflow)
        scheduler.run_optimization(max_trials=trials)
    return scheduler


def render(browser, scheduler, tmp_path, sensitivity="auto") -> tuple[dict, Path]:
    """Write the report with the CLI, open it, wait until it is drawn; no console error. With
    ``sensitivity`` yes (auto: as many trials as these campaigns have), Ax's analysis is drawn
    for every objective."""
    output = tmp_path / "out" / "report.html"
    done = subprocess.run([sys.executable, "-m", "aid2e", "report", str(scheduler.experiment_dir), "-o", str(output),
                           "--sensitivity", sensitivity], capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"wrote {output} ({len(scheduler.trials)} trials: ")
    assert ("; sensitivity by Ax in " in done.stdout) == (sensitivity != "no"), done.stdout
    browser.open(output)
    browser.wait_for("body[data-drawn]")
    assert browser.console_errors() == []
    # nothing fetched: the page, plotly.js and the data are all in the one file
    assert browser.script("return performance.getEntriesByType('resource').map(e => e.name)") == []
    assert browser.count("#trials tr.trial") == len(scheduler.trials)
    for plot in ("trace-0", "parallel", "generation", "jobtimes", "inflight"):
        assert browser.count(f"#{plot} svg.main-svg") >= 1, plot
    data = build(scheduler.experiment_dir)
    if sensitivity != "no":  # Ax's own sensitivity analysis, one figure per objective, naming the parameters
        for i, objective in enumerate(data["objectives"]):
            assert browser.count(f"#sensitivity-{i} svg.main-svg") >= 1
            assert objective["name"] in browser.text(f"#sensitivity-{i}")
            assert set(data["parameters"]) <= set(browser.text(f"#sensitivity-{i}").split())
    else:
        assert browser.count("#sensitivity-box[style*='none']") == 1
    return data, output


def status_csv(where: Path, *flags: str) -> list[dict[str, str]]:
    import csv

    done = subprocess.run([sys.executable, "-m", "aid2e", "status", str(where), "--csv", *flags], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return list(csv.DictReader(done.stdout.splitlines()))


def brute_force_pareto(points: dict[int, tuple[float, ...]], minimize: list[bool]) -> set[int]:
    def better_or_equal(a, b):
        return all((x <= y) if low else (x >= y) for x, y, low in zip(a, b, minimize, strict=True))

    return {i for i, p in points.items()
            if not any(better_or_equal(q, p) and q != p for j, q in points.items() if j != i)}


def test_one_objective_report(browser, tmp_path):
    scheduler = run(tmp_path, "one", "-loss", one, 8)
    data, _ = render(browser, scheduler, tmp_path)
    values = {i: r.metrics["loss"].mean for i, r in scheduler.trials.items()}
    best = min(values, key=values.get)
    assert data["best"]["index"] == best and data["best"]["parameters"] == scheduler.trials[best].parameters
    assert browser.text("#best-table").splitlines()[1].startswith(f"{best} ")
    running_best = [min(values[j] for j in range(i + 1)) for i in range(8)]
    assert [p["best"] for p in data["trace"]["loss"]] == running_best
    assert browser.count("#hypervolume-box[style*='none']") == 1 and browser.count("#pareto-box[style*='none']") == 1
    assert browser.text("#counts").startswith("completed: 8 failed: 0")
    assert [int(r["trial"]) for r in status_csv(scheduler.experiment_dir, "--pareto")] == [best]
    written = scheduler.report(tmp_path / "from_python.html")  # the Python API's way to the same file
    assert written == tmp_path / "from_python.html" and "aid2e: one" in written.read_text()[:400]
    scheduler.save_experiment(str(tmp_path / "saved" / "one.json"))  # a saved file: its report goes next to it
    done = subprocess.run([sys.executable, "-m", "aid2e", "report", str(tmp_path / "saved" / "one.json"),
                           "--sensitivity", "no"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.startswith(f"wrote {tmp_path / 'saved' / 'report.html'} (8 trials")


def test_two_objective_report_has_the_pareto_front_and_the_hypervolume(browser, tmp_path):
    scheduler = run(tmp_path, "two", "-a, -b", two, 10, thresholds=("a <= 1.1", "b <= 1.2"))
    data, _ = render(browser, scheduler, tmp_path)
    points = {i: (r.metrics["a"].mean, r.metrics["b"].mean) for i, r in scheduler.trials.items()}
    assert set(data["pareto"]) == brute_force_pareto(points, [True, True])
    assert data["reference_point"] == [1.1, 1.2]
    # the 2-D hypervolume after all trials: rectangles under the front, against (1.1, 1.2)
    front = sorted(p for p in points.values() if p[0] < 1.1 and p[1] < 1.2)
    volume, ceiling = 0.0, 1.2
    for a, b in front:
        if b < ceiling:
            volume += (1.1 - a) * (ceiling - b)
            ceiling = b
    assert data["hypervolume"][-1]["value"] == pytest.approx(volume, rel=1e-12)
    volumes = [p["value"] for p in data["hypervolume"]]
    assert volumes == sorted(volumes)  # it never shrinks
    assert browser.count("#hypervolume svg.main-svg") >= 1 and browser.count("#pareto svg.main-svg") >= 1
    assert browser.count("#pareto g.trace.scatter") == 2  # the Pareto set and the greyed dominated points
    assert browser.count("#best-table tr") == len(data["pareto"]) + 1

    # aid2e status --csv: every trial, exact values; --pareto: the same set as the report's
    rows = status_csv(scheduler.experiment_dir)
    assert [int(r["trial"]) for r in rows] == sorted(scheduler.trials)
    for row in rows:
        record = scheduler.trials[int(row["trial"])]
        assert (float(row["a"]), float(row["b"])) == points[record.index] and row["state"] == "COMPLETED"
        assert float(row["x0"]) == record.parameters["x0"] and row["a_sem"] == ""
    front = status_csv(scheduler.experiment_dir, "--pareto")
    assert {int(r["trial"]) for r in front} == set(data["pareto"])


def test_three_objective_report_draws_the_pairwise_panels(browser, tmp_path):
    scheduler = run(tmp_path, "three", "-a, -b, -c", three, 10, parameters=3)
    data, _ = render(browser, scheduler, tmp_path, sensitivity="no")
    points = {i: tuple(r.metrics[m].mean for m in "abc") for i, r in scheduler.trials.items()}
    assert set(data["pareto"]) == brute_force_pareto(points, [True, True, True])
    assert browser.count("#pareto g.cartesianlayer g.subplot") == 3
    assert data["reference_point"] == [max(p[k] for p in points.values()) for k in range(3)]  # no thresholds


def test_a_staged_campaign_with_failed_and_penalized_trials(browser, tmp_path):
    scheduler = staged(tmp_path)
    records = scheduler.trials.values()
    assert any(r.penalized for r in records) and any(r.status == "FAILED" for r in records), \
        [(r.status, r.parameters) for r in records]
    data, output = render(browser, scheduler, tmp_path)
    kinds = {p["index"]: p["kind"] for p in data["trace"]["loss"]}
    for record in records:
        assert kinds[record.index] == ("penalized" if record.penalized else "completed" if record.status == "COMPLETED"
                                       else "failed")
    penalized = [r for r in records if r.penalized]
    assert data["best"]["index"] not in {r.index for r in penalized}  # a penalty is never a best value
    assert browser.count("#trials tr.job") == sum(len(r.jobs) for r in records)
    assert browser.text("#counts").endswith(f"penalized: {len(penalized)}")
    # each job's output files are linked, relative to the report, and lead to the job's own output
    hrefs = browser.script("return [...document.querySelectorAll('#trials a')].map(a => a.getAttribute('href'))")
    links = [unquote(h) for h in hrefs]  # relative URLs: job names like energy=1.0 are escaped
    stdout = [h for h in links if h.endswith("/stdout.txt") and "/simulate/" in h]
    assert stdout and all((output.parent / h).resolve().is_file() for h in links)
    assert "simulated energy" in (output.parent / stdout[0]).read_text()
    failed = next(r for r in records if r.status == "FAILED")
    assert failed.message.splitlines()[0][:40] in browser.text(f"#trials tr.trial[data-index='{failed.index}']")


def test_the_report_of_a_campaign_that_does_not_exist_is_one_line(tmp_path):
    done = subprocess.run([sys.executable, "-m", "aid2e", "report", str(tmp_path / "nope")], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 1 and done.stderr.count("\n") == 1 and "no campaign state at" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_readme_shows_screenshots_of_the_report_and_the_dashboard():
    """scripts/screenshots.py takes them from a real run (it needs minutes, so it is not run here)."""
    import struct

    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text()
    for name in ("report", "dashboard"):
        assert f"](docs/{name}.png)" in readme
        head = (root / "docs" / f"{name}.png").read_bytes()[:24]
        assert head[:8] == b"\x89PNG\r\n\x1a\n"
        width, height = struct.unpack(">II", head[16:24])
        assert width >= 1000 and height >= 800, (name, width, height)


def test_neither_the_report_without_sensitivity_nor_the_dashboard_imports_ax_or_torch(tmp_path):
    scheduler = run(tmp_path, "light", "-loss", one, 3)
    code = (f"import sys; from aid2e.cli import main; from aid2e.dashboard import Dashboard\n"
            f"assert main(['report', {str(scheduler.experiment_dir)!r}, '--sensitivity', 'no']) == 0\n"
            f"assert main(['report', {str(scheduler.experiment_dir)!r}]) == 0  # auto: 3 trials are too few\n"
            f"d = Dashboard({str(scheduler.experiment_dir)!r}); d.page(); d.data()\n"
            "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('ax', 'torch', 'botorch'))\n"
            "assert not heavy, heavy")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "no sensitivity" in done.stdout


def always_fails(x0, x1):
    raise RuntimeError(f"the geometry does not build at x0={x0:.3f} <img src=x onerror=document.title='owned'>")


def test_a_campaign_whose_every_trial_failed_still_reports(browser, tmp_path):
    """No best, no data for Ax: the page says so, draws what there is, and logs no error."""
    from aid2e_joblib import JobLibRunner

    with JobLibRunner(n_jobs=2, pool="threading") as runner:
        scheduler = aid2e.AxScheduler(client("broken", "-loss"), runner, {
            "job_output_dir": str(tmp_path / "jobs"), "monitoring_interval": 1, "tolerated_failure_rate": 1.0})
        scheduler.set_objective_function(always_fails)
        scheduler.run_optimization(max_trials=4)
    data, _ = render(browser, scheduler, tmp_path, sensitivity="no")
    assert data["best"] is None and browser.text("#best") == "No completed trial yet."
    assert [p["kind"] for p in data["trace"]["loss"]] == ["failed"] * 4
    assert "the geometry does not build" in browser.text("#trials")
    # a trial's text is shown, never run: no element made from it, no script ran
    assert "<img src=x" in browser.text("#trials") and browser.count("#trials img") == 0
    assert browser.driver.title != "owned"


def test_sensitivity_without_a_saved_ax_experiment_is_skipped_not_fatal(tmp_path):
    """In a run's first seconds there are trial records but no Ax snapshot yet: the report says
    the analysis was skipped and why, and is written."""
    import shutil

    scheduler = run(tmp_path, "early", "-loss", one, 6)
    early = tmp_path / "early"
    shutil.copytree(scheduler.experiment_dir, early)
    (early / "experiment.json").unlink()
    done = subprocess.run([sys.executable, "-m", "aid2e", "report", str(early), "--sensitivity", "yes"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "sensitivity skipped: no saved Ax experiment to analyse: experiment file not found" in done.stdout


def fails_on_the_left(x0, x1):
    if x0 < 0.5:
        raise RuntimeError("overlap")
    return one(x0, x1)


def test_a_penalty_that_beats_every_result_is_never_the_best(tmp_path):
    """aid2e status --pareto and the report agree: the best is a result Ax learned, never the penalty."""
    from aid2e_joblib import JobLibRunner

    with JobLibRunner(n_jobs=2, pool="threading") as runner:
        scheduler = aid2e.AxScheduler(client("penalty_best", "-loss"), runner, {
            "job_output_dir": str(tmp_path / "jobs"), "monitoring_interval": 1, "failure_policy": "penalty",
            "penalty": {"loss": -1.0}, "tolerated_failure_rate": 1.0})
        scheduler.set_objective_function(fails_on_the_left)
        scheduler.run_optimization(max_trials=8)
    records = scheduler.trials.values()
    assert any(r.penalized for r in records) and any(not r.penalized for r in records)
    best = min((r for r in records if not r.penalized), key=lambda r: r.metrics["loss"].mean)
    assert build(scheduler.experiment_dir)["best"]["index"] == best.index
    assert [int(r["trial"]) for r in status_csv(scheduler.experiment_dir, "--pareto")] == [best.index]
    status = subprocess.run([sys.executable, "-m", "aid2e", "status", str(scheduler.experiment_dir), "--json"],
                            capture_output=True, text=True, timeout=60)
    assert json.loads(status.stdout)["best"]["loss"]["trial"] == best.index  # aid2e status agrees
    from aid2e.progress import best_text

    assert best_text(records, {"loss": True}) == f"loss={best.metrics['loss'].mean:.6g}"  # so does the progress line
