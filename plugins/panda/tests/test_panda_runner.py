"""PanDARunner against a loopback stand-in for a PanDA server, driven by the unmodified panda-client.

The stand-in (:class:`aid2e_panda.testing.FakePandaServer`) replaces a real PanDA server because
none can run here: panda-server publishes no database schema, needs Apache/mod_ssl or a token
issuer, CRIC site data, the JEDI daemon (which needs Rucio) and a pilot. It speaks the same REST
protocol for the calls the backend makes and checks the auth headers the client sends; its
"pilot" moves jobs through their states (including failures and kills), downloads and unpacks the
real sandbox, runs the payload on this machine in a scratch directory (not the trial directory),
and publishes the wrapper's result as the job's user metadata. Only 127.0.0.1 is ever contacted.
"""

from __future__ import annotations

import json
import logging
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from aid2e.errors import ConfigError, SubmitError
from aid2e.jobs.script import script_job
from aid2e.types import JobHandle, JobRequest, JobState, Measurement
from aid2e_panda import PanDARunner

from .conftest import FAST, TOKEN, make_token


def _script(tmp_path: Path, body: str, name: str = "objective") -> Path:
    path = tmp_path / f"{name}.py"
    path.write_text("import json, os, sys, time\nparams = json.load(open(os.environ['AID2E_PARAMS_FILE']))\n"
                    "def write(v):\n    json.dump(v, open(os.environ['AID2E_RESULT_FILE'], 'w'))\n" + body)
    return path


def _request(tmp_path: Path, index: int, path: Path, parameters=None) -> JobRequest:
    return JobRequest(experiment="panda-test", trial_index=index, parameters=parameters or {"x": 0.25, "y": 2},
                      job=script_job(path), workdir=str(tmp_path / "jobs" / f"trial_{index}"))


