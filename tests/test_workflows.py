"""Trials made of stages on local cores (JobLibRunner): the dRICH-shaped toy with exact values and
penalized overlaps, the directory layout and job files, what ends a trial (exit codes, failures,
the penalty policy), per-backend capacity, and the checks made when a workflow is set."""

from __future__ import annotations

import json
import threading
from collections import Counter
from pathlib import Path

import pytest
from drich_toy import PENALTY, analyze, expected, workflow, write_scripts

import aid2e
from aid2e import Stage, Workflow
from aid2e.testing.experiments import unit_square_ax_client


@pytest.fixture
def runner():
    from aid2e_joblib import JobLibRunner

    runner = JobLibRunner(n_jobs=4, pool="threading")
    yield runner
    runner.close()


def runs(log: Path) -> Counter:
    """How often each (trial, stage, job) ran, as the jobs themselves wrote it."""
    return Counter(tuple(line.split()[:3]) for line in log.read_text().splitlines())


def check_toy_campaign(scheduler: aid2e.AxScheduler, runs_log: Path, trials: int, *, some_penalized: bool = True
                       ) -> None:
    """Every trial completed with the toy's exact values or the penalty values (overlaps), and
    every job ran exactly once: 10 jobs per trial, the geometry's only for overlapping ones."""
    assert len(scheduler.trials) == trials
    counted = runs(runs_log)
    assert max(counted.values()) == 1, [k for k, n in counted.items() if n > 1]
    data = scheduler.experiment.lookup_data().df
    penalized = 0
    for index, record in scheduler.trials.items():
        want = expected(record.parameters["x"], record.parameters["y"])
        assert record.status == "COMPLETED", (index, record.message)
        rows = data[data.trial_index == index].set_index("metric_name")
        if want is None:
            penalized += 1
            assert record.penalized and "job geometry/job: script exited with code 9" in record.message
            assert {m: v.mean for m, v in record.metrics.items()} == PENALTY
            assert {m: rows.loc[m, "mean"] for m in PENALTY} == PENALTY
            assert [j.status for j in record.jobs.values()] == ["FAILED"] + ["CANCELED"] * 9
            assert (str(index), "geometry", "job") in counted
            assert sum(1 for k in counted if k[0] == str(index)) == 1
            continue
        assert not record.penalized
        for metric, (mean, sem) in want.items():
            assert record.metrics[metric].mean == pytest.approx(mean, rel=1e-12)
            assert record.metrics[metric].sem == pytest.approx(sem, rel=1e-9)
            assert rows.loc[metric, "mean"] == pytest.approx(mean, rel=1e-12)
            assert rows.loc[metric, "sem"] == pytest.approx(sem, rel=1e-9)  # Ax got the error, not sem 0
        assert all(j.status == "COMPLETED" for j in record.jobs.values())
        assert sum(1 for k in counted if k[0] == str(index)) == 9  # 1 + 4 + 4 script jobs (analyze is a function)
    assert penalized < trials and (penalized > 0 or not some_penalized)  # Sobol over [0, 1]: some x > 0.8


@pytest.mark.timeout(300)
def test_the_drich_shaped_toy_runs_with_exact_values_and_penalized_overlaps(runner, tmp_path):
    scripts = write_scripts(tmp_path / "scripts")
    runs_log = tmp_path / "runs.log"
    scheduler = aid2e.AxScheduler(unit_square_ax_client("drich", objectives=("sep", "acc")), runner, {
        "job_output_dir": str(tmp_path / "jobs"), "monitoring_interval": 1, "penalty": PENALTY,
        "max_parallel_trials": 3})
    scheduler.set_workflow(workflow(scripts, runs_log))
    scheduler.run_optimization(max_trials=20)
    check_toy_campaign(scheduler, runs_log, 20)

    # the layout: trial_<i>/<stage>/<job>/ with each job's files, and what its job file says
    index = next(i for i, r in scheduler.trials.items() if not r.penalized)
    trial_dir = scheduler.trial_dir(index)
    sim = trial_dir / "simulate" / "particle=kaon+,eta=2.5"
    for name in ("params.json", "job.json", "stdout.txt", "stderr.txt", "result.json", "hits.txt"):
        assert (sim / name).is_file(), name
    job_file = json.loads((trial_dir / "reconstruct" / "particle=pi+,eta=1.5" / "job.json").read_text())
    assert job_file["stage"] == "reconstruct" and job_file["fan_out"] == {"particle": "pi+", "eta": 1.5}
    assert [j["fan_out"] for j in job_file["inputs"]["simulate"]] == [{"particle": "pi+", "eta": 1.5}]
    assert job_file["inputs"]["simulate"][0]["dir"] == str(trial_dir / "simulate" / "particle=pi+,eta=1.5")
    assert len(job_file["inputs"]["geometry"]) == 1
    assert json.loads((sim / "params.json").read_text()) == scheduler.trials[index].parameters

    # aid2e status lists each trial's jobs with their state, backend and job id
    from aid2e.state import read_state

    info = next(t for t in read_state(scheduler.experiment_dir).trials if t.index == index)
    assert [(j.stage, j.name, j.status, j.backend) for j in info.jobs][:2] == [
        ("geometry", "job", "COMPLETED", "joblib"), ("simulate", "particle=pi+,eta=1.5", "COMPLETED", "joblib")]
    assert all(j.native_id for j in info.jobs)


