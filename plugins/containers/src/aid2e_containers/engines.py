"""Which engine runs a container job, where its program is, and what an image resolves to.

Engine choice, first match wins:

1. the objective's ``engine=...``;
2. the runner's ``config["container_engine"]`` (e.g. ``JobLibRunner(config={"container_engine": "docker"})``);
3. a guess: an image that is a SIF file, a directory or an ``oras://``/``library://``/``shub://``
   reference goes to ``apptainer`` (else ``singularity``); anything else to ``podman`` if it is
   installed, else ``docker``.

``singularity`` and ``apptainer`` share one command line: asking for one where only the other is
installed uses the other (Apptainer installs often have no ``singularity`` link, and spython's
own calls hard-code that name, so this plugin never lets spython pick the program).

The engine's daemon (Docker, remote Podman) is the objective's ``host=...``, else, for docker,
``$DOCKER_HOST`` as the controller sees it; it is written into every trial's command (``-H``), so
a batch job on another machine talks to the same daemon.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from attrs import frozen

from aid2e.errors import ConfigError, one_line

from .spec import APPTAINER_ENGINES, ENGINES, OCI_ENGINES, ContainerJob

#: Seconds an ``image inspect`` (or similar) may take before it counts as failed.
INSPECT_TIMEOUT = 60.0
_URI_SCHEMES = ("docker://", "docker-archive:", "oras://", "library://", "shub://", "http://", "https://")
_APPTAINER_ONLY_SCHEMES = ("oras://", "library://", "shub://")


@frozen(kw_only=True)
class Engine:
    """A resolved engine: its name, the program to run and the daemon to talk to."""

    name: str
    executable: str
    host: str | None = None

    @property
    def is_oci(self) -> bool:
        return self.name in OCI_ENGINES

    def base_argv(self) -> list[str]:
        """The program plus the options that pick its daemon."""
        if self.host is None:
            return [self.executable]
        if self.name == "docker":
            return [self.executable, "-H", self.host]
        if self.name == "podman":
            return [self.executable, "--remote", "--url", self.host]
        return [self.executable]


def runner_setting(runner: Any, name: str) -> Any:
    """``runner.config[name]`` whether the config is a dict or an attrs record (``None`` if absent)."""
    config = getattr(runner, "config", None)
    if config is None:
        return None
    if isinstance(config, Mapping):
        return config.get(name)
    return getattr(config, name, None)


def is_apptainer_path(image: str) -> bool:
    """True for images only Apptainer/Singularity run: SIF files, directories, their URI schemes."""
    if image.startswith(_APPTAINER_ONLY_SCHEMES):
        return True
    if image.startswith(_URI_SCHEMES):
        return False
    return image.endswith(".sif") or image.endswith(".simg") or Path(image).expanduser().is_dir()


def engine_name(spec: ContainerJob, runner: Any) -> str:
    """The engine's name by the rules in this module's docstring (ConfigError if unknown)."""
    if spec.engine:
        return spec.engine
    configured = runner_setting(runner, "container_engine")
    if configured:
        if configured not in ENGINES:
            raise ConfigError(
                f"unknown container_engine {configured!r} in the {type(runner).__name__} config "
                f"(valid: {', '.join(ENGINES)})"
            )
        return configured
    if is_apptainer_path(spec.image):
        return "apptainer" if shutil.which("apptainer") or not shutil.which("singularity") else "singularity"
    return "podman" if shutil.which("podman") or not shutil.which("docker") else "docker"


def find_executable(name: str, explicit: str | None = None) -> str:
    """The engine program's path, or a ConfigError saying it is not installed."""
    if explicit:
        found = shutil.which(os.path.expanduser(explicit))
        if not found:
            raise ConfigError(f"container engine program {explicit!r} not found or not executable")
        return found
    candidates = [name]
    if name in APPTAINER_ENGINES:
        candidates.append("singularity" if name == "apptainer" else "apptainer")
    for candidate in candidates:
        found = shutil.which(candidate)
        if found:
            return found
    raise ConfigError(
        f"container engine {name!r} is not installed (no {' or '.join(candidates)} on PATH); "
        "install it, pick another engine, or pass executable=..."
    )


