"""The aid2e hook specifications: one ``HookspecMarker("aid2e")``, nothing else.

Every registration hook yields small typed records from :mod:`aid2e.types`. Built-in
implementations register exactly like third-party plugins (entry-point group ``aid2e``).
The ``aid2e_`` prefix is reserved: in a plugin, a function so named must be one of these hooks,
decorated with ``@hookimpl`` (otherwise the plugin's row in ``aid2e plugins list`` is an error).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from .types import BackendInfo, JobAdapter, JobKind

hookspec = pluggy.HookspecMarker("aid2e")
hookimpl = pluggy.HookimplMarker("aid2e")


@hookspec
def aid2e_job_kinds() -> Iterable[JobKind]:
    """Job kinds this plugin defines (what a trial's evaluation is).

    Example::

        @hookimpl
        def aid2e_job_kinds():
            yield JobKind(name="notebook", spec_type=NotebookJob,
                          description="run a Jupyter notebook with papermill")
    """


@hookspec
def aid2e_backends() -> Iterable[BackendInfo]:
    """Execution backends this plugin provides (where jobs run).

    Example::

        @hookimpl
        def aid2e_backends():
            yield BackendInfo(name="htcondor", factory=HTCondorRunner,
                              kinds={"script"}, description="HTCondor pools")
    """


@hookspec
def aid2e_job_adapters() -> Iterable[JobAdapter]:
    """Adapters that turn a job of one kind into a kind more backends run natively.

    When a backend cannot run a job's kind, the core applies an adapter whose ``kind`` is
    the job's and whose ``produces`` the backend runs. Example (a container kind becoming
    a script job)::

        @hookimpl
        def aid2e_job_adapters():
            def to_script(request, backend):
                argv = ["podman", "run", "--rm", request.job.image, *request.job.command]
                return attrs.evolve(request, job=ScriptJob(argv=argv))
            yield JobAdapter(kind="container", produces="script", adapt=to_script,
                             description="run the image with podman")
    """
