"""The core's own plugin: function and script job kinds and the function->script adapter.

Registered through the core's entry point (group ``aid2e``), exactly like third-party plugins.
"""

from __future__ import annotations

from collections.abc import Iterator

from .hookspecs import hookimpl
from .jobs.function import check_picklable, to_script_job
from .types import FunctionJob, JobAdapter, JobKind, ScriptJob


@hookimpl
def aid2e_job_kinds() -> Iterator[JobKind]:
    yield JobKind(name="function", spec_type=FunctionJob,
                  description="a Python function called with the trial's parameters")
    yield JobKind(name="script", spec_type=ScriptJob,
                  description="a program run with argv only; parameters and result as JSON files")


@hookimpl
def aid2e_job_adapters() -> Iterator[JobAdapter]:
    yield JobAdapter(kind="function", produces="script", adapt=to_script_job, check=check_picklable,
                     description="pickle the function into the trial directory; a batch job runs it")
