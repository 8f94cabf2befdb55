"""The engine command line that runs one trial's container (an argv list; no shell anywhere).

Docker/Podman::

    podman run --rm --name aid2e-EXP-tN-XXXX --label aid2e.experiment=EXP --label aid2e.trial=N
        --pull=never --network=none -v TRIAL_DIR:/aid2e/trial -w /aid2e/trial
        -e AID2E_PARAMS_FILE=/aid2e/trial/params.json -e AID2E_RESULT_FILE=/aid2e/trial/result.json ...
        [-v HOST:CTR ...] [-e NAME=VALUE ...] [--gpus ...] [--init] [--cpus=N] [--memory=BYTES]
        [OPTIONS] IMAGE COMMAND...

Apptainer/Singularity (built with spython's ``Client`` command construction, the program name
replaced by the resolved executable)::

    apptainer --quiet exec [--nv] --bind TRIAL_DIR:/aid2e/trial [--bind HOST:CTR ...]
        --pwd /aid2e/trial --env-file TRIAL_DIR/container.env [--cpus N] [--memory BYTES]
        [OPTIONS] IMAGE COMMAND...

The engine runs the command as the container's own process (PID 1 for Docker/Podman unless
``init=True``); the trial directory is its working directory, the script contract's files live
there (see :mod:`aid2e.jobs.script`) and the result is read back on the host side of the mount.

Environment variables reach Apptainer through an env file, not ``--env``: Apptainer splits
``--env`` values at commas (CSV) and evaluates every value as a double-quoted shell word inside
the container (``$(...)``, backquotes and ``$VAR`` run there), and it sources the env file once
more before that. :func:`apptainer_env_file` quotes each value for both evaluations (for one,
when the options contain ``--no-eval`` or ``--compat``), so every value arrives byte for byte,
as it does with ``-e`` for Docker/Podman.

The trial's :class:`~aid2e.types.Resources` become engine limits (:func:`resource_options`):
``cpus`` above 1 gives ``--cpus``, ``memory`` (``"4G"``, ``"512M"``, ``"4000"`` = MB as sbatch
reads it) gives ``--memory`` in bytes; the default ``Resources()`` adds nothing. Apptainer applies
them through cgroups: as root that needs ``systemd cgroups = no`` in apptainer.conf where systemd
is not PID 1, as a user it needs cgroups v2 with systemd; where that is missing the trial fails
with Apptainer's own message (``cannot use cgroups ...``).
"""

from __future__ import annotations

import os
import re
import uuid
from typing import Any

from aid2e.errors import ConfigError
from aid2e.jobs.files import JOB_FILE
from aid2e.jobs.script import PARAMS_FILE, RESULT_FILE
from aid2e.units import size_bytes

from .engines import Engine
from .spec import TRIAL_MOUNT, ContainerJob


def container_env(trial_index: int, experiment: str, extra: dict[str, str], *, job_file: bool = False
                  ) -> dict[str, str]:
    """The script contract's variables as the container sees them (``AID2E_JOB_FILE`` for a
    workflow's job, ``job_file``), then the user's."""
    params = f"{TRIAL_MOUNT}/{PARAMS_FILE}"
    env = {
        "AID2E_PARAMS_FILE": params,
        "JOB_PARAMS_FILE": params,
        "AID2E_RESULT_FILE": f"{TRIAL_MOUNT}/{RESULT_FILE}",
        "AID2E_TRIAL_INDEX": str(trial_index),
        "AID2E_EXPERIMENT": experiment,
    }
    if job_file:
        env["AID2E_JOB_FILE"] = f"{TRIAL_MOUNT}/{JOB_FILE}"
    return {**env, **extra}


def container_name(experiment: str, trial_index: int) -> str:
    """A unique, engine-valid container name that says which trial it belongs to."""
    safe = re.sub(r"[^a-zA-Z0-9_.-]+", "-", experiment).strip("-.") or "exp"
    return f"aid2e-{safe[:40]}-t{trial_index}-{uuid.uuid4().hex[:8]}"


