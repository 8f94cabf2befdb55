"""A campaign's directory: its name, who may write in it, and whose campaign it holds.

A run takes the campaign with :func:`take`: the directory must be writable, its lock
(:mod:`aid2e.ownership`) free, and the campaign saved there (if any) the one this scheduler runs:
a new campaign never writes over saved state, and a scheduler whose campaign another controller
saved since never overwrites the newer trials.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

from . import atomic
from .errors import ConfigError
from .ownership import CampaignLock
from .state_records import SavedIdentity, saved_identity


def directory_name(experiment: str) -> str:
    """The experiment's directory name, one per name (distinct names never share a directory)
    and always inside job_output_dir: '%', '/' and NUL are written as %XX, and '', '.' and
    '..' as '%', '%%2E' and '%%2E%2E' (no other name gives those: a '%' of a name becomes %25).
    Names without those characters are used as they are."""
    if experiment in ("", ".", ".."):
        return "%" + "%2E" * len(experiment) if experiment else "%"
    return escape(experiment)


def escape(text: str, also: str = "") -> str:
    """``text`` with '%', '/', NUL and the characters of ``also`` written as %XX: distinct texts
    stay distinct, and none holds a path separator."""
    return re.sub(f"[%/\\x00{re.escape(also)}]", lambda m: f"%{ord(m.group()):02X}", text)


def check_writable(where: Path, job_output_dir: str) -> None:
    """The campaign directory must be creatable and writable before anything runs."""
    try:
        atomic.private_dir(where)
        probe = where / ".aid2e-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"config 'job_output_dir' ({job_output_dir}): cannot write "
                          f"{where}: {exc.strerror or exc}") from exc


def take(where: Path, *, campaign_id: str | None, known_saved_at: float | None, name: str,
         load_saved: Callable[[], None] | None = None) -> CampaignLock:
    """Lock ``where`` for one run and check whose campaign it holds; the lock (held) is returned.

    ``campaign_id`` None: a new campaign, refused if ``where`` holds saved state or trial
    directories — unless ``load_saved`` is given (config ``load_if_exists``): then the saved
    campaign is loaded by calling it, under the lock. Otherwise the saved campaign must be this
    one and not saved after ``known_saved_at`` (the state this scheduler last wrote or read).
    """
    lock = CampaignLock(where, campaign_id or "")
    lock.acquire()
    try:
        saved = saved_identity(where)
        if campaign_id is None:
            if saved is not None and load_saved is not None:
                load_saved()
            elif saved is not None or has_trial_dirs(where):
                raise ConfigError(occupied_message(where, saved, name))
        elif saved is not None:
            if saved.campaign and saved.campaign != campaign_id:
                raise ConfigError(
                    f"{where} holds another campaign (id {saved.campaign}, {saved.trials} trials) than the "
                    f"one loaded here (id {campaign_id}): resume that one with aid2e resume {where}, "
                    "or set config 'job_output_dir' to another directory")
            if known_saved_at is not None and saved.saved_at > known_saved_at:
                raise ConfigError(
                    f"the campaign in {where} was saved after the state this scheduler last saved or loaded: "
                    f"running would overwrite newer trials; resume it (aid2e resume {where}, or "
                    "AxScheduler.resume(dir)), or set config 'job_output_dir' to another directory to branch off")
    except BaseException:
        lock.release()
        raise
    return lock


def has_trial_dirs(where: Path) -> bool:
    try:
        return any(entry.name.startswith("trial_") for entry in os.scandir(where))
    except OSError:
        return False


def occupied_message(where: Path, saved: SavedIdentity | None, name: str) -> str:
    what = (f"the saved campaign {name!r} ({saved.trials} trials)" if saved is not None
            else "trial directories of an earlier run (and no saved state)")
    return (f"{where} already holds {what}; continue it with aid2e resume {where} (or "
            "AxScheduler.resume(dir), or config 'load_if_exists': True), or give the experiment a new name or "
            "another config 'job_output_dir'")


def same_dir(a: str | Path, b: str | Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


__all__ = ["check_writable", "directory_name", "escape", "has_trial_dirs", "occupied_message", "same_dir", "take"]
