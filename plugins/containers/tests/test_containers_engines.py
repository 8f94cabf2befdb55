"""Container objectives in real engines: podman and a private dockerd (set up by
scripts/services/containers.sh), through AxScheduler and JobLibRunner, as users run them."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import attrs
import pytest

from aid2e import AxScheduler
from aid2e.errors import ConfigError
from aid2e.types import JobRequest, JobState, Resources
from aid2e_containers import ContainerJob, adapt
from aid2e_containers.engines import inspect_oci, resolve_engine
from aid2e_joblib import JobLibRunner

from .conftest import assert_sum_campaign

pytestmark = pytest.mark.timeout(180)


def _scheduler(client, engine, config, n_jobs=4):
    runner = JobLibRunner(n_jobs=n_jobs, config={"container_engine": engine})
    return AxScheduler(client, runner, config=config), runner


def _engine_image_id(engine: str, image: str) -> str:
    return inspect_oci(resolve_engine(ContainerJob(image=image, command="true", engine=engine), None), image).image_id


def test_seed_container_example_values_exact(engine, test_image, sum_command, make_ax_client,
                                               scheduler_config) -> None:
    """The seed's container example, on JobLibRunner(config={"container_engine": ...}): every
    trial's metrics are exactly what its parameters imply; the handle keeps image and image ID."""
    client = make_ax_client(f"seed_{engine}", objectives=("objective", "area"))
    scheduler, runner = _scheduler(client, engine, scheduler_config)
    scheduler.set_container_objective(container_image=test_image, container_command=sum_command)
    scheduler.run_optimization(max_trials=6)
    runner.close()
    image_id = _engine_image_id(engine, test_image)
    assert image_id.startswith("sha256:")
    # the handles (with the container labels) are in the saved state too
    assert_sum_campaign(scheduler, trials=6, engine=engine, image=test_image, image_id=image_id)
    for record in scheduler.trials.values():
        assert record.handle.extra["container_name"].startswith(f"aid2e-seed_{engine}-t{record.index}-")


def test_string_command_and_container_side_paths(engine, test_image, make_ax_client, scheduler_config) -> None:
    """A string command is split like a shell would; inside, the trial directory is /aid2e/trial,
    the working directory, and AID2E_* point at the in-container paths."""
    client = make_ax_client(f"paths_{engine}")
    scheduler, runner = _scheduler(client, engine, scheduler_config, n_jobs=1)
    script = ('pwd > where.txt; echo "$AID2E_PARAMS_FILE $AID2E_RESULT_FILE $AID2E_TRIAL_INDEX" >> where.txt; '
              'echo "{\\"objective\\": 1}" > "$AID2E_RESULT_FILE"')
    scheduler.set_container_objective(test_image, f"sh -c '{script}'")
    scheduler.run_optimization(max_trials=1)
    runner.close()
    record = scheduler.trials[0]
    assert record.status == "COMPLETED", record.message
    lines = (Path(record.handle.workdir) / "where.txt").read_text().splitlines()
    assert lines == ["/aid2e/trial", "/aid2e/trial/params.json /aid2e/trial/result.json 0"]


def test_command_is_the_containers_own_process(engine, test_image, make_ax_client, scheduler_config) -> None:
    """No shell or wrapper between the engine and the command: it is PID 1 in its container."""
    client = make_ax_client(f"pid_{engine}")
    scheduler, runner = _scheduler(client, engine, scheduler_config, n_jobs=1)
    scheduler.set_container_objective(
        test_image,
        ["sh", "-c", 'tr "\\0" " " < /proc/1/cmdline > pid1.txt; echo "{\\"objective\\": $$}" > "$AID2E_RESULT_FILE"'])
    scheduler.run_optimization(max_trials=1)
    runner.close()
    record = scheduler.trials[0]
    assert record.status == "COMPLETED", record.message
    assert record.metrics["objective"].mean == 1.0
    assert (Path(record.handle.workdir) / "pid1.txt").read_text().startswith("sh -c tr ")


def test_shell_metacharacters_pass_unchanged(engine, test_image, make_ax_client, scheduler_config) -> None:
    """String parameters and command arguments full of shell syntax arrive byte for byte."""
    nasty = ["a b;$(touch /pwned)", "`id` | cat > *", "'q' \"d\" \\ && $HOME\nnew line"]
    client = make_ax_client(f"meta_{engine}", parameters=[
        {"name": "word", "type": "choice", "values": nasty, "value_type": "str", "is_ordered": False,
         "sort_values": False},
    ])
    scheduler, runner = _scheduler(client, engine, scheduler_config, n_jobs=3)
    arg = "$(echo no) ; `x` 'it''s' \"q\" *"
    scheduler.set_container_objective(
        test_image,
        ["sh", "-c", 'cp params.json seen.json; printf "%s" "$1" > arg.txt; printf "%s" "$MY_VAR" > env.txt; '
                     'echo \'{"objective": 0}\' > "$AID2E_RESULT_FILE"', "sh", arg],
        env={"MY_VAR": nasty[2]})
    with scheduler.batch_trial_context() as batch:
        for word in nasty:
            batch.add_trial({"word": word})
    runner.close()
    for record in batch.results.values():
        assert record.status == "COMPLETED", record.message
        workdir = Path(record.handle.workdir)
        assert json.loads((workdir / "seen.json").read_text()) == record.parameters
        assert (workdir / "arg.txt").read_text() == arg
        assert (workdir / "env.txt").read_text() == nasty[2]
    assert not Path("/pwned").exists()


