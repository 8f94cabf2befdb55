"""aid2e.serialize: JSON round trips of handles, results and requests; clear errors on bad data."""

from __future__ import annotations

import json
import os.path

import pytest
from cattrs.errors import ClassValidationError

from aid2e.errors import ConfigError
from aid2e.serialize import dump_job, from_json, load_job, to_json
from aid2e.types import (
    FunctionJob,
    JobHandle,
    JobRequest,
    JobResult,
    JobState,
    Measurement,
    Resources,
    ScriptJob,
)


def objective(x: float) -> dict[str, float]:
    """A module-level function: function jobs store it as ``module:qualname``."""
    return {"y": x * x}


def _json_round_trip(obj, cls):
    """Through real JSON text, as the file storage does."""
    text = json.dumps(to_json(obj))
    return from_json(json.loads(text), cls)


def test_job_handle_round_trip():
    handle = JobHandle(backend="joblib", native_id="1234", workdir="/tmp/w/0", submitted_at=1.7e9,
                       extra={"pgid": 1234, "host": "node1", "retried": False, "load": 0.5})
    back = _json_round_trip(handle, JobHandle)
    assert back == handle
    assert type(back.extra["retried"]) is bool and type(back.extra["pgid"]) is int


def test_job_result_round_trip_with_measurements():
    result = JobResult(state=JobState.COMPLETED, exit_code=0, message="ok",
                       metrics={"loss": Measurement(mean=0.25, sem=0.01), "time": Measurement(mean=3)})
    data = to_json(result)
    assert data["metrics"]["loss"] == {"mean": 0.25, "sem": 0.01}
    back = _json_round_trip(result, JobResult)
    assert back == result
    assert back.state is JobState.COMPLETED
    assert isinstance(back.metrics["loss"], Measurement)


def test_failed_job_result_round_trip():
    result = JobResult(state=JobState.FAILED, message="exit code 3", exit_code=3)
    assert _json_round_trip(result, JobResult) == result


def _request(job) -> JobRequest:
    parameters = {"x": 0.5, "n": 2, "mode": "a", "flag": True}
    return JobRequest(experiment="exp", trial_index=3, parameters=parameters, job=job,
                      workdir="/tmp/exp/3", resources=Resources(cpus=2, memory="4G"))


def test_job_request_with_script_job_round_trip():
    req = _request(ScriptJob(argv=["python", "run.py"], env={"OMP_NUM_THREADS": "1"}))
    data = to_json(req)
    assert data["job"] == {"kind": "script", "argv": ["python", "run.py"], "env": {"OMP_NUM_THREADS": "1"},
                           "on_cancel": [], "returns": "metrics"}
    back = _json_round_trip(req, JobRequest)
    assert back == req
    assert isinstance(back.job, ScriptJob) and back.job.argv == ("python", "run.py")


def test_job_request_with_function_job_round_trip():
    req = _request(FunctionJob(function=objective, call_style="dict"))
    data = to_json(req)
    assert data["job"]["kind"] == "function"
    assert data["job"]["function"].endswith(":objective")
    back = _json_round_trip(req, JobRequest)
    assert back.job.function is objective
    assert back.job.call_style == "dict"
    assert back == req


def test_function_job_from_another_module_round_trip():
    spec = FunctionJob(function=os.path.join)
    back = load_job(json.loads(json.dumps(dump_job(spec))))
    assert back.function is os.path.join and back.call_style == "kwargs"


def test_local_function_cannot_be_loaded():
    def local(x):
        return {"y": x}

    data = dump_job(FunctionJob(function=local))
    with pytest.raises(ConfigError, match="cannot load function"):
        load_job(data)


def test_function_that_no_longer_exists():
    with pytest.raises(ConfigError, match="no_such_function"):
        load_job({"kind": "function", "function": f"{__name__}:no_such_function"})


@pytest.mark.parametrize("kind", ["frobnicate", "container"])
def test_unknown_kind_is_a_config_error_naming_it(bare_plugin_manager, kind):
    data = to_json(_request(ScriptJob(argv=["true"])))
    data["job"] = {"kind": kind, "image": "x"}
    with pytest.raises(ConfigError, match=repr(kind)):
        from_json(data, JobRequest)


def test_container_kind_error_names_the_distribution(bare_plugin_manager):
    with pytest.raises(ConfigError, match="aid2e-containers"):
        load_job({"kind": "container", "image": "x"})


def test_job_spec_needs_a_kind():
    with pytest.raises(ConfigError, match="kind"):
        load_job({"argv": ["true"]})


def test_extra_keys_rejected_in_handle():
    data = to_json(JobHandle(backend="b", native_id="1", workdir="/w", submitted_at=0.0))
    data["surprise"] = 1
    with pytest.raises(ClassValidationError, match="JobHandle") as info:
        from_json(data, JobHandle)
    assert "surprise" in repr(info.value.exceptions)


def test_extra_keys_rejected_in_result():
    data = to_json(JobResult(state=JobState.COMPLETED))
    data["surprise"] = 1
    with pytest.raises(ClassValidationError, match="JobResult"):
        from_json(data, JobResult)


def test_extra_keys_rejected_in_request():
    data = to_json(_request(ScriptJob(argv=["true"])))
    data["surprise"] = 1
    with pytest.raises(ConfigError, match="surprise"):
        from_json(data, JobRequest)


def test_missing_keys_rejected_in_request():
    data = to_json(_request(ScriptJob(argv=["true"])))
    del data["workdir"]
    with pytest.raises(ConfigError, match="workdir"):
        from_json(data, JobRequest)


def test_extra_keys_rejected_in_script_job():
    with pytest.raises(ConfigError, match=r"bad script job spec: extra fields found \(surprise\)"):
        load_job({"kind": "script", "argv": ["true"], "surprise": 1})


def test_extra_keys_rejected_in_function_job():
    with pytest.raises(ConfigError, match="surprise"):
        load_job({"kind": "function", "function": f"{__name__}:objective", "surprise": 1})


def test_non_final_state_rejected_when_loading():
    data = to_json(JobResult(state=JobState.COMPLETED))
    data["state"] = "ACTIVE"
    with pytest.raises(ClassValidationError, match="JobResult"):
        from_json(data, JobResult)



def test_one_resolver_of_module_qualname_keeps_the_cause():
    from aid2e.serialize import qualified_name, resolve

    assert resolve("aid2e.types:JobState.COMPLETED", what="value") is JobState.COMPLETED
    assert resolve(qualified_name(JobHandle), what="runner") is JobHandle
    with pytest.raises(ConfigError, match=r"^cannot load runner 'no_such_module_x:Runner': No module named") as info:
        resolve("no_such_module_x:Runner", what="runner")
    assert isinstance(info.value.__cause__, ImportError)  # aid2e -v shows it
    with pytest.raises(ConfigError, match="expected 'module:name'"):
        resolve("aid2e.types", what="runner")