def _wait(runner: PanDARunner, handles, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while True:
        states = runner.poll(handles)
        if all(s.is_final for s in states.values()):
            return states
        assert time.monotonic() < deadline, states
        time.sleep(0.05)


@pytest.fixture
def runner(server, init_env):
    runner = PanDARunner(init_env=init_env, config=FAST)
    runner.start()
    yield runner
    runner.close()


# ------------------------------------------------------------------ submission
def test_submit_builds_a_prun_task_with_the_sandbox(server, init_env, tmp_path):
    src = tmp_path / "src"
    (src / "geometry").mkdir(parents=True)
    (src / "geometry" / "drich.xml").write_text("<detector/>")
    (src / "big.root").write_text("skip me")
    path = _script(tmp_path, "write({'objective': params['x'] * 4 + params['y'],"
                             " 'geo': len(open('geometry/drich.xml').read())})\n")
    runner = PanDARunner(name="drich", cloud="US", queue="BNL_PanDA_1", vo="wlcg", init_env=init_env,
                         source_dir=src, exclude_source_files=["*.root"], max_walltime=7200, core_count=4,
                         total_memory=8000, config=FAST)
    runner.start()
    handle = runner.submit(_request(tmp_path, 3, path))
    assert handle.backend == "panda" and handle.extra["jediTaskID"] == int(handle.native_id)
    task = server.tasks[int(handle.native_id)]
    params = task["params"]
    assert params["taskName"].startswith("user.tester.aid2e.drich.t3.") and params["taskName"].endswith("/")
    assert (params["site"], params["cloud"], params["vo"]) == ("BNL_PanDA_1", "US", "wlcg")
    assert (params["maxWalltime"], params["coreCount"], params["ramCount"]) == (7200, 4, 8000)
    assert params["prodSourceLabel"] == "user" and params["noInput"] is True
    values = [p["value"] for p in params["jobParameters"]]
    archive = next(v[3:] for v in values if v.startswith("-a "))
    assert archive.startswith("sources.") and archive in server.cache
    assert "bash%20aid2e_panda_job.sh" in values
    assert params["sourceURL"] == server.url.rsplit("/server", 1)[0]
    sandbox = tmp_path / "sandbox.tar.gz"
    sandbox.write_bytes(server.cache[archive])
    with tarfile.open(sandbox) as tar:
        names = set(tar.getnames())
        job_sh = tar.extractfile("aid2e_panda_job.sh").read().decode()
        command = json.loads(tar.extractfile("aid2e_panda_command.json").read())
    assert {"geometry/drich.xml", "params.json", "aid2e_panda_wrapper.py", "aid2e_panda_job.sh"} <= names
    assert "big.root" not in names
    assert job_sh.index(init_env) < job_sh.index("aid2e_panda_wrapper.py"), "init_env is sourced first"
    assert command["argv"][0] == "python3" and command["argv"][1].startswith("@@AID2E_JOBDIR@@/aid2e_files/")
    states = _wait(runner, [handle])
    result = runner.result(handle)
    assert states[handle.native_id] is JobState.COMPLETED, result.message
    assert result.metrics == {"objective": Measurement(mean=3.0), "geo": Measurement(mean=11.0)}
    # the result travelled back as user metadata: the job ran elsewhere, its files are recreated here
    workdir = Path(handle.workdir)
    assert json.loads((workdir / "result.json").read_text())["objective"] == 3.0
    assert server.calls("job/get_metadata_for_analysis_jobs") == 1


def test_trial_resources_override_the_runner_knobs(server, init_env, tmp_path):
    """config 'resources' (cpus, memory, walltime, queue) reach the task as prun would set them."""
    import attrs

    from aid2e.types import Resources

    path = _script(tmp_path, "write({'objective': 1.0})\n")
    runner = PanDARunner(queue="BNL_PanDA_1", init_env=init_env, max_walltime=7200, core_count=4,
                         total_memory=8000, config=FAST)
    runner.start()
    wanted = Resources(cpus=8, memory="16G", walltime="1-00:00:00", queue="CERN_EIC")
    handle = runner.submit(attrs.evolve(_request(tmp_path, 1, path), resources=wanted))
    params = server.tasks[int(handle.native_id)]["params"]
    assert (params["maxWalltime"], params["coreCount"], params["ramCount"], params["site"]) == (
        86400, 8, 16384, "CERN_EIC")
    assert "--nCore 8 " in params["cliParams"] and "--memory 16384 " in params["cliParams"]
    untouched = runner.submit(_request(tmp_path, 2, path))  # the default Resources() changes nothing
    params = server.tasks[int(untouched.native_id)]["params"]
    assert (params["maxWalltime"], params["coreCount"], params["ramCount"], params["site"]) == (
        7200, 4, 8000, "BNL_PanDA_1")
    runner.close()


def test_init_env_can_be_a_script_file(server, init_env, tmp_path):
    setup = tmp_path / "setup.sh"
    setup.write_text(init_env + "\nexport DETECTOR=epic_craterlake\n")
    path = _script(tmp_path, "write({'objective': len(os.environ['DETECTOR'])})\n")
    runner = PanDARunner(init_env=str(setup), config=FAST)
    runner.start()
    handle = runner.submit(_request(tmp_path, 0, path))
    _wait(runner, [handle])
    assert runner.result(handle).metrics == {"objective": Measurement(mean=15.0)}


# ------------------------------------------------------------------ states
@pytest.mark.parametrize(("task_status", "job_status", "expected"), [
    ("registered", None, JobState.QUEUED),
    ("defined", None, JobState.QUEUED),
    ("ready", "defined", JobState.QUEUED),
    ("scouting", "assigned", JobState.QUEUED),
    ("running", "activated", JobState.QUEUED),
    ("running", "sent", JobState.ACTIVE),
    ("running", "starting", JobState.ACTIVE),
    ("running", "running", JobState.ACTIVE),
    ("running", "holding", JobState.ACTIVE),
    ("running", "transferring", JobState.ACTIVE),
    ("running", "finished", JobState.ACTIVE),  # the job ended, the task is finishing
    ("aborting", "running", JobState.ACTIVE),
    ("done", "finished", JobState.COMPLETED),
    ("finished", "finished", JobState.COMPLETED),
    ("failed", "failed", JobState.FAILED),
    ("broken", None, JobState.FAILED),
    ("exhausted", "failed", JobState.FAILED),
    ("aborted", "cancelled", JobState.CANCELED),
    ("aborted", "closed", JobState.CANCELED),
])
def test_state_mapping(server, runner, tmp_path, task_status, job_status, expected):
    server.pilot_enabled = False
    handle = runner.submit(_request(tmp_path, 0, _script(tmp_path, "")))
    tid = int(handle.native_id)
    server.set_state(tid, task_status, job_status)
    if expected is JobState.COMPLETED:
        server.publish(tid, {"aid2e": {"version": 1, "status": {"exit_code": 0}, "result": '{"objective": 0.5}',
                                       "stderr_tail": ""}})
    assert runner.poll([handle]) == {handle.native_id: expected}
    if expected.is_final:
        result = runner.result(handle)
        assert result.state is expected
        if expected is JobState.COMPLETED:
            assert result.metrics == {"objective": Measurement(mean=0.5)}
        elif expected is JobState.FAILED:
            assert f"PanDA task {tid}" in result.message


def test_script_failure_carries_exit_code_stderr_and_panda_diagnostics(server, runner, tmp_path):
    handle = runner.submit(_request(tmp_path, 0, _script(tmp_path, "print('geometry overlap!', file=sys.stderr)\n"
                                                                   "sys.exit(7)\n")))
    assert _wait(runner, [handle])[handle.native_id] is JobState.FAILED
    result = runner.result(handle)
    assert result.exit_code == 7
    assert "script exited with code 7" in result.message and "geometry overlap!" in result.message
    assert "transExitCode 7" in result.message and "pilotErrorDiag" not in result.message
    assert "User payload failed with exit code 7" in result.message


def test_a_task_that_fails_on_the_grid(server, runner, tmp_path):
    server.pilot_failures["t0."] = "Failed to stage-in the sandbox: no space left on device"
    handle = runner.submit(_request(tmp_path, 0, _script(tmp_path, "write({'objective': 1})\n")))
    assert _wait(runner, [handle])[handle.native_id] is JobState.FAILED
    message = runner.result(handle).message
    assert "without publishing the trial's result" in message
    assert "pilotErrorCode 1099: Failed to stage-in the sandbox: no space left on device" in message
    assert "task errorDialog" in message


def test_a_lost_task_fails(server, runner, tmp_path):
    server.pilot_enabled = False
    handle = runner.submit(_request(tmp_path, 0, _script(tmp_path, "")))
    server.forget(int(handle.native_id))
    assert runner.poll([handle]) == {handle.native_id: JobState.FAILED}
    assert "unknown to the server" in runner.result(handle).message


def test_kill(server, runner, tmp_path):
    handle = runner.submit(_request(tmp_path, 0, _script(tmp_path, "time.sleep(60)\n")))
    deadline = time.monotonic() + 20
    while runner.poll([handle])[handle.native_id] is not JobState.ACTIVE:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    runner.cancel(handle)
    assert server.calls("task/kill") == 1
    assert _wait(runner, [handle])[handle.native_id] is JobState.CANCELED
    assert "was killed" in runner.result(handle).message


def test_resume_by_jedi_task_id(server, init_env, tmp_path):
    first = PanDARunner(init_env=init_env, config=FAST)
    first.start()
    handle = first.submit(_request(tmp_path, 0, _script(tmp_path, "time.sleep(0.5)\nwrite({'objective': 9.5})\n")))
    first.close()
    # a restarted controller has only what it saved: the jediTaskID and the trial directory
    saved = JobHandle(backend="panda", native_id=handle.native_id, workdir=handle.workdir, submitted_at=0.0,
                      extra={"jediTaskID": handle.extra["jediTaskID"]})
    second = PanDARunner(config=FAST)
    second.start()
    assert _wait(second, [saved])[saved.native_id] is JobState.COMPLETED
    assert second.result(saved).metrics == {"objective": Measurement(mean=9.5)}


def test_polling_costs_a_few_calls_per_tick_whatever_the_number_of_tasks(server, runner, tmp_path):
    server.pilot_enabled = False
    path = _script(tmp_path, "")
    handles = [runner.submit(_request(tmp_path, i, path)) for i in range(8)]
    server.requests.clear()
    states = runner.poll(handles)
    assert set(states.values()) == {JobState.QUEUED}
    assert len(server.requests) <= 3, [r["endpoint"] for r in server.requests]
    assert {r["endpoint"] for r in server.requests} <= {
        "task/get_tasks_detailed_info_since", "task/get_tasks_modified_since", "job/get_description"}


# ------------------------------------------------------------------ retries
def test_server_errors_are_retried_with_backoff(server, runner, tmp_path):
    sleeps = []
    runner.api._sleep = sleeps.append
    server.fail_next("file_server/upload_cache_file", 503)
    server.fail_next("task/submit", 500)
    server.fail_next("task/submit", "false")
    handle = runner.submit(_request(tmp_path, 0, _script(tmp_path, "write({'objective': 1.5})\n")))
    assert sleeps == [0.01, 0.01, 0.02]
    server.fail_next("task/get_tasks_detailed_info_since", 502, times=2)
    _wait(runner, [handle])
    assert runner.result(handle).metrics == {"objective": Measurement(mean=1.5)}
    assert sum(1 for t in server.tasks.values() if t["taskName"] == handle.extra["taskName"]) == 1


def test_a_submission_whose_answer_was_lost_is_not_made_twice(server, runner, tmp_path, monkeypatch):
    from pandaclient import Client

    real = Client.insertTaskParams
    calls = []

    def lose_first_answer(*args, **kwargs):
        calls.append(1)
        answer = real(*args, **kwargs)
        return (1, "timed out") if len(calls) == 1 else answer

    monkeypatch.setattr(Client, "insertTaskParams", lose_first_answer)
    runner.api._sleep = lambda s: None
    handle = runner.submit(_request(tmp_path, 0, _script(tmp_path, "write({'objective': 1})\n")))
    assert len(calls) == 1, "the retry found the task instead of submitting again"
    assert server.task_by_name(handle.extra["taskName"])["jediTaskID"] == int(handle.native_id)


def test_persistent_server_errors_become_clear_errors(server, runner, tmp_path):
    runner.api._sleep = lambda s: None
    server.fail_next("task/submit", 503, times=3)
    with pytest.raises(SubmitError) as info:
        runner.submit(_request(tmp_path, 0, _script(tmp_path, "")))
    message = str(info.value)
    assert "task submission failed 3 times" in message and server.url.split("/server")[0] in message
    assert "\n" not in message


# ------------------------------------------------------------------ auth
def test_the_client_sends_the_token_and_vo(server, runner, tmp_path):
    runner.submit(_request(tmp_path, 0, _script(tmp_path, "")))
    assert server.requests and all(r["bearer"] and r["origin"] == "wlcg" and r["auth"] == "ok"
                                   and r["peer"] == "127.0.0.1" for r in server.requests)


def test_a_refused_token_is_a_clear_error(server, runner, tmp_path, monkeypatch):
    monkeypatch.setenv("PANDA_AUTH_ID_TOKEN", make_token(sub="someone-else"))
    runner.api._sleep = lambda s: None
    with pytest.raises(SubmitError, match="sandbox upload failed 3 times"):
        runner.submit(_request(tmp_path, 0, _script(tmp_path, "")))
    assert {r["auth"] for r in server.requests} == {"refused"}


def test_token_from_a_file(server, tmp_path, monkeypatch):
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    monkeypatch.delenv("PANDA_AUTH_ID_TOKEN")
    monkeypatch.setenv("OIDC_AUTH_TOKEN_FILE", str(token_file))
    # panda-client 2.2.0 would send the newline in the header (httpx refuses it, printing the token)
    with pytest.raises(ConfigError, match="newline") as info:
        PanDARunner(config=FAST).start()
    assert TOKEN not in str(info.value)
    token_file.write_text(TOKEN)
    runner = PanDARunner(config=FAST)
    runner.start()
    assert runner.credentials.source.startswith("$OIDC_AUTH_TOKEN_FILE")
    runner.submit(_request(tmp_path, 0, _script(tmp_path, "")))
    assert server.requests[-1]["auth"] == "ok"


@pytest.mark.parametrize(("change", "match"), [
    ({"PANDA_AUTH_ID_TOKEN": None}, "no token"),
    ({"PANDA_AUTH_VO": None}, "PANDA_AUTH_VO"),
    ({"PANDA_AUTH_ID_TOKEN": make_token(exp=1_000_000)}, "expired at 1970-01-12"),
    # a callable: the expiry is read from the clock when the test runs, not at collection
    ({"PANDA_AUTH_ID_TOKEN": lambda: make_token(exp=time.time() + 60)}, "in less than 600 s"),
    ({"PANDA_AUTH_ID_TOKEN": None, "OIDC_AUTH_TOKEN_FILE": "/nonexistent/token"}, "cannot read the PanDA token"),
    ({"PANDA_AUTH": None, "X509_USER_PROXY": "/nonexistent/x509up"}, "no grid proxy at /nonexistent/x509up"),
])
def test_bad_credentials_fail_before_any_trial(server, monkeypatch, make_ax_client_panda, tmp_path, change, match):
    for key, value in change.items():
        if value is None:
            monkeypatch.delenv(key, raising=False)
        else:
            monkeypatch.setenv(key, value() if callable(value) else value)
    from aid2e import AxScheduler

    client = make_ax_client_panda("creds")
    with pytest.raises(ConfigError, match=match) as info:
        AxScheduler(client, PanDARunner(config=FAST), config={"job_output_dir": str(tmp_path)})
    assert "\n" not in str(info.value)
    assert TOKEN not in str(info.value)
    assert not server.tasks or all(t["owner"] != "x" for t in server.tasks.values())


def _proxy(tmp_path: Path, days: int) -> Path:
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", str(days), "-subj", "/DC=org/DC=aid2e/CN=tester"], check=True,
                   capture_output=True)
    proxy = tmp_path / "x509up"
    proxy.write_text(cert.read_text() + key.read_text())
    return proxy


