"""Issue 7's battery of malformed inputs: each ends in a one-line aid2e error naming the fix, or in a
FAILED trial (in Ax) carrying a short reason, while the scheduler returns normally. Nothing hangs
(every case is under a timeout) and nothing crashes the scheduler with a raw exception.

Cases needing an engine (podman, Slurm) skip without it, or fail where ``AID2E_REQUIRE`` names it.
"""

from __future__ import annotations

import base64
import json
import math
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import aid2e
from aid2e.errors import Aid2eError, ConfigError, PluginNotInstalledError

pytestmark = pytest.mark.timeout(120)

#: A failed trial's reason must stay readable (and small in Ax, trials.json and logs).
MAX_REASON = 5000


# ---------------------------------------------------------------- helpers
class Env:
    """What a case needs: fresh Ax clients, the 4-thread runner, the config, a scratch dir."""

    def __init__(self, make_ax_client, threads, config, tmp_path, request):
        self.make_ax_client, self.runner, self.config, self.tmp = make_ax_client, threads, config, tmp_path
        self.request = request

    def scheduler(self, name="battery", config=None, runner=None):
        return aid2e.AxScheduler(self.make_ax_client(name), runner or self.runner,
                                 {**self.config, "tolerated_failure_rate": 1.0, **(config or {})})

    def script(self, body, name="objective.py", mode=0o644):
        path = self.tmp / name
        path.write_text(textwrap.dedent(body))
        path.chmod(mode)
        return path

    def saved(self):
        """A save_experiment file of a finished one-trial campaign."""
        scheduler = self.scheduler("saved")
        scheduler.set_objective_function(objective)
        scheduler.run_optimization(max_trials=1)
        path = self.tmp / "saved.json"
        scheduler.save_experiment(str(path))
        return path

    def load(self, path):
        aid2e.AxScheduler(None, self.runner, self.config).load_experiment(str(path))


@pytest.fixture
def env(make_ax_client, threads, config, tmp_path, request):
    return Env(make_ax_client, threads, config, tmp_path, request)


def objective(x, y):
    return {"objective": x + y}


def assert_one_line_error(info, expected):
    message = str(info.value)
    assert "\n" not in message, message
    assert expected in message, message
    assert len(message) < 2000, len(message)


def assert_failed_trials(scheduler, expected, count=None):
    trials = scheduler.experiment.trials
    assert trials, "no trial ran"
    if count is not None:
        assert len(trials) == count
    for index, trial in trials.items():
        assert trial.status.name == "FAILED", (index, trial.status.name, trial.status_reason)
        reason = trial.status_reason or ""
        assert expected in reason, reason[:500]
        assert len(reason) < MAX_REASON, f"reason of {len(reason)} characters"
        assert scheduler.trials[index].status == "FAILED"


def _cases(cases):
    """``(id, *values)`` tuples and ``pytest.param(id, *values, marks=...)`` as pytest params."""
    for case in cases:
        if hasattr(case, "marks"):
            yield pytest.param(*case.values[1:], id=case.id or case.values[0], marks=case.marks)
        else:
            yield pytest.param(*case[1:], id=case[0])


# ---------------------------------------------------------------- (a) one-line errors
def _write(path, data):
    Path(path).write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


