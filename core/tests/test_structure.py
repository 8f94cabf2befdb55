"""One structuring path for configuration dicts (aid2e.structure): the scheduler's and every
backend's config give the same kind of one-line error, strict about types."""

from __future__ import annotations

import pytest
from attrs import field, frozen

from aid2e.config import SchedulerConfig
from aid2e.errors import ConfigError
from aid2e.structure import PathText, check, positive_int, structure


@frozen(kw_only=True)
class Pool:
    workers: int = field(default=4, validator=positive_int)
    name: str | None = field(default=None, validator=check("a non-empty string", lambda v: bool(v.strip())))
    rate: float = 1.0
    fast: bool = False
    where: PathText = PathText(".")


@pytest.mark.parametrize("data, message", [
    ({"workers": 0}, "pool config 'workers' must be a positive integer, got 0"),
    ({"workers": "3"}, "pool config 'workers' must be an integer, got '3'"),
    ({"workers": True}, "pool config 'workers' must be an integer, got True"),
    ({"rate": "fast"}, "pool config 'rate' must be a number, got 'fast'"),
    ({"fast": 1}, "pool config 'fast' must be true or false, got 1"),
    ({"name": " "}, "pool config 'name' must be a non-empty string, got ' '"),
    ({"name": 5}, "pool config 'name' must be a string, got 5"),
    ({"where": 5}, "pool config 'where' must be a path, got 5"),
    ({"wrokers": 2}, "unknown pool config key 'wrokers'; valid keys: fast, name, rate, where, workers "
                     "(did you mean 'workers'?)"),
    ([1, 2], "pool config must be a dict, got list"),
])
def test_one_line_errors_naming_the_key(data, message):
    with pytest.raises(ConfigError) as info:
        structure(Pool, data, what="pool config")
    assert str(info.value) == message
    assert info.value.__cause__ is not None or "unknown" in message or "dict" in message


def test_values_are_converted_only_where_safe():
    from pathlib import Path

    pool = structure(Pool, {"workers": 2, "rate": 3, "where": Path("/tmp")}, what="pool config")
    assert pool == Pool(workers=2, rate=3.0, where="/tmp") and isinstance(pool.rate, float)
    assert structure(Pool, None, what="x") == Pool() and structure(Pool, pool, what="x") is pool


@pytest.mark.parametrize("make, message", [
    (lambda: SchedulerConfig.from_mapping({"max_retries": "2"}), "config 'max_retries' must be an integer, got '2'"),
    (lambda: __import__("aid2e_joblib").JobLibRunner(n_jobs=1, config={"tmp_dir": 5}),
     "joblib config 'tmp_dir' must be a string, got 5"),
    (lambda: __import__("aid2e_psij").SlurmRunner(partition="debug", config={"modules": "root"}),
     "PSI/J runner config 'modules' must be a list of module names, got 'root'"),
    (lambda: __import__("aid2e_psij").SlurmRunner(partition="debug", config={"sbatch_options": {"requeue": ""}}),
     "sbatch option 'requeue' is not allowed"),
    (lambda: __import__("aid2e_panda").PanDARunner(config={"verbose": "yes"}),
     "panda config 'verbose' must be true or false, got 'yes'"),
    (lambda: __import__("aid2e_panda").PanDARunner(config={"backoff": -1}),
     "panda config 'backoff' must be >= 0.0, got -1.0"),
])
def test_every_backend_config_goes_the_same_way(make, message):
    with pytest.raises(ConfigError) as info:
        make()
    assert str(info.value).startswith(message) and "\n" not in str(info.value)
