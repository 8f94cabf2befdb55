"""The Ax owner thread (aid2e.ax_owner) against a fake bridge: orderings are forced with events,
never with sleeps, so each interleaving is reproduced every time."""

from __future__ import annotations

import threading

import pytest

from aid2e.ax_owner import AxOwner
from aid2e.errors import Aid2eError

BOUND = 10.0  # seconds a condition may take on a slow machine; never reached when things work


class GatedBridge:
    """Ax in miniature: no candidate until an outcome was applied (as BoTorch after Sobol).

    The first generation blocks at ``gate`` after it has decided (no data: nothing to give),
    so a test can report an outcome while that generation is still in progress.
    """

    def __init__(self) -> None:
        self.outcomes = 0
        self.calls = 0
        self.deciding = threading.Event()  # set once the first generation has decided
        self.gate = threading.Event()  # the first generation returns when this is set

    def next_trials(self, count):
        self.calls += 1
        seen = self.outcomes
        if self.calls == 1:
            self.deciding.set()
            assert self.gate.wait(BOUND)
        if not seen:
            return {}, False  # Ax wants data first (DataRequiredError)
        return {100 + i: {"x": 0.5} for i in range(count)}, False

    def generation_ignores_data(self):
        return False

    def generation_nodes(self, indices):
        return {i: "Gated" for i in indices if i != 101}  # Ax names no node for 101


def _outcome(bridge):
    bridge.outcomes += 1


def _wait_for(owner: AxOwner, condition) -> None:
    """Wait (bounded) for ``condition()``, woken by the owner's own notifications."""
    with owner._cond:
        assert owner._cond.wait_for(condition, BOUND), "condition not reached"


def test_an_outcome_reported_during_a_fruitless_generation_is_not_lost():
    """The "starved" race (issue 10, item 11): a generation that started before an outcome was
    reported ends empty (Ax had no data yet); that must not mark the owner starved, since the
    outcome it did not see may be exactly what Ax needed."""
    bridge = GatedBridge()
    owner = AxOwner(bridge)
    owner.start()
    try:
        owner.want(2)
        assert bridge.deciding.wait(BOUND)  # the first generation is under way, without data
        owner.report(_outcome)  # a trial completes meanwhile
        bridge.gate.set()  # the generation ends with nothing
        owner.wait_ready(BOUND)
        _wait_for(owner, lambda: owner.ready_count == 2 or owner.idle_without_candidates)
        assert owner.ready_count == 2, "the owner stayed starved although an outcome arrived"
        assert not owner.idle_without_candidates
        assert [i for i, _ in owner.take(2)] == [100, 101]
        made = owner.generations_of([100, 101, 7])  # the facts of the generation that made them, once
        assert set(made) == {100, 101} and made[100]["node"] == "Gated" and made[101]["node"] is None
        assert made[100]["size"] == 2 and made[100]["seconds"] >= 0 and made[100]["at"] > 0
        assert owner.generations_of([100]) == {}
    finally:
        bridge.gate.set()
        owner.stop()


def test_a_fruitless_generation_with_no_new_outcome_starves():
    """Without new outcomes the owner does not spin: it waits (idle) until one arrives."""
    bridge = GatedBridge()
    bridge.gate.set()
    owner = AxOwner(bridge)
    owner.start()
    try:
        owner.want(1)
        _wait_for(owner, lambda: owner.idle_without_candidates)
        assert bridge.calls == 1
        owner.report(_outcome)
        owner.wait_ready(BOUND)
        assert owner.take(1) == [(100, {"x": 0.5})]
    finally:
        owner.stop()


class FailingBridge:
    def next_trials(self, count):
        raise StopIteration  # what Ax raised for a finite 1e308 in the data

    def generation_ignores_data(self):
        return False


def test_a_generation_error_is_one_aid2e_line():
    owner = AxOwner(FailingBridge())
    owner.start()
    owner.want(1)
    owner.wait_ready(BOUND)
    with pytest.raises(Aid2eError) as info:
        owner.take(1)
    message = str(info.value)
    assert "\n" not in message and "StopIteration" in message and "Ax could not generate" in message
    owner.stop()