def resolve_engine(spec: ContainerJob, runner: Any) -> Engine:
    """Engine name, program and daemon for ``spec`` on ``runner``."""
    name = engine_name(spec, runner)
    host = spec.host
    if host is None and name == "docker":
        host = os.environ.get("DOCKER_HOST") or None
    return Engine(name=name, executable=find_executable(name, spec.executable), host=host)


def run_engine(engine: Engine, *args: str, timeout: float = INSPECT_TIMEOUT) -> subprocess.CompletedProcess:
    """Run an engine subcommand (argv, no shell), capturing its output."""
    try:
        return subprocess.run(engine.base_argv() + list(args), capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(args, 124, "", f"{engine.name} {args[0]} timed out after {timeout:.0f} s")
    except OSError as exc:
        return subprocess.CompletedProcess(args, 127, "", f"cannot run {engine.executable}: {exc.strerror or exc}")


def engine_output_line(text: str) -> str:
    """The end of an engine's error output, on one line."""
    return one_line(text, last=3, empty="(no message)")


# ------------------------------------------------------------------ image identity
@frozen(kw_only=True)
class ImageInfo:
    """What an image reference resolves to: ``run_ref`` is what trials run (the ID when pinned)."""

    reference: str
    image_id: str = ""
    digest: str = ""
    run_ref: str = ""
    error: str = ""


def inspect_oci(engine: Engine, image: str) -> ImageInfo:
    """The local image's ID (and registry digest, if it has one), or the engine's message."""
    proc = run_engine(engine, "image", "inspect", "--format", "{{.Id}}\t{{json .RepoDigests}}", image)
    if proc.returncode != 0:
        return ImageInfo(reference=image, run_ref=image, error=engine_output_line(proc.stderr or proc.stdout))
    image_id, _, digests = proc.stdout.strip().splitlines()[0].partition("\t")
    if not image_id.startswith("sha256:"):
        image_id = f"sha256:{image_id}"
    digest = ""
    if digests.startswith("["):
        import json

        try:
            listed = json.loads(digests) or []
        except ValueError:
            listed = []
        digest = listed[0] if listed else ""
    return ImageInfo(reference=image, image_id=image_id, digest=digest, run_ref=image_id)


_sif_lock = threading.Lock()
_sif_digests: dict[tuple[str, int, int], str] = {}


def _sif_digest(path: Path) -> str:
    """sha256 of a SIF file, cached by (path, size, mtime) so each trial does not re-hash it."""
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    with _sif_lock:
        if key in _sif_digests:
            return _sif_digests[key]
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    value = f"sha256:{digest.hexdigest()}"
    with _sif_lock:
        _sif_digests[key] = value
    return value


def inspect_apptainer(image: str) -> ImageInfo:
    """A SIF file's sha256, an image directory's real path (on CVMFS ``unpacked.cern.ch`` that is
    the content-addressed ``.flat`` directory), or, for a URI, the reference unresolved."""
    if image.startswith(_URI_SCHEMES):
        return ImageInfo(reference=image, run_ref=image,
                         error="a registry reference: Apptainer resolves it when the trial runs")
    path = Path(image).expanduser().absolute()
    if path.is_file():
        try:
            return ImageInfo(reference=image, image_id=_sif_digest(path), run_ref=str(path))
        except OSError as exc:
            return ImageInfo(reference=image, run_ref=str(path), error=f"cannot read {path}: {exc.strerror}")
    if path.is_dir():
        real = path.resolve()
        return ImageInfo(reference=image, image_id=f"dir:{real}", run_ref=str(real))
    return ImageInfo(reference=image, run_ref=str(path), error=f"no such image file or directory: {path}")


def inspect_image(engine: Engine, spec: ContainerJob) -> ImageInfo:
    if engine.is_oci:
        info = inspect_oci(engine, spec.image)
        if spec.pull != "never" and info.image_id:  # the engine may pull another one: run the reference
            info = ImageInfo(reference=info.reference, image_id=info.image_id, digest=info.digest,
                             run_ref=spec.image)
        return info
    return inspect_apptainer(spec.image)
