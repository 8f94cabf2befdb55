"""PSI/J executors as aid2e uses them: built by name, batch queue polling done by the runner.

PSI/J's own polling thread is kept idle (aid2e polls once per scheduler tick, for all jobs,
with the executor's own status command and parser), and Slurm's status parser is made
tolerant: upstream PSI/J asserts that every squeue reason is one it knows, so one foreign job
ending with e.g. ``DeadLine`` or ``OutOfMemory`` failed every poll of every job
(ExaWorks/psij-python#533). Here an unknown state or reason only affects its own line, and each
status keeps Slurm's own state code and reason (``metadata["native_state"]``, ``["reason"]``)
so the runner can tell a lost node from the job's own failure.

Every Slurm job is submitted with ``sbatch --no-requeue``: by default Slurm requeues a batch job
whose node fails and runs it again behind aid2e's back (twice, into the same trial directory).
Without requeueing the job ends ``NODE_FAIL`` and aid2e decides (``max_retries``). The option is
on the command line because there it overrides both ``SBATCH_REQUEUE`` in the environment and
any ``#SBATCH`` line (PSI/J's custom attributes cannot express a flag without a value anyway).
"""

from __future__ import annotations

import io
import logging
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: executors PSI/J ships (``local`` runs processes on this machine, for tests and laptops)
EXECUTORS = ("slurm", "pbs", "pbs_classic", "lsf", "flux", "cobalt", "local")
#: PSI/J's polling thread must never run: its first tick is pushed beyond any campaign
_NEVER = 10**9


def _tolerant_slurm_class() -> type:
    import psij
    from psij import JobState, JobStatus
    from psij.executors.batch.batch_scheduler_executor import check_status_exit_code
    from psij.executors.batch.slurm import SlurmJobExecutor

    class TolerantSlurmJobExecutor(SlurmJobExecutor):
        """SlurmJobExecutor whose squeue parsing survives states and reasons it does not know."""

        _NAME_ = "slurm"  # set by JobExecutor.get_instance for registered classes; this one is ours
        _VERSION_ = psij.__version__

        def generate_submit_script(self, job: Any, context: dict[str, object], submit_file: Any) -> None:
            """PSI/J shell-quotes values and then wraps them in double quotes, so a value with a
            space reached sbatch as ``--comment="'a b'"`` (quotes included). Undo the inner quoting
            in ``#SBATCH`` lines, which sbatch reads itself (no shell)."""
            buffer = io.StringIO()
            super().generate_submit_script(job, context, buffer)
            submit_file.write(fix_directive_quoting(buffer.getvalue()))

        def get_submit_command(self, job: Any, submit_file_path: Path) -> list[str]:
            """``sbatch --no-requeue <script>`` (see the module docstring)."""
            command = list(super().get_submit_command(job, submit_file_path))
            return [command[0], "--no-requeue", *command[1:]]

        def parse_status_output(self, exit_code: int, out: str) -> dict[str, Any]:
            check_status_exit_code("squeue", exit_code, out)
            statuses = {}
            for line in out.splitlines()[1:]:
                cols = line.split(None, 2)
                if len(cols) < 2:
                    continue
                native_id, compact = cols[0], cols[1]
                reason = cols[2].strip() if len(cols) > 2 else ""
                state = self._STATE_MAP.get(compact)
                if state is None:
                    log.debug("squeue: unknown state %r for job %s", compact, native_id)
                    continue
                message = None
                if state == JobState.FAILED:
                    message = self._REASONS_MAP.get(reason, reason or None)
                statuses[native_id] = JobStatus(state, message=message,
                                                metadata={"native_state": compact, "reason": reason})
            return statuses

    return TolerantSlurmJobExecutor


_DIRECTIVE = re.compile(r"""^(#SBATCH --[A-Za-z0-9_-]+=)"(.*)"\s*$""")


def fix_directive_quoting(script: str) -> str:
    """``#SBATCH --key="'v a l'"`` -> ``#SBATCH --key="v a l"`` (see the executor's docstring)."""
    lines = []
    for line in script.splitlines(keepends=True):
        match = _DIRECTIVE.match(line)
        if match:
            try:
                parts = shlex.split(match.group(2))
            except ValueError:
                parts = None
            if parts is not None and len(parts) == 1:
                value = parts[0].replace("\\", "\\\\").replace('"', '\\"')
                line = f'{match.group(1)}"{value}"\n'
        lines.append(line)
    return "".join(lines)


