"""Bad input gets a one-line error naming the thing to fix, before anything runs."""

from __future__ import annotations

import pytest

import aid2e


def objective(x, y):
    return {"objective": x}


@pytest.mark.parametrize(
    "config, message",
    [
        ({"monitoring_intervall": 1}, "unknown config key 'monitoring_intervall'; valid keys:"),
        ({"max_parallel_trials": 0}, "'max_parallel_trials' must be a positive integer"),
        ({"tolerated_failure_rate": 2}, "'tolerated_failure_rate' must be between 0.0 and 1.0"),
        ({"synchronous": "yes"}, "'synchronous' must be true or false"),
        ({"monitoring_interval": "10s"}, "'monitoring_interval' must be a number"),
        ("fast", "config must be a dict"),
        ({"resources": {"cpus": 0}}, "config 'resources' 'cpus' must be a positive integer"),
        ({"resources": {"memory": "lots"}}, "config 'resources' 'memory' must look like '512M' or '8G'"),
        ({"resources": {"gpus": 1}}, "unknown config 'resources' key 'gpus'; valid keys: account, cpus"),
        ({"resources": {"walltime": "two hours"}}, "'walltime' must look like '02:00:00'"),
        ({"resources": 4}, "config 'resources' must be a dict"),
        ({"trial_timeout": "soon"}, "config 'trial_timeout' must be seconds or a duration like '04:00:00', '90s' or "
                                    "'2h', got 'soon'"),
        ({"trial_timeout": -5}, "config 'trial_timeout' must be seconds or a duration"),
    ],
)
def test_bad_config(make_ax_client, threads, config, message):
    with pytest.raises(aid2e.ConfigError) as info:
        aid2e.AxScheduler(make_ax_client(), threads, config)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_bad_runner(make_ax_client):
    with pytest.raises(aid2e.ConfigError, match="runner must be an aid2e backend"):
        aid2e.AxScheduler(make_ax_client(), "joblib")


def test_bad_client(threads):
    with pytest.raises(aid2e.ConfigError, match="needs an ax.Client or"):
        aid2e.AxScheduler({"name": "exp"}, threads)


def test_client_without_experiment(threads):
    from ax import Client

    with pytest.raises(aid2e.ConfigError, match="no experiment yet"):
        aid2e.AxScheduler(Client(), threads)


def test_no_objective(make_ax_client, threads, config):
    scheduler = aid2e.AxScheduler(make_ax_client(), threads, config)
    with pytest.raises(aid2e.ConfigError, match="no objective: call set_objective_function"):
        scheduler.run_optimization(max_trials=1)


def test_no_experiment(threads, config):
    scheduler = aid2e.AxScheduler(None, threads, config)
    scheduler.set_objective_function(objective)
    with pytest.raises(aid2e.ConfigError, match="call load_experiment"):
        scheduler.run_optimization(max_trials=1)


@pytest.mark.parametrize("value", [-1, 2.5, "10", True])
def test_bad_max_trials(make_ax_client, threads, config, value):
    scheduler = aid2e.AxScheduler(make_ax_client(), threads, config)
    scheduler.set_objective_function(objective)
    with pytest.raises(aid2e.ConfigError, match="max_trials must be a non-negative integer"):
        scheduler.run_optimization(max_trials=value)


def test_script_errors(make_ax_client, threads, config, tmp_path):
    scheduler = aid2e.AxScheduler(make_ax_client(), threads, config)
    with pytest.raises(aid2e.ConfigError, match="objective script not found: .*nope.py"):
        scheduler.set_script_objective(str(tmp_path / "nope.py"))
    plain = tmp_path / "simulate"
    plain.write_text("echo hi\n")
    with pytest.raises(aid2e.ConfigError, match="is not executable: chmod \\+x it"):
        scheduler.set_script_objective(str(plain))
    with pytest.raises(aid2e.ConfigError, match="needs a callable"):
        scheduler.set_objective_function("objective")


@pytest.mark.parametrize(
    "path_content, message",
    [
        (None, "experiment file not found"),
        ("{not json", "is not valid JSON|is truncated"),
        ('{"some": "thing"}', "is not an aid2e state file"),
    ],
)
def test_bad_experiment_file(threads, config, tmp_path, path_content, message):
    path = tmp_path / "saved.json"
    if path_content is not None:
        path.write_text(path_content)
    scheduler = aid2e.AxScheduler(None, threads, config)
    with pytest.raises(aid2e.ConfigError, match=message):
        scheduler.load_experiment(str(path))


def test_resources_reach_every_job_request_and_survive_resume(make_ax_client, config):
    """config 'resources' is what each trial's JobRequest carries (backends map it), and it is
    kept with the saved state."""
    from aid2e_joblib import JobLibRunner

    seen = []

    class Recording(JobLibRunner):
        def submit(self, request):
            seen.append(request.resources)
            return super().submit(request)

    with Recording(n_jobs=2, pool="threading") as runner:
        scheduler = aid2e.AxScheduler(make_ax_client("sized"), runner,
                                      {**config, "resources": {"cpus": 2, "memory": "1536m", "walltime": "00:30:00"}})
        scheduler.set_objective_function(objective)
        scheduler.run_optimization(max_trials=2)
        resumed = aid2e.AxScheduler.resume(str(scheduler.experiment_dir), runner)
        resumed.set_objective_function(objective)
        resumed.run_optimization(max_trials=1)
    assert [(r.cpus, r.memory, r.walltime) for r in seen] == [(2, "1536M", "00:30:00")] * 3


@pytest.mark.parametrize("given, seconds", [(600, 600.0), (0.5, 0.5), ("04:00:00", 14400.0), ("90s", 90.0),
                                            ("2h", 7200.0), ("1-00:00:00", 86400.0)])
def test_trial_timeout_is_seconds_or_a_duration(given, seconds):
    """As a campaign file's failure.trial_timeout says, and as Slurm writes walltimes."""
    from aid2e.config import SchedulerConfig

    assert SchedulerConfig.from_mapping({"trial_timeout": given}).trial_timeout == seconds
