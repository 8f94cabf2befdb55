"""A runner's name is the name it is registered under; handles of its old name are still followed."""

from __future__ import annotations

from aid2e.backend import can_follow
from aid2e.plugins import get_plugin_manager
from aid2e_psij import PsijRunner, SlurmRunner


def test_each_psij_runner_is_named_as_registered():
    """SlurmRunner was registered as "slurm" but named its handles "psij"."""
    infos = get_plugin_manager().backends()
    for registered in ("slurm", "psij"):
        assert infos[registered].factory.name == registered


def test_handles_of_the_old_name_are_followed():
    slurm, psij = SlurmRunner(), PsijRunner(executor="local")
    assert can_follow(slurm, "slurm") and can_follow(slurm, "psij")  # campaigns saved before the rename
    assert can_follow(psij, "psij") and can_follow(psij, "slurm")
    assert not can_follow(slurm, "joblib") and not can_follow(object(), "psij")
