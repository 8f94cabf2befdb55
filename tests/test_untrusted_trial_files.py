"""A campaign whose trials leave hostile or odd files still ends, each such trial FAILED with its
reason and nothing of a host file in messages, logs or saved state; a runner whose polls fail is
polled once per monitoring_interval, not as fast as its wait returns."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pytest

import aid2e
from aid2e.testing.conformance import HOSTILE_RESULTS, SECRET, BackendConformance
from aid2e_joblib import JobLibRunner


@pytest.fixture
def secret(tmp_path) -> Path:
    """A host file outside the trial directories, whose content must never show."""
    path = tmp_path / "outside" / "secret.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"objective": 1.0, "note": SECRET}))
    return path


def hostile_campaign_script(tmp_path, secret_path) -> str:
    """A script objective: trial i < len(HOSTILE_RESULTS) runs the i-th hostile body, the others
    write a healthy result."""
    bodies = [body.replace("params['secret']", repr(str(secret_path))) for body in HOSTILE_RESULTS.values()]
    path = BackendConformance.write_script(tmp_path, "campaign", f"""
        HOSTILE = {bodies!r}
        index = int(os.environ["AID2E_TRIAL_INDEX"])
        if index < len(HOSTILE):
            exec(HOSTILE[index])
        else:
            write_result({{"objective": params["x"]}})
    """)
    return str(path)


def check_hostile_campaign(scheduler, tmp_path, log_text: str) -> None:
    """Every hostile trial FAILED with a one-line reason, the healthy ones COMPLETED; the host
    file's content is nowhere (messages, logs, saved state)."""
    names = list(HOSTILE_RESULTS)
    for index, record in scheduler.trials.items():
        if index < len(names):
            assert record.status == "FAILED", f"{names[index]}: {record.status} {record.message}"
            assert record.message and "\n" not in record.message, f"{names[index]}: {record.message!r}"
        else:
            assert record.status == "COMPLETED", record.message
    assert SECRET not in log_text
    for saved in scheduler.experiment_dir.glob("*.json"):
        assert SECRET not in saved.read_text(), f"a host file's content reached {saved.name}"


@pytest.mark.timeout(240)
def test_campaign_with_hostile_trial_files_ends_on_joblib(make_ax_client, tmp_path, secret, caplog):
    caplog.set_level(logging.DEBUG)
    scheduler = aid2e.AxScheduler(make_ax_client("hostile"), JobLibRunner(n_jobs=4),
                                  {"job_output_dir": str(tmp_path / "jobs"), "monitoring_interval": 0.5,
                                   "tolerated_failure_rate": 1.0})
    scheduler.set_script_objective(hostile_campaign_script(tmp_path, secret))
    scheduler.run_optimization(max_trials=len(HOSTILE_RESULTS) + 2)
    check_hostile_campaign(scheduler, tmp_path, caplog.text)
    fifo = scheduler.trials[list(HOSTILE_RESULTS).index("fifo")].message
    assert "result.json is a FIFO: aid2e reads only regular files in the trial directory" in fifo


class FailingPolls:
    """A runner whose first ``failures`` polls raise (a batch system that does not answer) and
    whose ``wait`` always reports a possible change (as when a job's status file shows its end)."""

    def __init__(self, inner, failures: int):
        self.inner, self.failures = inner, failures
        self.name, self.kinds = inner.name, inner.kinds
        self.polled_at: list[tuple[float, bool]] = []  # (when, failed)

    capacity = property(lambda self: self.inner.capacity)

    def start(self):
        self.inner.start()

    def submit(self, request):
        return self.inner.submit(request)

    def poll(self, handles):
        failing = self.failures > 0
        self.polled_at.append((time.monotonic(), failing))
        if failing:
            self.failures -= 1
            raise RuntimeError("squeue: error: Unable to contact slurm controller")
        return self.inner.poll(handles)

    def result(self, handle):
        return self.inner.result(handle)

    def cancel(self, handle):
        self.inner.cancel(handle)

    def wait(self, handles, timeout):
        return True

    def close(self):
        self.inner.close()


def quick(x, y):
    return {"objective": x + y}