def test_fan_out_values_reach_argv_as_argv_never_through_a_shell(runner, tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("import json, os, sys\n"
                     "json.dump({'argv': sys.argv[1:]}, open(os.environ['AID2E_RESULT_FILE'], 'w'))\n")
    hostile = ["$(touch pwned)", "a b; touch pwned2", "'\"`id`"]
    seen = []

    def final(x, y, inputs):
        seen.extend(job["result"]["argv"] for job in inputs["echo"])
        return {"objective": x}

    scheduler = aid2e.AxScheduler(unit_square_ax_client("argv"), runner, {"job_output_dir": str(tmp_path / "jobs")})
    scheduler.set_workflow(Workflow([
        Stage("echo", script=["python3", str(probe), "{word}", "--x={x}", "{{literal}}"], fan_out={"word": hostile}),
        Stage("final", function=final)]))
    scheduler.run_optimization(max_trials=1)
    x = scheduler.trials[0].parameters["x"]
    assert sorted(seen) == sorted([w, f"--x={x}", "{literal}"] for w in hostile)
    assert not list(tmp_path.rglob("pwned*"))


def test_a_failed_fan_out_job_cancels_the_trials_other_jobs_and_fails_it(runner, tmp_path):
    script = tmp_path / "sim.py"
    script.write_text("import sys, time\n"
                      "if sys.argv[1] == 'bad':\n    sys.exit('bad detector')\n"
                      "time.sleep(60)\n")
    scheduler = aid2e.AxScheduler(unit_square_ax_client("fails"), runner, {
        "job_output_dir": str(tmp_path / "jobs"), "monitoring_interval": 0.5, "tolerated_failure_rate": 1.0})
    scheduler.set_workflow(Workflow([
        Stage("simulate", script=["python3", str(script), "{kind}"], fan_out={"kind": ["slow1", "slow2", "bad"]}),
        Stage("merge", function=lambda x, y: {"objective": x})]))
    scheduler.run_optimization(max_trials=1)
    record = scheduler.trials[0]
    assert record.status == "FAILED"
    assert record.message == "job simulate/kind=bad: script exited with code 1 (stderr: bad detector)"
    jobs = record.jobs
    assert jobs["simulate/kind=bad"].status == "FAILED"
    assert [jobs[f"simulate/kind=slow{i}"].status for i in (1, 2)] == ["CANCELED", "CANCELED"]
    assert jobs["merge/job"].status == "CANCELED" and jobs["merge/job"].handle is None  # never started
    assert jobs["simulate/kind=slow1"].message == "canceled: job simulate/kind=bad ended the trial (fail)"
    assert scheduler.experiment.trials[0].status.name == "FAILED"


@pytest.mark.parametrize("code, config, status, penalized, reason", [
    (9, {"penalty": {"objective": 7.0}}, "COMPLETED", True, "penalized: job check/job: script exited with code 9"),
    (3, {}, "ABANDONED", False, "infeasible: job check/job: script exited with code 3"),
    (4, {"failure_policy": "penalty", "penalty": {"objective": 7.0}}, "FAILED", False,
     "job check/job: script exited with code 4"),
    (5, {"failure_policy": "penalty", "penalty": {"objective": 7.0}}, "COMPLETED", True,
     "penalized: job check/job: script exited with code 5"),
    (5, {}, "FAILED", False, "job check/job: script exited with code 5"),
])
def test_exit_codes_map_to_penalty_infeasible_or_fail(runner, tmp_path, code, config, status, penalized, reason):
    scheduler = aid2e.AxScheduler(unit_square_ax_client(f"codes{code}"), runner, {
        "job_output_dir": str(tmp_path / "jobs"), "tolerated_failure_rate": 1.0, **config})
    codes = {9: "penalty", 3: "infeasible", 4: "fail"} if "penalty" in config else {3: "infeasible", 4: "fail"}
    scheduler.set_workflow(Workflow([
        Stage("check", script=["python3", "-c", f"import sys; sys.exit({code})"], exit_codes=codes),
        Stage("final", function=lambda x, y: {"objective": x})]))
    scheduler.run_optimization(max_trials=1)
    record = scheduler.trials[0]
    assert (record.status, record.penalized) == (status, penalized)
    assert record.message == reason
    if penalized:
        assert record.metrics["objective"].mean == 7.0
    assert scheduler.experiment.trials[0].status.name == {"COMPLETED": "COMPLETED", "ABANDONED": "ABANDONED",
                                                           "FAILED": "FAILED"}[status]


def test_a_stage_function_gets_fan_out_values_as_keywords_or_in_its_dict(runner, tmp_path):
    calls = []

    def by_keywords(x, y, energy):
        calls.append(("kw", energy))
        return {"e": energy * x}

    def by_dict(params, inputs):
        calls.append(("dict", sorted(params)))
        return {"objective": sum(job["result"]["e"] for job in inputs["energies"])}

    scheduler = aid2e.AxScheduler(unit_square_ax_client("calls"), runner, {"job_output_dir": str(tmp_path / "jobs")})
    scheduler.set_workflow(Workflow([Stage("energies", function=by_keywords, fan_out=[{"energy": 1}, {"energy": 5}]),
                                     Stage("sum", function=by_dict)]))
    scheduler.run_optimization(max_trials=1)
    x = scheduler.trials[0].parameters["x"]
    assert sorted(calls) == [("dict", ["x", "y"]), ("kw", 1), ("kw", 5)]
    assert scheduler.trials[0].metrics["objective"].mean == pytest.approx(6 * x)


def test_each_backend_holds_at_most_its_capacity_and_trials_interleave(tmp_path):
    """Two backends of 2 and 3 slots and 4 trials in flight: aid2e never has more jobs on a
    backend than its slots (it would have 4 and 12 ready), and jobs of several trials share them."""
    from aid2e_joblib import JobLibRunner

    class Counting(JobLibRunner):
        """Counts the jobs aid2e has in flight here: submitted, and not yet collected."""

        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.lock, self.trials_in_flight, self.most, self.shared = threading.Lock(), Counter(), 0, False
            self.trial_of = {}

        def submit(self, request):
            with self.lock:
                self.trials_in_flight[request.trial_index] += 1
                self.most = max(self.most, sum(self.trials_in_flight.values()))
                self.shared |= len(+self.trials_in_flight) > 1
            handle = super().submit(request)
            self.trial_of[handle.native_id] = request.trial_index
            return handle

        def result(self, handle):
            with self.lock:
                self.trials_in_flight[self.trial_of[handle.native_id]] -= 1
            return super().result(handle)

    def step(x, y, part):
        import time

        time.sleep(0.05)
        return {"part": part}

    small, large = Counting(n_jobs=2, pool="threading"), Counting(n_jobs=3, pool="threading")
    try:
        scheduler = aid2e.AxScheduler(unit_square_ax_client("capacity"), large, {
            "job_output_dir": str(tmp_path / "jobs"), "max_parallel_trials": 4})
        scheduler.set_workflow(Workflow([
            Stage("a", function=step, fan_out={"part": ["a"]}, backend=small),
            Stage("b", function=step, fan_out={"part": ["b1", "b2", "b3"]}),
            Stage("end", function=lambda x, y: {"objective": x})]))
        scheduler.run_optimization(max_trials=8)
    finally:
        small.close()
        large.close()
    assert all(r.status == "COMPLETED" for r in scheduler.trials.values())
    assert (small.most, large.most) == (2, 3)
    assert small.shared and large.shared


@pytest.mark.parametrize("make, message", [
    (lambda s: Workflow([Stage("a", script=["python3", "x.py"], fan_out={"n": [1, 2]})]),
     "stage 'a': the last stage gives the trial's metrics, so it runs once"),
    (lambda s: Workflow([Stage("a", script="no/such/script.sh"), Stage("b", function=analyze)]),
     "stage 'a': objective script not found: no/such/script.sh"),
    (lambda s: Workflow([Stage("a", function="no_such_module:fn"), Stage("b", function=analyze)]),
     "cannot load stage 'a': function 'no_such_module:fn'"),
    (lambda s: Workflow([Stage("a", function=analyze, backend=object())]),
     "stage 'a': backend must be an aid2e backend"),
    (lambda s: Workflow([Stage("a", function=analyze, resources={"gpus": 1})]),
     "stage 'a': resources:"),
    (lambda s: Workflow([Stage("a", function=analyze, resources={"memory": "lots"})]),
     "stage 'a': resources:"),
    (lambda s: "not a workflow", "set_workflow needs an aid2e.Workflow of Stages, got str"),
])
def test_a_bad_workflow_is_one_line_when_it_is_set(runner, tmp_path, make, message):
    scheduler = aid2e.AxScheduler(unit_square_ax_client("bad"), runner, {"job_output_dir": str(tmp_path / "jobs")})
    with pytest.raises(aid2e.ConfigError) as info:
        scheduler.set_workflow(make(scheduler))
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


@pytest.mark.parametrize("stages, config, message", [
    ([Stage("a", script=["python3", "x.py", "{energy}"]), Stage("b", function=analyze)], {},
     "stage 'a': script: argv element '{energy}' names {energy}, which is neither a trial parameter nor a "
     "fan-out value of this stage"),
    ([Stage("a", script=["python3", "x.py"], fan_out={"x": [1]}), Stage("b", function=analyze)], {},
     "stage 'a': fan_out: x is also a trial parameter"),
    ([Stage("a", script=["python3", "x.py"], exit_codes={9: "penalty"}), Stage("b", function=analyze)], {},
     "stage 'a' maps an exit code to \"penalty\": give config 'penalty' a value for every objective"),
    ([Stage("a", function=analyze)], {"penalty": {"objective": 1.0}},
     "config 'penalty' is given but failure_policy is \"fail\" and no stage maps an exit code to \"penalty\""),
])
def test_what_needs_the_experiment_is_checked_when_the_run_starts(runner, tmp_path, stages, config, message):
    scheduler = aid2e.AxScheduler(unit_square_ax_client("late"), runner,
                                  {"job_output_dir": str(tmp_path / "jobs"), **config})
    scheduler.set_workflow(Workflow(stages))
    with pytest.raises(aid2e.ConfigError) as info:
        scheduler.run_optimization(max_trials=1)
    assert str(info.value).startswith(message) and "\n" not in str(info.value)
    assert not scheduler.trials


def test_a_compact_geometry_stage_writes_the_trials_copy_for_the_next_stages(runner, tmp_path):
    from aid2e.geometry import CompactGeometry, XmlParameter

    template = Path(__file__).parents[1] / "core" / "tests" / "data" / "drich_mini.xml"
    check = tmp_path / "check.py"
    check.write_text(
        "import json, os, sys\n"
        "import xml.etree.ElementTree as ET\n"
        "job = json.load(open(os.environ['AID2E_JOB_FILE']))\n"
        "root = ET.parse(job['inputs']['geometry'][0]['result']['compact']).getroot()\n"
        "value = root.find(\".//constant[@name='DRICH_aerogel_thickness']\").get('value')\n"
        "tune = root.find('.//detector/mirror').get('focus_tune_x')\n"
        "json.dump({'thickness': value, 'tune': tune}, open(os.environ['AID2E_RESULT_FILE'], 'w'))\n")

    def final(x, y, inputs):
        seen = inputs["check"][0]["result"]
        return {"objective": float(seen["thickness"].split("*")[0]) + float(seen["tune"].split("*")[0])}

    geometry = CompactGeometry(template, [
        XmlParameter("x", ".//constant[@name='DRICH_aerogel_thickness']", unit="cm"),
        XmlParameter("y", ".//detector[@name='DRICH']/mirror", attribute="focus_tune_x", unit="mm")])
    scheduler = aid2e.AxScheduler(unit_square_ax_client("compact"), runner, {"job_output_dir": str(tmp_path / "jobs")})
    scheduler.set_workflow(Workflow([Stage("geometry", function=geometry),
                                     Stage("check", script=["python3", str(check)]), Stage("final", function=final)]))
    scheduler.run_optimization(max_trials=2)
    for index, record in scheduler.trials.items():
        assert record.status == "COMPLETED", record.message
        copy = scheduler.trial_dir(index) / "geometry" / "job" / "drich_mini.xml"
        assert record.jobs["geometry/job"].output == {"compact": str(copy)}
        assert record.jobs["check/job"].output == {"thickness": f"{record.parameters['x']!r}*cm",
                                                   "tune": f"{record.parameters['y']!r}*mm"}
        assert record.metrics["objective"].mean == record.parameters["x"] + record.parameters["y"]
    assert "DRICH_aerogel_thickness\" value=\"4.0*cm\"" in template.read_text()  # the template is untouched


def test_a_compact_geometry_stage_that_cannot_be_is_one_line():
    from aid2e.geometry import CompactGeometry

    with pytest.raises(aid2e.ConfigError, match="^compact file not found: .*nowhere.xml$"):
        CompactGeometry("nowhere.xml", [])


def test_max_retries_and_trial_timeout_apply_to_each_job(runner, tmp_path):
    """A job whose launcher dies (an infrastructure failure) runs again in attempt_2/ while its
    trial's other jobs stay done; a job running past trial_timeout is canceled and fails its trial."""
    marker = tmp_path / "killed_once"
    flaky = tmp_path / "flaky.py"
    flaky.write_text(
        "import json, os, signal, sys, time\n"
        f"marker = {str(marker)!r}\n"
        "if sys.argv[1] == 'flaky' and not os.path.exists(marker):\n"
        "    open(marker, 'w').close()\n"
        "    os.kill(os.getppid(), signal.SIGKILL)  # the launcher dies: no exit status is recorded\n"
        "    time.sleep(5)\n"
        "    sys.exit(0)\n"
        "if sys.argv[1] == 'slow':\n"
        "    time.sleep(60)\n"
        "json.dump({'ran': sys.argv[1]}, open(os.environ['AID2E_RESULT_FILE'], 'w'))\n")

    def final(x, y, inputs):
        return {"objective": len(inputs["work"])}

    scheduler = aid2e.AxScheduler(unit_square_ax_client("job_retries"), runner, {
        "job_output_dir": str(tmp_path / "jobs"), "max_retries": 1, "monitoring_interval": 0.5})
    scheduler.set_workflow(Workflow([Stage("work", script=["python3", str(flaky), "{kind}"],
                                           fan_out={"kind": ["steady", "flaky"]}),
                                     Stage("final", function=final)]))
    scheduler.run_optimization(max_trials=1)
    record = scheduler.trials[0]
    assert record.status == "COMPLETED" and record.metrics["objective"].mean == 2
    flaky_job, steady_job = record.jobs["work/kind=flaky"], record.jobs["work/kind=steady"]
    assert (flaky_job.attempts, steady_job.attempts) == (2, 1)
    assert flaky_job.handle.workdir.endswith("work/kind=flaky/attempt_2") and flaky_job.output == {"ran": "flaky"}
    assert flaky_job.message.startswith("attempt 1 failed: job ended without recording an exit status")

    slow = aid2e.AxScheduler(unit_square_ax_client("job_timeout"), runner, {
        "job_output_dir": str(tmp_path / "jobs"), "trial_timeout": 1, "monitoring_interval": 0.5,
        "tolerated_failure_rate": 1.0})
    slow.set_workflow(Workflow([Stage("work", script=["python3", str(flaky), "{kind}"], fan_out={"kind": ["slow"]}),
                                Stage("final", function=final)]))
    slow.run_optimization(max_trials=1)
    record = slow.trials[0]
    assert record.status == "FAILED"
    assert record.message.startswith("job work/kind=slow: exceeded trial_timeout=1 s and was canceled (ran ")


def test_a_stage_function_named_by_module_path(runner, tmp_path):
    scheduler = aid2e.AxScheduler(unit_square_ax_client("by_name"), runner, {"job_output_dir": str(tmp_path / "jobs")})
    scheduler.set_workflow(Workflow([Stage("only", function="drich_toy:x_plus_y")]))
    scheduler.run_optimization(max_trials=2)
    for record in scheduler.trials.values():
        assert record.metrics["objective"].mean == record.parameters["x"] + record.parameters["y"]
        assert list(record.jobs) == ["only/job"]
