"""The one reader of sizes and durations (aid2e.units), and every place that reads them through it."""

from __future__ import annotations

from datetime import timedelta

import pytest

from aid2e.config import SchedulerConfig
from aid2e.errors import ConfigError
from aid2e.types import Resources
from aid2e.units import duration_seconds, format_duration, size_bytes, size_mb


@pytest.mark.parametrize("value, size", [("4G", 4 * 1024 ** 3), ("1.5G", 3 * 512 * 1024 ** 2),
                                         ("512M", 512 * 1024 ** 2), ("512MiB", 512 * 1024 ** 2),
                                         ("4096", 4096 * 1024 ** 2), ("4096B", 4096),
                                         (4096, 4096), (" 8g ", 8 * 1024 ** 3), (None, None), ("", None)])
def test_sizes(value, size):
    assert size_bytes(value) == size


def test_size_in_mb():
    assert size_mb("1.5G") == 1536 and size_mb("2048K") == 2 and size_mb(None) is None


@pytest.mark.parametrize("value", ["lots", "0", "-1G", 1.5, True, 0, "4 X"])
def test_bad_sizes_name_the_forms_accepted(value):
    with pytest.raises(ConfigError) as info:
        size_bytes(value, what="memory")
    assert str(info.value).startswith(f"memory {value!r} is not a size like '4G', '1.5G'")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("value, seconds", [("04:00:00", 14400), ("1-00:00:00", 86400), ("90", 5400), ("30:15", 1815),
                                            ("1-02", 93600), ("90s", 90), ("2h", 7200), ("1h30m", 5400), ("1d", 86400),
                                            ("0.5h", 1800), (90, 90), (1.5, 1.5), (timedelta(minutes=2), 120),
                                            (None, None)])
def test_durations(value, seconds):
    assert duration_seconds(value) == seconds


def test_numbers_may_count_minutes_where_an_argument_always_did():
    assert duration_seconds(30, numbers="minutes") == 1800
    assert duration_seconds("30", numbers="minutes") == 1800  # text is read as Slurm reads it either way


@pytest.mark.parametrize("value", ["two hours", "2x", "0", "00:00:00", -5, 0, float("inf"), True, "1:2:3:4"])
def test_bad_durations_name_the_forms_accepted(value):
    with pytest.raises(ConfigError) as info:
        duration_seconds(value, what="time limit")
    assert str(info.value) == (f"time limit {value!r} is not HH:MM:SS, D-HH:MM:SS, minutes ('30') "
                               "or a number with a unit ('90s', '2h')")


def test_format_duration_is_read_back():
    for seconds in (59, 3600, 86400 + 61):
        assert duration_seconds(format_duration(seconds)) == seconds


# ---------------------------------------------------------------- every reader agrees
def test_config_resources_accept_what_the_reader_accepts():
    """The scheduler's config refused "1.5G" (its own regex) though every backend reads it."""
    config = SchedulerConfig.from_mapping({"resources": {"memory": "1.5G", "walltime": "2h"}})
    assert config.trial_resources().memory_mb() == 1536
    assert config.trial_resources().walltime_seconds() == 7200


def test_config_resources_number_of_memory_is_mb():
    assert SchedulerConfig.from_mapping({"resources": {"memory": 4096}}).resources["memory"] == "4096M"


def test_config_bad_resources_keep_their_cause():
    with pytest.raises(ConfigError, match="'memory' must look like '512M' or '8G'") as info:
        SchedulerConfig.from_mapping({"resources": {"memory": "1.5.G"}})
    assert isinstance(info.value.__cause__, ConfigError)


def test_resources_walltime_with_units():
    assert Resources(walltime="90s").walltime_seconds() == 90
    assert Resources(walltime="1-00:00:00").walltime_seconds() == 86400


def test_psij_reads_sizes_and_durations_with_the_one_reader():
    psij = pytest.importorskip("aid2e_psij.runner")
    assert psij.parse_memory("1.5G") == 3 * 512 * 1024 ** 2
    assert psij.parse_walltime("2h") == timedelta(hours=2)  # was refused
    assert psij.parse_walltime(30) == timedelta(minutes=30)  # a number is minutes, as before
    assert psij.parse_walltime("2-00:00:00") == timedelta(days=2)
    runner = psij.SlurmRunner(time_limit="1h30m", memory="1.5G")
    assert runner.to_config()["time_limit"] == "01:30:00"


def test_panda_takes_sizes_and_durations():
    panda = pytest.importorskip("aid2e_panda.runner")
    runner = panda.PanDARunner(max_walltime="10h", total_memory="4G")
    assert (runner.max_walltime, runner.total_memory) == (36000, 4096)
    with pytest.raises(ConfigError, match="PanDARunner total_memory 'lots' is not a size"):
        panda.PanDARunner(total_memory="lots")


def test_an_unknown_key_suggests_the_one_meant():
    with pytest.raises(ConfigError) as info:
        SchedulerConfig.from_mapping({"monitoring_intervall": 1})
    assert str(info.value).startswith("unknown config key 'monitoring_intervall'; valid keys: ")
    assert str(info.value).endswith("(did you mean 'monitoring_interval'?)")
    with pytest.raises(ConfigError) as info:
        SchedulerConfig.from_mapping({"resources": {"colour": "red"}})
    assert "did you mean" not in str(info.value)
