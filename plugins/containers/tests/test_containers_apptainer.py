"""Container objectives in a real Apptainer (set up by scripts/services/apptainer.sh): a SIF file
and an unpacked root directory (CVMFS style), both built locally without a registry, through
AxScheduler and JobLibRunner as users run them."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from aid2e import AxScheduler
from aid2e.errors import ConfigError
from aid2e.types import JobRequest, JobState, Resources
from aid2e_containers import ContainerJob, adapt
from aid2e_joblib import JobLibRunner

from .conftest import assert_sum_campaign

pytestmark = pytest.mark.timeout(180)

#: What a trial's limits look like from inside: this process's memory and cpu cgroups (v1 hybrid or
#: v2), read through the host's cgroup tree bound at /hostcg (Apptainer does not mount cgroupfs).
CGROUP_LIMITS = r"""
mem=$(awk -F: '$2 == "memory" {print $3}' /proc/self/cgroup)
cpu=$(awk -F: '$2 == "cpu" || $2 == "cpu,cpuacct" {print $3}' /proc/self/cgroup)
if [ -n "$mem" ]; then
    echo "memory $(cat /hostcg/memory$mem/memory.limit_in_bytes)"
    echo "cpu $(cat /hostcg/cpu$cpu/cpu.cfs_quota_us) $(cat /hostcg/cpu$cpu/cpu.cfs_period_us)"
else
    unified=$(sed -n 's/^0::\(.*\)/\1/p' /proc/self/cgroup)
    echo "memory $(cat /hostcg$unified/memory.max)"
    echo "cpu $(cat /hostcg$unified/cpu.max)"
fi
echo '{"objective": 0}' > "$AID2E_RESULT_FILE"
"""


@pytest.fixture(params=["sif", "dir"])
def image(request, apptainer) -> str:
    """The test image as a SIF file and as an unpacked directory."""
    return apptainer["sif"] if request.param == "sif" else apptainer["rootfs"]


def _expected_id(image: str) -> str:
    path = Path(image)
    if path.is_dir():
        return f"dir:{path.resolve()}"
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def _scheduler(client, config, n_jobs=2):
    runner = JobLibRunner(n_jobs=n_jobs, config={"container_engine": "apptainer"})
    return AxScheduler(client, runner, config=config), runner


def test_trial_values_exact_and_image_identity(image, sum_command, make_ax_client, scheduler_config) -> None:
    """Every trial's metrics are exactly what its parameters imply; the handle keeps the image and
    its identity (the SIF file's sha256, the directory's real path), also in the saved state."""
    client = make_ax_client("app_seed", objectives=("objective", "area"))
    scheduler, runner = _scheduler(client, scheduler_config, n_jobs=3)
    scheduler.set_container_objective(image, sum_command)
    scheduler.run_optimization(max_trials=5)
    runner.close()
    assert_sum_campaign(scheduler, trials=5, engine="apptainer", image=image, image_id=_expected_id(image))


def test_engine_is_guessed_from_a_sif_or_directory_image(image, sum_command, make_ax_client,
                                                         scheduler_config) -> None:
    """No engine configured: a SIF file or a directory goes to apptainer."""
    client = make_ax_client("app_guess")
    runner = JobLibRunner(n_jobs=1)
    scheduler = AxScheduler(client, runner, config=scheduler_config)
    scheduler.set_container_objective(image, sum_command)
    scheduler.run_optimization(max_trials=1)
    runner.close()
    record = scheduler.trials[0]
    assert record.status == "COMPLETED", record.message
    assert record.handle.extra["container_engine"] == "apptainer"


def test_container_side_paths_override_the_host_environment(apptainer, make_ax_client, scheduler_config,
                                                            monkeypatch) -> None:
    """Inside, the trial directory is /aid2e/trial and the working directory, and AID2E_* point at
    the in-container paths even though Apptainer passes the host's environment in."""
    monkeypatch.setenv("AID2E_PARAMS_FILE", "/host/side/params.json")
    client = make_ax_client("app_paths")
    scheduler, runner = _scheduler(client, scheduler_config, n_jobs=1)
    script = ('pwd > where.txt; echo "$AID2E_PARAMS_FILE $AID2E_RESULT_FILE $AID2E_TRIAL_INDEX '
              '$AID2E_EXPERIMENT" >> where.txt; echo "{\\"objective\\": 1}" > "$AID2E_RESULT_FILE"')
    scheduler.set_container_objective(apptainer["sif"], f"sh -c '{script}'")
    scheduler.run_optimization(max_trials=1)
    runner.close()
    record = scheduler.trials[0]
    assert record.status == "COMPLETED", record.message
    lines = (Path(record.handle.workdir) / "where.txt").read_text().splitlines()
    assert lines == ["/aid2e/trial", "/aid2e/trial/params.json /aid2e/trial/result.json 0 app_paths"]


NASTY = ["a b;$(touch /tmp/aid2e-pwned)", "`id` | cat > *", "'q' \"d\" \\ && $HOME\nnew line",
         'commas, "quotes", and=equals', "\\$HOME \\\\ \\` ${PATH:-x} $((1+1)) ~ !x #c"]