def test_network_is_off_by_default_and_binds_work(engine, test_image, tmp_path, make_ax_client,
                                                  scheduler_config) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "calibration.txt").write_text("42\n")
    client = make_ax_client(f"net_{engine}")
    scheduler, runner = _scheduler(client, engine, scheduler_config, n_jobs=1)
    scheduler.set_container_objective(
        test_image,
        ["sh", "-c", 'ls /sys/class/net > net.txt; echo "{\\"objective\\": $(cat /data/calibration.txt)}" '
                     '> "$AID2E_RESULT_FILE"; touch /data/written 2>/dev/null; true'],
        binds={str(data): "/data:ro"})
    scheduler.run_optimization(max_trials=1)
    runner.close()
    record = scheduler.trials[0]
    assert record.status == "COMPLETED", record.message
    assert record.metrics["objective"].mean == 42.0
    assert (Path(record.handle.workdir) / "net.txt").read_text().split() == ["lo"]
    assert not (data / "written").exists()  # read-only bind


def test_nonzero_exit_is_a_failed_trial_with_the_message(engine, test_image, make_ax_client,
                                                         scheduler_config) -> None:
    client = make_ax_client(f"fail_{engine}")
    scheduler, runner = _scheduler(client, engine, {**scheduler_config, "tolerated_failure_rate": 1.0}, n_jobs=2)
    scheduler.set_container_objective(test_image, ["sh", "-c", "echo simulation diverged >&2; exit 7"])
    scheduler.run_optimization(max_trials=2)
    runner.close()
    for record in scheduler.trials.values():
        assert record.status == "FAILED"
        assert "exited with code 7" in record.message and "simulation diverged" in record.message


def test_command_not_in_image_fails_with_the_engines_message(engine, test_image, make_ax_client,
                                                             scheduler_config) -> None:
    client = make_ax_client(f"nocmd_{engine}")
    scheduler, runner = _scheduler(client, engine, {**scheduler_config, "tolerated_failure_rate": 1.0}, n_jobs=1)
    scheduler.set_container_objective(test_image, "/no/such/simulation --fast")
    scheduler.run_optimization(max_trials=1)
    runner.close()
    record = scheduler.trials[0]
    assert record.status == "FAILED"
    assert "/no/such/simulation" in record.message and "no such file" in record.message.lower()


def test_missing_image_is_a_config_error_when_set(engine, make_ax_client, scheduler_config) -> None:
    client = make_ax_client(f"noimg_{engine}")
    scheduler, runner = _scheduler(client, engine, scheduler_config, n_jobs=1)
    with pytest.raises(ConfigError, match=f"'localhost/aid2e-missing:1' is not in {engine}'s local images"):
        scheduler.set_container_objective("localhost/aid2e-missing:1", "true")
    assert len(client.experiment.trials) == 0
    runner.close()


def test_image_missing_when_the_trial_runs_is_a_failed_trial(engine, make_ax_client, scheduler_config) -> None:
    """An image that is not there when the trial runs (here: not checked at set time) fails the
    trial with the engine's own message; the handle says the ID was not resolved."""
    client = make_ax_client(f"goneimg_{engine}")
    scheduler, runner = _scheduler(client, engine, {**scheduler_config, "tolerated_failure_rate": 1.0}, n_jobs=1)
    scheduler.set_container_objective("localhost/aid2e-missing:1", "true", verify_image=False)
    scheduler.run_optimization(max_trials=1)
    runner.close()
    record = scheduler.trials[0]
    assert record.status == "FAILED"
    assert "exited with code 125" in record.message
    assert "aid2e-missing" in record.message
    assert record.handle.extra["container_image_id"].startswith("unresolved: ")