def _truncated_save(env):
    path = env.saved()
    data = path.read_bytes()
    return _write(env.tmp / "cut.json", data[: len(data) // 2])


def _edited_save(env, edit):
    path = env.saved()
    document = json.loads(path.read_text())
    edit(document)
    return _write(env.tmp / "edited.json", json.dumps(document))


def _batch(env, parameters):
    scheduler = env.scheduler("batch")
    scheduler.set_objective_function(objective)
    with scheduler.batch_trial_context() as batch:
        batch.add_trial(parameters)


def _run(env, config, max_trials=2):
    scheduler = env.scheduler("run", config=config)
    scheduler.set_objective_function(objective)
    scheduler.run_optimization(max_trials=max_trials)


def _regular_file(env):
    return _write(env.tmp / "plain_file", "not a directory")


def _bare_container_objective(env):
    env.request.getfixturevalue("bare_plugin_manager")  # as if aid2e-containers were not installed
    env.scheduler().set_container_objective("localhost/aid2e-test:latest", ["true"])


def _psij(**kwargs):
    from aid2e_psij import PsijRunner, SlurmRunner

    if "executor" in kwargs:
        return PsijRunner(**kwargs)
    return SlurmRunner(**kwargs)


def _joblib(**kwargs):
    from aid2e_joblib import JobLibRunner

    JobLibRunner(**kwargs).close()


def _panda(**kwargs):
    from aid2e_panda import PanDARunner

    return PanDARunner(**kwargs)


ERROR_CASES = [
    # --- scheduler configuration
    ("config-unknown-key", lambda e: e.scheduler(config={"job_output_dirr": "x"}), ConfigError,
     "unknown config key 'job_output_dirr'; valid keys:"),
    ("config-bad-value", lambda e: e.scheduler(config={"max_parallel_trials": 0}), ConfigError,
     "'max_parallel_trials' must be a positive integer"),
    ("config-wrong-type", lambda e: e.scheduler(config={"job_output_dir": 5}), ConfigError,
     "config 'job_output_dir' must be a path"),
    ("config-not-a-dict", lambda e: aid2e.AxScheduler(e.make_ax_client(), e.runner, ["fast"]), ConfigError,
     "config must be a dict"),
    ("runner-not-a-backend", lambda e: aid2e.AxScheduler(e.make_ax_client(), "joblib"), ConfigError,
     "runner must be an aid2e backend (e.g. JobLibRunner(n_jobs=4))"),
    ("max-trials-negative", lambda e: (lambda s: (s.set_objective_function(objective),
                                                 s.run_optimization(max_trials=-1)))(e.scheduler()),
     ConfigError, "max_trials must be a non-negative integer"),
    ("no-objective", lambda e: e.scheduler().run_optimization(max_trials=1), ConfigError,
     "no objective: call set_objective_function"),
    ("objective-not-callable", lambda e: e.scheduler().set_objective_function("objective"), ConfigError,
     "needs a callable"),
    # --- trial parameters (batch.add_trial)
    ("param-unknown", lambda e: _batch(e, {"x": 0.5, "y": 0.5, "z": 1.0}), ConfigError,
     "are outside the search space"),
    ("param-missing", lambda e: _batch(e, {"x": 0.5}), ConfigError, "are outside the search space"),
    ("param-wrong-type", lambda e: _batch(e, {"x": "abc", "y": 0.5}), ConfigError,
     "abc is not a valid value for parameter"),
    ("param-outside-space", lambda e: _batch(e, {"x": 5.0, "y": 0.5}), ConfigError,
     "5.0 is not a valid value for parameter"),
    ("param-not-a-dict", lambda e: _batch(e, [0.5, 0.5]), ConfigError, "add_trial needs a dict of parameters"),
    # --- scripts
    ("script-missing", lambda e: e.scheduler().set_script_objective(str(e.tmp / "nope.py")), ConfigError,
     "objective script not found:"),
    ("script-not-executable", lambda e: e.scheduler().set_script_objective(str(e.script("echo", "simulate"))),
     ConfigError, "is not executable: chmod +x it, or name it .py or .sh"),
    ("script-is-a-directory", lambda e: e.scheduler().set_script_objective(str(e.tmp)), ConfigError,
     "objective script is not a file"),
    # --- runners' arguments
    ("joblib-n-jobs-0", lambda e: _joblib(n_jobs=0), ConfigError, "n_jobs must be a non-zero integer"),
    ("joblib-unknown-backend", lambda e: _joblib(backend="dask"), ConfigError, "unknown joblib backend 'dask'"),
    ("joblib-unknown-config-key", lambda e: _joblib(config={"tmpdir": "/tmp"}), ConfigError,
     "unknown joblib config key 'tmpdir'; valid keys: container_engine, tmp_dir"),
    ("slurm-bad-memory", lambda e: _psij(partition="debug", memory="4 gigs"), ConfigError,
     "memory '4 gigs' is not a size like '4G'"),
    ("slurm-bad-time", lambda e: _psij(partition="debug", time_limit="1 hour"), ConfigError,
     "time limit '1 hour' is not HH:MM:SS"),
    ("slurm-unknown-config-key", lambda e: _psij(partition="debug", config={"module": ["root"]}), ConfigError,
     "unknown PSI/J runner config key 'module'"),
    ("psij-unknown-executor", lambda e: _psij(executor="moab9"), ConfigError, "unknown PSI/J executor 'moab9'"),
    ("panda-bad-config", lambda e: _panda(config={"attempts": 0}), ConfigError,
     "panda config 'attempts' must be a positive integer"),
    ("unknown-runner-class", lambda e: aid2e.get_plugin_manager().runner_class("CondorRunner"), AttributeError,
     "has no attribute 'CondorRunner'"),
    ("container-plugin-missing", _bare_container_objective, PluginNotInstalledError, "pip install"),
    ("container-bad-command", lambda e: e.scheduler().set_container_objective("img", 5), ConfigError,
     "bad container objective: container_command must be a string or a list"),
    ("container-unknown-engine", lambda e: e.scheduler().set_container_objective("img", ["true"], engine="rocket"),
     ConfigError, "unknown"),
    # --- saved state
    ("load-missing-file", lambda e: e.load(e.tmp / "nope.json"), ConfigError, "experiment file not found"),
    ("load-truncated-file", lambda e: e.load(_truncated_save(e)), ConfigError, "is truncated (cut off"),
    ("load-binary-file", lambda e: e.load(_write(e.tmp / "b.json", b"\xff\x00\x81")), ConfigError,
     "is not a text (JSON) file"),
    ("load-other-format", lambda e: e.load(_write(e.tmp / "o.json", '{"experiment": {"name": "x"}}')), ConfigError,
     "is not an aid2e state file"),
    ("load-json-array", lambda e: e.load(_write(e.tmp / "a.json", "[1, 2]")), ConfigError,
     "is not an aid2e state file"),
    pytest.param(
        "load-newer-version", lambda e: e.load(_edited_save(e, lambda d: d.update(version=99))), ConfigError,
        "upgrade aid2e"),
    pytest.param(
        "load-without-ax-part", lambda e: e.load(_edited_save(e, lambda d: d.pop("ax"))), ConfigError, "'ax'"),
    pytest.param(
        "load-bad-ax-snapshot",
        lambda e: e.load(_edited_save(e, lambda d: d.update(ax={"api": "Client", "snapshot": {}}))), ConfigError,
        "snapshot"),
    ("load-unknown-api", lambda e: e.load(_edited_save(e, lambda d: d.update(ax={"api": "Nope"}))), ConfigError,
     "Nope"),
    # --- job_output_dir unusable (root ignores permissions: a path under a regular file)
    pytest.param(
        "output-dir-is-a-file", lambda e: _run(e, {"job_output_dir": str(_regular_file(e))}), ConfigError,
        "job_output_dir"),
    pytest.param(
        "output-dir-not-writable", lambda e: _run(e, {"job_output_dir": str(_regular_file(e) / "sub")}),
        ConfigError, "job_output_dir"),
]


@pytest.mark.parametrize("case, expected_type, expected", list(_cases(ERROR_CASES)))
def test_error_names_the_fix(env, case, expected_type, expected):
    with pytest.raises(expected_type) as info:
        case(env)
    if expected_type is not AttributeError:  # aid2e.<Unknown> is a plain AttributeError by design
        assert isinstance(info.value, Aid2eError)
    assert_one_line_error(info, expected)


# ---------------------------------------------------------------- (b) failed trials: scripts
HUGE = 8 * 1024 * 1024

SCRIPT_CASES = [
    ("exit-nonzero", "import sys; print('boom', file=sys.stderr); sys.exit(3)", "exited with code 3 (stderr: boom)"),
    ("no-result", "pass", "wrote no result to $AID2E_RESULT_FILE"),
    ("result-not-json", "RESULT.write_text('{not json')", "is not valid JSON"),
    ("result-empty-file", "RESULT.write_text('')", "is not valid JSON"),
    ("result-array", "RESULT.write_text('[1, 2]')", "must return a dict of metric -> number, got list"),
    ("result-number", "RESULT.write_text('0.5')", "must return a dict of metric -> number, got float"),
    ("result-string", "RESULT.write_text('\"0.5\"')", "must return a dict of metric -> number, got str"),
    ("result-empty-dict", "RESULT.write_text('{}')", "returned no metrics (an empty dict)"),
    ("metric-missing", "RESULT.write_text('{\"other\": 1.0}')", "lacks objective metric(s) 'objective'"),
    ("metric-string", "RESULT.write_text('{\"objective\": \"0.5\"}')", "metric 'objective': expected a number"),
    ("metric-bool", "RESULT.write_text('{\"objective\": true}')", "metric 'objective': expected a number, got True"),
    ("metric-null", "RESULT.write_text('{\"objective\": null}')", "metric 'objective': expected a number, got None"),
    ("metric-nan", "RESULT.write_text('{\"objective\": NaN}')", "not a finite number"),
    ("metric-inf", "RESULT.write_text('{\"objective\": Infinity}')", "not a finite number"),
    ("metric-sem-nan", "RESULT.write_text('{\"objective\": {\"mean\": 1, \"sem\": NaN}}')", "not a finite number"),
    ("metric-unknown-keys", "RESULT.write_text('{\"objective\": {\"mean\": 1, \"stddev\": 2}}')",
     "unknown keys ['stddev'] (only mean and sem)"),
    ("metric-no-mean", "RESULT.write_text('{\"objective\": {\"sem\": 2}}')", "expected {\"mean\": m, \"sem\": s}"),
    ("metric-triple", "RESULT.write_text('{\"objective\": [1, 2, 3]}')", "expected (mean, sem)"),
    ("killed-by-signal", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)", "killed by signal SIGKILL"),
    ("huge-stdout-and-stderr",
     f"import sys; sys.stdout.write('o' * {HUGE}); sys.stderr.write('e' * {HUGE} + 'LAST WORDS'); sys.exit(1)",
     "LAST WORDS"),
    ("closes-stdout-then-fails", "import os, sys; os.close(1); os.close(2); sys.exit(5)", "exited with code 5"),
    pytest.param(  # result files are read up to 1 MiB (aid2e.jobs.untrusted.JSON_LIMIT)
        "huge-metric-string", f"RESULT.write_text(json.dumps({{'objective': 'v' * {HUGE // 8}}}))",
        "result.json is larger than 1048576 bytes"),
    pytest.param(
        "huge-result-other-json", f"RESULT.write_text('{{' + 'x' * {HUGE // 8})", "result.json is larger than",
        id="huge-result-not-json"),
    ("big-metric-string", f"RESULT.write_text(json.dumps({{'objective': 'v' * {HUGE // 16}}}))",
     "metric 'objective': expected a number"),
    ("big-result-not-json", f"RESULT.write_text('{{' + 'x' * {HUGE // 16})", "is not valid JSON"),
]

PRELUDE = "import json, os, pathlib\nRESULT = pathlib.Path(os.environ['AID2E_RESULT_FILE'])\n"


@pytest.mark.parametrize("body, reason", list(_cases(SCRIPT_CASES)))
def test_script_trial_fails_with_its_reason(env, body, reason):
    scheduler = env.scheduler("script_battery")
    scheduler.set_script_objective(str(env.script(PRELUDE + body + "\n")))
    assert scheduler.run_optimization(max_trials=2) is None
    assert_failed_trials(scheduler, reason, count=2)
    saved = json.loads((scheduler.experiment_dir / "trials.json").read_text())
    assert [t["status"] for t in saved["scheduler"]["trials"]] == ["FAILED", "FAILED"]


def test_script_that_closes_stdout_still_completes(env):
    scheduler = env.scheduler("closed_stdout")
    scheduler.set_script_objective(str(env.script(PRELUDE + textwrap.dedent("""\
        import sys
        os.close(1); os.close(2)
        p = json.loads(pathlib.Path(os.environ['AID2E_PARAMS_FILE']).read_text())
        RESULT.write_text(json.dumps({'objective': p['x'] + p['y']}))
    """))))
    scheduler.run_optimization(max_trials=2)
    for record in scheduler.trials.values():
        assert record.status == "COMPLETED", record.message
        assert record.metrics["objective"].mean == record.parameters["x"] + record.parameters["y"]


# ---------------------------------------------------------------- (b) failed trials: functions
def returns_float(x, y):
    return 0.5


def returns_list(x, y):
    return [("objective", 0.5)]


def returns_bool_metric(x, y):
    return {"objective": True}


def returns_inf(x, y):
    return {"objective": math.inf}


def returns_nan_sem(x, y):
    return {"objective": (0.5, math.nan)}


def returns_string_metric(x, y):
    return {"objective": "0.5"}


def returns_empty(x, y):
    return {}


def returns_none(x, y):
    return None


def raises_with_huge_message(x, y):
    raise RuntimeError("z" * HUGE)


def wrong_signature(a, b, c):
    return {"objective": a}


FUNCTION_CASES = [
    ("fn-returns-float", returns_float, "must return a dict of metric -> number, got float"),
    ("fn-returns-list", returns_list, "must return a dict of metric -> number, got list"),
    ("fn-returns-none", returns_none, "must return a dict of metric -> number, got NoneType"),
    ("fn-bool-metric", returns_bool_metric, "expected a number, got True"),
    ("fn-inf", returns_inf, "not a finite number"),
    ("fn-nan-sem", returns_nan_sem, "not a finite number"),
    ("fn-string-metric", returns_string_metric, "expected a number, got '0.5'"),
    ("fn-empty-dict", returns_empty, "returned no metrics"),
    ("fn-wrong-signature", wrong_signature, ""),
    pytest.param("fn-huge-exception", raises_with_huge_message, "RuntimeError: zzz"),
]


@pytest.mark.parametrize("function, reason", list(_cases(FUNCTION_CASES)))
def test_function_trial_fails_with_its_reason(env, function, reason):
    scheduler = env.scheduler("function_battery")
    scheduler.set_objective_function(function)
    assert scheduler.run_optimization(max_trials=2) is None
    assert_failed_trials(scheduler, reason, count=2)


# ---------------------------------------------------------------- containers (podman)
@pytest.fixture
def podman():
    from aid2e.testing.requirements import require

    state_file = Path(os.environ.get("AID2E_CONTAINERS_STATE", "/var/lib/aid2e-containers/state.json"))
    try:
        state = json.loads(state_file.read_text())
    except (OSError, ValueError):
        state = {}
    require("podman", state.get("podman") == "ok",
            f"podman is not usable here ({state.get('podman', f'no {state_file}')}); "
            "run scripts/services/containers.sh as root")
    return state.get("image", "localhost/aid2e-test:latest")


def _podman_runner():
    from aid2e_joblib import JobLibRunner

    return JobLibRunner(n_jobs=2, pool="threading", config={"container_engine": "podman"})


def test_podman_missing_image_is_a_config_error(env, podman):
    runner = _podman_runner()
    try:
        with pytest.raises(ConfigError) as info:
            env.scheduler(runner=runner).set_container_objective("localhost/aid2e-no-such-image:0", ["true"])
    finally:
        runner.close()
    assert_one_line_error(info, "is not in podman's local images")
    assert "pull or build it first, or pass pull='missing'" in str(info.value)


def test_unknown_container_engine_in_runner_config_is_a_config_error(env, podman):
    from aid2e_joblib import JobLibRunner

    runner = JobLibRunner(n_jobs=1, pool="threading", config={"container_engine": "rocket"})
    try:
        with pytest.raises(ConfigError) as info:
            env.scheduler(runner=runner).set_container_objective(podman, ["true"])
    finally:
        runner.close()
    assert_one_line_error(info, "unknown container_engine 'rocket' in the JobLibRunner config (valid: podman")


@pytest.mark.parametrize("command, reason", [
    (["no-such-program"], "exited with code"),
    (["sh", "-c", "echo '[1, 2]' > \"$AID2E_RESULT_FILE\""], "got list"),
    (["sh", "-c", "echo '{\"objective\": \"high\"}' > \"$AID2E_RESULT_FILE\""], "expected a number"),
], ids=["container-command-not-in-image", "container-result-array", "container-metric-string"])
def test_container_trial_fails_with_its_reason(env, podman, command, reason):
    runner = _podman_runner()
    try:
        scheduler = env.scheduler("ctr_battery", runner=runner)
        scheduler.set_container_objective(podman, command)
        assert scheduler.run_optimization(max_trials=2) is None
    finally:
        runner.close()
    assert_failed_trials(scheduler, reason, count=2)


# ---------------------------------------------------------------- Slurm (real)
@pytest.fixture
def slurm_partition():
    from aid2e.testing.requirements import require

    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%P %T"], capture_output=True, text=True, timeout=20)
        problem = None if out.returncode == 0 and any(
            s in out.stdout for s in ("idle", "mixed", "allocated")) else f"sinfo: {out.stderr.strip() or out.stdout}"
    except (OSError, subprocess.TimeoutExpired) as exc:
        problem = str(exc)
    require("slurm", problem is None, f"no Slurm cluster ({problem}); run scripts/services/slurm.sh as root")
    facts = {}
    marker = Path("/run/aid2e-slurm.env")
    if marker.exists():
        facts = dict(line.split("=", 1) for line in marker.read_text().split())
    return facts.get("AID2E_SLURM_PARTITION", "debug")


@pytest.mark.parametrize("kwargs, reason", [
    ({"partition": "no_such_partition"}, "could not submit the job: slurm refused the job"),
    ({"config": {"sbatch_options": {"no-such-option": "1"}}}, "no-such-option"),
], ids=["slurm-bad-partition", "slurm-bad-sbatch-option"])
def test_slurm_refusal_is_a_failed_trial(env, slurm_partition, kwargs, reason):
    from aid2e_psij import SlurmRunner

    kwargs = {"partition": slurm_partition, "time_limit": "00:05:00", **kwargs}
    kwargs["config"] = {"work_directory": str(env.tmp / "psij"), **kwargs.get("config", {})}
    runner = SlurmRunner(**kwargs)
    scheduler = env.scheduler("slurm_battery", runner=runner)
    scheduler.set_objective_function(objective)
    started = time.monotonic()
    assert scheduler.run_optimization(max_trials=2) is None
    assert time.monotonic() - started < 60
    assert_failed_trials(scheduler, reason, count=2)


# ---------------------------------------------------------------- PanDA: server unreachable
def _token():
    def part(value):
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    claims = {"sub": "aid2e-tester", "exp": int(time.time() + 3600)}
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


PANDA_CAMPAIGN = textwrap.dedent("""\
    import json, sys, warnings
    from ax.service.ax_client import AxClient, ObjectiveProperties
    import aid2e
    from aid2e.testing.experiments import sobol_generation_strategy
    from aid2e_panda import PanDARunner

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        client = AxClient(generation_strategy=sobol_generation_strategy(), verbose_logging=False, random_seed=1)
    client.create_experiment(name="panda_battery", parameters=[
        {"name": "x", "type": "range", "bounds": [0.0, 1.0], "value_type": "float"},
        {"name": "y", "type": "range", "bounds": [0.0, 1.0], "value_type": "float"}],
        objectives={"objective": ObjectiveProperties(minimize=True)})
    runner = PanDARunner(config={"attempts": 2, "backoff": 0.01, "max_backoff": 0.02, "poll_interval": 0.1})
    scheduler = aid2e.AxScheduler(client, runner, {"job_output_dir": sys.argv[1], "tolerated_failure_rate": 1.0,
                                                   "monitoring_interval": 1})
    scheduler.set_script_objective(sys.argv[2])
    try:
        scheduler.run_optimization(max_trials=2)
    except aid2e.Aid2eError as exc:
        print(json.dumps({"error": type(exc).__name__, "message": str(exc)}))
    else:
        print(json.dumps({"trials": {i: [t.status.name, t.status_reason]
                                     for i, t in scheduler.experiment.trials.items()}}))
""")


def test_unreachable_panda_server_fails_trials_within_bounded_retries(env):
    """panda-client reads the server address once per process, so the campaign runs in a child
    process whose PANDA_URL(_SSL) point at a closed loopback port."""
    pytest.importorskip("pandaclient")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed once the with-block ends
    url = f"http://127.0.0.1:{port}/server/panda"
    child_env = {k: v for k, v in os.environ.items() if not k.startswith(("PANDA", "OIDC", "X509"))}
    child_env.update({"PANDA_URL_SSL": url, "PANDA_URL": url, "PANDACACHE_URL": url, "PANDA_BEHIND_REAL_LB": "1",
                      "PANDA_AUTH": "oidc", "PANDA_AUTH_VO": "wlcg", "PANDA_AUTH_ID_TOKEN": _token(),
                      "PANDA_NICKNAME": "tester", "PANDA_CONFIG_ROOT": str(env.tmp / "panda_config")})
    script = env.script("import os\n", "objective.py")
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", PANDA_CAMPAIGN, str(env.tmp / "jobs"), str(script)],
                          capture_output=True, text=True, timeout=100, env=child_env)
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    outcome = json.loads(proc.stdout.splitlines()[-1])
    assert elapsed < 60
    if "error" in outcome:  # a clear error is fine too
        assert "\n" not in outcome["message"] and f"127.0.0.1:{port}" in outcome["message"]
        return
    assert len(outcome["trials"]) == 2
    for status, reason in outcome["trials"].values():
        assert status == "FAILED"
        assert reason.startswith("could not submit the job:") and f"127.0.0.1:{port}" in reason, reason
        assert len(reason) < MAX_REASON and _token() not in reason