@pytest.mark.timeout(120)
def test_failing_polls_back_off_to_one_per_monitoring_interval(make_ax_client, tmp_path):
    interval = 0.5
    runner = FailingPolls(JobLibRunner(n_jobs=1, pool="threading"), failures=4)
    scheduler = aid2e.AxScheduler(make_ax_client("backoff"), runner,
                                  {"job_output_dir": str(tmp_path), "monitoring_interval": interval})
    scheduler.set_objective_function(quick)
    scheduler.run_optimization(max_trials=1)
    assert scheduler.trials[0].status == "COMPLETED"
    pairs = zip(runner.polled_at, runner.polled_at[1:], strict=False)
    after_failure = [later - earlier for (earlier, failed), (later, _) in pairs if failed]
    assert len(after_failure) == 4
    # the next poll comes a monitoring_interval after the failed one (less a margin for the
    # instructions between the scheduler's clock reading and the runner's)
    assert min(after_failure) >= interval * 0.8, after_failure


@pytest.mark.timeout(300)
def test_campaign_with_hostile_trial_files_ends_on_slurm(make_ax_client, tmp_path, secret, caplog):
    """On the real Slurm one trial's unreadable result used to make every poll raise: the healthy
    trials were never collected and squeue ran as fast as it could. Now each bad trial fails
    alone and squeue runs about once per monitoring_interval."""
    from aid2e_psij import SlurmRunner
    from aid2e_psij.testing import require_slurm

    partition = require_slurm()["partition"]
    caplog.set_level(logging.DEBUG)
    trials = len(HOSTILE_RESULTS) + 2
    runner = SlurmRunner(partition=partition, time_limit="00:10:00",
                         config={"max_in_flight": trials, "status_grace": 5})
    scheduler = aid2e.AxScheduler(make_ax_client("hostile_slurm"), runner,
                                  {"job_output_dir": str(tmp_path / "jobs"), "monitoring_interval": 1,
                                   "tolerated_failure_rate": 1.0})
    scheduler.set_script_objective(hostile_campaign_script(tmp_path, secret))
    started = time.monotonic()
    scheduler.run_optimization(max_trials=trials)
    elapsed = time.monotonic() - started
    check_hostile_campaign(scheduler, tmp_path, caplog.text)
    # one squeue per tick, one when a job's end is seen, a few per failed job while Slurm finishes it
    assert runner.status_calls <= elapsed + 4 * trials, (runner.status_calls, elapsed)


#: A busybox shell script (fixed text, parameters are not in it) run in the container: trial i
#: leaves the i-th hostile file of HOSTILE_RESULTS, as a container sees its trial directory.
CONTAINER_HOSTILE = """
case "$AID2E_TRIAL_INDEX" in
  0) mkfifo "$AID2E_RESULT_FILE" ;;
  1) ln -s /dev/zero "$AID2E_RESULT_FILE" ;;
  2) ln -s "$SECRET_PATH" "$AID2E_RESULT_FILE" ;;
  3) mkdir "$AID2E_RESULT_FILE" ;;
  4) awk 'BEGIN { for (i = 0; i < 100000; i++) printf "["; for (i = 0; i < 100000; i++) printf "]" }' \
       > "$AID2E_RESULT_FILE" ;;
  5) printf '{"objective": 1%0400d}' 0 > "$AID2E_RESULT_FILE" ;;
  6) rm stderr.txt; mkfifo stderr.txt; exit 1 ;;
  *) echo '{"objective": 0.5}' > "$AID2E_RESULT_FILE" ;;
esac
"""


@pytest.mark.timeout(300)
def test_campaign_with_hostile_container_files_ends_on_podman(make_ax_client, tmp_path, secret, caplog):
    """The same through a bind-mounted trial directory: the container's symlink names a host path."""
    from aid2e.testing.requirements import require

    try:
        state = json.loads(Path("/var/lib/aid2e-containers/state.json").read_text())
    except (OSError, ValueError):
        state = {}
    require("podman", state.get("podman") == "ok", "podman is not usable here: run scripts/services/containers.sh")
    assert list(HOSTILE_RESULTS)[:7] == ["fifo", "dev-zero", "host-file", "directory", "deep-json", "huge-int",
                                         "fifo-stderr"], "CONTAINER_HOSTILE follows HOSTILE_RESULTS' order"
    caplog.set_level(logging.DEBUG)
    scheduler = aid2e.AxScheduler(make_ax_client("hostile_podman"), JobLibRunner(n_jobs=3),
                                  {"job_output_dir": str(tmp_path / "jobs"), "monitoring_interval": 0.5,
                                   "tolerated_failure_rate": 1.0})
    scheduler.set_container_objective(container_image=state.get("image", "localhost/aid2e-test:latest"),
                                      container_command=["sh", "-c", CONTAINER_HOSTILE],
                                      env={"SECRET_PATH": str(secret)}, engine="podman")
    scheduler.run_optimization(max_trials=len(HOSTILE_RESULTS) + 2)
    check_hostile_campaign(scheduler, tmp_path, caplog.text)