@pytest.mark.parametrize("options", [(), ("--no-eval",)], ids=["eval", "no-eval"])
def test_shell_metacharacters_pass_unchanged(options, apptainer, make_ax_client, scheduler_config) -> None:
    """String parameters, command arguments and environment values full of shell syntax, commas
    and quotes arrive byte for byte (Apptainer evaluates environment values: they are escaped)."""
    client = make_ax_client(f"app_meta{len(options)}", parameters=[
        {"name": "word", "type": "choice", "values": NASTY, "value_type": "str", "is_ordered": False,
         "sort_values": False},
    ])
    scheduler, runner = _scheduler(client, scheduler_config, n_jobs=3)
    arg = "$(echo no) ; `x` 'it''s' \"q\" * a,b"
    env = {f"MY_VAR{i}": value for i, value in enumerate(NASTY)}
    script = ('cp params.json seen.json; printf "%s" "$1" > arg.txt; '
              'for i in 0 1 2 3 4; do eval "printf %s \\"\\$MY_VAR$i\\"" > env$i.txt; done; '
              'echo \'{"objective": 0}\' > "$AID2E_RESULT_FILE"')
    scheduler.set_container_objective(apptainer["sif"], ["sh", "-c", script, "sh", arg], env=env,
                                      options=list(options))
    with scheduler.batch_trial_context() as batch:
        for word in NASTY:
            batch.add_trial({"word": word})
    runner.close()
    assert len(batch.results) == len(NASTY)
    for record in batch.results.values():
        assert record.status == "COMPLETED", record.message
        workdir = Path(record.handle.workdir)
        assert json.loads((workdir / "seen.json").read_text()) == record.parameters
        assert (workdir / "arg.txt").read_text() == arg
        for i, value in enumerate(NASTY):
            assert (workdir / f"env{i}.txt").read_text() == value
    assert not Path("/tmp/aid2e-pwned").exists()


def test_nonzero_exit_is_a_failed_trial_with_the_message(image, make_ax_client, scheduler_config) -> None:
    client = make_ax_client("app_fail")
    scheduler, runner = _scheduler(client, {**scheduler_config, "tolerated_failure_rate": 1.0})
    scheduler.set_container_objective(image, ["sh", "-c", "echo simulation diverged >&2; exit 7"])
    scheduler.run_optimization(max_trials=2)
    runner.close()
    assert len(scheduler.trials) == 2
    for record in scheduler.trials.values():
        assert record.status == "FAILED"
        assert "exited with code 7" in record.message and "simulation diverged" in record.message


def test_command_not_in_image_fails_with_the_engines_message(image, make_ax_client, scheduler_config) -> None:
    client = make_ax_client("app_nocmd")
    scheduler, runner = _scheduler(client, {**scheduler_config, "tolerated_failure_rate": 1.0}, n_jobs=1)
    scheduler.set_container_objective(image, "/no/such/simulation --fast")
    scheduler.run_optimization(max_trials=1)
    runner.close()
    record = scheduler.trials[0]
    assert record.status == "FAILED"
    assert "/no/such/simulation" in record.message and "no such file" in record.message.lower()


def test_missing_image_is_a_config_error_when_set(apptainer, tmp_path, make_ax_client, scheduler_config) -> None:
    client = make_ax_client("app_noimg")
    scheduler, runner = _scheduler(client, scheduler_config, n_jobs=1)
    with pytest.raises(ConfigError, match="no such image file or directory: .*missing.sif"):
        scheduler.set_container_objective(str(tmp_path / "missing.sif"), "true")
    assert len(client.experiment.trials) == 0
    runner.close()


def test_image_removed_before_the_trial_runs_is_a_failed_trial(apptainer, tmp_path, make_ax_client,
                                                               scheduler_config) -> None:
    """The SIF is checked when the objective is set; gone when the trial runs, the trial fails
    with Apptainer's message and the handle says the identity was not resolved."""
    sif = tmp_path / "sim.sif"
    sif.write_bytes(Path(apptainer["sif"]).read_bytes())
    client = make_ax_client("app_goneimg")
    scheduler, runner = _scheduler(client, {**scheduler_config, "tolerated_failure_rate": 1.0}, n_jobs=1)
    scheduler.set_container_objective(str(sif), "true")
    sif.unlink()
    scheduler.run_optimization(max_trials=1)
    runner.close()
    record = scheduler.trials[0]
    assert record.status == "FAILED"
    assert "sim.sif" in record.message
    assert record.handle.extra["container_image_id"].startswith("unresolved: no such image file")


def test_default_resources_set_no_limits(apptainer, tmp_path, run_request) -> None:
    request = JobRequest(experiment="lim", trial_index=0, parameters={}, workdir=str(tmp_path / "trial_0"),
                         job=ContainerJob(image=apptainer["sif"], command=["sh", "-c", CGROUP_LIMITS],
                                          binds={"/sys/fs/cgroup": "/hostcg:ro"}))
    argv = adapt(request, None).job.argv
    assert "--cpus" not in argv and "--memory" not in argv
    result, workdir = run_request(request)
    assert result.state == JobState.COMPLETED, result.message
    limits = dict(line.split(" ", 1) for line in (workdir / "stdout.txt").read_text().splitlines())
    assert limits["cpu"] in ("-1 100000", "max 100000")  # no CPU quota


