"""A trial's sandbox: the tarball shipped with its PanDA task, and the command that runs it.

The sandbox holds, at its top level: the contents of ``source_dir`` (minus
``exclude_source_files``), the trial directory's files (``params.json``, a pickled function
objective, ...), ``aid2e_panda_wrapper.py`` (:mod:`aid2e_panda.job_wrapper`),
``aid2e_panda_command.json`` (the trial's argv and environment, with the trial directory's path
replaced by a placeholder the wrapper resolves on the node), ``aid2e_panda_job.sh`` (sources
``init_env``, then runs the wrapper) and, under ``aid2e_files/``, any other local file the
command names by absolute path (the objective script itself). The controller's interpreter in
argv is replaced by the runner's ``python`` (``python3``, found after ``init_env``).
"""

from __future__ import annotations

import fnmatch
import json
import os
import shlex
import sys
import tarfile
from collections.abc import Iterable
from pathlib import Path

from aid2e.jobs import script as script_kind
from aid2e.types import ScriptJob

from . import job_wrapper

WRAPPER_NAME = "aid2e_panda_wrapper.py"
JOB_SCRIPT = "aid2e_panda_job.sh"
INIT_ENV_NAME = "aid2e_init_env.sh"
FILES_DIR = "aid2e_files"
#: The command the job runs (prun's ``--exec``); constant, so no trial value reaches a shell.
EXEC = f"bash {JOB_SCRIPT}"
#: Files of the trial directory that are outputs, never shipped.
OUTPUTS = {script_kind.RESULT_FILE, script_kind.STATUS_FILE, script_kind.STDOUT_FILE, script_kind.STDERR_FILE,
           job_wrapper.METADATA_FILE}


def _under(path: Path, root: Path | None) -> bool:
    if root is None:
        return False
    try:
        path.relative_to(root)
    except ValueError:
        return False
    return True


def grid_command(job: ScriptJob, env: dict[str, str], workdir: Path, source_dir: Path | None,
                 python: str) -> tuple[dict, dict[str, Path]]:
    """The command for the node and the extra local files to ship (``{arcname: path}``)."""
    files: dict[str, Path] = {}

    def translate(value: str, index: int | None) -> str:
        if index == 0 and value == sys.executable:
            return python
        if not os.path.isabs(value):
            return value
        path = Path(value)
        resolved = path.resolve() if path.exists() else path
        if _under(resolved, workdir):
            return job_wrapper.JOBDIR + "/" + resolved.relative_to(workdir).as_posix() if resolved != workdir \
                else job_wrapper.JOBDIR
        if source_dir is not None and _under(resolved, source_dir) and resolved != source_dir:
            return job_wrapper.JOBDIR + "/" + resolved.relative_to(source_dir).as_posix()
        if index is not None and resolved.is_file():
            arcname = f"{FILES_DIR}/{len(files)}_{resolved.name}"
            files[arcname] = resolved
            return job_wrapper.JOBDIR + "/" + arcname
        return value  # a path on the node (or missing): passed as is

    argv = [translate(a, i) for i, a in enumerate(job.argv)]
    grid_env = {k: translate(v, None) for k, v in env.items()}
    return {"argv": argv, "env": grid_env, "trial_dir": str(workdir)}, files


def job_script(init_env: str | None, init_env_is_file: bool, python: str) -> str:
    lines = ["#!/bin/bash", "# aid2e-panda: set up the node's environment, then run the trial through the wrapper"]
    if init_env_is_file:
        lines.append(f"source ./{INIT_ENV_NAME} || {{ echo 'aid2e: sourcing init_env failed' >&2; exit 65; }}")
    elif init_env:
        lines.append(init_env)
    lines.append(f"exec {shlex.quote(python)} {WRAPPER_NAME}")
    return "\n".join(lines) + "\n"


def _excluded(relative: str, patterns: Iterable[str]) -> bool:
    name = relative.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatch(relative, p) or fnmatch.fnmatch(name, p) for p in patterns)


def build(archive: Path, *, workdir: Path, source_dir: Path | None, exclude: Iterable[str],
          command: dict, files: dict[str, Path], init_env: str | None, init_env_file: Path | None,
          python: str) -> None:
    """Write the sandbox tarball (gzip, as prun's ``sources.*`` archives)."""
    exclude = tuple(exclude)

    def add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
        info = tarfile.TarInfo(name)
        info.size, info.mode = len(data), mode
        import io

        tar.addfile(info, io.BytesIO(data))

    with tarfile.open(archive, "w:gz") as tar:
        if source_dir is not None:
            for root, dirs, names in os.walk(source_dir):
                rel_root = Path(root).relative_to(source_dir)
                dirs[:] = sorted(d for d in dirs if not _excluded((rel_root / d).as_posix(), exclude))
                for name in sorted(names):
                    relative = (rel_root / name).as_posix()
                    if not _excluded(relative, exclude):
                        tar.add(Path(root) / name, arcname=relative, recursive=False)
        for entry in sorted(workdir.iterdir()):
            if entry.name in OUTPUTS or entry.resolve() == archive.resolve():
                continue
            tar.add(entry, arcname=entry.name)
        for arcname, path in files.items():
            tar.add(path, arcname=arcname)
        if init_env_file is not None:
            tar.add(init_env_file, arcname=INIT_ENV_NAME)
        add_bytes(tar, WRAPPER_NAME, Path(job_wrapper.__file__).read_bytes())
        add_bytes(tar, "aid2e_panda_command.json", json.dumps(command).encode())
        add_bytes(tar, JOB_SCRIPT, job_script(init_env, init_env_file is not None, python).encode(), 0o755)
