"""Loading a saved campaign: Ax rebuilt from its snapshot and brought up to the trial records.

``AxScheduler.resume``, ``load_experiment`` and config ``load_if_exists`` all come here. The
records are read by :mod:`aid2e.state_records`; a result an older aid2e gave Ax that Ax cannot
take is turned into a FAILED trial (so the campaign resumes instead of failing at generation),
and trials Ax generated after the last record was saved are abandoned (they never ran).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from attrs import frozen

from . import campaign, data_checks, serialize
from .errors import ConfigError
from .state_records import SavedState
from .trials import TrialRecord

log = logging.getLogger(__name__)


@frozen(kw_only=True)
class LoadedCampaign:
    """A saved campaign, loaded: its Ax bridge, its trial records, and where it lives."""

    bridge: Any
    records: dict[int, TrialRecord]
    campaign_id: str | None
    relocated_from: str | None  # the directory it was saved in, when that is not where it lives now
    saved_at: float | None


def load(saved: SavedState, home: Callable[[Any], Path]) -> LoadedCampaign:
    """Rebuild the Ax experiment of ``saved`` and bring it up to its trial records.

    ``home(bridge)`` is the directory the campaign lives in now (it may depend on the
    experiment's name); trial directories saved relative to the campaign are placed under it.
    """
    bridge = bridge_from(saved)
    where = home(bridge)
    records = saved.records(where)
    refused = data_checks.refused_records(records)
    try:
        for record in records:
            if record.index in refused:
                record.status, record.message = "FAILED", f"result refused on resume: {refused[record.index]}"
                log.warning("trial %d: %s", record.index, record.message)
            bridge.sync_trial(record.index, record.parameters, record.status, record.metrics, record.message)
    except Exception as exc:
        raise ConfigError(f"{saved.records_source or saved.source}: trial {record.index}'s record does not "
                          f"fit the experiment ({type(exc).__name__}: {str(exc)[:300]})") from exc
    by_index = {record.index: record for record in records}
    if saved.ax.get("data") is None:  # format 1: Ax's own snapshot kept 10 decimals
        bridge.restore_exact_data({i: r.metrics for i, r in by_index.items() if r.status == "COMPLETED"})
    for index in refused:
        bridge.retract(index, by_index[index].message)
    # Trials Ax generated after the last record was saved never ran (records are saved before
    # submission): abandon them so they do not stay pending in Ax for ever.
    for index in bridge.unfinished_trials():
        if index not in by_index:
            bridge.abandon(index, "generated but never launched: the controller stopped first")
    saved_dir = saved.campaign.get("dir") if isinstance(saved.campaign.get("dir"), str) else None
    campaign_id = saved.campaign.get("id")
    return LoadedCampaign(
        bridge=bridge, records=by_index, campaign_id=campaign_id if isinstance(campaign_id, str) else None,
        relocated_from=saved_dir if saved_dir and not campaign.same_dir(saved_dir, where) else None,
        saved_at=saved.saved_at)


def bridge_from(saved: SavedState, *, keep: bool = False) -> Any:
    """Ax rebuilt from the snapshot in ``saved`` (``keep``: from a copy, the snapshot stays usable)."""
    from .ax_bridge import AxBridge

    try:
        return AxBridge.from_snapshot(copy.deepcopy(saved.ax) if keep else saved.ax)  # decoding consumes it
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(f"{saved.source}: the Ax snapshot in it cannot be read "
                          f"({type(exc).__name__}: {str(exc)[:300]})") from exc


def check_same_problem(saved: SavedState, where: Path, mine: Any) -> None:
    """config ``load_if_exists``: the campaign saved in ``where`` must have the parameters and
    objectives of this experiment (``mine``, an Ax bridge), else a one-line error."""
    theirs = bridge_from(saved, keep=True)
    for what, ours, saved_names in (("parameters", mine.parameter_names, theirs.parameter_names),
                                    ("objectives", mine.objective_names, theirs.objective_names)):
        if sorted(ours) != sorted(saved_names):
            raise ConfigError(
                f"config 'load_if_exists': the campaign saved in {where} has {what} "
                f"{', '.join(sorted(saved_names))} but this experiment has {', '.join(sorted(ours))}: "
                "give this experiment a new name or another job_output_dir")


def describe_backend(backend: Any) -> dict[str, Any]:
    """What a later resume needs to rebuild the backend (``to_config()`` gives the constructor's
    keyword arguments; backends without it must be passed to resume)."""
    to_config = getattr(backend, "to_config", None)
    return {
        "backend": getattr(backend, "name", ""),
        "class": f"{type(backend).__module__}:{type(backend).__qualname__}",
        "kwargs": to_config() if callable(to_config) else None,
    }


def rebuild_backend(description: Mapping[str, Any] | None) -> Any:
    """The backend :func:`describe_backend` described, built again."""
    if not description or description.get("kwargs") is None:
        raise ConfigError("the saved state does not say how to rebuild its runner: pass one, "
                          "AxScheduler.resume(path, runner)")
    factory = serialize.resolve(str(description["class"]), what="runner")
    try:
        return factory(**description["kwargs"])
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"cannot rebuild the saved runner {description['class']} ({exc}); pass one, "
                          "AxScheduler.resume(path, runner)") from exc


__all__ = ["LoadedCampaign", "bridge_from", "check_same_problem", "describe_backend", "load", "rebuild_backend"]
