"""Property-based (hypothesis): parameter names and values, script arguments and experiment names
full of shell metacharacters reach the job unchanged and are never interpreted by a shell, on
local script jobs (JobLibRunner), podman containers and real Slurm batch jobs.

Each job echoes ``params.json``, its arguments and ``$AID2E_EXPERIMENT`` back into its trial
directory; the test compares them byte for byte and checks that no injection payload
(``$(touch CANARY)``, backquotes, ``; touch``, ...) created its canary file anywhere.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import aid2e
from aid2e.ax_scheduler import _directory_name
from aid2e.jobs.script import PARAMS_FILE
from aid2e.types import JobRequest, JobState, ScriptJob

pytestmark = pytest.mark.timeout(180)

CANARY = "CANARY"
#: Where an injected absolute-path payload would land (checked after every example).
HOST_CANARY = Path(f"/tmp/aid2e-shell-fuzz-{os.getpid()}-{CANARY}")

METACHARACTERS = ";|&$()`'\"<>*?![]{}~\n\t\\#%^=,: /-"
PAYLOADS = [
    f"$(touch {CANARY})", f"`touch {CANARY}`", f"; touch {CANARY}", f"| touch {CANARY}", f"&& touch {CANARY}",
    f"\ntouch {CANARY}\n", f"'$(touch {CANARY})'", f"\"; touch {CANARY}; \"", f"$(touch {HOST_CANARY})",
    f"`touch {HOST_CANARY}`", f"';touch {HOST_CANARY};'", "${IFS}", "$HOME", "*", "~", "-e", "--help", "%s%n",
]

hostile_text = st.one_of(
    st.text(alphabet=st.sampled_from(METACHARACTERS + "aZ9é€"), min_size=0, max_size=24),
    st.sampled_from(PAYLOADS),
    st.lists(st.sampled_from(PAYLOADS + list(METACHARACTERS)), min_size=2, max_size=5).map("".join),
)
hostile_name = hostile_text.filter(bool)
values = st.one_of(hostile_text, st.floats(allow_nan=False, allow_infinity=False), st.integers(-10**6, 10**6),
                   st.booleans())
parameters = st.dictionaries(hostile_name, values, min_size=1, max_size=6)
arguments = st.lists(hostile_text, max_size=4)
#: Experiment names become directory names and job names: no path separators, not "." or "..".
experiment_names = hostile_name.filter(lambda s: "/" not in s and s not in (".", "..") and "\x00" not in s)

#: The job: copies params.json, writes its argv (NUL-separated) and $AID2E_EXPERIMENT, then a
#: result. POSIX sh with every expansion quoted; busybox sh runs it in the test image too.
ECHO = (
    'cat "$AID2E_PARAMS_FILE" > echo_params.json && '
    'for a in "$@"; do printf "%s\\000" "$a"; done > echo_args.bin && '
    'printf "%s" "$AID2E_EXPERIMENT" > echo_experiment.txt && '
    'printf "{\\"objective\\": 1.5}" > "$AID2E_RESULT_FILE"'
)


def echo_argv(args):
    return ["sh", "-c", ECHO, "sh", *args]


def canaries(*roots):
    found = [str(HOST_CANARY)] if HOST_CANARY.exists() else []
    for root in roots:
        found += [str(p) for p in Path(root).rglob(CANARY)]  # what `touch CANARY` would create
    return found


def check_echo(workdir, params, args, experiment):
    workdir = Path(workdir)
    written = (workdir / PARAMS_FILE).read_bytes()
    echoed = (workdir / "echo_params.json").read_bytes()
    assert echoed == written  # verbatim
    assert json.loads(echoed) == params  # and what was asked for
    raw = (workdir / "echo_args.bin").read_bytes()
    assert raw.split(b"\0")[:-1] == [a.encode() for a in args]
    assert (workdir / "echo_experiment.txt").read_bytes() == experiment.encode()


def run_job(runner, request, timeout=90.0):
    handle = runner.submit(request)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = runner.poll([handle]).get(handle.native_id)
        if state is not None and state.is_final:
            return runner.result(handle)
        runner.wait([handle], 0.2)
    runner.cancel(handle)
    pytest.fail(f"job {handle.native_id} did not end within {timeout} s")


class Trials:
    """Fresh trial directories under one root; the working directory is moved there too, so a
    relative payload run by a shell on the controller side would also leave its canary here."""

    def __init__(self, root):
        self.root = Path(root)
        self.count = 0

    def next(self):
        self.count += 1
        path = self.root / f"trial_{self.count}"
        return path


@pytest.fixture
def trials(tmp_path):
    previous = os.getcwd()
    os.chdir(tmp_path)
    HOST_CANARY.unlink(missing_ok=True)
    try:
        yield Trials(tmp_path)
    finally:
        os.chdir(previous)
        assert not canaries(tmp_path), "an injection payload ran"


def fuzz(examples):
    """Modest example counts (CI time), no deadline (jobs take what they take), no example database."""
    return settings(max_examples=examples, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


# ---------------------------------------------------------------- (i) local script jobs
@fuzz(25)
@given(params=parameters, args=arguments, experiment=hostile_text)
def test_joblib_script_jobs_pass_everything_verbatim(threads, trials, params, args, experiment):
    workdir = trials.next()
    request = JobRequest(experiment=experiment, trial_index=trials.count, parameters=params,
                         job=ScriptJob(argv=echo_argv(args)), workdir=str(workdir))
    result = run_job(threads, request)
    assert result.state is JobState.COMPLETED, result.message
    check_echo(workdir, params, args, experiment)
    assert not canaries(trials.root)


# ---------------------------------------------------------------- hostile experiment names and script args
@fuzz(8)
@given(experiment=experiment_names, args=arguments)
def test_scheduler_with_hostile_experiment_name_and_script_args(make_ax_client, threads, tmp_path, trials,
                                                                 experiment, args):
    script = tmp_path / "echo.sh"
    script.write_text(ECHO.replace(" && ", "\n") + "\n")
    jobs = trials.next()
    scheduler = aid2e.AxScheduler(make_ax_client(experiment), threads, {"job_output_dir": str(jobs),
                                                                               "monitoring_interval": 0.5})
    scheduler.set_script_objective(str(script), args=tuple(args))
    scheduler.run_optimization(max_trials=1)
    record = scheduler.trials[0]
    assert record.status == "COMPLETED", record.message
    assert scheduler.experiment_dir == jobs.resolve() / _directory_name(experiment)  # '%' is written %25
    check_echo(scheduler.trial_dir(0), record.parameters, args, experiment)
    assert not canaries(trials.root)


@pytest.mark.parametrize("name", [
    "../escaped",
    "/tmp/aid2e-absolute-escape",
    "a/../../b",
    "..",
    "plain-name",
])
def test_experiment_name_cannot_escape_job_output_dir(make_ax_client, threads, tmp_path, name):
    """Not shell injection but its path cousin: trial directories are named after the experiment.
    Refusing such a name (ConfigError) or keeping it inside job_output_dir are both fine."""
    jobs = tmp_path / "jobs"
    try:
        scheduler = aid2e.AxScheduler(make_ax_client(name), threads, {"job_output_dir": str(jobs)})
        where = scheduler.experiment_dir
    except aid2e.ConfigError:
        return
    assert where.resolve().is_relative_to(jobs.resolve()), where


def test_the_canary_check_catches_a_shell(threads, trials):
    """Negative control: a job that does run a value through a shell is caught."""
    workdir = trials.next()
    request = JobRequest(experiment="control", trial_index=0, parameters={"x": 1},
                         job=ScriptJob(argv=["sh", "-c", f"echo $(touch {CANARY}) > /dev/null"]),
                         workdir=str(workdir))
    run_job(threads, request)
    assert canaries(trials.root) == [str(workdir / CANARY)]
    (workdir / CANARY).unlink()


# ---------------------------------------------------------------- (ii) podman container jobs
@pytest.fixture
def podman_image():
    from aid2e.testing.requirements import require

    state_file = Path(os.environ.get("AID2E_CONTAINERS_STATE", "/var/lib/aid2e-containers/state.json"))
    try:
        state = json.loads(state_file.read_text())
    except (OSError, ValueError):
        state = {}
    require("podman", state.get("podman") == "ok", f"podman is not usable here ({state.get('podman', 'no state')})")
    return state.get("image", "localhost/aid2e-test:latest")


@fuzz(6)
@given(params=parameters, args=arguments, experiment=hostile_name)
def test_podman_container_jobs_pass_everything_verbatim(podman_image, trials, params, args, experiment):
    from aid2e_containers import ContainerJob, adapt
    from aid2e_joblib import JobLibRunner

    runner = JobLibRunner(n_jobs=1, pool="threading", config={"container_engine": "podman"})
    try:
        workdir = trials.next()
        request = JobRequest(experiment=experiment, trial_index=trials.count, parameters=params,
                             job=ContainerJob(image=podman_image, command=echo_argv(args), engine="podman"),
                             workdir=str(workdir))
        adapted = adapt(request, runner)
        result = run_job(runner, adapted)
    finally:
        runner.close()
    assert result.state is JobState.COMPLETED, result.message
    check_echo(workdir, params, args, experiment)
    assert not canaries(trials.root)


# ---------------------------------------------------------------- (iii) Slurm batch jobs
@pytest.fixture(scope="module")
def slurm_partition():
    from aid2e.testing.requirements import require

    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=20)
        ok = out.returncode == 0 and any(s in out.stdout for s in ("idle", "mixed", "allocated"))
        problem = None if ok else (out.stderr.strip() or out.stdout.strip())
    except (OSError, subprocess.TimeoutExpired) as exc:
        problem = str(exc)
    require("slurm", problem is None, f"no Slurm cluster ({problem}); run scripts/services/slurm.sh as root")
    marker = Path("/run/aid2e-slurm.env")
    facts = dict(line.split("=", 1) for line in marker.read_text().split()) if marker.exists() else {}
    return facts.get("AID2E_SLURM_PARTITION", "debug")


@fuzz(5)
@given(params=parameters, args=arguments, experiment=hostile_name)
def test_slurm_jobs_pass_everything_verbatim(slurm_partition, trials, tmp_path, params, args, experiment):
    from aid2e_psij import SlurmRunner

    runner = SlurmRunner(partition=slurm_partition, time_limit="00:05:00",
                         config={"work_directory": str(tmp_path / "psij"), "status_grace": 10.0})
    runner.start()
    workdir = trials.next()
    request = JobRequest(experiment=experiment, trial_index=trials.count, parameters=params,
                         job=ScriptJob(argv=echo_argv(args)), workdir=str(workdir))
    result = run_job(runner, request, timeout=60)
    assert result.state is JobState.COMPLETED, result.message
    check_echo(workdir, params, args, experiment)
    assert not canaries(trials.root)


def test_strategies_really_contain_the_payloads():
    """The property is only as good as its inputs: the payload list reaches the generators."""
    assert any("$(" in p for p in PAYLOADS) and any("`" in p for p in PAYLOADS)
    assert set(";|&$()`'\"<>*?![]{}~\n") <= set(METACHARACTERS)
    assert sys.platform != "win32"
