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
