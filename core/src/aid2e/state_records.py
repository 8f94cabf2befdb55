"""Trial records to and from the state files: the codec the scheduler's writer and loader share.

The format (file names, version, the rule a record follows) is :mod:`aid2e.state`'s; this module
turns :class:`~aid2e.trials.TrialRecord` s into that format and back. Trial directories are saved
relative to the campaign directory, so a moved or copied campaign finds its own.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs
from attrs import define, frozen

from . import serialize, state
from .errors import ConfigError
from .trials import JobRecord, TrialRecord
from .types import JobHandle, Measurement


def record_to_json(record: TrialRecord, home: Path) -> dict[str, Any]:
    """A trial record as JSON; its job directories relative to ``home`` (the campaign
    directory) when they lie inside it."""
    data = attrs.asdict(record, recurse=False)
    data["handle"] = _handle_to_json(record.handle, home)
    data["metrics"] = {k: serialize.to_json(v) for k, v in record.metrics.items()}
    data["jobs"] = [{**attrs.asdict(job, recurse=False), "handle": _handle_to_json(job.handle, home)}
                    for job in record.jobs.values()]
    return data


def _handle_to_json(handle: JobHandle | None, home: Path) -> dict[str, Any] | None:
    if handle is None:
        return None
    data = serialize.to_json(handle)
    workdir = Path(handle.workdir)
    if workdir.is_absolute() and workdir.is_relative_to(home):
        data["workdir"] = str(workdir.relative_to(home))
    return data


def record_from_json(data: Any, home: Path, saved_dir: str | None = None) -> TrialRecord:
    """The inverse of :func:`record_to_json` (checked by :func:`aid2e.state.check_record`): a
    relative job directory is placed under ``home`` (so is an absolute one inside
    ``saved_dir``, the directory it was saved in)."""
    values = dict(state.check_record(data))
    values["handle"] = _handle_from_json(values.get("handle"), home, saved_dir)
    values["metrics"] = {k: serialize.from_json(v, Measurement) for k, v in (values.get("metrics") or {}).items()}
    jobs = {}
    for job_data in values.get("jobs") or []:
        job = JobRecord(**{**job_data, "handle": _handle_from_json(job_data.get("handle"), home, saved_dir),
                           "fan_out": dict(job_data.get("fan_out") or {})})
        jobs[job.key] = job
    values["jobs"] = jobs
    return TrialRecord(**values)


def _handle_from_json(data: Any, home: Path, saved_dir: str | None) -> JobHandle | None:
    if not data:
        return None
    handle = serialize.from_json(data, JobHandle)
    workdir = Path(handle.workdir)
    if not workdir.is_absolute():
        return attrs.evolve(handle, workdir=str(home / workdir))
    if saved_dir and workdir.is_relative_to(saved_dir):
        return attrs.evolve(handle, workdir=str(home / workdir.relative_to(saved_dir)))
    return handle


class RecordEncoder:
    """Encodes trial records to JSON text, each finished record once: a finished trial's record
    never changes, so saving after each change costs O(trials in flight), not O(all trials)."""

    def __init__(self) -> None:
        self._texts: dict[int, tuple[TrialRecord, str]] = {}

    def encode(self, records: Iterable[TrialRecord], home: Path) -> str:
        """The records as a JSON array."""
        return f"[{', '.join(self._one(record, home) for record in records)}]"

    def _one(self, record: TrialRecord, home: Path) -> str:
        cached = self._texts.get(record.index)
        if cached is not None and cached[0] is record:
            return cached[1]
        text = json.dumps(record_to_json(record, home))
        if record.status != "RUNNING":
            self._texts[record.index] = (record, text)
        return text

    def forget(self) -> None:
        self._texts.clear()


def scheduler_json(head: Mapping[str, Any], records_json: str) -> str:
    """The scheduler part of a state file: ``head`` (config, runner, objective, campaign) and the
    records (a JSON array from :meth:`RecordEncoder.encode`)."""
    return f'{json.dumps(dict(head))[:-1]}, "trials": {records_json}}}'


# ---------------------------------------------------------------- reading
@frozen
class SavedState:
    """What a state directory or saved file holds: the Ax snapshot, and the newest trial records
    (``trials.json`` when it was saved after ``experiment.json``)."""

    source: Path
    ax: dict[str, Any]
    scheduler: dict[str, Any]
    saved_at: float | None = None
    records_source: Path | None = None  # the file the trial records came from (default: source)

    @property
    def campaign(self) -> dict[str, Any]:
        campaign = self.scheduler.get("campaign")
        return campaign if isinstance(campaign, dict) else {}

    def records(self, home: Path) -> list[TrialRecord]:
        """The trial records, checked (one-line ConfigError naming the file and record), with
        their trial directories placed under ``home``, where the campaign now lives."""
        where = self.records_source or self.source
        saved_dir = self.campaign.get("dir") if isinstance(self.campaign.get("dir"), str) else None
        records: dict[int, TrialRecord] = {}
        for position, data in enumerate(self.scheduler["trials"]):
            try:
                record = record_from_json(data, home, saved_dir)
            except (TypeError, ValueError, KeyError, AttributeError) as exc:
                raise ConfigError(f"{where}: trial record #{position} is malformed: "
                                  f"{str(exc)[:200]}") from exc
            if record.index in records:
                raise ConfigError(f"{where}: trial {record.index} has two records (#{position} and an "
                                  "earlier one): the file was edited or damaged; restore it from a backup")
            records[record.index] = record
        return [records[i] for i in sorted(records)]


def read_saved(path: Path) -> SavedState:
    """Read a save_experiment file or a run directory once; anything damaged is a one-line
    ConfigError naming the file (the same checks as ``aid2e status``)."""
    if not path.is_dir():
        document = _read(path, required=True)
        assert document is not None
        return SavedState(source=path, ax=document["ax"], scheduler=document["scheduler"],
                          saved_at=state.saved_at(document))
    trials_doc = _read(path / state.TRIALS_FILE, required=False, needs_ax=False)
    source = path / state.EXPERIMENT_FILE
    document = _read(source, required=True)
    assert document is not None
    newer = trials_doc is not None and state.saved_at(trials_doc) >= state.saved_at(document)
    chosen = trials_doc if newer and trials_doc is not None else document
    return SavedState(source=source, ax=document["ax"], scheduler=chosen["scheduler"],
                      saved_at=state.saved_at(chosen),
                      records_source=path / state.TRIALS_FILE if newer else source)


def _read(source: Path, *, required: bool, needs_ax: bool = True) -> dict[str, Any] | None:
    if not os.path.lexists(source):
        if not required:
            return None
        raise ConfigError(f"experiment file not found: {source}")
    document = state.read_document(source)
    assert document is not None
    if needs_ax and not isinstance(document.get("ax"), dict):
        raise ConfigError(f"{source} is damaged: it has no 'ax' part (the Ax experiment)")
    if not isinstance(document["scheduler"].get("config", {}), dict):
        raise ConfigError(f"{source} is damaged: its 'config' is not an object")
    return document


@define(frozen=True)
class SavedIdentity:
    """Whose campaign a directory holds: what a new run checks before it writes there."""

    campaign: str | None
    saved_at: float
    trials: int


def saved_identity(where: Path) -> SavedIdentity | None:
    """The campaign saved in ``where`` (newest of its two state files), or None if none is."""
    found = [state.read_document(path) for path in (where / state.TRIALS_FILE, where / state.EXPERIMENT_FILE)
             if os.path.lexists(path)]
    documents = [d for d in found if d is not None]
    if not documents:
        return None
    newest = max(documents, key=state.saved_at)
    campaign = newest["scheduler"].get("campaign")
    campaign_id = campaign.get("id") if isinstance(campaign, dict) else None
    return SavedIdentity(campaign=campaign_id if isinstance(campaign_id, str) else None,
                         saved_at=state.saved_at(newest), trials=len(newest["scheduler"]["trials"]))


__all__ = ["RecordEncoder", "SavedIdentity", "SavedState", "read_saved", "record_from_json", "record_to_json",
           "saved_identity", "scheduler_json"]
