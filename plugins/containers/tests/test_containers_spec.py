"""The container kind without running a container: spec, serialisation, engine choice, command lines."""

from __future__ import annotations

import os
import shlex
import stat
import subprocess
import sys
from pathlib import Path

import attrs
import pytest

from aid2e import serialize
from aid2e.errors import ConfigError
from aid2e.plugins import get_plugin_manager
from aid2e.types import JobRequest, Resources, ScriptJob, memory_bytes
from aid2e_containers import ContainerJob, adapt, check
from aid2e_containers.command import (
    apptainer_argv,
    apptainer_env_file,
    apptainer_evaluates_env,
    oci_argv,
    resource_options,
)
from aid2e_containers.engines import Engine, engine_name, inspect_apptainer, resolve_engine
from aid2e_joblib import JobLibRunner


# ------------------------------------------------------------------ registration
def test_plugin_provides_the_container_kind_and_adapter() -> None:
    manager = get_plugin_manager()
    assert manager.job_kind("container").spec_type is ContainerJob
    adapters = [a for a in manager.job_adapters() if a.kind == "container"]
    assert [(a.produces, a.adapt, a.check) for a in adapters] == [("script", adapt, check)]


def test_plugins_list_shows_containers_active() -> None:
    out = subprocess.run([sys.executable, "-m", "aid2e", "plugins", "list"], capture_output=True, text=True,
                         check=True).stdout
    line = next(line for line in out.splitlines() if line.startswith("aid2e-containers"))
    assert "active" in line and "job kinds: container" in line


# ------------------------------------------------------------------ spec
def test_string_command_is_split_like_a_shell_never_run_by_one() -> None:
    spec = ContainerJob(image="img", command="""python /app/sim.py --name "two words" 'a;b' $HOME""")
    assert spec.command == ("python", "/app/sim.py", "--name", "two words", "a;b", "$HOME")
    assert ContainerJob(image="img", command=["sh", "-c", "echo $$", 3]).command == ("sh", "-c", "echo $$", "3")


@pytest.mark.parametrize("command, match", [("", "empty"), ([], "empty"), ("say 'unbalanced", "cannot split"),
                                            (42, "string or a list"), (["ok", None], "must be strings")])
def test_bad_commands_are_rejected(command, match) -> None:
    with pytest.raises(ValueError, match=match):
        ContainerJob(image="img", command=command)


def test_options_are_validated(tmp_path) -> None:
    with pytest.raises(ValueError, match="unknown container engine 'rkt'"):
        ContainerJob(image="img", command="true", engine="rkt")
    with pytest.raises(ValueError, match="pull policy"):
        ContainerJob(image="img", command="true", pull="sometimes")
    with pytest.raises(ValueError, match="environment variable name"):
        ContainerJob(image="img", command="true", env={"BAD-NAME": "1"})
    with pytest.raises(ValueError, match="absolute container path"):
        ContainerJob(image="img", command="true", binds=["/data"])
    with pytest.raises(ValueError, match="/aid2e/trial"):
        ContainerJob(image="img", command="true", binds={str(tmp_path): "/aid2e/trial"})
    with pytest.raises(ValueError, match="image must be a non-empty string"):
        ContainerJob(image=" ", command="true")


