"""The engine command line that runs one trial's container (an argv list; no shell anywhere).

Docker/Podman::

    podman run --rm --name aid2e-EXP-tN-XXXX --label aid2e.experiment=EXP --label aid2e.trial=N
        --pull=never --network=none -v TRIAL_DIR:/aid2e/trial -w /aid2e/trial
        -e AID2E_PARAMS_FILE=/aid2e/trial/params.json -e AID2E_RESULT_FILE=/aid2e/trial/result.json ...
        [-v HOST:CTR ...] [-e NAME=VALUE ...] [--gpus ...] [--init] [OPTIONS] IMAGE COMMAND...

Apptainer/Singularity (built with spython's ``Client`` command construction, the program name
replaced by the resolved executable)::

    apptainer --quiet exec [--nv] --bind TRIAL_DIR:/aid2e/trial [--bind HOST:CTR ...]
        --pwd /aid2e/trial --env AID2E_PARAMS_FILE=... [OPTIONS] IMAGE COMMAND...

The engine runs the command as the container's own process (PID 1 for Docker/Podman unless
``init=True``); the trial directory is its working directory, the script contract's files live
there (see :mod:`aid2e.jobs.script`) and the result is read back on the host side of the mount.
"""

from __future__ import annotations

import os
import re
import uuid

from aid2e.jobs.script import PARAMS_FILE, RESULT_FILE

from .engines import Engine
from .spec import TRIAL_MOUNT, ContainerJob


def container_env(trial_index: int, experiment: str, extra: dict[str, str]) -> dict[str, str]:
    """The script contract's variables as the container sees them, then the user's."""
    params = f"{TRIAL_MOUNT}/{PARAMS_FILE}"
    return {
        "AID2E_PARAMS_FILE": params,
        "JOB_PARAMS_FILE": params,
        "AID2E_RESULT_FILE": f"{TRIAL_MOUNT}/{RESULT_FILE}",
        "AID2E_TRIAL_INDEX": str(trial_index),
        "AID2E_EXPERIMENT": experiment,
        **extra,
    }


def container_name(experiment: str, trial_index: int) -> str:
    """A unique, engine-valid container name that says which trial it belongs to."""
    safe = re.sub(r"[^a-zA-Z0-9_.-]+", "-", experiment).strip("-.") or "exp"
    return f"aid2e-{safe[:40]}-t{trial_index}-{uuid.uuid4().hex[:8]}"


def oci_argv(engine: Engine, spec: ContainerJob, *, image: str, trial_dir: str, env: dict[str, str],
             name: str, labels: dict[str, str]) -> list[str]:
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
    argv += list(spec.options)
    return argv + [image, *spec.command]


def apptainer_argv(engine: Engine, spec: ContainerJob, *, image: str, trial_dir: str,
                   env: dict[str, str]) -> list[str]:
    from spython.main import Client

    binds = [f"{trial_dir}:{TRIAL_MOUNT}", *spec.binds]
    argv = Client._init_command("exec")  # ["singularity", ("--quiet",) "exec"]
    argv[0] = engine.executable  # spython hard-codes "singularity"; Apptainer may have only "apptainer"
    if spec.gpus:
        argv.append("--nv")
    argv += _bind_list(binds)
    argv += ["--pwd", TRIAL_MOUNT]
    for key, value in env.items():
        argv += ["--env", f"{key}={value}"]
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
