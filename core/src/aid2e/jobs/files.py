"""The names of every file of the job contract in a trial directory (one place; stdlib only).

The script reads :data:`PARAMS_FILE` (and in a workflow :data:`JOB_FILE`) and writes
:data:`RESULT_FILE` (paths in ``$AID2E_PARAMS_FILE``, ``$AID2E_JOB_FILE`` and ``$AID2E_RESULT_FILE``);
its output goes to :data:`STDOUT_FILE` and :data:`STDERR_FILE`. The
controller writes :data:`COMMAND_FILE` (argv, env, attempt token) and the launcher
(:mod:`aid2e.jobs.launch`) writes :data:`STATUS_FILE`. A backend that cancels a job leaves
:data:`CANCEL_MARKER`; the scheduler records each attempt in :data:`ATTEMPT_FILE`. Backends'
own files: :data:`LAUNCHER_LOG` (the launcher's stderr, local backends), :data:`PRE_LAUNCH_FILE`
(``module load`` lines, batch backends).

The PanDA job wrapper runs where aid2e may not be installed and repeats the names it needs
(a test checks they agree).
"""

from __future__ import annotations

PARAMS_FILE = "params.json"
#: A workflow job's description: its stage, fan-out values and its inputs (``$AID2E_JOB_FILE``).
JOB_FILE = "job.json"
RESULT_FILE = "result.json"
STDOUT_FILE = "stdout.txt"
STDERR_FILE = "stderr.txt"
COMMAND_FILE = "aid2e_command.json"
STATUS_FILE = "aid2e_status.json"
#: Written into a job's trial directory when it is canceled, so a later controller knows.
CANCEL_MARKER = "aid2e_canceled.json"
#: The scheduler's record of the attempt a trial directory belongs to.
ATTEMPT_FILE = "aid2e_attempt.json"
LAUNCHER_LOG = "aid2e_launcher.log"
PRE_LAUNCH_FILE = "aid2e_pre_launch.sh"

#: What a new attempt removes from the trial directory before it starts (a rerun starts clean).
STALE_FILES = (RESULT_FILE, STATUS_FILE, STDOUT_FILE, STDERR_FILE, CANCEL_MARKER, LAUNCHER_LOG)

__all__ = ["ATTEMPT_FILE", "CANCEL_MARKER", "COMMAND_FILE", "JOB_FILE", "LAUNCHER_LOG", "PARAMS_FILE",
           "PRE_LAUNCH_FILE", "RESULT_FILE", "STALE_FILES", "STATUS_FILE", "STDERR_FILE", "STDOUT_FILE"]
