"""The simulated backend and clock of aid2e.testing: what the loop tests rely on."""

from __future__ import annotations

import math

import pytest

from aid2e import serialize
from aid2e.errors import SubmitError
from aid2e.testing import BackendConformance, SimulatedBackend, SimulatedClock, SimulatedCluster, SimulatedJob
from aid2e.testing.simulator import execute
from aid2e.types import FunctionJob, JobHandle, JobRequest, JobResult, JobState


def request(index: int, token: str = "") -> JobRequest:
    return JobRequest(experiment="e", trial_index=index, parameters={"x": index}, job=FunctionJob(function=print),
                      workdir=f"/nowhere/trial_{index}", token=token or f"t{index}")


def test_the_clock_moves_only_forward_and_only_when_told():
    clock = SimulatedClock(start=100.0)
    assert (clock.time(), clock.monotonic()) == (100.0, 0.0)
    clock.sleep(5)
    clock.advance(2.5)
    assert (clock.time(), clock.monotonic()) == (107.5, 7.5)
    with pytest.raises(ValueError):
        clock.advance(-1)


def test_jobs_queue_run_and_end_on_the_clock():
    backend = SimulatedBackend(plan=lambda r: SimulatedJob(queue=10, run=20, metrics={"m": (1.0, 0.1)}))
    handle = backend.submit(request(0))
    assert backend.poll([handle]) == {"1": JobState.QUEUED}
    assert backend.wait([handle], 5) is False and backend.clock.monotonic() == 5
    backend.clock.advance(5)
    assert backend.poll([handle]) == {"1": JobState.ACTIVE}
    assert backend.wait([handle], 3600) is True and backend.clock.monotonic() == 30  # jumped to the end
    assert backend.poll([handle]) == {"1": JobState.COMPLETED}
    result = backend.result(handle)
    assert result.metrics["m"].mean == 1.0 and result.metrics["m"].sem == 0.1
    backend.cancel(handle)  # after its end: nothing changes
    assert backend.poll([handle]) == {"1": JobState.COMPLETED} and backend.result(handle) == result


def test_cancel_a_running_job_and_a_job_that_never_ends():
    backend = SimulatedBackend(plan=lambda r: SimulatedJob(run=math.inf))
    handle = backend.submit(request(0))
    assert backend.wait([handle], 100) is False
    backend.cancel(handle)
    assert backend.poll([handle]) == {"1": JobState.CANCELED}
    assert backend.result(handle).state is JobState.CANCELED


def test_faults_refused_submissions_failing_polls_vanished_jobs():
    cluster = SimulatedCluster()
    backend = SimulatedBackend(cluster=cluster, plan=lambda r: SimulatedJob(run=1, vanish=r.trial_index == 1))
    cluster.fail_submissions = 1
    with pytest.raises(SubmitError):
        backend.submit(request(0))
    handles = [backend.submit(request(0)), backend.submit(request(1))]
    cluster.fail_polls = 1
    with pytest.raises(RuntimeError):
        backend.poll(handles)
    backend.clock.advance(1)
    assert backend.poll(handles) == {"1": JobState.COMPLETED, "2": JobState.FAILED}
    assert backend.result(handles[1]).retryable
    assert cluster.refused == [0] and cluster.submitted_trials() == [0, 1]


def test_a_second_backend_on_the_cluster_follows_and_adopts_the_first_ones_jobs():
    cluster = SimulatedCluster()
    first = SimulatedBackend(cluster=cluster, plan=lambda r: SimulatedJob(run=10, metrics={"m": 2}))
    handle = first.submit(request(0, token="abc"))
    again = serialize.from_json(serialize.to_json(handle), JobHandle)
    second = SimulatedBackend(cluster=cluster)
    assert second.adopt(request(0, token="abc")) == handle
    assert second.adopt(request(0, token="other")) is None
    cluster.clock.advance(10)
    assert second.poll([again]) == {"1": JobState.COMPLETED}
    assert second.result(again).metrics["m"].mean == 2


