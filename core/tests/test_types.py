"""aid2e.types: parse_metrics, Measurement and JobResult validation."""

from __future__ import annotations

import math

import pytest

from aid2e.types import JobResult, JobState, Measurement, parse_metrics


def test_parse_metrics_accepts_number_pair_and_dict():
    got = parse_metrics({"a": 1, "b": 2.5, "c": (3.0, 0.1), "d": [4, None], "e": {"mean": 5, "sem": 0.2},
                         "f": {"mean": 6}})
    assert got == {
        "a": Measurement(mean=1.0),
        "b": Measurement(mean=2.5),
        "c": Measurement(mean=3.0, sem=0.1),
        "d": Measurement(mean=4.0),
        "e": Measurement(mean=5.0, sem=0.2),
        "f": Measurement(mean=6.0),
    }
    assert all(isinstance(m.mean, float) for m in got.values())


@pytest.mark.parametrize(
    "raw",
    [
        math.nan,
        math.inf,
        -math.inf,
        True,
        False,
        "1.5",
        b"1.5",
        None,
        (math.nan, 0.1),
        (1.0, math.inf),
        (1.0, "0.1"),
        (1.0,),
        (1.0, 2.0, 3.0),
        {},
        {"sem": 0.1},
        {"mean": 1.0, "sem": 0.1, "n": 10},
        {"mean": True},
        {"mean": math.nan},
        [1, 2, 3],
        object(),
    ],
    ids=repr,
)
def test_parse_metrics_rejects_bad_values_naming_the_metric(raw):
    with pytest.raises(ValueError, match="'loss'"):
        parse_metrics({"loss": raw})


@pytest.mark.parametrize("raw", [(1.0, -0.5), [1.0, -1e-12], {"mean": 1.0, "sem": -2}], ids=repr)
def test_parse_metrics_refuses_a_negative_sem(raw):
    with pytest.raises(ValueError, match=r"'loss': sem -.* is negative"):
        parse_metrics({"loss": raw})


def test_a_function_result_with_a_negative_sem_fails_its_trial():
    from aid2e.jobs.function import result_of_call

    result = result_of_call(("value", {"loss": (1.0, -0.5)}))
    assert result.state is JobState.FAILED and "'loss': sem -0.5 is negative" in result.message


def test_parse_metrics_unknown_keys_are_listed():
    with pytest.raises(ValueError, match=r"'loss'.*unknown keys \['n'\]"):
        parse_metrics({"loss": {"mean": 1.0, "n": 3}})


@pytest.mark.parametrize("value", [{}, 1.0, [("loss", 1.0)], "loss", None, True])
def test_parse_metrics_needs_a_non_empty_dict(value):
    with pytest.raises(ValueError, match="dict|no metrics"):
        parse_metrics(value)


def test_parse_metrics_rejects_non_string_names():
    with pytest.raises(ValueError, match="metric names must be strings"):
        parse_metrics({1: 1.0})


def test_parse_metrics_error_names_the_bad_metric_among_good_ones():
    with pytest.raises(ValueError) as info:
        parse_metrics({"good": 1.0, "bad": math.nan})
    assert "'bad'" in str(info.value) and "'good'" not in str(info.value)


@pytest.mark.parametrize("kwargs", [{"mean": math.nan}, {"mean": math.inf}, {"mean": 1.0, "sem": math.nan},
                                    {"mean": 1.0, "sem": -math.inf}])
def test_measurement_must_be_finite(kwargs):
    with pytest.raises(ValueError, match="finite"):
        Measurement(**kwargs)


def test_measurement_converts_to_float():
    m = Measurement(mean=1, sem=0)
    assert (m.mean, m.sem) == (1.0, 0.0) and isinstance(m.mean, float)
    assert Measurement(mean=2).sem is None


@pytest.mark.parametrize("state", [JobState.QUEUED, JobState.ACTIVE])
def test_job_result_needs_a_final_state(state):
    assert not state.is_final
    with pytest.raises(ValueError, match=state.value):
        JobResult(state=state)


@pytest.mark.parametrize("state", [JobState.COMPLETED, JobState.FAILED, JobState.CANCELED])
def test_job_result_final_states(state):
    assert state.is_final
    assert JobResult(state=state, message="m").state is state


@pytest.mark.parametrize("memory, mb", [("512M", 512), ("8G", 8192), ("8g", 8192), ("4000", 4000),
                                        ("2048K", 2), ("1T", 1024 * 1024), (None, None)])
def test_resources_memory_in_mb(memory, mb):
    from aid2e.types import Resources

    assert Resources(memory=memory).memory_mb() == mb


@pytest.mark.parametrize("walltime, seconds", [("30", 1800), ("30:15", 1815), ("02:00:00", 7200),
                                               ("1-02", 93600), ("1-02:30", 95400), ("1-00:00:30", 86430),
                                               (None, None)])
def test_resources_walltime_read_as_slurm_reads_time(walltime, seconds):
    from aid2e.types import Resources

    assert Resources(walltime=walltime).walltime_seconds() == seconds


def test_resources_bad_sizes_say_what_is_wrong():
    from aid2e.types import Resources

    with pytest.raises(ValueError, match="is not a size like"):
        Resources(memory="lots").memory_mb()
    with pytest.raises(ValueError, match="is not HH:MM:SS"):
        Resources(walltime="two hours").walltime_seconds()


def test_one_line_of_text_and_of_an_exception():
    from aid2e.errors import message_line, one_line

    assert one_line("  a\n\n  b   c \n") == "a | b c"
    assert one_line("1\n2\n3\n4", last=3) == "2 | 3 | 4"
    assert one_line("\n \n", empty="(no message)") == "(no message)"
    assert message_line(OSError("disk\nfull")) == "disk | full"
    assert message_line(KeyboardInterrupt()) == "KeyboardInterrupt"


def test_the_aid2e_err_convention_gives_a_metric_its_sem():
    from aid2e.types import parse_metrics

    assert parse_metrics({"piK": 3.9, "piK_err": 0.25, "acceptance": 0.8}) == {
        "piK": Measurement(mean=3.9, sem=0.25), "acceptance": Measurement(mean=0.8)}
    assert parse_metrics({"width_err": 2.0}) == {"width_err": Measurement(mean=2.0)}  # no 'width': a metric
    for bad, message in [({"a": (1.0, 0.1), "a_err": 0.2}, "has a sem twice"),
                         ({"a": 1.0, "a_err": -1.0}, "negative"),
                         ({"a": 1.0, "a_err": [0.1, 0.2]}, "give it as a bare number")]:
        with pytest.raises(ValueError, match=message):
            parse_metrics(bad)
