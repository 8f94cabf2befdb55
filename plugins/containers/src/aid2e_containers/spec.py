"""``ContainerJob``: the ``container`` job kind's spec (attrs, frozen, keyword-only, serialisable).

``scheduler.set_container_objective(image, command, **options)`` builds one; every option below
is a keyword of that call. The command is a list of arguments, or a string split the way a shell
would split it (:func:`shlex.split`); it is never run through a shell on the host.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from attrs import field, frozen

#: Engines this plugin drives; ``apptainer`` and ``singularity`` share one command line.
OCI_ENGINES = ("podman", "docker")
APPTAINER_ENGINES = ("apptainer", "singularity")
ENGINES = OCI_ENGINES + APPTAINER_ENGINES
#: Where the trial directory appears inside the container (also its working directory).
TRIAL_MOUNT = "/aid2e/trial"
PULL_POLICIES = ("never", "missing", "always")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def _command(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        try:
            parts = shlex.split(value)
        except ValueError as exc:  # unbalanced quotes
            raise ValueError(f"cannot split the container command {value!r}: {exc}") from exc
    elif isinstance(value, (list, tuple)):
        parts = list(value)
        bad = [p for p in parts if not isinstance(p, (str, int, float)) or isinstance(p, bool)]
        if bad:
            raise ValueError(f"container command arguments must be strings, got {bad[0]!r}")
        parts = [str(p) for p in parts]
    else:
        raise ValueError(f"container_command must be a string or a list of strings, got {type(value).__name__}")
    if not parts:
        raise ValueError("container_command is empty")
    return tuple(parts)


def _binds(value: Any) -> tuple[str, ...]:
    """``{host: container}`` or ``["host:container[:ro]", ...]`` -> ``("/abs/host:container[:ro]", ...)``."""
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    items = [f"{h}:{c}" for h, c in value.items()] if isinstance(value, Mapping) else list(value)
    binds = []
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise ValueError(f"a bind must be 'host_path:container_path[:ro]', got {item!r}")
        host, sep, rest = item.partition(":")
        if not sep or not rest.startswith("/"):
            raise ValueError(f"a bind must be 'host_path:container_path[:ro]' with an absolute container path, "
                             f"got {item!r}")
        if rest.split(":")[0].rstrip("/") == TRIAL_MOUNT:
            raise ValueError(f"bind {item!r}: {TRIAL_MOUNT} is where the trial directory is mounted")
        binds.append(f"{Path(host).expanduser().absolute()}:{rest}")
    return tuple(binds)


def _env(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError(f"env must be a dict of name -> value, got {type(value).__name__}")
    env = {}
    for name, val in value.items():
        if not isinstance(name, str) or not _ENV_NAME.match(name):
            raise ValueError(f"bad environment variable name {name!r}")
        env[name] = str(val)
    return env


def _gpus(value: Any) -> str:
    if value is True:
        return "all"
    if value is False or value is None:
        return ""
    return str(value)


def _network(value: Any) -> str:
    if value is False or value is None:
        return "none"
    if value is True:
        return "default"
    return str(value)


def _strings(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(shlex.split(value))
    return tuple(str(v) for v in value or ())


def _one_of(choices: tuple[str, ...], what: str):
    def check(_instance: Any, _attribute: Any, value: Any) -> None:
        if value is not None and value not in choices:
            raise ValueError(f"unknown {what} {value!r} (valid: {', '.join(choices)})")

    return check


def _nonempty(_instance: Any, attribute: Any, value: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{attribute.name} must be a non-empty string, got {value!r}")


@frozen(kw_only=True)
class ContainerJob:
    """Run ``command`` in ``image`` with a container engine; parameters and result as for scripts.

    * ``image``: Docker/Podman image reference (``localhost/sim:1``, ``ghcr.io/org/sim@sha256:...``);
      for Apptainer/Singularity a SIF file, an unpacked image directory (CVMFS style) or a
      ``docker://`` / ``oras://`` / ``library://`` reference.
    * ``command``: a list of arguments, or a string split like a shell would (never run by one).
    * ``engine``: ``podman``, ``docker``, ``apptainer`` or ``singularity``; ``None`` takes the
      runner's ``config["container_engine"]``, else guesses (see :mod:`aid2e_containers.engines`).
    * ``binds``: extra mounts, ``{host: container}`` or ``["host:container[:ro]"]``.
    * ``env``: variables set inside the container.
    * ``gpus``: ``True``/``"all"`` or a device list: ``--gpus`` (docker), CDI ``--device
      nvidia.com/gpu=...`` (podman), ``--nv`` (apptainer/singularity).
    * ``network``: ``"none"`` (default: no network), ``True``/``"default"`` (the engine's default)
      or a network name; Docker/Podman only (Apptainer shares the host's network).
    * ``host``: the engine's daemon, e.g. ``unix:///run/docker.sock`` (docker ``-H``, podman
      ``--remote --url``); ``None`` takes ``$DOCKER_HOST`` for docker when the objective is set.
    * ``executable``: the engine's command line program, if not ``engine`` on ``PATH``.
    * ``pull``: ``"never"`` (default: the image must be there, and trials run it by its ID),
      ``"missing"`` or ``"always"`` (Docker/Podman).
    * ``verify_image``: check that the image exists when the objective is set (turn off when it
      exists only where the jobs run).
    * ``init``: run a tiny init as PID 1 (``--init``) instead of the command itself.
    * ``options``: extra engine arguments, placed before the image.
    """

    kind: ClassVar[str] = "container"
    image: str = field(validator=_nonempty)
    command: tuple[str, ...] = field(converter=_command)
    engine: str | None = field(default=None, validator=_one_of(ENGINES, "container engine"))
    binds: tuple[str, ...] = field(default=(), converter=_binds)
    env: dict[str, str] = field(factory=dict, converter=_env)
    gpus: str = field(default="", converter=_gpus)
    network: str = field(default="none", converter=_network)
    host: str | None = None
    executable: str | None = None
    pull: str = field(default="never", validator=_one_of(PULL_POLICIES, "pull policy"))
    verify_image: bool = True
    init: bool = False
    options: tuple[str, ...] = field(default=(), converter=_strings)