def test_adapted_job_is_a_plain_script_job(engine, test_image, tmp_path) -> None:
    """What any backend receives: an argv running the engine CLI, pinned to the image ID."""
    request = JobRequest(experiment="e", trial_index=0, parameters={"x": 0.5}, job=ContainerJob(
        image=test_image, command="true", engine=engine), workdir=str(tmp_path / "trial_0"))
    adapted = adapt(request, None)
    argv = list(adapted.job.argv)
    assert Path(argv[0]).name == engine
    assert argv[argv.index("true") - 1] == adapted.labels["container_image_id"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.timeout(120)
def test_canceled_trial_leaves_no_container_running(engine, test_image, tmp_path) -> None:
    """busybox sh as PID 1 ignores SIGTERM, so killing the engine's CLI alone would leave the
    container running in the daemon: the job's on-cancel command removes it."""
    import time

    request = JobRequest(experiment="cancel", trial_index=0, parameters={"x": 1.0},
                         job=ContainerJob(image=test_image, command=["sh", "-c", "sleep 300"], engine=engine),
                         workdir=str(tmp_path / "trial_0"))
    runner = JobLibRunner(n_jobs=1)
    try:
        adapted = adapt(request, runner)
        name = adapted.labels["container_name"]
        handle = runner.submit(adapted)
        listed = ""
        deadline = time.time() + 30
        while name not in listed and time.time() < deadline:
            listed = subprocess.run([engine, "ps", "--format", "{{.Names}}"], capture_output=True, text=True).stdout
            time.sleep(0.2)
        assert name in listed, "the container never started"
        runner.cancel(handle)
        deadline = time.time() + 30
        while not runner.poll([handle])[handle.native_id].is_final and time.time() < deadline:
            runner.wait([handle], 1.0)
        # the launcher runs the on-cancel command after the job is CANCELED: wait for its effect, bounded
        # (without it the container would run its 300 s: busybox sh as PID 1 ignores SIGTERM)
        deadline = time.time() + 30
        still = [name]
        while name in still and time.time() < deadline:
            still = subprocess.run([engine, "ps", "-a", "--format", "{{.Names}}"], capture_output=True,
                                   text=True).stdout.split()
            time.sleep(0.2)
        assert name not in still, f"container {name} still exists 30 s after cancel"
    finally:
        runner.close()


#: The container's own limits, as its cgroup (v1 or v2) mounted at /sys/fs/cgroup shows them.
OCI_LIMITS = r"""
if [ -e /sys/fs/cgroup/memory/memory.limit_in_bytes ]; then
    echo "memory $(cat /sys/fs/cgroup/memory/memory.limit_in_bytes)"
    echo "cpu $(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us) $(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us)"
else
    echo "memory $(cat /sys/fs/cgroup/memory.max)"
    echo "cpu $(cat /sys/fs/cgroup/cpu.max)"
fi
echo '{"objective": 0}' > "$AID2E_RESULT_FILE"
"""


def _limits(workdir: Path) -> dict[str, str]:
    return dict(line.split(" ", 1) for line in (workdir / "stdout.txt").read_text().splitlines())


def test_resources_are_applied_to_the_container(engine, test_image, tmp_path, run_request) -> None:
    """Resources(cpus, memory) become the container's cgroup limits (read inside it); the default
    Resources() adds no flag and leaves the CPU quota unset."""
    job = ContainerJob(image=test_image, command=["sh", "-c", OCI_LIMITS], engine=engine)
    limited = JobRequest(experiment="lim", trial_index=0, parameters={}, job=job, workdir=str(tmp_path / "trial_0"),
                         resources=Resources(cpus=2, memory="96M"))
    result, workdir = run_request(limited)
    assert result.state == JobState.COMPLETED, result.message
    assert _limits(workdir) == {"memory": str(96 * 1024 ** 2), "cpu": "200000 100000"}
    default = attrs.evolve(limited, trial_index=1, workdir=str(tmp_path / "trial_1"), resources=Resources())
    argv = adapt(default, None).job.argv
    assert not any(a.startswith(("--cpus", "--memory")) for a in argv)
    result, workdir = run_request(default)
    assert result.state == JobState.COMPLETED, result.message
    limits = _limits(workdir)
    assert limits["cpu"] in ("-1 100000", "max 100000")
    assert limits["memory"] != str(96 * 1024 ** 2)


def test_command_over_its_memory_limit_is_a_failed_trial(engine, test_image, tmp_path, run_request,
                                                         memory_hog) -> None:
    """256 MiB of awk string in a 64 MiB container is killed (137); with 1 GiB it completes."""
    job = ContainerJob(image=test_image, command=memory_hog, engine=engine)
    small = JobRequest(experiment="oom", trial_index=0, parameters={}, job=job, workdir=str(tmp_path / "trial_0"),
                       resources=Resources(memory="64M"))
    result, _ = run_request(small)
    assert result.state == JobState.FAILED
    assert "exited with code 137" in result.message, result.message
    big = attrs.evolve(small, trial_index=1, workdir=str(tmp_path / "trial_1"), resources=Resources(memory="1G"))
    result, workdir = run_request(big)
    assert (workdir / "stdout.txt").read_text().strip() == "268435456", result.message

