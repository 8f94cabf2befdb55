"""aid2e-nice: each trial's script runs as a detached local process at low CPU priority."""

import shutil

from aid2e import Backend, BackendInfo, ConfigError, hookimpl
from aid2e.jobs import detached


class NiceRunner(Backend):
    """Script jobs on this machine under ``nice -n <niceness>``, ``slots`` of them at once."""

    name = "nice"  # the backend's name: campaign files say `type: nice`
    kinds = frozenset({"script"})  # function trials are adapted into scripts by the core
    poll_interval = 0.2  # seconds between two polls of running jobs

    def __init__(self, niceness: int = 10, slots: int = 2) -> None:
        if niceness not in range(20) or not (isinstance(slots, int) and slots >= 1):
            raise ConfigError(f"niceness must be 0 to 19 and slots 1 or more, got {niceness!r} and {slots!r}")
        self.niceness, self.slots = int(niceness), slots

    @property
    def capacity(self) -> int:  # how many jobs the scheduler keeps in flight
        return self.slots

    def to_config(self) -> dict:  # what `aid2e resume` rebuilds this runner from
        return {"niceness": self.niceness, "slots": self.slots}

    def status(self) -> str:  # one line for `aid2e validate`
        if shutil.which("nice") is None:
            return "not ready: the nice command is not on PATH"
        return f"ready, {self.slots} job(s) at once at niceness {self.niceness}"

    def submit(self, request):
        return detached.launch(request, self.name, prefix=["nice", "-n", str(self.niceness)])

    def poll(self, handles):
        return {handle.native_id: detached.state(handle) for handle in handles}

    def result(self, handle):
        return detached.result(handle)

    def cancel(self, handle):
        detached.cancel(handle)

    def adopt(self, request):
        return detached.adopt(request, self.name)

    def outlives_controller(self, handle):
        return True


@hookimpl
def aid2e_backends():
    yield BackendInfo(name=NiceRunner.name, factory=NiceRunner, kinds=NiceRunner.kinds,
                      description="this machine, at low CPU priority: scripts as detached processes under nice")