def test_a_jobs_planned_result_is_computed_once_so_poll_and_result_agree():
    """A plan whose result is a function (one that runs the job, or draws its outcome at random)
    is called once per job: polled three times and read twice, the job ended one way."""
    calls = []

    def draw(req: JobRequest) -> JobResult:
        calls.append(req.trial_index)
        state = JobState.COMPLETED if len(calls) % 2 else JobState.FAILED
        return JobResult(state=state, message="" if state is JobState.COMPLETED else "drawn to fail")

    backend = SimulatedBackend(plan=lambda r: SimulatedJob(run=1, result=draw))
    handle = backend.submit(request(0))
    backend.wait([handle], 10)
    states = [backend.poll([handle])["1"] for _ in range(3)]
    results = [backend.result(handle).state for _ in range(2)]
    assert states + results == [JobState.COMPLETED] * 5
    assert calls == [0]


def test_waiting_forever_on_jobs_that_never_end_is_an_error_not_a_clock_at_infinity():
    backend = SimulatedBackend(plan=lambda r: SimulatedJob(run=math.inf))
    handle = backend.submit(request(0))
    with pytest.raises(RuntimeError, match="never end"):
        backend.wait([handle], math.inf)
    assert backend.clock.monotonic() == 0
    with pytest.raises(ValueError, match="finite"):
        backend.clock.advance(math.inf)
    assert backend.wait([handle], 60) is False and backend.clock.monotonic() == 60


class TestSimulatedConformance(BackendConformance):
    """The conformance suite on the simulated backend: each job queues a simulated second, runs
    one, then is run for real by ``execute`` (so the suite's scripts and functions give their
    real results); the backends a test builds share one cluster, as a restarted controller's do."""

    def make_backend(self) -> SimulatedBackend:
        if not hasattr(self, "cluster"):
            self.cluster = SimulatedCluster()
        return SimulatedBackend(cluster=self.cluster, plan=lambda r: SimulatedJob(queue=1, run=1, result=execute))

    def test_cancel_stops_a_long_job(self) -> None:
        pytest.skip("nothing runs while a simulated job is active (it runs at its end), so there is no "
                    "process to stop; test_cancel_a_running_job_and_a_job_that_never_ends covers cancel")


def test_a_handle_the_cluster_never_had_polls_failed_and_is_worth_another_attempt():
    """Like a batch system that forgot a job (or a handle of another cluster): poll gives it a
    state (a loop waiting for one would wait forever), FAILED and retryable; cancel and wait
    take it without an exception."""
    stranger = SimulatedBackend(cluster=SimulatedCluster()).submit(request(0))
    backend = SimulatedBackend()
    assert backend.poll([stranger]) == {"1": JobState.FAILED}
    result = backend.result(stranger)
    assert result.state is JobState.FAILED and result.retryable and "no job 1" in result.message
    backend.cancel(stranger)
    assert backend.wait([stranger], 60) is True and backend.clock.monotonic() == 0


@pytest.mark.parametrize("make, words", [
    (lambda: SimulatedJob(run=-1), "run must be seconds >= 0"),
    (lambda: SimulatedJob(run=math.nan), "run must be seconds >= 0"),
    (lambda: SimulatedJob(queue=math.inf), "queue must be seconds >= 0, got inf"),
    (lambda: SimulatedJob(queue="10"), "queue must be seconds >= 0, got '10'"),
    (lambda: SimulatedBackend(capacity=0), "capacity must be a whole number >= 1, got 0"),
    (lambda: SimulatedBackend(capacity=2.5), "capacity must be a whole number >= 1, got 2.5"),
], ids=["negative-run", "nan-run", "endless-queue", "text-queue", "no-capacity", "fractional-capacity"])
def test_a_bad_plan_or_capacity_is_one_line_naming_it(make, words):
    """A NaN run was a job that silently never ended; no capacity, a loop that never submits."""
    with pytest.raises(ValueError, match=words) as caught:
        make()
    assert "\n" not in str(caught.value)