def test_x509_proxy_mode(server, monkeypatch, tmp_path):
    if subprocess.run(["which", "openssl"], capture_output=True).returncode:
        pytest.skip("openssl is needed to make a test proxy")
    monkeypatch.delenv("PANDA_AUTH")
    monkeypatch.setenv("X509_USER_PROXY", str(_proxy(tmp_path, 2)))
    runner = PanDARunner(config=FAST)
    runner.start()
    assert runner.credentials.mode == "x509" and runner.credentials.expires_at > time.time() + 86400
    from aid2e_panda import auth

    with pytest.raises(ConfigError, match="grid proxy .* expired at"):  # three days later
        auth.check_credentials(now=time.time() + 3 * 86400)
    with pytest.raises(ConfigError, match="grid proxy .* in less than"):
        auth.check_credentials(min_validity=3 * 86400)


def test_tokens_never_appear_in_logs(server, init_env, tmp_path, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    server.fail_next("task/submit", 503)
    runner = PanDARunner(init_env=init_env, config={**FAST, "verbose": False})
    runner.start()
    handle = runner.submit(_request(tmp_path, 0, _script(tmp_path, "write({'objective': 1})\n")))
    _wait(runner, [handle])
    out, err = capfd.readouterr()
    for text in (caplog.text, out, err, repr(handle)):
        assert TOKEN not in text and TOKEN.split(".")[1] not in text


# ------------------------------------------------------------------ configuration, plugin
def test_configuration_errors_are_one_line(tmp_path):
    with pytest.raises(ConfigError, match="unknown panda config key 'max_inflight'"):
        PanDARunner(config={"max_inflight": 3})
    with pytest.raises(ConfigError, match="source_dir"):
        PanDARunner(source_dir=tmp_path / "missing")
    with pytest.raises(ConfigError, match="core_count"):
        PanDARunner(core_count=0)
    assert PanDARunner(max_in_flight=80).capacity == 80
    assert PanDARunner(config={"max_in_flight": 7}).capacity == 7
    assert PanDARunner().capacity == 100


def test_registered_and_importable_from_aid2e():
    import aid2e_panda
    from aid2e import PanDAiDDSRunner as Legacy
    from aid2e import PanDARunner as Runner

    infos = {i.name: i for i in aid2e_panda.aid2e_backends()}
    assert infos["panda"].factory is Runner and infos["panda"].kinds == frozenset({"script"})
    assert issubclass(Legacy, Runner)


def test_import_is_cheap():
    code = "import sys, aid2e_panda\nprint(','.join(m for m in ('pandaclient', 'ax', 'torch') if m in sys.modules))"
    out = subprocess.run([__import__("sys").executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_plugins_list_shows_panda_active():
    import shutil

    aid2e = shutil.which("aid2e") or str(Path(__import__("sys").executable).parent / "aid2e")
    out = subprocess.run([aid2e, "plugins", "list"], capture_output=True, text=True, check=True).stdout
    line = next(line for line in out.splitlines() if line.startswith("aid2e-panda"))
    assert "active" in line and "panda" in line


# ------------------------------------------------------------------ end to end
@pytest.fixture
def make_ax_client_panda():
    from aid2e.testing.experiments import unit_square_ax_client

    def make(name):
        return unit_square_ax_client(name, seed=1)

    return make


def _exact(scheduler, formula):
    assert len(scheduler.trials) == 5
    for record in scheduler.trials.values():
        assert record.status == "COMPLETED", record.message
        p = record.parameters
        assert record.metrics["objective"] == Measurement(mean=formula(p["x"], p["y"]), sem=0.0)


@pytest.mark.timeout(240)
def test_campaign_end_to_end_with_a_script(server, init_env, make_ax_client_panda, tmp_path):
    from aid2e import AxScheduler

    path = _script(tmp_path, "write({'objective': {'mean': params['x'] * 3 - params['y'], 'sem': 0.0}})\n")
    runner = PanDARunner(init_env=init_env, config={**FAST, "max_in_flight": 3})
    scheduler = AxScheduler(make_ax_client_panda("panda-script"), runner,
                            config={"job_output_dir": str(tmp_path / "jobs"), "monitoring_interval": 0.2})
    scheduler.set_script_objective(str(path))
    scheduler.run_optimization(max_trials=5)
    _exact(scheduler, lambda x, y: x * 3 - y)
    assert len(server.tasks) >= 5


@pytest.mark.timeout(240)
def test_campaign_end_to_end_with_a_function_shipped_in_the_sandbox(server, init_env, make_ax_client_panda,
                                                                     tmp_path):
    from aid2e import AxScheduler

    offset = 0.125

    def objective(parameterization):  # a closure: cloudpickle ships it by value
        return {"objective": (parameterization["x"] ** 2 + parameterization["y"] + offset, 0.0)}

    runner = PanDARunner(init_env=init_env, config={**FAST, "max_in_flight": 5})
    scheduler = AxScheduler(make_ax_client_panda("panda-function"), runner,
                            config={"job_output_dir": str(tmp_path / "jobs"), "monitoring_interval": 0.2})
    scheduler.set_objective_function(objective)
    scheduler.run_optimization(max_trials=5)
    _exact(scheduler, lambda x, y: x ** 2 + y + offset)


def test_published_metadata_is_read_with_bounds() -> None:
    """What a job publishes is the job's: metadata nested too deeply or too large is ignored (it
    made the result raise RecursionError), the good record of another job is still found."""
    from aid2e_panda.runner import MAX_METADATA, _aid2e_metadata

    good = json.dumps({"aid2e": {"version": 1, "status": {"exit_code": 0}, "result": '{"objective": 1}'}})
    assert _aid2e_metadata({"1": good, "2": "[" * 100_000 + "]" * 100_000}) == json.loads(good)["aid2e"]
    assert _aid2e_metadata({"3": '{"aid2e": {"pad": "' + "x" * MAX_METADATA + '"}}'}) is None


def test_status_says_where_jobs_go_with_good_credentials(server):
    """What ``aid2e validate`` shows: the queue, the server and the credentials' kind (never the token)."""
    runner = PanDARunner(queue="BNL_PanDA_1", config=FAST)
    status = runner.status()
    assert status.startswith("ready, queue BNL_PanDA_1 on http") and "credentials: oidc from $PANDA_AUTH_ID_TOKEN" in \
        status, status
    assert TOKEN not in status and server.requests == []  # validate never contacts the server


@pytest.mark.parametrize(("change", "match"), [
    ({"PANDA_AUTH_ID_TOKEN": None}, "no token"),
    ({"PANDA_AUTH": None, "X509_USER_PROXY": "/nonexistent/x509up"}, "no grid proxy at /nonexistent/x509up"),
])
def test_status_of_bad_credentials_says_what_to_fix(server, monkeypatch, change, match):
    for key, value in change.items():
        if value is None:
            monkeypatch.delenv(key, raising=False)
        else:
            monkeypatch.setenv(key, value)
    status = PanDARunner(config=FAST).status()
    assert status.startswith("not ready: ") and match in status and "\n" not in status, status