#: The file in the trial directory that carries the container's environment to Apptainer.
APPTAINER_ENV_FILE = "container.env"
def resource_options(engine: Engine, resources: Any) -> list[str]:
    """The engine's limits for a trial's Resources; the default ``Resources()`` gives none."""
    if resources is None:
        return []
    cpus = getattr(resources, "cpus", 1)
    if isinstance(cpus, bool) or not isinstance(cpus, (int, float)) or cpus <= 0:
        raise ConfigError(f"resources cpus={cpus!r} is not a positive number of CPUs")
    memory = size_bytes(getattr(resources, "memory", None))
    options = []
    if cpus != 1:
        count = f"{cpus:g}"
        options += [f"--cpus={count}"] if engine.is_oci else ["--cpus", count]
    if memory is not None:
        options += [f"--memory={memory}"] if engine.is_oci else ["--memory", str(memory)]
    return options


def oci_argv(engine: Engine, spec: ContainerJob, *, image: str, trial_dir: str, env: dict[str, str],
             name: str, labels: dict[str, str], resources: Any = None) -> list[str]:
    argv = engine.base_argv() + ["run", "--rm", "--name", name]
    for key, value in labels.items():
        argv += ["--label", f"{key}={value}"]
    argv.append(f"--pull={spec.pull}")
    if spec.network != "default":
        argv.append(f"--network={spec.network}")
    argv += ["-v", f"{trial_dir}:{TRIAL_MOUNT}", "-w", TRIAL_MOUNT]
    for bind in spec.binds:
        argv += ["-v", bind]
    for key, value in env.items():
        argv += ["-e", f"{key}={value}"]
    if spec.gpus:
        if engine.name == "docker":
            argv += ["--gpus", spec.gpus]
        else:  # podman: the NVIDIA Container Toolkit's CDI devices
            argv += [f"--device=nvidia.com/gpu={gpu}" for gpu in spec.gpus.split(",")]
    if spec.init:
        argv.append("--init")
    argv += resource_options(engine, resources)
    argv += list(spec.options)
    return argv + [image, *spec.command]


def apptainer_evaluates_env(options: tuple[str, ...] | list[str]) -> bool:
    """False when the options turn off Apptainer's shell evaluation of environment values."""
    return not any(option in ("--no-eval", "--compat") for option in options)


#: What a backslash must protect inside a double-quoted shell word (expanded) and in the env file.
_EXPANDED = "\\$`"
_SOURCED = '\\$`"'


def _escape(value: str, special: str) -> str:
    return "".join("\\" + char if char in special else char for char in value)


def apptainer_env_file(env: dict[str, str], *, evaluated: bool = True) -> str:
    """An ``--env-file`` that gives the container exactly ``env``.

    Apptainer sources the file (a double-quoted value is expanded once) and then, unless
    ``--no-eval``, expands each value again as a double-quoted word inside the container; each
    value is escaped for both. A carriage return cannot be carried (the file is read as lines)."""
    lines = []
    for key, value in env.items():
        if "\r" in value:
            raise ConfigError(f"environment variable {key}: Apptainer cannot pass a value containing a carriage return")
        once = _escape(value, _EXPANDED) if evaluated else value
        lines.append(f'{key}="{_escape(once, _SOURCED)}"\n')
    return "".join(lines)


def apptainer_argv(engine: Engine, spec: ContainerJob, *, image: str, trial_dir: str, env_file: str,
                   resources: Any = None) -> list[str]:
    """The exec command line; the environment is in ``env_file`` (see :func:`apptainer_env_file`)."""
    from spython.main import Client

    binds = [f"{trial_dir}:{TRIAL_MOUNT}", *spec.binds]
    argv = Client._init_command("exec")  # ["singularity", ("--quiet",) "exec"]
    argv[0] = engine.executable  # spython hard-codes "singularity"; Apptainer may have only "apptainer"
    if spec.gpus:
        argv.append("--nv")
    argv += _bind_list(binds)
    argv += ["--pwd", TRIAL_MOUNT, "--env-file", env_file]
    argv += resource_options(engine, resources)
    argv += list(spec.options)
    return argv + [image, *spec.command]


def _bind_list(binds: list[str]) -> list[str]:
    """spython's ``--bind`` list; it exits the process for a missing host path, so the caller
    checks those first (:func:`aid2e_containers.adapter.check`) and this turns an exit into an error."""
    from spython.main import Client

    try:
        return Client._generate_bind_list(binds)
    except SystemExit:
        missing = [b for b in binds if not os.path.exists(b.split(":")[0])]
        raise FileNotFoundError(f"bind source does not exist: {', '.join(missing)}") from None