def make_executor(name: str, work_directory: Path) -> Any:
    """A PSI/J executor for ``name`` whose own polling thread stays idle."""
    from psij import JobExecutor
    from psij.executors.batch.batch_scheduler_executor import BatchSchedulerExecutorConfig

    if name == "slurm":
        from psij.executors.batch.slurm import SlurmExecutorConfig

        config = SlurmExecutorConfig(work_directory=work_directory, queue_polling_interval=_NEVER,
                                     initial_queue_polling_delay=_NEVER)
        return _tolerant_slurm_class()(config=config)
    if name == "local":
        from psij import JobExecutorConfig

        return JobExecutor.get_instance("local", config=JobExecutorConfig(work_directory=work_directory))
    config = BatchSchedulerExecutorConfig(work_directory=work_directory, queue_polling_interval=_NEVER,
                                          initial_queue_polling_delay=_NEVER)
    return JobExecutor.get_instance(name, config=config)


def is_batch(executor: Any) -> bool:
    from psij.executors.batch.batch_scheduler_executor import BatchSchedulerExecutor

    return isinstance(executor, BatchSchedulerExecutor)


#: The command that shows each batch system's queues (its presence means the system is reachable).
_QUEUE_COMMANDS = {"pbs": "qstat", "pbs_classic": "qstat", "lsf": "bqueues", "flux": "flux", "cobalt": "qstat"}
#: Slurm node states (``sinfo %t``, suffixes removed) on which a job can run or will soon.
_USABLE = {"idle", "mix", "alloc", "comp", "resv", "plnd", "futr"}
STATUS_TIMEOUT = 15.0


def batch_status(executor: str, queue: str | None) -> str:
    """One line on whether ``executor`` (its ``queue``) can take jobs now: see
    :meth:`aid2e.Backend.status`."""
    if executor == "local":
        return "ready, local processes"
    if executor == "slurm":
        return slurm_status(queue)
    program = _QUEUE_COMMANDS[executor]
    found = shutil.which(program)
    return f"ready, {program} at {found}" if found else f"not ready: {program} is not on PATH (no {executor} here?)"


def slurm_status(partition: str | None) -> str:
    """``partition debug up, nodes: 1 idle`` from one ``sinfo``; ``not ready: ...`` when Slurm
    cannot be asked, the partition does not exist, is not up or has no node that can run a job."""
    sinfo = shutil.which("sinfo")
    if sinfo is None:
        return "not ready: sinfo is not on PATH (run where Slurm's commands are)"
    try:
        done = subprocess.run([sinfo, "--noheader", "--format=%P|%a|%D|%t"], capture_output=True, text=True,
                              timeout=STATUS_TIMEOUT, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return f"not ready: sinfo did not answer in {STATUS_TIMEOUT:g} s (is slurmctld up?)"
    except OSError as exc:
        return f"not ready: sinfo cannot run: {exc.strerror or exc}"
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        return f"not ready: sinfo failed: {lines[0] if lines else f'exit {done.returncode}'}"
    partitions: dict[str, dict[str, Any]] = {}
    default = None
    for line in done.stdout.splitlines():
        fields = line.strip().split("|")
        if len(fields) != 4:
            continue
        name, available, count, state = fields
        if name.endswith("*"):
            name = name[:-1]
            default = name
        entry = partitions.setdefault(name, {"available": available, "nodes": []})
        entry["nodes"].append((count, state))
    wanted = partition if partition is not None else default
    if wanted is None or wanted not in partitions:
        known = ", ".join(sorted(partitions)) or "none"
        return (f"not ready: no partition {partition!r} (partitions: {known})" if partition is not None else
                f"not ready: no default partition: give partition (partitions: {known})")
    entry = partitions[wanted]
    nodes = ", ".join(f"{count} {state}" for count, state in entry["nodes"])
    text = f"partition {wanted}{' (the default)' if partition is None else ''} {entry['available']}, nodes: {nodes}"
    usable = [state for _, state in entry["nodes"] if state.rstrip("*~#!%$@^-") in _USABLE and "*" not in state]
    if entry["available"] != "up":
        return f"not ready: {text} (jobs wait until it is up)"
    if not usable:
        return f"not ready: {text} (no node can run a job now)"
    return f"ready, {text}"