def test_resources_become_cgroup_limits(apptainer_limits, tmp_path, run_request, memory_hog) -> None:
    """cpus and memory are applied to the container's cgroups (read back from inside), and a
    command that needs more memory than asked for is killed: a FAILED trial."""
    apptainer = apptainer_limits
    spec = ContainerJob(image=apptainer["sif"], command=["sh", "-c", CGROUP_LIMITS],
                        binds={"/sys/fs/cgroup": "/hostcg:ro"})
    request = JobRequest(experiment="lim", trial_index=0, parameters={}, job=spec,
                         workdir=str(tmp_path / "trial_0"), resources=Resources(cpus=2, memory="96M"))
    result, workdir = run_request(request)
    assert result.state == JobState.COMPLETED, result.message
    limits = dict(line.split(" ", 1) for line in (workdir / "stdout.txt").read_text().splitlines())
    assert limits["memory"] == str(96 * 1024 ** 2)
    assert limits["cpu"] == "200000 100000"  # quota and period, v1 and v2 alike
    hog = JobRequest(experiment="lim", trial_index=1, parameters={}, workdir=str(tmp_path / "trial_1"),
                     job=ContainerJob(image=apptainer["sif"], command=memory_hog), resources=Resources(memory="64M"))
    result, _ = run_request(hog)
    assert result.state == JobState.FAILED
    assert "137" in result.message or "killed" in result.message.lower(), result.message
    # the same command within its means completes
    result, workdir = run_request(JobRequest(experiment="lim", trial_index=2, parameters={},
                                      workdir=str(tmp_path / "trial_2"),
                                      job=ContainerJob(image=apptainer["sif"], command=memory_hog),
                                      resources=Resources(memory="1G")))
    assert (workdir / "stdout.txt").read_text().strip() == "268435456"


@pytest.mark.timeout(120)
def test_canceled_trial_leaves_no_process_running(apptainer, tmp_path) -> None:
    """Canceling the trial ends the command in the container (its host PID disappears)."""
    request = JobRequest(experiment="cancel", trial_index=0, parameters={}, workdir=str(tmp_path / "trial_0"),
                         job=ContainerJob(image=apptainer["sif"],
                                          command=["sh", "-c", "sleep 300 & echo $! > child.pid; wait"]))
    runner = JobLibRunner(n_jobs=1)
    try:
        handle = runner.submit(adapt(request, runner))
        pid_file = tmp_path / "trial_0" / "child.pid"
        deadline = time.time() + 30
        while not pid_file.exists() and time.time() < deadline:
            time.sleep(0.1)
        assert pid_file.exists(), "the container never started"
        child = int(pid_file.read_text())
        assert "sleep" in Path(f"/proc/{child}/cmdline").read_text()
        runner.cancel(handle)
        deadline = time.time() + 30
        while Path(f"/proc/{child}").exists() and time.time() < deadline:
            time.sleep(0.2)
        assert not Path(f"/proc/{child}").exists(), f"the container's sleep (pid {child}) still runs after cancel"
    finally:
        runner.close()


def test_the_singularity_name_runs_the_same_engine(apptainer, sum_command, tmp_path, run_request) -> None:
    """``engine="singularity"`` (what spython and older sites call it) runs through the alias."""
    request = JobRequest(experiment="alias", trial_index=0, parameters={"x": 0.25, "y": 0.5},
                         workdir=str(tmp_path / "trial_0"),
                         job=ContainerJob(image=apptainer["rootfs"], command=sum_command, engine="singularity"))
    adapted = adapt(request, None)
    assert adapted.labels["container_engine"] == "singularity"
    result, _ = run_request(request)
    assert result.state == JobState.COMPLETED, result.message
    assert result.metrics["objective"].mean == 0.75 and result.metrics["area"].mean == 0.125
    version = subprocess.run(["singularity", "--version"], capture_output=True, text=True, timeout=30)
    assert version.returncode == 0 and "apptainer" in version.stdout, os.environ.get("PATH")


def test_env_file_left_as_a_symlink_is_replaced_not_written_through(apptainer, tmp_path) -> None:
    """A trial's directory is the container's: what an earlier attempt left at container.env (a
    symlink to a host file) must not make the next attempt write into that host file."""
    host_file = tmp_path / "host.conf"
    host_file.write_text("keep me\n")
    workdir = tmp_path / "trial_0"
    workdir.mkdir()
    (workdir / "container.env").symlink_to(host_file)
    request = JobRequest(experiment="env", trial_index=0, parameters={}, workdir=str(workdir),
                         job=ContainerJob(image=apptainer["sif"], command=["true"]))
    adapt(request, None)
    assert host_file.read_text() == "keep me\n"
    assert not (workdir / "container.env").is_symlink()
    assert "AID2E_TRIAL_INDEX" in (workdir / "container.env").read_text()
