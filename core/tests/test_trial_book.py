"""The trial book (aid2e.trials): the one owner of each trial's state and its jobs in flight."""

from __future__ import annotations

from aid2e.trials import TrialBook
from aid2e.types import JobHandle


def handle(native_id: str) -> JobHandle:
    return JobHandle(backend="simulated", native_id=native_id, workdir=f"/tmp/{native_id}", submitted_at=0.0)


def test_a_trial_is_in_one_place_at_a_time():
    book = TrialBook()
    record = book.open(0, {"x": 1})
    token = record.token
    assert book.awaiting() == [(0, "")] and book.in_flight == 1 and not book.jobs()
    entry = book.submitted(0, handle("a"))
    assert book.awaiting() == [] and book.jobs() == [entry] and book.in_flight == 1
    assert record.handle == entry.handle and book.following(0)

    book.new_attempt(0)  # a retry: new token, no handle, waiting again
    assert record.attempts == 2 and record.token != token and record.handle is None
    assert book.awaiting() == [(0, "")] and not book.jobs() and book.in_flight == 1

    book.submitted(0, handle("b"))
    book.close(0, "COMPLETED", at=5.0)
    assert record.status == "COMPLETED" and record.ended_at == 5.0
    assert book.in_flight == 0 and not book.jobs() and not book.awaiting()
    assert book.counts() == {"RUNNING": 0, "COMPLETED": 1, "FAILED": 0, "ABANDONED": 0, "PENALIZED": 0}


def test_jobs_left_running_are_neither_followed_nor_waiting():
    book = TrialBook()
    for index in range(3):
        book.open(index, {})
        book.submitted(index, handle(str(index)))
    left, stopped, followed = book.jobs()
    book.unfollow(left)  # outlives the controller: keeps its handle
    book.unfollow(stopped, keep_handle=False)  # stopped at SIGTERM: runs again on resume
    assert [e.trial for e in book.jobs()] == [followed.trial]
    assert [r.index for r in book.unfollowed_running()] == [0, 1]
    assert book[0].handle is not None and book[1].handle is None
    book.follow(0)
    assert sorted(e.trial for e in book.jobs()) == [0, 2]


def test_closing_keeps_an_earlier_attempts_message_unless_told():
    book = TrialBook()
    record = book.open(0, {})
    record.message = "attempt 1 failed: node lost"
    book.close(0, "COMPLETED")
    assert record.message == "attempt 1 failed: node lost" and record.ended_at is not None
    record2 = book.open(1, {})
    book.close(1, "FAILED", message="exit code 2")
    assert record2.message == "exit code 2"


def test_a_retry_left_for_resume_is_not_waiting():
    book = TrialBook()
    book.open(0, {})
    book.submitted(0, handle("a"))
    book.new_attempt(0, submit=False)
    assert book.awaiting() == [] and book.in_flight == 0
    assert [r.index for r in book.unfollowed_running()] == [0]