def test_option_conversions(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    spec = ContainerJob(image="img", command="true", binds={"data": "/data"}, env={"N": 3}, gpus=True,
                        network=True, options="--cpus 2")
    assert spec.binds == (f"{tmp_path}/data:/data",)
    assert spec.env == {"N": "3"} and spec.gpus == "all" and spec.network == "default"
    assert spec.options == ("--cpus", "2")
    default = ContainerJob(image="img", command="true")
    assert (default.network, default.gpus, default.pull, default.engine) == ("none", "", "never", None)


def test_spec_round_trips_through_the_serializer(tmp_path) -> None:
    spec = ContainerJob(image="localhost/sim:1", command="sim --x 'a b'", engine="docker",
                        binds=[f"{tmp_path}:/data:ro"], env={"A": "1"}, gpus="0,1", host="unix:///x.sock")
    data = serialize.dump_job(spec)
    assert data["kind"] == "container"
    assert serialize.load_job(data) == spec
    request = JobRequest(experiment="e", trial_index=0, parameters={"x": 1.0}, job=spec, workdir=str(tmp_path))
    assert serialize.from_json(serialize.to_json(request), JobRequest) == request


def test_set_container_objective_rejects_bad_options(make_ax_client, scheduler_config) -> None:
    from aid2e import AxScheduler

    runner = JobLibRunner(n_jobs=1, pool="threading")
    scheduler = AxScheduler(make_ax_client("bad"), runner, config=scheduler_config)
    with pytest.raises(ConfigError, match="unknown container engine 'rkt'"):
        scheduler.set_container_objective("img", "true", engine="rkt")
    with pytest.raises(ConfigError, match="bad container objective"):
        scheduler.set_container_objective("img", "true", no_such_option=1)
    runner.close()


# ------------------------------------------------------------------ engine choice
def _fake_program(directory: Path, name: str) -> Path:
    path = directory / name
    path.write_text("#!/bin/sh\necho \"$0 $*\"\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_engine_choice_order(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    _fake_program(tmp_path, "docker")
    spec = ContainerJob(image="img", command="true")
    assert engine_name(spec, JobLibRunner(n_jobs=1, config={"container_engine": "podman"})) == "podman"
    assert engine_name(spec, {"no": "config"}) == "docker"  # podman not installed: docker
    _fake_program(tmp_path, "podman")
    assert engine_name(spec, object()) == "podman"
    assert engine_name(attrs.evolve(spec, engine="docker"),
                       JobLibRunner(n_jobs=1, config={"container_engine": "podman"})) == "docker"
    sif = tmp_path / "img.sif"
    sif.write_bytes(b"SIF")
    assert engine_name(ContainerJob(image=str(sif), command="true"), object()) == "apptainer"
    assert engine_name(ContainerJob(image=str(tmp_path), command="true"), object()) == "apptainer"


def test_unknown_engine_in_the_runner_config_is_a_config_error() -> None:
    class Runner:
        config = {"container_engine": "rkt"}

    with pytest.raises(ConfigError, match="unknown container_engine 'rkt' in the Runner config"):
        engine_name(ContainerJob(image="img", command="true"), Runner())


def test_engine_not_installed_is_a_config_error_when_the_objective_is_set(
        tmp_path, monkeypatch, make_ax_client, scheduler_config) -> None:
    from aid2e import AxScheduler

    monkeypatch.setenv("PATH", str(tmp_path))
    runner = JobLibRunner(n_jobs=1, config={"container_engine": "podman"})
    client = make_ax_client("noengine")
    scheduler = AxScheduler(client, runner, config=scheduler_config)
    with pytest.raises(ConfigError, match="container engine 'podman' is not installed"):
        scheduler.set_container_objective("localhost/x:1", "true")
    with pytest.raises(ConfigError, match="'apptainer' is not installed .*no apptainer or singularity"):
        scheduler.set_container_objective(str(tmp_path), "true", engine="apptainer")
    assert len(client.experiment.trials) == 0  # nothing was generated
    runner.close()


def test_apptainer_only_installation_is_used_for_singularity(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    program = _fake_program(tmp_path, "apptainer")
    engine = resolve_engine(ContainerJob(image=str(tmp_path), command="true", engine="singularity"), None)
    assert engine == Engine(name="singularity", executable=str(program))


def test_docker_host_comes_from_the_objective_else_docker_host(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    _fake_program(tmp_path, "docker")
    monkeypatch.setenv("DOCKER_HOST", "unix:///from/env.sock")
    spec = ContainerJob(image="img", command="true", engine="docker")
    assert resolve_engine(spec, None).base_argv()[1:] == ["-H", "unix:///from/env.sock"]
    spec = attrs.evolve(spec, host="unix:///explicit.sock")
    assert resolve_engine(spec, None).base_argv()[1:] == ["-H", "unix:///explicit.sock"]


# ------------------------------------------------------------------ command lines
ENV = {"AID2E_PARAMS_FILE": "/aid2e/trial/params.json", "X": "a b;$(c)"}


@pytest.mark.parametrize("name", ["podman", "docker"])
def test_oci_command_line(name, tmp_path) -> None:
    spec = ContainerJob(image="img", command=["sim", "--x", "1"], binds=[f"{tmp_path}:/data:ro"], gpus="all",
                        init=True, options=["--cpus=2"])
    argv = oci_argv(Engine(name=name, executable=f"/usr/bin/{name}"), spec, image="sha256:abc",
                    trial_dir="/t/trial_0", env=ENV, name="aid2e-e-t0-1", labels={"aid2e.trial": "0"})
    gpu = ["--gpus", "all"] if name == "docker" else ["--device=nvidia.com/gpu=all"]
    assert argv == [f"/usr/bin/{name}", "run", "--rm", "--name", "aid2e-e-t0-1", "--label", "aid2e.trial=0",
                    "--pull=never", "--network=none", "-v", "/t/trial_0:/aid2e/trial", "-w", "/aid2e/trial",
                    "-v", f"{tmp_path}:/data:ro", "-e", "AID2E_PARAMS_FILE=/aid2e/trial/params.json",
                    "-e", "X=a b;$(c)", *gpu, "--init", "--cpus=2", "sha256:abc", "sim", "--x", "1"]


def test_oci_network_can_be_turned_on() -> None:
    engine = Engine(name="docker", executable="docker", host="unix:///d.sock")
    on = oci_argv(engine, ContainerJob(image="i", command="true", network=True), image="i", trial_dir="/t",
                  env={}, name="n", labels={})
    assert not any(a.startswith("--network") for a in on) and on[:3] == ["docker", "-H", "unix:///d.sock"]
    named = oci_argv(engine, ContainerJob(image="i", command="true", network="host"), image="i", trial_dir="/t",
                     env={}, name="n", labels={})
    assert "--network=host" in named


def test_apptainer_command_line_matches_spythons_construction(tmp_path, monkeypatch) -> None:
    """Our argv is what spython's ``Client.execute`` builds, with the resolved program instead of its
    hard-coded ``singularity`` (``execute`` itself is run with its shell-out captured)."""
    from spython.main import Client

    captured = []
    monkeypatch.setattr("spython.main.base.command.run_cmd", lambda cmd, **kw: captured.append(cmd) or
                        {"message": "", "return_code": 0})
    monkeypatch.setattr("spython.utils.check_install", lambda *a, **k: True)
    data = tmp_path / "data"
    data.mkdir()
    spec = ContainerJob(image="/img.sif", command="sim --x 'a b'", binds=[f"{data}:/data"], gpus=True,
                        options=["--cleanenv"])
    engine = Engine(name="apptainer", executable="/opt/apptainer/bin/apptainer")
    argv = apptainer_argv(engine, spec, image="/img.sif", trial_dir=str(tmp_path), env_file="/t/container.env",
                          resources=Resources(cpus=4, memory="2G"))
    options = ["--pwd", "/aid2e/trial", "--env-file", "/t/container.env", "--cpus", "4",
               "--memory", str(2 * 1024 ** 3), "--cleanenv"]
    Client.execute("/img.sif", list(spec.command), bind=[f"{tmp_path}:/aid2e/trial", f"{data}:/data"], nv=True,
                   options=options)
    assert captured, "spython did not build a command"
    assert captured[0][0] == "singularity" and argv[0] == "/opt/apptainer/bin/apptainer"
    assert argv[1:] == captured[0][1:]
    assert argv[1:] == ["exec", "--nv", "--bind", f"{tmp_path}:/aid2e/trial", "--bind", f"{data}:/data",
                        *options, "/img.sif", "sim", "--x", "a b"]


def _sh_double_quoted(escaped: str) -> str:
    """What a POSIX shell makes of ``"escaped"``, with no expansion allowed (checks our escaping)."""
    out, i = [], 0
    while i < len(escaped):
        char = escaped[i]
        if char == "\\" and i + 1 < len(escaped) and escaped[i + 1] in '\\$`"\n':
            out.append(escaped[i + 1])
            i += 2
            continue
        assert char not in '$`"', f"unescaped {char!r} in {escaped!r}"
        out.append(char)
        i += 1
    return "".join(out)


@pytest.mark.parametrize("evaluated", [True, False])
def test_apptainer_env_file_survives_each_evaluation(evaluated) -> None:
    """Each value comes back exactly after the file is sourced and (unless --no-eval) expanded again
    (as Apptainer does: it puts the value in double quotes, escaping only those)."""
    env = {"A": "a b;$(id) `id` $HOME ${X:-y}", "B": 'q"d\'s\\', "C": "x,y=z\nline", "D": ""}
    text = apptainer_env_file(env, evaluated=evaluated)
    assert len(text.split('"\n')) == len(env) + 1
    for key, value in env.items():
        line = text[text.index(f"{key}=") + len(key) + 2:]
        quoted = line[:line.index('"\n' if key != "C" else '"\nD=')]
        once = _sh_double_quoted(quoted)
        assert (_sh_double_quoted(once.replace('"', '\\"')) if evaluated else once) == value
    with pytest.raises(ConfigError, match="carriage return"):
        apptainer_env_file({"E": "a\r\nb"})


def test_no_eval_options_turn_off_the_second_escaping() -> None:
    assert apptainer_evaluates_env(("--cleanenv",))
    assert not apptainer_evaluates_env(("--no-eval",)) and not apptainer_evaluates_env(("--compat",))


# ------------------------------------------------------------------ resources
@pytest.mark.parametrize("value, size", [("4G", 4 * 1024 ** 3), ("512M", 512 * 1024 ** 2),
                                         ("1.5g", 3 * 512 * 1024 ** 2), ("4000", 4000 * 1024 ** 2),
                                         ("2GiB", 2 * 1024 ** 3), ("64MB", 64 * 1024 ** 2), ("4096B", 4096),
                                         (1 << 30, 1 << 30), (None, None), ("", None)])
def test_memory_sizes(value, size) -> None:
    assert memory_bytes(value) == size


@pytest.mark.parametrize("value", ["lots", "-1G", "0", 0, "4 X", True, 2.5])
def test_bad_memory_sizes_are_config_errors(value) -> None:
    with pytest.raises(ConfigError, match="is not a size like '4G'"):
        memory_bytes(value)


@pytest.mark.parametrize("name", ["podman", "docker", "apptainer"])
def test_resources_become_engine_options(name) -> None:
    engine = Engine(name=name, executable=name)
    assert resource_options(engine, Resources()) == []
    assert resource_options(engine, None) == []
    assert resource_options(engine, Resources(queue="q", walltime="1:00:00", account="a")) == []
    oci = name != "apptainer"
    assert resource_options(engine, Resources(cpus=2, memory="2G")) == (
        ["--cpus=2", f"--memory={2 * 1024 ** 3}"] if oci else ["--cpus", "2", "--memory", str(2 * 1024 ** 3)])
    assert resource_options(engine, Resources(memory="512M")) == (
        [f"--memory={512 * 1024 ** 2}"] if oci else ["--memory", str(512 * 1024 ** 2)])
    with pytest.raises(ConfigError, match="cpus=0 is not a positive number"):
        resource_options(engine, Resources(cpus=0))
    with pytest.raises(ConfigError, match="memory 'much' is not a size"):
        resource_options(engine, Resources(memory="much"))


def test_adapt_puts_the_requests_resources_on_the_command_line(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    _fake_program(tmp_path, "podman")
    spec = ContainerJob(image="img", command="true", engine="podman", verify_image=False, options=["--cpus=3"])
    request = JobRequest(experiment="e", trial_index=0, parameters={}, job=spec, workdir=str(tmp_path / "t0"),
                         resources=Resources(cpus=2, memory="1G"))
    argv = list(adapt(request, None).job.argv)
    # ours first, the user's own options after them (the engine takes the last --cpus)
    assert argv.index("--cpus=2") < argv.index(f"--memory={1024 ** 3}") < argv.index("--cpus=3") < argv.index("true")
    default = list(adapt(attrs.evolve(request, resources=Resources()), None).job.argv)
    assert not any(a.startswith(("--cpus=2", "--memory")) for a in default)


def test_apptainer_adapt_on_a_fake_apptainer_only_install(tmp_path, monkeypatch) -> None:
    """Without a real Apptainer: the adapted script job and labels for a SIF file and a directory."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    program = _fake_program(bindir, "apptainer")
    monkeypatch.setenv("PATH", str(bindir))
    sif = tmp_path / "sim.sif"
    sif.write_bytes(b"not really a SIF")
    image_dir = tmp_path / "unpacked" / ".flat" / "ab12"
    image_dir.mkdir(parents=True)
    (tmp_path / "sim-dir").symlink_to(image_dir)

    class Runner:
        config = {"container_engine": "singularity"}

    for image, image_id, run_ref in [
        (str(sif), "sha256:" + __import__("hashlib").sha256(b"not really a SIF").hexdigest(), str(sif)),
        (str(tmp_path / "sim-dir"), f"dir:{image_dir}", str(image_dir)),
    ]:
        spec = ContainerJob(image=image, command="run.sh")
        check(spec, Runner())
        request = JobRequest(experiment="e", trial_index=4, parameters={"x": 1.0}, job=spec,
                             workdir=str(tmp_path / "trial_4"))
        adapted = adapt(request, Runner())
        assert isinstance(adapted.job, ScriptJob)
        assert adapted.job.argv[0] == str(program)
        assert adapted.job.argv[-2:] == (run_ref, "run.sh")
        assert adapted.labels == {"container_engine": "singularity", "container_image": image,
                                  "container_image_id": image_id}
    with pytest.raises(ConfigError, match="no such image file or directory"):
        check(ContainerJob(image=str(tmp_path / "missing.sif"), command="x"), Runner())
    # a registry reference cannot be checked locally; it stays unresolved until the trial runs
    assert inspect_apptainer("docker://busybox:1.36").image_id == ""


def test_missing_bind_source_is_a_config_error(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    _fake_program(tmp_path, "apptainer")
    spec = ContainerJob(image=str(tmp_path), command="true", binds={str(tmp_path / "nope"): "/data"})
    with pytest.raises(ConfigError, match="bind source .*nope does not exist"):
        check(spec, None)


def test_command_string_never_reaches_a_shell() -> None:
    spec = ContainerJob(image="i", command="echo $(id) `id` ; rm -rf / && | > *")
    assert spec.command == tuple(shlex.split("echo $(id) `id` ; rm -rf / && | > *"))
    argv = oci_argv(Engine(name="podman", executable="podman"), spec, image="i", trial_dir="/t", env={},
                    name="n", labels={})
    assert argv[-len(spec.command):] == list(spec.command)
    assert "sh" not in argv and "bash" not in argv and os.sep not in argv[0]
